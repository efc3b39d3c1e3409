"""Training Diff-V2M with Lightning, following the published recipe.

:class:`DiffV2MModule` is the LightningModule: :meth:`DiffV2M.training_loss` as the objective,
AdamW over the conditioners and the DiT with the InverseLR schedule (:func:`inverse_lr_factor`)
stepped once per optimiser step, an :class:`EMA` of the DiT's weights with the official warm-up
(:func:`ema_decay`), and the official deterministic :func:`validation_loss`. :func:`fit` trains
it on a prepared dataset through :func:`v2m.train.common.run` and exports the trained model as
a pipeline folder; :func:`export_checkpoint` does the same for any of its checkpoints.

Checkpoints hold only tensors and plain values (the config as a dict of numbers, strings and
lists), so that Lightning and :func:`export_checkpoint` load them with ``weights_only=True``;
the EMA is part of them, so a resumed run continues it. The recipe, the options and what has
not been tested: docs/diffv2m.md ("Training").
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..data.modules import DiffV2MDataModule
from ..errors import V2MError
from ..models.diffv2m.config import DiffV2MConfig
from ..models.diffv2m.model import DiffV2M, rhythm_loss
from ..models.diffv2m.pipeline import DiffV2MPipeline, sample_latents
from ..models.diffv2m.sampling import SAMPLERS
from ..models.diffv2m.vae import OfficialVAE
from ..weights import load_matching
from .common import LAST, AudioSamples, FitResult, checkpoint_config, model_weights, read_checkpoint, run, \
    run_settings
from .settings import TrainSettings

VAL_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)  # the official validation's diffusion times


# --- the schedule and the moving average -------------------------------------------------------


def inverse_lr_factor(step: int, inv_gamma: float = 1e6, power: float = 0.5, warmup: float = 0.99) -> float:
    """The official InverseLR schedule as a multiple of the base learning rate at optimiser step
    ``step`` (0-based): ``(1 - warmup^(step+1)) * (1 + step / inv_gamma)^(-power)`` (its final_lr is 0,
    so no floor)."""
    return (1.0 - warmup ** (step + 1)) * (1.0 + step / inv_gamma) ** (-power)


def ema_decay(update: int, beta: float = 0.9999) -> float:
    """The decay of the EMA update number ``update`` (0-based, one per optimiser step), as the
    official ``ema_pytorch.EMA`` settings give it (power 3/4, inv_gamma 1, update_after_step 1):
    ``min(1 - (1 + s)^(-3/4), beta)`` with ``s = max(update - 1, 0)``. The first two updates have
    decay 0 (a copy of the online weights); the third 1 - 2^(-3/4) = 0.405."""
    s = max(update - 1, 0)
    return min(1.0 - (1.0 + s) ** -0.75, beta)


class EMA:
    """An exponential moving average of named tensors (the DiT's weights), kept in float32.

    ``update`` blends the current weights in with :func:`ema_decay`; ``state_dict`` holds only
    tensors and numbers (for Lightning checkpoints loaded with ``weights_only=True``)."""

    def __init__(self, beta: float = 0.9999):
        self.beta = float(beta)
        self.updates = 0
        self.weights: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, tensors: Mapping[str, torch.Tensor]) -> float:
        """Average ``tensors`` in; returns the decay used."""
        decay = ema_decay(self.updates, self.beta)
        for name, value in tensors.items():
            value = value.detach()
            average = self.weights.get(name)
            if average is None or decay == 0.0:
                self.weights[name] = value.float().clone()
                continue
            if average.device != value.device:  # restored from a checkpoint onto the CPU
                average = self.weights[name] = average.to(value.device)
            average.lerp_(value.float(), 1.0 - decay)
        self.updates += 1
        return decay

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "updates": self.updates, "weights": dict(self.weights)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.beta = float(state["beta"])
        self.updates = int(state["updates"])
        self.weights = dict(state["weights"])


# --- validation -------------------------------------------------------------------------------


@torch.no_grad()
def validation_loss(model: DiffV2M, batch: dict, latents: torch.Tensor, times: Sequence[float] = VAL_TIMES,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """The official validation on one batch: the v-objective at each fixed t in ``times`` (one
    noise draw per t from a generator seeded with ``seed``, so the value is the same every time),
    without condition dropout and with the predicted rhythm, as at inference; plus the rhythm
    predictor's MSE over real seconds when the batch has the true rhythm.

    Returns ``diffusion_t<t>`` per t, ``diffusion`` (their mean), ``rhythm`` and ``loss`` (their
    sum), as in :meth:`DiffV2M.training_loss`."""
    device = latents.device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    cond, ctx, global_cond = model.contexts_for(batch)
    B = latents.shape[0]
    losses: dict[str, torch.Tensor] = {}
    for value in times:
        noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        t = torch.full((B,), float(value), device=device)
        angle = t * math.pi / 2
        alpha, sigma = angle.cos()[:, None, None], angle.sin()[:, None, None]
        v = model.dit(latents * alpha + noise * sigma, t, ctx, global_cond)
        target = noise * alpha - latents * sigma
        losses[f"diffusion_t{value:g}"] = ((v.float() - target.float()) ** 2).mean()
    losses["diffusion"] = torch.stack(list(losses.values())).mean()
    if cond.true_rhythm is not None:
        losses["rhythm"] = rhythm_loss(cond)
    losses["loss"] = losses["diffusion"] + losses.get("rhythm", 0.0)
    return losses


# --- the LightningModule ----------------------------------------------------------------------


def _as_config(config: DiffV2MConfig | Mapping | str | os.PathLike) -> DiffV2MConfig:
    """A config from a DiffV2MConfig, a dict (ours from ``to_dict`` or the official JSON's), or a file."""
    if isinstance(config, DiffV2MConfig):
        return config
    if isinstance(config, Mapping):
        config = dict(config)
        return DiffV2MConfig.from_dict(config) if config.get("format") == "v2m-diffv2m" else \
            DiffV2MConfig.from_official(config)
    try:
        return DiffV2MConfig.load(config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise V2MError(f"is not a readable Diff-V2M config ({' '.join(str(e).split())[:200]})", config) from None


def _plain(config: DiffV2MConfig) -> dict:
    """The config as JSON values only (tuples become lists), safe for ``weights_only`` loading."""
    return json.loads(json.dumps(config.to_dict()))


class DiffV2MModule(AudioSamples, pl.LightningModule):
    """Diff-V2M training: a :class:`DiffV2M` (conditioners + DiT, trained), a frozen
    :class:`OfficialVAE` (optional when every batch has pre-encoded ``latents``; never trained,
    never in the optimiser, the EMA or the checkpoint) and an :class:`EMA` of the DiT.

    ``model``: start from these weights (fine-tuning) instead of the published initialisation;
    its architecture must be ``config``'s (the training section may differ).
    ``sample_every``: every this many optimiser steps, sample ``sample_count`` clips with
    ``sampler`` ("dpm" or "ddim", ``sample_steps`` steps, guidance ``cfg_scale``, EMA weights)
    from the first validation batch, decode them with the VAE and write them as wav files under
    the log folder's ``samples/`` (and to TensorBoard when that is the logger). 0: never.
    ``seed``: the validation noise and the per-rank random state of training.
    """

    def __init__(self, config: DiffV2MConfig | Mapping | str | os.PathLike, vae: OfficialVAE | None = None, *,
                 model: DiffV2M | None = None, sample_every: int = 0, sampler: str = "dpm",
                 sample_steps: int | None = None, cfg_scale: float = 3.0, sample_count: int = 2, seed: int = 0):
        super().__init__()
        config = _as_config(config)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        # plain values only: Lightning stores these in every checkpoint and passes them back to
        # __init__ in load_from_checkpoint
        self.save_hyperparameters({"config": _plain(config), "sample_every": int(sample_every), "sampler": sampler,
                                   "sample_steps": sample_steps, "cfg_scale": float(cfg_scale),
                                   "sample_count": int(sample_count), "seed": int(seed)})
        self.config = config
        if model is None:
            model = DiffV2M(config)
        elif replace(model.config, training=config.training) != config:
            raise ValueError("the model to fine-tune has another architecture than the config")
        model.config = config  # training_loss reads the training section from here
        self.model = model.train()  # a loaded pipeline's model comes in eval mode
        # Not a submodule on purpose: the frozen VAE stays out of state_dict (and so out of the
        # checkpoints), out of DDP/FSDP wrapping and out of the optimiser; it follows the
        # module's device when used (_vae_here).
        object.__setattr__(self, "vae", vae)
        self.ema = EMA(config.training.ema_beta)

    # --- latents ---------------------------------------------------------------------------

    def _vae_here(self) -> OfficialVAE | None:
        if self.vae is not None and next(self.vae.parameters()).device != self.device:
            self.vae.to(self.device)
        return self.vae

    def batch_latents(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """The batch's VAE latents [B, io_channels, frames]: its pre-encoded ``latents``, else its
        ``audio`` encoded by the frozen VAE (a posterior draw from ``generator``, no gradient)."""
        if batch.get("latents") is not None:
            latents = batch["latents"].float()
        elif batch.get("audio") is not None:
            vae = self._vae_here()
            if vae is None:
                raise V2MError("the batch has audio but no pre-encoded latents, and no VAE was given to encode it")
            with torch.no_grad():
                latents, _ = vae.encode(batch["audio"].float(), generator=generator)
            latents = latents.float()
        else:
            raise V2MError("the batch has neither latents nor audio")
        if latents.shape[1] != self.config.dit.io_channels:
            raise V2MError(f"the latents have {latents.shape[1]} channels but the model takes "
                           f"{self.config.dit.io_channels}: the dataset was encoded with another VAE")
        return latents

    # --- training and validation -------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        latents = self.batch_latents(batch)
        losses = self.model.training_loss(batch, latents, epoch=self.current_epoch)
        B = latents.shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, prog_bar=name == "loss", batch_size=B)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False,
                 batch_size=B)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        seed = self.hparams.seed + batch_idx  # fixed per batch: the same value at every validation
        generator = torch.Generator(device=self.device).manual_seed(seed)
        latents = self.batch_latents(batch, generator=generator)
        losses = validation_loss(self.model, batch, latents, VAL_TIMES, seed=seed)
        for name, value in losses.items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, sync_dist=True,
                     prog_bar=name == "loss", batch_size=latents.shape[0])
        return losses

    def configure_optimizers(self):
        tr = self.config.training
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=tr.lr, betas=tuple(tr.betas),
                                      weight_decay=tr.weight_decay)

        def factor(step: int) -> float:
            return inverse_lr_factor(step, tr.inv_gamma, tr.power, tr.warmup)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def dit_weights(self) -> dict[str, torch.Tensor]:
        """The DiT's current weights under the pipeline's names (``dit.*``), what the EMA averages."""
        return {f"dit.{name}": value for name, value in self.model.dit.state_dict().items()}

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.ema.update(self.dit_weights())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ema"] = self.ema.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "ema" in checkpoint:
            self.ema.load_state_dict(checkpoint["ema"])
        else:
            rank_zero_warn("the checkpoint has no EMA weights; the moving average starts again")

    def on_train_start(self) -> None:
        # Different random draws (t, noise, dropout, rhythm schedule) on each rank, and new ones
        # after a resume, from one seed (the official code adds the process rank to its seed).
        entropy = [self.hparams.seed, self.global_rank, self.global_step]
        torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))

    # --- audio samples ------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, batch: dict, frames: int | None = None, seed: int | None = None,
               use_ema: bool = True) -> torch.Tensor:
        """Latents [B, io_channels, frames] sampled for the conditions of ``batch`` as inference
        samples (:func:`sample_latents`) with the module's sampler, steps and guidance; the EMA
        weights of the DiT when there are any (``use_ema``). ``frames`` defaults to the batch's
        latent (or audio) length."""
        if frames is None:
            frames = (batch["latents"].shape[-1] if batch.get("latents") is not None
                      else batch["audio"].shape[-1] // self.config.downsampling)
        hp = self.hparams
        was_training = self.model.training
        self.model.eval()
        try:
            generator = torch.Generator(device=self.device).manual_seed(hp.seed if seed is None else seed)
            return sample_latents(self.model, batch, generator=generator, sampler=hp.sampler, steps=hp.sample_steps,
                                  cfg_scale=hp.cfg_scale, frames=frames,
                                  dit_weights=self.ema.weights if use_ema and self.ema.weights else None)
        finally:
            self.model.train(was_training)

    def log_samples(self, batch: dict, folder: str | os.PathLike | None = None) -> list[Path]:
        """Sample ``batch``, decode with the VAE and write the clips (:meth:`write_samples`).
        Returns the files written (none without a VAE)."""
        vae = self._vae_here()
        if vae is None:
            rank_zero_warn("no VAE to decode samples with: audio samples are skipped")
            return []
        attached = self._trainer is not None
        # the Trainer's precision (autocast for the mixed ones), as in its own steps
        with self.trainer.precision_plugin.forward_context() if attached else contextlib.nullcontext():
            audio = vae.decode(self.sample(batch)).float()
        return self.write_samples(audio.cpu().numpy(), batch, self.config.sample_rate, folder)


# --- export -----------------------------------------------------------------------------------


def export_checkpoint(checkpoint: str | os.PathLike, folder: str | os.PathLike, vae: OfficialVAE) -> Path:
    """A Lightning checkpoint of :class:`DiffV2MModule` -> our pipeline folder (config, online
    weights, the DiT's EMA weights when it has them, and ``vae``), which
    :meth:`DiffV2MPipeline.load` reads. Single-file checkpoints only (DDP, FSDP with full state
    dicts); convert a DeepSpeed checkpoint folder with DeepSpeed's ``zero_to_fp32`` first."""
    state = read_checkpoint(checkpoint, "Diff-V2M")
    config = checkpoint_config(state, DiffV2MConfig.from_dict, "Diff-V2M", checkpoint)
    with torch.device("meta"):
        model = DiffV2M(config)
    load_matching(model, model_weights(state), "Diff-V2M training", os.fspath(checkpoint))
    ema = state.get("ema", {}).get("weights") or None
    folder = Path(folder)
    DiffV2MPipeline(config, model.eval(), vae, ema, str(folder)).save(folder)
    return folder


# --- fit --------------------------------------------------------------------------------------


def _load_vae(source: str | os.PathLike | OfficialVAE) -> OfficialVAE:
    return source if isinstance(source, OfficialVAE) else OfficialVAE.from_pretrained(os.fspath(source), device="cpu")


def fit(config_or_path: DiffV2MConfig | Mapping | str | os.PathLike | None, data_dir: str | os.PathLike,
        out_dir: str | os.PathLike, *, init: str | None = None, vae: str | os.PathLike | OfficialVAE | None = None,
        sampler: str = "dpm", sample_steps: int | None = None, callbacks: Sequence[pl.Callback] = (),
        settings: TrainSettings | None = None, **changes) -> FitResult:
    """Train Diff-V2M on the prepared dataset ``data_dir``; everything goes to ``out_dir``.

    ``config_or_path``: a :class:`DiffV2MConfig`, a config dict or a config file (ours or the
    official ``model_config_odf.json``). ``init``: fine-tune from a pipeline source
    (:meth:`DiffV2MPipeline.load`: our folder or the official checkpoint): its config and online
    weights (the EMA starts afresh); a config given as well then only supplies the training
    section. When ``out_dir/checkpoints/last.ckpt`` exists and ``resume`` is on, training
    continues from it (weights, optimiser, schedule, EMA, step and epoch) with the checkpoint's
    config.

    ``vae``: the VAE (a source for :meth:`OfficialVAE.from_pretrained`, or one); by default
    ``init``'s, else the one the dataset was encoded with (its ``dataset.json``). It is required
    when the dataset has no pre-encoded latents (training encodes the audio), and needed for
    audio samples (``sampler``, ``sample_steps``: :class:`DiffV2MModule`) and the exported
    pipeline.

    ``settings``: the run's :class:`~v2m.train.settings.TrainSettings` (default: the published
    ones, ``PUBLISHED["diffv2m"]``), with any of its fields replaced by keyword (``changes``:
    ``max_steps=100``, ``batch_size=8``, ...). The official run: batch 32 per GPU,
    ``accumulate=4``, 2 GPUs, 16-mixed precision, 50 epochs, a checkpoint every 150 steps.
    ``strategy``: "auto", "ddp" (with unused-parameter detection: film_choose leaves one branch
    without gradient), "fsdp", "deepspeed" (needs the ``deepspeed`` package) or any Lightning
    strategy name.

    At the end (unless interrupted) the final state is written to ``last.ckpt`` and exported as
    the pipeline folder ``out_dir/final`` (with the EMA weights, its default)."""
    settings = run_settings("diffv2m", settings, changes)
    out = Path(out_dir)
    last = out / LAST
    resume_from = last if settings.resume and last.exists() else None

    # the config and the starting weights
    given = None if config_or_path is None else _as_config(config_or_path)
    pipeline = None
    if resume_from is not None and resume_from.is_file():
        config = checkpoint_config(read_checkpoint(resume_from, "Diff-V2M"), DiffV2MConfig.from_dict, "Diff-V2M",
                                   resume_from)
        if given is not None and given != config:
            rank_zero_warn(f"resuming from {resume_from} with the config it was trained with, not the one given")
    elif init is not None:
        pipeline = DiffV2MPipeline.load(init, device="cpu", weights="online")
        config = pipeline.config if given is None else replace(pipeline.config, training=given.training)
    elif given is not None:
        config = given
    else:
        raise V2MError("no config: give a config (or its file), or init= a pipeline to fine-tune")

    datamodule = DiffV2MDataModule(data_dir, batch_size=settings.batch_size, num_workers=settings.num_workers,
                                   max_seconds=config.conditioning.max_seconds, crop_seconds=settings.crop_seconds,
                                   seed=settings.seed, pin_memory=torch.cuda.is_available())
    summary = datamodule.summary
    has_latents = summary.get("clips_with_codec", 0) == summary.get("clips", 0) > 0
    codec = summary.get("codec") or {}
    if has_latents and int(codec.get("hop_length", config.downsampling)) != config.downsampling:
        raise V2MError(f"the dataset's latents have a hop of {codec.get('hop_length')} samples but the model's "
                       f"VAE has {config.downsampling}", data_dir)

    # the VAE
    if vae is None and init is not None:
        if pipeline is None:  # resuming: the fine-tuned pipeline's VAE is still the one to use
            pipeline = DiffV2MPipeline.load(init, device="cpu", weights="online")
        vae = pipeline.vae
    elif vae is None and has_latents and codec.get("source"):
        try:
            vae = _load_vae(codec["source"])
        except V2MError as e:
            rank_zero_warn(f"the dataset's VAE cannot be loaded ({e}): no audio samples, no exported pipeline")
            vae = None
    elif vae is not None:
        vae = _load_vae(vae)
    if vae is None and not has_latents:
        raise V2MError("has no pre-encoded latents (`v2m prepare --model diffv2m` adds them when the VAE "
                       "loads), so training needs the VAE to encode its audio: pass --vae (or --init)", data_dir)
    if vae is not None and (vae.latent_dim != config.dit.io_channels or vae.hop_length != config.downsampling):
        raise V2MError(f"the VAE ({vae.latent_dim} latent channels, hop {vae.hop_length}) does not fit the model "
                       f"({config.dit.io_channels} channels, hop {config.downsampling})")

    def make_module() -> DiffV2MModule:
        return DiffV2MModule(config, vae, model=None if pipeline is None or resume_from else pipeline.model,
                             sample_every=settings.sample_every, sampler=sampler, sample_steps=sample_steps,
                             seed=settings.seed)

    def export(checkpoint: Path, folder: Path) -> Path:
        return export_checkpoint(checkpoint, folder, vae)

    return run(make_module, datamodule, out, settings, resume_from=resume_from,
               export=None if vae is None else export, exporter="VAE", callbacks=callbacks)
