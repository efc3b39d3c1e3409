"""``v2m app``: scoring videos in the browser. :mod:`.jobs` holds what the page does (checks of an
upload, per-session folders, scoring and variations) on the same functions as the command line."""
