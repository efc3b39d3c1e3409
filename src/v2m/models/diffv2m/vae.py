"""The Stable Audio Open "Oobleck" VAE of Diff-V2M, as diffusers' ``AutoencoderOobleck``.

Diff-V2M diffuses in the latent space of Stable Audio Open 1.0's VAE (the official
``pretransform``: 44.1 kHz stereo, 64 latent channels, one frame per 2048 samples). diffusers
implements the same network, so this module only supplies what differs:

- :func:`oobleck_kwargs`: the official ``model.pretransform.config`` -> ``AutoencoderOobleck``
  arguments, refusing configs diffusers cannot express.
- :class:`OobleckDecoderOnly`: diffusers' ``OobleckDecoder`` alone, for a checkpoint whose
  encoder diffusers cannot build (e.g. an encoder whose latent_dim is not its channel count):
  such a checkpoint still generates; encoding (preparing latents, training on audio) refuses.
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

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ...errors import V2MError, WeightsUnavailable

PREFIX = "diffusion.pretransform.model."  # the VAE's keys in an official Lightning checkpoint
_CONV, _SNAKE = ("bias", "weight_g", "weight_v"), ("alpha", "beta")
# official Oobleck constructor defaults (stable_audio_tools/models/autoencoders.py)
_ENC_DEFAULTS = {"in_channels": 2, "channels": 128, "latent_dim": 32, "c_mults": [1, 2, 4, 8],
                 "strides": [2, 4, 8, 8], "use_snake": False, "antialias_activation": False}
_DEC_DEFAULTS = {"out_channels": 2, "channels": 128, "latent_dim": 32, "c_mults": [1, 2, 4, 8],
                 "strides": [2, 4, 8, 8], "use_snake": False, "antialias_activation": False,
                 "use_nearest_upsample": False, "final_tanh": True}


def _oobleck_parts(pretransform_config: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict, dict, int]:
    """(config, encoder config, decoder config, io channels) of an official ``model.pretransform``
    config, the official constructor defaults filled in."""
    cfg = pretransform_config
    if "encoder" not in cfg and "config" in cfg:
        if cfg.get("type") != "autoencoder":
            raise ValueError(f"pretransform type {cfg.get('type')!r} is not 'autoencoder'")
        cfg = cfg["config"]
    enc = {"type": cfg["encoder"].get("type"), **_ENC_DEFAULTS, **cfg["encoder"].get("config", {})}
    dec = {"type": cfg["decoder"].get("type"), **_DEC_DEFAULTS, **cfg["decoder"].get("config", {})}
    return cfg, enc, dec, int(cfg.get("io_channels", enc["in_channels"]))


def oobleck_kwargs(pretransform_config: Mapping[str, Any], sample_rate: int = 44100,
                   encoder: bool = True) -> dict[str, Any]:
    """``AutoencoderOobleck(**kwargs)`` arguments for an official ``model.pretransform.config``
    (the wrapping ``{"type": "autoencoder", "config": ...}`` is accepted too).

    Raises ValueError listing everything diffusers' fixed architecture cannot express. With
    ``encoder=False`` only the decoder is checked (decoding, which is all generation needs):
    the arguments then describe the decoder alone and have no ``encoder_hidden_size``."""
    cfg, enc, dec, io = _oobleck_parts(pretransform_config)
    strides, mults = list(dec["strides"]), list(dec["c_mults"])
    decoder_checks = [
        (dec["type"] == "oobleck", "the decoder must be of type 'oobleck'"),
        (cfg.get("bottleneck", {}).get("type") == "vae", "the bottleneck must be of type 'vae'"),
        (dec["use_snake"], "the decoder's use_snake must be true (diffusers has SnakeBeta only)"),
        (not (dec["antialias_activation"] or dec["use_nearest_upsample"]),
         "the decoder's antialias_activation and use_nearest_upsample must be off"),
        (not dec["final_tanh"], "final_tanh must be false (diffusers' decoder has no tanh)"),
        (len(strides) == len(mults), "the decoder needs one stride per multiplier"),
        (dec["latent_dim"] == cfg.get("latent_dim", dec["latent_dim"]), "the decoder's latent_dim must be the VAE's"),
        (cfg.get("downsampling_ratio", math.prod(strides)) == math.prod(strides),
         "downsampling_ratio must be the product of the strides"),
        (dec["out_channels"] == io, "the decoder's out_channels must be io_channels"),
    ]
    encoder_checks = [
        (enc["type"] == "oobleck", "the encoder must be of type 'oobleck'"),
        (enc["use_snake"], "the encoder's use_snake must be true (diffusers has SnakeBeta only)"),
        (not enc["antialias_activation"], "the encoder's antialias_activation must be off"),
        (list(enc["strides"]) == strides and list(enc["c_mults"]) == mults,
         "encoder and decoder must share strides and c_mults"),
        (enc["latent_dim"] == enc["channels"],
         "the encoder's latent_dim must equal its channels (diffusers' encoder outputs that many)"),
        (enc["latent_dim"] == 2 * dec["latent_dim"],
         "the encoder's latent_dim must be twice the decoder's and the VAE's latent_dim (mean and scale)"),
        (enc["in_channels"] == io, "the encoder's in_channels must be io_channels"),
    ]
    problems = [message for ok, message in decoder_checks + (encoder_checks if encoder else []) if not ok]
    if problems:
        scope = "" if encoder else ", even without its encoder"
        raise ValueError(f"this Oobleck VAE config cannot be built with diffusers{scope}: " + "; ".join(problems))
    kwargs = {"downsampling_ratios": strides, "channel_multiples": mults, "decoder_channels": dec["channels"],
              "decoder_input_channels": dec["latent_dim"], "audio_channels": io, "sampling_rate": sample_rate}
    return {"encoder_hidden_size": enc["channels"], **kwargs} if encoder else kwargs


class OobleckDecoderOnly(nn.Module):
    """The decoder half of an Oobleck VAE (diffusers' ``OobleckDecoder``), for a checkpoint whose
    encoder diffusers' ``AutoencoderOobleck`` cannot build: generation only decodes.

    It stands where an ``AutoencoderOobleck`` would (``config``, ``decoder``, ``save_pretrained``);
    ``encoder`` is None and ``no_encoder`` says why. Its folder: ``config.json`` (the decoder's
    arguments, ``_class_name`` ``OobleckDecoder`` so that nothing mistakes it for a whole VAE)
    and ``decoder.safetensors``."""

    encoder = None
    WEIGHTS = "decoder.safetensors"

    def __init__(self, kwargs: Mapping[str, Any], no_encoder: str):
        from types import SimpleNamespace

        from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDecoder

        super().__init__()
        self.config = SimpleNamespace(**kwargs)
        self.no_encoder = no_encoder
        self.decoder = OobleckDecoder(channels=kwargs["decoder_channels"],
                                      input_channels=kwargs["decoder_input_channels"],
                                      audio_channels=kwargs["audio_channels"],
                                      upsampling_ratios=list(kwargs["downsampling_ratios"])[::-1],
                                      channel_multiples=list(kwargs["channel_multiples"]))

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(
            {"_class_name": "OobleckDecoder", **vars(self.config), "no_encoder": self.no_encoder}, indent=1))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(folder / self.WEIGHTS))

    @staticmethod
    def is_folder(folder: str | os.PathLike) -> bool:
        """Whether ``folder`` holds a decoder-only VAE (rather than an ``AutoencoderOobleck``)."""
        try:
            return json.loads((Path(folder) / "config.json").read_text()).get("_class_name") == "OobleckDecoder"
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "OobleckDecoderOnly":
        from ...weights import load_matching, read_state_dict

        config = Path(folder) / "config.json"
        d = json.loads(config.read_text())  # is_folder has read it
        names = ("downsampling_ratios", "channel_multiples", "decoder_channels", "decoder_input_channels",
                 "audio_channels", "sampling_rate")
        try:
            model = cls({k: d[k] for k in names}, str(d.get("no_encoder", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise WeightsUnavailable(f"is not a decoder-only Oobleck VAE config ({' '.join(str(e).split())[:120]})",
                                     config) from None
        path = str(Path(folder) / cls.WEIGHTS)
        load_matching(model, read_state_dict(path, "Oobleck VAE decoder"), "Oobleck VAE decoder", path)
        return model


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
    ``pretransform`` does: one batch item at a time, through the official VAE bottleneck.

    ``model`` may be an :class:`OobleckDecoderOnly` instead: it decodes, and :meth:`encode`
    refuses with one line naming ``source`` (the checkpoint) and the reason."""

    def __init__(self, model: nn.Module, source: str = ""):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.source = source

    @classmethod
    def from_official(cls, config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                      prefix: str = PREFIX, sample_rate: int = 44100, source: str = "") -> "OfficialVAE":
        """From an official ``model.pretransform.config`` and an official state dict (a Lightning
        checkpoint's ``state_dict``, or any dict with the VAE keys under ``prefix``). When
        diffusers cannot build the encoder but can build the decoder, the VAE is decoder-only."""
        from diffusers import AutoencoderOobleck

        try:
            model = AutoencoderOobleck(**oobleck_kwargs(config, sample_rate))
        except ValueError as whole:  # the encoder is what cannot be built, or this raises for the decoder too
            model = OobleckDecoderOnly(oobleck_kwargs(config, sample_rate, encoder=False), str(whole))
        converted = convert_official_vae(state_dict, prefix)
        if model.encoder is None:
            converted = {k: v for k, v in converted.items() if k.startswith("decoder.")}
        try:
            model.load_state_dict(converted, strict=True)
        except RuntimeError as e:  # shapes that do not fit the config
            raise V2MError("the VAE weights do not fit its config: " + " ".join(str(e).split())[:300],
                           source or None) from None
        return cls(model, source)

    @classmethod
    def from_pretrained(cls, source: str | None = None, device: str = "cpu") -> "OfficialVAE":
        """Stable Audio Open's VAE from a hub id (default ``stabilityai/stable-audio-open-1.0``,
        its ``vae/`` subfolder) or a local directory, loaded as :class:`v2m.codecs.OobleckCodec`
        loads it (:class:`v2m.errors.WeightsUnavailable` when it cannot be); a decoder-only
        folder (:class:`OobleckDecoderOnly`) is read as such."""
        from ...codecs import OOBLECK_DEFAULT, OobleckCodec

        source = source or OOBLECK_DEFAULT
        if OobleckDecoderOnly.is_folder(os.path.expanduser(source)):
            return cls(OobleckDecoderOnly.from_folder(os.path.expanduser(source)).to(device), source)
        return cls(OobleckCodec.load(source, device=device).model, source)

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

        The encoder runs per item; ``eps``, ``generator`` and ``info``: :func:`vae_bottleneck`.
        A decoder-only VAE raises :class:`V2MError` instead."""
        if self.model.encoder is None:
            raise V2MError(f"its VAE cannot encode audio, which preparing latents and training on audio need "
                           f"(generation needs only the decoder): {self.model.no_encoder}", self.source or None)
        pre = torch.cat([self.model.encoder(item) for item in audio.split(1)])
        return vae_bottleneck(pre, eps, generator)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` [B, latent_dim, frames] -> audio [B, io_channels, frames * hop]."""
        latents = latents.to(next(self.model.parameters()).dtype)
        return torch.cat([self.model.decoder(item) for item in latents.split(1)])
