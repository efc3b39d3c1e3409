"""Typed configuration of ControllableV2M (model id ``stad``); the official ``config/v2m.yaml`` values as defaults.

Video side: up to ``max_shots`` shots x ``n_objects`` objects (4 + background) on a
``max_seconds`` timeline, CLIP ViT-L/14-336 embeddings (768), a ``width`` 512, ``layers`` 8,
``heads`` 4 transformer over time. Music side: MusicGen's LM (small: 1024 wide, 24 layers, 16
heads; medium: 1536, 48, 24) over EnCodec 32 kHz tokens (4 codebooks x 2048, 50 frames/s, delay
pattern [0, 1, 2, 3]).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import V2MError

MUSIC_FEATURES = {"pitch": 1025, "chroma": 12, "loudness": 1, "spectral": 1}  # channels of each curve


@dataclass(frozen=True)
class VideoConfig:
    semantic_dim: int = 768  # CLIP ViT-L/14-336 image embeddings
    max_shots: int = 10
    n_objects: int = 5
    max_seconds: int = 35
    width: int = 512
    layers: int = 8
    heads: int = 4
    dropout: float = 0.1
    drop_rate: float = 0.15  # feature-free guidance: share of each stream's tokens zeroed in training


@dataclass(frozen=True)
class LMConfig:
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    ffn_dim: int = 4096
    num_codebooks: int = 4
    card: int = 2048
    frame_rate: int = 50
    dropout: float = 0.1
    init_from: str | None = None  # e.g. facebook/musicgen-small: start from its decoder


@dataclass(frozen=True)
class StadConfig:
    video: VideoConfig = field(default_factory=VideoConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    sample_rate: int = 32000
    dirichlet_p: float = 0.1  # rescale the predicted curves by 4 x Dirichlet(1, 1, 1, 1) with this probability
    lr: float = 1e-4
    weight_decay: float = 0.1

    @classmethod
    def medium(cls) -> "StadConfig":
        return cls(lm=LMConfig(hidden_size=1536, num_layers=48, num_heads=24, ffn_dim=6144))

    def to_dict(self) -> dict:
        return {"format": "v2m-stad", "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "StadConfig":
        d = {k: v for k, v in d.items() if k not in ("format", "version")}
        return cls(**{**d, "video": VideoConfig(**d.get("video", {})), "lm": LMConfig(**d.get("lm", {}))})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "StadConfig":
        """A config file of ours (``to_dict``); one :class:`V2MError` naming the file when it is
        not JSON or not a ControllableV2M config (a missing file is the caller's OSError)."""
        try:
            d = json.loads(Path(path).read_text())
            if not isinstance(d, dict) or d.get("format", "v2m-stad") != "v2m-stad":
                raise ValueError("not a JSON object of format v2m-stad")
            return cls.from_dict(d)
        except (ValueError, TypeError) as e:  # not JSON; unknown or mistyped entries
            raise V2MError(f"is not a ControllableV2M config ({' '.join(str(e).split())[:160]})", path) from None
