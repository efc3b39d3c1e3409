"""ControllableV2M (You et al., ACM MM 2025, "STAD"): spatial-temporal decomposition of the video
into objects of shots, music-feature curves as an interpretable middle layer, and MusicGen's
language model conditioned on them; controls over both."""

from .config import LMConfig, StadConfig, VideoConfig
from .model import Stad

__all__ = ["LMConfig", "Stad", "StadConfig", "VideoConfig"]
