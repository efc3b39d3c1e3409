"""Diff-V2M (Ji et al., AAAI 2026): hierarchical conditional diffusion for video-to-music.

:class:`DiffV2MConfig` (the official JSON loads as is), :class:`DiffV2M` (conditioner + DiT),
:func:`convert_official` (an official Lightning checkpoint's state dict -> ours) and the
samplers. See docs/diffv2m.md for what follows the paper, what follows the published code, and
the defects of the published code that the default model fixes.
"""

from .config import ConditioningConfig, DiffV2MConfig, DiTConfig, TrainingConfig
from .official_keys import convert_official
from .model import DiffV2M

__all__ = ["ConditioningConfig", "DiTConfig", "DiffV2M", "DiffV2MConfig", "TrainingConfig", "convert_official"]
