"""Translation: text pairs; default tasks are generated number words and gettext catalogs."""
