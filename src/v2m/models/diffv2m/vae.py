"""The Stable Audio Open "Oobleck" VAE of Diff-V2M, as diffusers' ``AutoencoderOobleck``.

Diff-V2M diffuses in the latent space of Stable Audio Open 1.0's VAE (the official
``pretransform``: 44.1 kHz stereo, 64 latent channels, one frame per 2048 samples). diffusers
implements the same network, so this module only supplies what differs:

- :func:`oobleck_kwargs`: the official ``model.pretransform.config`` -> ``AutoencoderOobleck``
  arguments, refusing configs diffusers cannot express.
- :func:`convert_official_vae`: official key names (``encoder.layers.i...``, ``nn.Sequential``
  indices) -> diffusers' (``encoder.block.i.res_unit1.conv1...``). Both use the legacy
  ``torch.nn.utils.weight_norm`` with ``dim=0`` (for ``ConvTranspose1d``, weight ``[in, out, k]``,
  that is one gain per *input* channel), so ``weight_g``/``weight_v`` are copied unchanged; only
  the SnakeBeta ``alpha``/``beta`` change shape (``[C]`` -> ``[1, C, 1]``).
- :class:`OfficialVAE`: the official encode/decode around the diffusers model: encoder and
  decoder run per batch item (``iterate_batch=True``) and the ``vae`` bottleneck
  (:func:`vae_bottleneck`: ``stdev = softplus(scale) + 1e-4``, ``latents = eps * stdev + mean``)
  with its KL term.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import torch
from torch import nn

from ...errors import V2MError

PREFIX = "diffusion.pretransform.model."  # the VAE's keys in an official Lightning checkpoint
_CONV, _SNAKE = ("bias", "weight_g", "weight_v"), ("alpha", "beta")
# official Oobleck constructor defaults (stable_audio_tools/models/autoencoders.py)
_ENC_DEFAULTS = {"in_channels": 2, "channels": 128, "latent_dim": 32, "c_mults": [1, 2, 4, 8],
                 "strides": [2, 4, 8, 8], "use_snake": False, "antialias_activation": False}
_DEC_DEFAULTS = {"out_channels": 2, "channels": 128, "latent_dim": 32, "c_mults": [1, 2, 4, 8],
                 "strides": [2, 4, 8, 8], "use_snake": False, "antialias_activation": False,
                 "use_nearest_upsample": False, "final_tanh": True}


def oobleck_kwargs(pretransform_config: Mapping[str, Any], sample_rate: int = 44100) -> dict[str, Any]:
    """``AutoencoderOobleck(**kwargs)`` arguments for an official ``model.pretransform.config``
    (the wrapping ``{"type": "autoencoder", "config": ...}`` is accepted too).

    Raises ValueError listing everything diffusers' fixed architecture cannot express."""
    cfg = pretransform_config
    if "encoder" not in cfg and "config" in cfg:
        if cfg.get("type") != "autoencoder":
            raise ValueError(f"pretransform type {cfg.get('type')!r} is not 'autoencoder'")
        cfg = cfg["config"]
    enc = {**_ENC_DEFAULTS, **cfg["encoder"].get("config", {})}
    dec = {**_DEC_DEFAULTS, **cfg["decoder"].get("config", {})}
    strides, mults, io = list(enc["strides"]), list(enc["c_mults"]), cfg.get("io_channels", enc["in_channels"])
    checks = [
        (cfg["encoder"].get("type") == "oobleck" and cfg["decoder"].get("type") == "oobleck",
         "encoder and decoder must be of type 'oobleck'"),
        (cfg.get("bottleneck", {}).get("type") == "vae", "the bottleneck must be of type 'vae'"),
        (enc["use_snake"] and dec["use_snake"], "use_snake must be true (diffusers has SnakeBeta only)"),
        (not (enc["antialias_activation"] or dec["antialias_activation"] or dec["use_nearest_upsample"]),
         "antialias_activation and use_nearest_upsample must be off"),
        (not dec["final_tanh"], "final_tanh must be false (diffusers' decoder has no tanh)"),
        (list(dec["strides"]) == strides and list(dec["c_mults"]) == mults and len(strides) == len(mults),
         "encoder and decoder must share strides and c_mults, one stride per multiplier"),
        (enc["latent_dim"] == enc["channels"],
         "the encoder's latent_dim must equal its channels (diffusers' encoder outputs that many)"),
        (enc["latent_dim"] == 2 * dec["latent_dim"] == 2 * cfg.get("latent_dim", dec["latent_dim"]),
         "the encoder's latent_dim must be twice the decoder's and the VAE's latent_dim (mean and scale)"),
        (cfg.get("downsampling_ratio", math.prod(strides)) == math.prod(strides),
         "downsampling_ratio must be the product of the strides"),
        (enc["in_channels"] == dec["out_channels"] == io, "in_channels, out_channels and io_channels must agree"),
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise ValueError("this Oobleck VAE config cannot be built with diffusers: " + "; ".join(problems))
    return {"encoder_hidden_size": enc["channels"], "downsampling_ratios": strides, "channel_multiples": mults,
            "decoder_channels": dec["channels"], "decoder_input_channels": dec["latent_dim"],
            "audio_channels": io, "sampling_rate": sample_rate}


def _official_names(part: str, blocks: int) -> dict[str, str]:
    """Every parameter of an official encoder or decoder with ``blocks`` blocks -> diffusers' name."""
    names: dict[str, str] = {}

    def add(official: str, ours: str, params: tuple[str, ...]) -> None:
        names.update({f"{part}.{official}.{p}": f"{part}.{ours}.{p}" for p in params})

    def residual_unit(official: str, ours: str) -> None:  # Snake, conv k7, Snake, conv k1
        for i, module in enumerate(("snake1", "conv1", "snake2", "conv2")):
            add(f"{official}.layers.{i}", f"{ours}.{module}", _SNAKE if "snake" in module else _CONV)

    add("layers.0", "conv1", _CONV)
    for b in range(blocks):
        official, ours = f"layers.{b + 1}.layers", f"block.{b}"
        if part == "encoder":  # 3 residual units, Snake, strided conv
            for u in range(3):
                residual_unit(f"{official}.{u}", f"{ours}.res_unit{u + 1}")
            add(f"{official}.3", f"{ours}.snake1", _SNAKE)
            add(f"{official}.4", f"{ours}.conv1", _CONV)
        else:  # Snake, transposed conv, 3 residual units
            add(f"{official}.0", f"{ours}.snake1", _SNAKE)
            add(f"{official}.1", f"{ours}.conv_t1", _CONV)
            for u in range(3):
                residual_unit(f"{official}.{u + 2}", f"{ours}.res_unit{u + 1}")
    add(f"layers.{blocks + 1}", "snake1", _SNAKE)
    add(f"layers.{blocks + 2}", "conv2", _CONV if part == "encoder" else ("weight_g", "weight_v"))  # no bias
    return names


def convert_official_vae(state_dict: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """The official VAE weights (the keys under ``prefix``; others are ignored) -> diffusers'
    ``AutoencoderOobleck`` state dict. The number of blocks is read from the keys; a missing or
    unknown key raises :class:`V2MError` naming them."""
    ours = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not ours:
        raise V2MError(f"no VAE weights (no key starts with {prefix!r})")
    names: dict[str, str] = {}
    for part in ("encoder", "decoder"):
        top = [int(m.group(1)) for k in ours if (m := re.match(rf"{part}\.layers\.(\d+)\.", k))]
        names.update(_official_names(part, max(top, default=2) - 2))
    missing, unknown = sorted(names.keys() - ours.keys()), sorted(ours.keys() - names.keys())
    if missing or unknown:
        listed = [f"{len(keys)} {what}: {', '.join(prefix + k for k in keys[:6])}{' ...' if len(keys) > 6 else ''}"
                  for what, keys in (("missing", missing), ("unexpected", unknown)) if keys]
        raise V2MError("these are not the official Oobleck VAE weights: " + "; ".join(listed))
    return {names[k]: v.reshape(1, -1, 1) if k.rsplit(".", 1)[1] in _SNAKE else v for k, v in ours.items()}


def vae_bottleneck(pre: torch.Tensor, eps: torch.Tensor | None = None, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The official VAE bottleneck (``VAEBottleneck.encode`` / ``vae_sample``) on the encoder
    output ``pre`` [B, 2 * latent_dim, frames]: -> (sampled latents [B, latent_dim, frames], info).

    ``eps`` is the standard-normal noise of the sample; by default it is drawn for the whole batch
    at once from ``generator`` (or torch's global generator, as the official ``randn_like``).
    ``info`` holds ``pre_bottleneck``, ``mean``, ``scale`` (raw), ``stdev``, ``eps`` and ``kl``
    (a scalar), each computed in the official order of operations."""
    mean, scale = pre.chunk(2, dim=1)
    stdev = nn.functional.softplus(scale) + 1e-4
    var = stdev * stdev
    if eps is None:
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    latents = eps * stdev + mean
    kl = (mean * mean + var - torch.log(var) - 1).sum(1).mean()
    return latents, {"pre_bottleneck": pre, "mean": mean, "scale": scale, "stdev": stdev, "eps": eps, "kl": kl}


class OfficialVAE(nn.Module):
    """A (frozen) diffusers ``AutoencoderOobleck`` encoding and decoding as the official
    ``pretransform`` does: one batch item at a time, through the official VAE bottleneck."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    @classmethod
    def from_official(cls, config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                      prefix: str = PREFIX, sample_rate: int = 44100) -> "OfficialVAE":
        """From an official ``model.pretransform.config`` and an official state dict (a Lightning
        checkpoint's ``state_dict``, or any dict with the VAE keys under ``prefix``)."""
        from diffusers import AutoencoderOobleck

        model = AutoencoderOobleck(**oobleck_kwargs(config, sample_rate))
        try:
            model.load_state_dict(convert_official_vae(state_dict, prefix), strict=True)
        except RuntimeError as e:  # shapes that do not fit the config
            raise V2MError("the VAE weights do not fit its config: " + " ".join(str(e).split())[:300]) from None
        return cls(model)

    @classmethod
    def from_pretrained(cls, source: str | None = None, device: str = "cpu") -> "OfficialVAE":
        """Stable Audio Open's VAE from a hub id (default ``stabilityai/stable-audio-open-1.0``,
        its ``vae/`` subfolder) or a local directory, loaded as :class:`v2m.codecs.OobleckCodec`
        loads it (:class:`v2m.errors.WeightsUnavailable` when it cannot be)."""
        from ...codecs import OOBLECK_DEFAULT, OobleckCodec

        return cls(OobleckCodec.load(source or OOBLECK_DEFAULT, device=device).model)

    @property
    def latent_dim(self) -> int:
        return int(self.model.config.decoder_input_channels)

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.model.config.downsampling_ratios))

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    def encode(self, audio: torch.Tensor, eps: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``audio`` [B, io_channels, samples] -> (sampled latents [B, latent_dim, samples // hop], info).

        The encoder runs per item; ``eps``, ``generator`` and ``info``: :func:`vae_bottleneck`."""
        pre = torch.cat([self.model.encoder(item) for item in audio.split(1)])
        return vae_bottleneck(pre, eps, generator)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` [B, latent_dim, frames] -> audio [B, io_channels, frames * hop]."""
        latents = latents.to(next(self.model.parameters()).dtype)
        return torch.cat([self.model.decoder(item) for item in latents.split(1)])
