"""Speech recognition: WAV bytes in, transcript out; default task is spoken numbers."""
