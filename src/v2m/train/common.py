"""What training either model shares: the Lightning run, its checkpoints, and audio samples.

As audiocraft's solvers share ``StandardSolver``, :mod:`.diffv2m` and :mod:`.stad` keep only
their model's part (the LightningModule's steps and optimiser, the config, the data, what the
final pipeline folder holds), and this module the rest:

- :func:`run_settings`: a run's :class:`~.settings.TrainSettings`, a model's published ones
  with the caller's changes;
- :func:`run`: the Lightning run on a prepared dataset: ``out/checkpoints/last.ckpt`` every
  ``checkpoint_every`` steps (resumed from), TensorBoard logs in ``out/logs`` and the same
  scalars as CSV in ``out/metrics``, validation, and at the end the exported pipeline
  ``out/final``;
- :func:`read_checkpoint`, :func:`checkpoint_config`, :func:`model_weights`: reading the
  checkpoints back (tensors and plain values only: ``weights_only=True``);
- :class:`AudioSamples`: the LightningModules' audio samples every N steps, and writing them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

from ..errors import V2MError
from ..media import write_wav
from .settings import PUBLISHED, STRATEGIES, TrainSettings

LAST = Path("checkpoints") / "last.ckpt"  # in the run folder


@dataclass
class FitResult:
    trainer: pl.Trainer
    module: pl.LightningModule
    checkpoint: Path  # out/checkpoints/last.ckpt
    final: Path | None  # out/final, the exported pipeline (None when interrupted or nothing to export with)


# --- settings ---------------------------------------------------------------------------------


def run_settings(model: str, settings: TrainSettings | None, changes: Mapping) -> TrainSettings:
    """``settings`` (default: ``model``'s published ones) with the fields in ``changes`` replaced;
    a DeepSpeed run without the ``deepspeed`` package is refused here, before anything loads."""
    settings = replace(settings or PUBLISHED[model], **changes)
    if "deepspeed" in STRATEGIES.get(settings.strategy, settings.strategy) and \
            importlib.util.find_spec("deepspeed") is None:
        raise V2MError(f"strategy {settings.strategy!r} needs the deepspeed package (pip install deepspeed)")
    return settings


def default_precision() -> str:
    """bf16-mixed on a GPU that has it, else 32-true."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


# --- checkpoints ------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike, what: str) -> dict:
    """A single-file Lightning checkpoint of ``what``'s training, read without unpickling code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a directory (DeepSpeed), a truncated file, a pickle with code
        raise V2MError(f"cannot be read as a {what} training checkpoint ({' '.join(str(e).split())[:160]})",
                       path) from None


def checkpoint_config(checkpoint: Mapping, parse: Callable[[dict], object], what: str,
                      path: str | os.PathLike | None = None):
    """The model config a checkpoint was trained with (its hyperparameters' ``config``, read by
    ``parse``); :class:`V2MError` for a checkpoint that has none."""
    try:
        return parse(checkpoint["hyper_parameters"]["config"])
    except (KeyError, TypeError, ValueError):
        raise V2MError(f"was not written by v2m's {what} training (no config in it)", path) from None


def model_weights(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The trained model's tensors in a checkpoint (the module's ``model.*``, under the model's names)."""
    return {k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


# --- the run ----------------------------------------------------------------------------------


def run(make_module: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, out: Path,
        settings: TrainSettings, *, resume_from: Path | None, export: Callable[[Path, Path], Path] | None,
        exporter: str, callbacks: Sequence[pl.Callback] = (), **trainer_options) -> FitResult:
    """Train the module ``make_module`` builds (after seeding everything with ``settings.seed``)
    on ``datamodule`` into the run folder ``out``, continuing from ``resume_from``; validation
    every ``settings.val_every`` steps (None: after each epoch; never without a val split).
    ``trainer_options`` go to ``pl.Trainer``.

    Unless interrupted, the final state is written to ``last.ckpt`` and, on rank 0, exported by
    ``export(last.ckpt, out / "final")``; ``export`` None (``exporter``, what it would need, did
    not load) is warned about."""
    last = out / LAST
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    module = make_module()
    datamodule.setup("validate")
    has_val = len(datamodule.datasets["val"]) > 0
    validation = ({"limit_val_batches": 0} if not has_val else
                  {"check_val_every_n_epoch": 1} if not settings.val_every else
                  {"val_check_interval": int(settings.val_every) * int(settings.accumulate),
                   "check_val_every_n_epoch": None})
    checkpointing = pl.callbacks.ModelCheckpoint(dirpath=str(last.parent), save_top_k=0, save_last=True,
                                                 every_n_train_steps=settings.checkpoint_every,
                                                 enable_version_counter=False)
    loggers = [TensorBoardLogger(save_dir=str(out), name="logs"), CSVLogger(save_dir=str(out), name="metrics")]
    trainer = pl.Trainer(default_root_dir=str(out), logger=loggers, callbacks=[checkpointing, *callbacks],
                         max_epochs=settings.max_epochs, max_steps=settings.max_steps,
                         accumulate_grad_batches=settings.accumulate,
                         precision=settings.precision or default_precision(), accelerator=settings.accelerator,
                         devices=settings.devices, num_nodes=settings.num_nodes,
                         strategy=STRATEGIES.get(settings.strategy, settings.strategy),
                         log_every_n_steps=settings.log_every, num_sanity_val_steps=0,
                         enable_progress_bar=settings.progress, enable_model_summary=settings.progress,
                         **validation, **trainer_options)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)

    final = None
    if not trainer.interrupted:
        trainer.save_checkpoint(last, weights_only=False)  # the final state, whatever checkpoint_every is
        if trainer.is_global_zero:
            if export is None:
                rank_zero_warn(f"no {exporter}: the final pipeline is not exported (use export_checkpoint with one)")
            else:
                final = export(last, out / "final")
    return FitResult(trainer, module, last, final)


# --- audio samples ----------------------------------------------------------------------------


class AudioSamples:
    """Mixin for a LightningModule (listed before it) with ``hparams.sample_every`` and
    ``hparams.sample_count`` and a ``log_samples(batch)`` method: calls it every ``sample_every``
    optimiser steps on the same clips each time; :meth:`write_samples` writes what it made."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sample_batch: dict | None = None
        self._last_sampled_step = -1

    def on_train_batch_end(self, outputs, batch: dict, batch_idx: int) -> None:
        every, step = self.hparams.sample_every, self.global_step
        if every and step > 0 and step % every == 0 and step != self._last_sampled_step:
            self._last_sampled_step = step  # once per optimiser step, also with gradient accumulation
            self.log_samples(self._sampling_batch(batch))

    def _sampling_batch(self, fallback: dict) -> dict:
        """The first ``sample_count`` items of the first validation batch (the same clips every
        time), or of ``fallback`` when there is no validation data; on this module's device."""
        if self._sample_batch is None:
            batch = None
            datamodule = getattr(self.trainer, "datamodule", None)
            if datamodule is not None:
                loader = datamodule.val_dataloader()
                if loader is not None and len(loader.dataset) > 0:
                    batch = next(iter(loader))
            batch = fallback if batch is None else batch
            n = self.hparams.sample_count
            self._sample_batch = {k: v[:n].detach().cpu() for k, v in batch.items() if torch.is_tensor(v)}
        return {k: v.to(self.device) for k, v in self._sample_batch.items()}

    def write_samples(self, clips: Iterable[np.ndarray], batch: dict, sample_rate: int,
                      folder: str | os.PathLike | None = None) -> list[Path]:
        """On rank 0, each of ``clips`` (audio [C, n] of ``batch``'s items in order; only rank 0
        takes them, so they may be made as they are taken) cut to its item's real seconds
        (``mask``), peak-normalised, and written as ``step<N>_<i>.wav`` into ``folder`` (default:
        ``samples/`` in the log folder), and to TensorBoard (mono) when that is the logger.
        Returns the files written."""
        attached = self._trainer is not None
        if attached and not self.trainer.is_global_zero:
            return []
        log_dir = getattr(self.logger, "log_dir", None) if attached and self.logger is not None else None
        folder = Path(folder or Path(log_dir or (self.trainer.default_root_dir if attached else ".")) / "samples")
        writer = self.logger.experiment if attached and isinstance(self.logger, TensorBoardLogger) else None
        mask, step, paths = batch.get("mask"), self.global_step, []
        for i, clip in enumerate(clips):
            seconds = int(mask[i].sum()) if mask is not None else clip.shape[-1] // sample_rate
            clip = clip[:, : seconds * sample_rate]
            clip = np.clip(clip / max(float(np.abs(clip).max()), 1e-8), -1, 1).astype(np.float32)
            path = folder / f"step{step:08d}_{i}.wav"
            write_wav(path, clip, sample_rate)
            paths.append(path)
            if writer is not None:
                writer.add_audio(f"samples/{i}", torch.from_numpy(clip.mean(0, keepdims=True)), global_step=step,
                                 sample_rate=sample_rate)
        return paths
