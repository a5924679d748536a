"""Goal-oriented dialogue: a bot answers each user turn from the dialog so far and a KB."""
