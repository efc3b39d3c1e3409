"""v2m's version, and the mark v2m leaves in the files it writes (so it can tell them apart)."""

__version__ = "0.1.0"
WRITER = f"v2m {__version__}"  # in WAV and video metadata (comment), PNG text (Software)
