"""A ready Diff-V2M: config, model and VAE, loaded from our folders or the published checkpoint.

Our format is a folder: ``config.json`` (:meth:`DiffV2MConfig.to_dict`), ``model.safetensors``
(conditioner and online DiT), ``ema.safetensors`` (the DiT's exponential moving average, when
trained with it) and ``vae/`` (diffusers' ``AutoencoderOobleck``, or only its decoder:
:class:`~.vae.OobleckDecoderOnly`). Nothing is unpickled.

The published checkpoint (``TaylorJi/Diff-V2M``: ``model_odf.ckpt``, a Lightning checkpoint,
and ``model_config_odf.json``, found beside the ``.ckpt`` or given as ``config``) is read
with ``torch.load(weights_only=True)`` (memory-mapped), converted (:mod:`.official_keys`,
:mod:`.vae`) and run in ``official`` mode, the computation it was trained with. Its DiT weights default to the online copy, which is what the official inference
samples with; ``weights="ema"`` takes the average instead.

Sampling is one function, :func:`sample_latents` (conditions -> contexts -> seeded noise ->
sampler), which the pipeline's call (then the VAE's decoding) and training's audio samples both
use; its inputs are made by :func:`.inputs.window_inputs`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ...fsutil import atomic_dir
from ...errors import V2MError, WeightsUnavailable
from ...weights import hub_file, load_matching, looks_like_path, read_state_dict, resolve_device
from .config import DiffV2MConfig
from .official_keys import convert_official
from .model import DiffV2M
from .sampling import DEFAULT_STEPS, SAMPLERS
from .vae import OfficialVAE

OFFICIAL_REPO = "TaylorJi/Diff-V2M"
OFFICIAL_CHECKPOINT, OFFICIAL_CONFIG = "model_odf.ckpt", "model_config_odf.json"


@torch.no_grad()
def sample_latents(model: DiffV2M, batch: dict, *, generator: torch.Generator, sampler: str = "dpm",
                   steps: int | None = None, cfg_scale: float = 3.0, frames: int | None = None,
                   dit_weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Latents [B, io_channels, frames] sampled for the conditions of ``batch`` (collated
    :func:`.inputs.window_inputs` items): Diff-V2M's one sampling, which inference and the
    training samples share. The noise is drawn by ``generator`` on its own device (the same seed
    gives the same noise); ``steps`` defaults to the sampler's, ``frames`` to the config's latent
    length; ``dit_weights`` (``dit.*`` names, such as training's EMA) replace the DiT's own."""
    config, device = model.config, next(model.parameters()).device
    # 1. the conditions and the DiT's contexts, with the predicted rhythm
    _, ctx, global_cond = model.contexts_for(batch)
    # 2. the initial noise
    shape = (global_cond.shape[0], config.dit.io_channels, frames or config.latent_length)
    noise = torch.randn(shape, generator=generator, device=generator.device).to(device)
    # 3. the DiT to denoise with, and the sampler's loop over it
    weights = None if dit_weights is None else {k[len("dit."):]: v.to(device) for k, v in dit_weights.items()}

    def v_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        args = (x, t, ctx, global_cond, cfg_scale)
        return model.dit(*args) if weights is None else torch.func.functional_call(model.dit, weights, args)

    return SAMPLERS[sampler](v_model, noise, steps or DEFAULT_STEPS[sampler])


@dataclass
class DiffV2MPipeline:
    config: DiffV2MConfig
    model: DiffV2M
    vae: OfficialVAE
    ema: dict | None = None  # the DiT's averaged weights (``dit.*``), when there are any
    source: str = ""

    @torch.no_grad()
    def __call__(self, batch: dict, *, generator: torch.Generator, sampler: str = "dpm", steps: int | None = None,
                 cfg_scale: float = 3.0, frames: int | None = None, output_type: str = "audio") -> torch.Tensor:
        """Music for the model inputs ``batch``: latents sampled by :func:`sample_latents` (its
        arguments), then (``output_type`` "audio") decoded by the VAE to float32 audio
        [B, 2, frames x hop]; ``output_type`` "latent" returns the latents."""
        latents = sample_latents(self.model, batch, generator=generator, sampler=sampler, steps=steps,
                                 cfg_scale=cfg_scale, frames=frames)
        return latents if output_type == "latent" else self.vae.decode(latents).float()

    def to(self, device) -> "DiffV2MPipeline":
        self.model.to(device)
        self.vae.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- our folders ---------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> None:
        """Write the pipeline as a folder, built beside it and moved into place (a decoder-only
        VAE, :class:`~.vae.OobleckDecoderOnly`, is written as such)."""
        from safetensors.torch import save_file

        with atomic_dir(folder) as tmp:
            (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
            state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "v2m-diffv2m"})
            if self.ema is not None:
                save_file({k: v.contiguous().cpu() for k, v in self.ema.items()}, str(tmp / "ema.safetensors"))
            self.vae.model.save_pretrained(tmp / "vae")

    @classmethod
    def load(cls, source: str, device: str = "auto", weights: str | None = None,
             config: str | os.PathLike | None = None) -> "DiffV2MPipeline":
        """From our folder, an official ``.ckpt`` (with its config JSON: ``config``, else a
        ``model_config*.json`` beside it), or a hub id (the official files; ``config`` replaces
        the published config). ``weights``: "online" or "ema" (default: the EMA copy for our
        folders when present, the online one for the published checkpoint)."""
        source = os.path.expanduser(source)
        dev = resolve_device(device)
        config_path = None if config is None else Path(os.path.expanduser(os.fspath(config)))
        if config_path is not None and not config_path.is_file():
            raise V2MError("no such config file for the Diff-V2M checkpoint", config_path)
        if os.path.isdir(source):
            if (Path(source) / "config.json").exists():
                if config_path is not None:
                    raise V2MError("is a Diff-V2M folder of ours with its own config.json; a separate config is "
                                   "for an official .ckpt", source)
                return cls._load_ours(Path(source), dev, weights)
            ckpts = sorted(Path(source).glob("*.ckpt"))
            if len(ckpts) == 1:
                return cls._load_official(ckpts[0], config_path, dev, weights or "online")
            raise V2MError("is not a Diff-V2M folder (no config.json, and not one official .ckpt)", source)
        if os.path.isfile(source):
            return cls._load_official(Path(source), config_path, dev, weights or "online")
        if looks_like_path(source) or "/" not in source:
            raise WeightsUnavailable("no such file or folder for the Diff-V2M weights", source)
        checkpoint = hub_file(source, OFFICIAL_CHECKPOINT, "the Diff-V2M checkpoint")
        config_path = config_path or Path(hub_file(source, OFFICIAL_CONFIG, "the Diff-V2M config"))
        return cls._load_official(Path(checkpoint), config_path, dev, weights or "online")

    from_pretrained = load  # the familiar name

    @classmethod
    def _load_ours(cls, folder: Path, device, weights: str | None) -> "DiffV2MPipeline":
        config = DiffV2MConfig.load(folder / "config.json")
        with torch.device("meta"):
            model = DiffV2M(config)
        weights_file = str(folder / "model.safetensors")
        load_matching(model, read_state_dict(weights_file, "Diff-V2M"), "Diff-V2M", weights_file)
        has_ema = (folder / "ema.safetensors").exists()
        ema = read_state_dict(str(folder / "ema.safetensors"), "Diff-V2M EMA") if has_ema else None
        if (weights or ("ema" if ema else "online")) == "ema":
            if ema is None:
                raise V2MError("has no EMA weights (ema.safetensors); use the online weights", folder)
            model.load_state_dict(ema, strict=False, assign=True)
        vae = OfficialVAE.from_pretrained(str(folder / "vae"), device="cpu")
        return cls(config, model.eval(), vae, ema, str(folder)).to(device)

    @classmethod
    def _load_official(cls, checkpoint: Path, config_path: Path | None, device, weights: str) -> "DiffV2MPipeline":
        if config_path is None:
            beside = sorted(checkpoint.parent.glob("model_config*.json"))
            if not beside:
                raise V2MError("needs its config (the published model_config_odf.json): put it beside the checkpoint "
                               "as model_config.json, or give its path with --config", checkpoint)
            config_path = beside[0]
        config = DiffV2MConfig.load(config_path, official=True)
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # a truncated download, a pickle with code, not a checkpoint
            raise V2MError(f"cannot be read as a checkpoint ({' '.join(str(e).split())[:160]})", checkpoint) from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise V2MError("is not a Lightning checkpoint (no state dict)", checkpoint)
        with torch.device("meta"):
            model = DiffV2M(config)
        try:
            load_matching(model, convert_official(state, weights), "Diff-V2M", str(checkpoint))
            vae = OfficialVAE.from_official(config.vae, state, sample_rate=config.sample_rate, source=str(checkpoint))
        except V2MError as e:  # the converters' errors concern this file
            raise V2MError(e.message, e.path or checkpoint) from None
        except ValueError as e:  # a VAE config diffusers cannot build even without its encoder
            raise V2MError(str(e), config_path) from None
        return cls(config, model.eval(), vae, None, str(checkpoint)).to(device)
