"""Typed configuration of Diff-V2M; the official ``model_config_odf.json`` loads as is.

:meth:`DiffV2MConfig.from_official` reads the official JSON (stable-audio-tools format:
``model_type`` diffusion_cond, ``model.conditioning.configs`` with the semantic, rhythm, color,
int and number conditioners, ``model.diffusion`` with the DiT, ``model.pretransform`` with the
Oobleck VAE). The T5 ``prompt`` conditioner of the official file is accepted and ignored: the
official model never routes its output to the DiT. :meth:`to_official` writes the same format
back, so configs move both ways.

``official`` selects the computation of the published code where the published checkpoint
depends on it (docs/diffv2m.md lists the differences): colour tokens replaced by the rhythm
tokens in the emotional cross-attention, LayerNorms that replace the residual stream around
the cross-attentions, and the rhythm predictor's normalisation over padded seconds. The
default (``official=False``) is the fixed model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ...errors import V2MError

FUSIONS = {"film_choose": "FiLM_choose", "film_sum": "FiLM", "gate": "gate", "average": "sigmoid"}
_FROM_OFFICIAL_FUSION = {v: k for k, v in FUSIONS.items()}
RHYTHM_DIMS = {"odf": 1, "mel": 16, "tempo": 16, "beat": 1}


@dataclass(frozen=True)
class ConditioningConfig:
    cond_dim: int = 768  # width of every condition token
    semantic_dim: int = 512  # CLIP ViT-B/32 image embeddings
    color_dim: int = 3072
    rhythm_type: str = "odf"  # odf | mel | tempo
    max_seconds: int = 30  # the per-second condition grid
    num_classes: int = 3  # class labels 0..2 (every published config uses 2)
    seconds_max: float = 30.0  # seconds_start / seconds_total are clamped to [0, seconds_max]
    predictor_width: int = 512  # the rhythm predictor (fixed sizes in the official code)
    predictor_depth: int = 12
    predictor_heads: int = 8

    @property
    def rhythm_dim(self) -> int:
        return RHYTHM_DIMS[self.rhythm_type]


@dataclass(frozen=True)
class DiTConfig:
    io_channels: int = 64
    embed_dim: int = 1536
    depth: int = 24
    num_heads: int = 24
    fusion: str = "film_choose"  # film_choose | film_sum | gate | average
    switch_t: float = 0.2  # film_choose: semantic branch while t > switch_t, rhythmic after

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class TrainingConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-3
    inv_gamma: float = 1e6  # InverseLR schedule
    power: float = 0.5
    warmup: float = 0.99
    ema_beta: float = 0.9999
    cfg_dropout: float = 0.1  # per condition stream
    schedule_start: int = 10  # scheduled conditioning: predicted rhythm from this epoch ...
    schedule_end: int = 30  # ... always from this one


@dataclass(frozen=True)
class DiffV2MConfig:
    sample_rate: int = 44100
    sample_size: int = 1323000  # 30 s
    audio_channels: int = 2
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: dict = field(default_factory=lambda: dict(_SAO_VAE))  # official pretransform config
    training: TrainingConfig = field(default_factory=TrainingConfig)
    official: bool = False

    def __post_init__(self):
        if self.dit.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.dit.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.conditioning.rhythm_type not in ("odf", "mel", "tempo"):
            raise ValueError("rhythm_type must be odf, mel or tempo")
        if self.dit.embed_dim % self.dit.num_heads or self.conditioning.cond_dim % self.dit.head_dim:
            raise ValueError("embed_dim and cond_dim must be multiples of the head size (embed_dim / num_heads)")
        if self.dit.head_dim < 32:
            raise ValueError("heads must be at least 32 channels wide (the rotary embedding covers 32)")

    @property
    def downsampling(self) -> int:
        return int(self.vae.get("downsampling_ratio", 2048))

    @property
    def latent_length(self) -> int:
        return self.sample_size // self.downsampling

    # --- the official JSON ------------------------------------------------------------------

    @classmethod
    def from_official(cls, d: dict, official: bool = False) -> "DiffV2MConfig":
        if d.get("model_type") != "diffusion_cond":
            raise ValueError(f"not a Diff-V2M config: model_type is {d.get('model_type')!r}, not diffusion_cond")
        model = d["model"]
        confs = {c["id"]: c for c in model["conditioning"]["configs"]}
        for needed in ("semantic", "rhythm", "color", "class", "seconds_start", "seconds_total"):
            if needed not in confs:
                raise ValueError(f"the config has no {needed!r} conditioner")
        semantic, color = confs["semantic"]["config"], confs["color"]["config"]
        cond = ConditioningConfig(
            cond_dim=int(model["conditioning"]["cond_dim"]), semantic_dim=int(semantic["dim"]),
            color_dim=int(color["dim"]), rhythm_type=semantic.get("rhythm_type", "odf"),
            max_seconds=int(semantic.get("max_length", 30)),
            num_classes=int(confs["class"]["config"]["max_val"]) + 1,
            seconds_max=float(confs["seconds_total"]["config"]["max_val"]))
        diff = model["diffusion"]
        dc = diff["config"]
        if diff.get("type") != "dit" or dc.get("transformer_type", "continuous_transformer") != "continuous_transformer":
            raise ValueError("only the DiT with the continuous transformer is a Diff-V2M model")
        if int(dc.get("cond_token_dim", cond.cond_dim)) != cond.cond_dim or dc.get("project_cond_tokens", False):
            raise ValueError("cond_token_dim must equal cond_dim and project_cond_tokens be false, as published")
        if list(diff.get("global_cond_ids", [])) != ["seconds_start", "seconds_total", "class"]:
            raise ValueError("global_cond_ids must be seconds_start, seconds_total, class, as published")
        fusion = dc.get("attention_weight_type", "FiLM_choose")
        if fusion not in _FROM_OFFICIAL_FUSION:
            raise ValueError(f"attention_weight_type {fusion!r} is not one of {', '.join(_FROM_OFFICIAL_FUSION)}")
        dit = DiTConfig(io_channels=int(dc["io_channels"]), embed_dim=int(dc["embed_dim"]), depth=int(dc["depth"]),
                        num_heads=int(dc["num_heads"]), fusion=_FROM_OFFICIAL_FUSION[fusion])
        if int(dc.get("global_cond_dim", 3 * cond.cond_dim)) != 3 * cond.cond_dim:
            raise ValueError("global_cond_dim must be 3 x cond_dim (seconds_start, seconds_total, class)")
        tr = TrainingConfig()
        opt = d.get("training", {}).get("optimizer_configs", {}).get("diffusion", {})
        if opt:
            o, s = opt.get("optimizer", {}).get("config", {}), opt.get("scheduler", {}).get("config", {})
            tr = replace(tr, lr=float(o.get("lr", tr.lr)), betas=tuple(o.get("betas", tr.betas)),
                         weight_decay=float(o.get("weight_decay", tr.weight_decay)),
                         inv_gamma=float(s.get("inv_gamma", tr.inv_gamma)), power=float(s.get("power", tr.power)),
                         warmup=float(s.get("warmup", tr.warmup)))
        return cls(sample_rate=int(d["sample_rate"]), sample_size=int(d["sample_size"]),
                   audio_channels=int(d.get("audio_channels", 2)), conditioning=cond, dit=dit,
                   vae=dict(model["pretransform"]["config"]), training=tr, official=official)

    def to_official(self) -> dict:
        c, t = self.conditioning, self.dit
        cmax = {"min_val": 0, "max_val": self.conditioning.seconds_max}
        return {
            "model_type": "diffusion_cond", "sample_size": self.sample_size, "sample_rate": self.sample_rate,
            "audio_channels": self.audio_channels,
            "model": {
                "pretransform": {"type": "autoencoder", "iterate_batch": True, "config": self.vae},
                "conditioning": {"cond_dim": c.cond_dim, "configs": [
                    {"id": "semantic", "type": "semantic",
                     "config": {"dim": c.semantic_dim, "max_length": c.max_seconds, "rhythm_type": c.rhythm_type}},
                    {"id": "rhythm", "type": "rhythm", "config": {"dim": c.rhythm_dim, "max_length": c.max_seconds}},
                    {"id": "color", "type": "color", "config": {"dim": c.color_dim, "max_length": c.max_seconds}},
                    {"id": "class", "type": "int", "config": {"min_val": 0, "max_val": c.num_classes - 1}},
                    {"id": "seconds_start", "type": "number", "config": cmax},
                    {"id": "seconds_total", "type": "number", "config": cmax}]},
                "diffusion": {
                    "cross_attention_cond_ids": ["semantic", "rhythm", "seconds_start", "seconds_total", "color"],
                    "global_cond_ids": ["seconds_start", "seconds_total", "class"], "type": "dit",
                    "config": {"io_channels": t.io_channels, "embed_dim": t.embed_dim, "depth": t.depth,
                               "num_heads": t.num_heads, "cond_token_dim": c.cond_dim,
                               "global_cond_dim": 3 * c.cond_dim, "project_cond_tokens": False,
                               "transformer_type": "continuous_transformer",
                               "attention_weight_type": FUSIONS[t.fusion]}},
                "io_channels": t.io_channels},
        }

    @classmethod
    def load(cls, path: str | os.PathLike, official: bool | None = None) -> "DiffV2MConfig":
        """A config file: the official JSON, or ours (``to_dict``); one :class:`V2MError` naming
        the file when it is not JSON or not a Diff-V2M config (a missing file is the caller's
        OSError)."""
        try:
            d = json.loads(Path(path).read_text())
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            if d.get("format") == "v2m-diffv2m":
                return cls.from_dict(d, official)
            return cls.from_official(d, official=bool(official))
        except (ValueError, KeyError, TypeError) as e:  # not JSON; missing or mistyped entries
            reason = f"no {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:160]
            raise V2MError(f"is not a Diff-V2M config ({reason})", path) from None

    def to_dict(self) -> dict:
        return {"format": "v2m-diffv2m", "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, official: bool | None = None) -> "DiffV2MConfig":
        d = {k: v for k, v in d.items() if k not in ("format", "version")}
        tr = d.get("training", {})
        if "betas" in tr:
            tr = {**tr, "betas": tuple(tr["betas"])}
        return cls(**{**d, "conditioning": ConditioningConfig(**d.get("conditioning", {})),
                      "dit": DiTConfig(**d.get("dit", {})), "training": TrainingConfig(**tr),
                      **({} if official is None else {"official": official})})


_SAO_VAE = {  # Stable Audio Open 1.0's VAE, as the official config spells it
    "encoder": {"type": "oobleck", "requires_grad": False, "config": {
        "in_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16], "strides": [2, 4, 4, 8, 8],
        "latent_dim": 128, "use_snake": True}},
    "decoder": {"type": "oobleck", "config": {
        "out_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16], "strides": [2, 4, 4, 8, 8],
        "latent_dim": 64, "use_snake": True, "final_tanh": False}},
    "bottleneck": {"type": "vae"}, "latent_dim": 64, "downsampling_ratio": 2048, "io_channels": 2,
}
