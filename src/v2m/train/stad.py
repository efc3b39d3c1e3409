"""Training ControllableV2M with Lightning, following the official recipe.

The loss is :meth:`Stad.training_loss` (cross-entropy over the 4 codebooks, both alignment
losses, the four curve L1 losses, all weight 1; feature-free guidance drops and the Dirichlet
rescale inside the model), with the target-shift augmentation done by the dataset. Optimiser:
schedule-free AdamW (lr 1e-4, weight decay 0.1; the ``schedulefree`` package), gradient clipping
at 1.0, bf16 through Lightning's precision. Schedule-free optimisers keep two sequences of
weights: the module switches the optimiser to its evaluation weights for validation and
checkpoints and back for training, as the method requires.

Checkpointing, logs, resume and strategies are those of Diff-V2M's training, shared in
:mod:`v2m.train.common`: :func:`fit` trains on a prepared dataset (``v2m prepare --model stad``
with EnCodec tokens and objects), keeps ``out/checkpoints/last.ckpt`` (resumed automatically),
TensorBoard logs in ``out/logs`` and CSV in ``out/metrics``, writes audio samples every N steps
(generated as inference generates: :func:`~v2m.models.stad.pipeline.sample_tokens`), and exports
the evaluation weights as a pipeline folder ``out/final`` that ``v2m generate --model stad``
loads.

    from v2m.train.stad import fit
    fit("small", "data/stad", "runs/stad", init="facebook/musicgen-small", precision="bf16-mixed", devices=4)
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..codecs import ENCODEC_DEFAULT, EncodecCodec
from ..data.datasets import read_manifest
from ..data.modules import StadDataModule
from ..errors import V2MError
from ..models.stad import Stad, StadConfig
from ..models.stad.pipeline import StadPipeline, sample_tokens
from ..weights import load_matching
from .common import LAST, AudioSamples, FitResult, checkpoint_config, model_weights, read_checkpoint, run, \
    run_settings
from .settings import TrainSettings


class StadModule(AudioSamples, pl.LightningModule):
    def __init__(self, config: dict | StadConfig, seed: int = 0, *, model: Stad | None = None, codec=None,
                 sample_every: int = 0, sample_count: int = 2, cfg_scale: float = 3.0):
        super().__init__()
        config = config if isinstance(config, StadConfig) else StadConfig.from_dict(config)
        self.save_hyperparameters({"config": config.to_dict(), "seed": int(seed), "sample_every": int(sample_every),
                                   "sample_count": int(sample_count), "cfg_scale": float(cfg_scale)})
        self.config = config
        self.model = model if model is not None else Stad(config)
        self.codec = codec  # EnCodec for audio samples (not a submodule: not trained, not checkpointed)

    def _optimizer_mode(self, train: bool) -> None:
        if self._trainer is None:
            return
        for opt in self.trainer.optimizers:
            opt = getattr(opt, "optimizer", opt)
            if hasattr(opt, "train"):
                opt.train() if train else opt.eval()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        seed = self.hparams.seed * 1_000_003 + self.global_step * 97 + self.global_rank
        losses = self.model.training_loss(batch, seed=seed)
        B = batch["codes"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, prog_bar=name == "loss", batch_size=B)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.model.training_loss(batch, seed=self.hparams.seed + batch_idx)  # fixed draws
        for name, value in losses.items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, sync_dist=True,
                     batch_size=batch["codes"].shape[0])
        return losses["loss"]

    def configure_optimizers(self):
        from schedulefree import AdamWScheduleFree

        return AdamWScheduleFree(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._optimizer_mode(True)

    def on_validation_start(self) -> None:
        self._optimizer_mode(False)

    def on_validation_end(self) -> None:
        self._optimizer_mode(True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """``state_dict`` keeps the training sequence (with the optimiser state, what resuming
        needs); ``eval_weights`` holds the weights to evaluate and export."""
        self._optimizer_mode(False)
        checkpoint["eval_weights"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self._optimizer_mode(True)

    def on_train_end(self) -> None:
        self._optimizer_mode(False)

    # --- audio samples ------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, batch: dict, seed: int | None = None) -> torch.Tensor:
        """Tokens [B, 4, frames] generated for ``batch``'s video as inference generates
        (:func:`sample_tokens`) with the evaluation weights, guidance ``cfg_scale``; frames = the
        batch's seconds x the frame rate."""
        self._optimizer_mode(False)
        was_training = self.model.training
        self.model.eval()
        try:
            frames = batch["mask"].shape[1] * self.config.lm.frame_rate
            g = torch.Generator().manual_seed(self.hparams.seed if seed is None else seed)
            return sample_tokens(self.model, batch, frames=frames, cfg_scale=self.hparams.cfg_scale, generator=g)
        finally:
            self.model.train(was_training)
            self._optimizer_mode(was_training)

    def log_samples(self, batch: dict, folder: str | os.PathLike | None = None) -> list[Path]:
        """Generate for ``batch``, decode with EnCodec and write the clips (:meth:`write_samples`).
        Returns the files written (none without a codec)."""
        if self.codec is None:
            rank_zero_warn("no EnCodec to decode samples with: audio samples are skipped")
            return []
        tokens = self.sample(batch).cpu().numpy()
        clips = (self.codec.decode({"codes": codes}) for codes in tokens)  # decoded on rank 0 only
        return self.write_samples(clips, batch, self.config.sample_rate, folder)


# --- export and fit ---------------------------------------------------------------------------


def export_checkpoint(checkpoint: str | os.PathLike, folder: str | os.PathLike, codec) -> Path:
    """A Lightning checkpoint of :class:`StadModule` -> our pipeline folder with its evaluation
    weights (schedule-free's x sequence) and ``codec``, which ``StadPipeline.load`` reads."""
    state = read_checkpoint(checkpoint, "ControllableV2M")
    config = checkpoint_config(state, StadConfig.from_dict, "ControllableV2M", checkpoint)
    config_no_init = replace(config, lm=replace(config.lm, init_from=None))  # the weights are all here
    with torch.device("meta"):
        model = Stad(config_no_init)
    load_matching(model, state.get("eval_weights") or model_weights(state), "ControllableV2M training",
                  os.fspath(checkpoint))
    folder = Path(folder)
    StadPipeline(config_no_init, model.eval(), codec, str(folder)).save(folder)
    return folder


def resolve_config(config: StadConfig | Mapping | str | os.PathLike | None, init: str | None = None) -> StadConfig:
    """``small`` / ``medium`` (MusicGen's sizes), a config dict or file (:meth:`StadConfig.to_dict`),
    or an existing config; ``init``, a MusicGen source, becomes the LM's ``init_from``."""
    if config is None or config == "small":
        config = StadConfig()
    elif config == "medium":
        config = StadConfig.medium()
    elif isinstance(config, Mapping):
        config = StadConfig.from_dict(dict(config))
    elif not isinstance(config, StadConfig):
        try:
            config = StadConfig.load(config)
        except (OSError, ValueError, TypeError) as e:
            raise V2MError(f"is not a ControllableV2M config (small, medium or a JSON file; {e})", str(config)) from None
    return replace(config, lm=replace(config.lm, init_from=init)) if init else config


def _dataset_semantic_dim(data_dir: Path) -> int | None:
    rows = read_manifest(data_dir)
    if not rows:
        return None
    with np.load(data_dir / rows[0]["features"], allow_pickle=False) as z:
        return int(z["obj_semantic"].shape[-1]) if "obj_semantic" in z.files else None


def fit(config: StadConfig | Mapping | str | os.PathLike | None, data_dir: str | os.PathLike,
        out_dir: str | os.PathLike, *, init: str | None = None, codec: str | None = None, cfg_scale: float = 3.0,
        callbacks: Sequence[pl.Callback] = (), settings: TrainSettings | None = None, **changes) -> FitResult:
    """Train ControllableV2M on the prepared dataset ``data_dir``; everything goes to ``out_dir``.

    ``config``: ``small`` (default) / ``medium`` / a config (file). ``init``: a MusicGen source
    (``facebook/musicgen-small``, a folder) whose decoder starts the LM, or our pipeline folder
    to fine-tune. When ``out_dir/checkpoints/last.ckpt`` exists and ``resume`` is on, training
    continues from it with its config. ``codec``: the EnCodec for samples (guidance
    ``cfg_scale``) and the exported pipeline (default: the one the dataset was encoded with).
    ``settings``: the run's :class:`~v2m.train.settings.TrainSettings` (default: the published
    ones, ``PUBLISHED["stad"]``), with any of its fields replaced by keyword (``changes``), as
    :func:`v2m.train.diffv2m.fit`; gradients are clipped at 1.0."""
    settings = run_settings("stad", settings, changes)
    out, data_dir = Path(out_dir), Path(data_dir)
    last = out / LAST
    resume_from = last if settings.resume and last.is_file() else None
    model = None
    if resume_from is not None:  # the checkpoint holds every weight: no MusicGen to start from
        config = checkpoint_config(read_checkpoint(resume_from, "ControllableV2M"), StadConfig.from_dict,
                                   "ControllableV2M", resume_from)
        config = replace(config, lm=replace(config.lm, init_from=None))
    elif init and (Path(os.path.expanduser(init)) / "model.safetensors").is_file():
        pipeline = StadPipeline.load(init, device="cpu")  # fine-tuning one of ours
        config, model = pipeline.config, pipeline.model.train()
        codec = codec or pipeline.source
    else:
        config = resolve_config(config, init)

    datamodule_args = {"batch_size": settings.batch_size, "num_workers": settings.num_workers,
                       "seed": settings.seed, "max_shots": config.video.max_shots,
                       "n_objects": config.video.n_objects, "pin_memory": torch.cuda.is_available()}
    probe = StadDataModule(data_dir, **datamodule_args)
    summary = probe.summary
    if summary.get("clips_with_codec", 0) < summary.get("clips", 0) or not summary.get("clips"):
        raise V2MError("needs EnCodec tokens for every clip (prepare it with the codec weights)", data_dir)
    dim = _dataset_semantic_dim(data_dir)
    if dim is not None and dim != config.video.semantic_dim:
        raise V2MError(f"the dataset's objects have {dim}-value CLIP embeddings, the config expects "
                       f"{config.video.semantic_dim}", data_dir)
    clip_seconds = math.ceil(summary.get("settings", {}).get("clip_seconds", 30) - 1e-6)
    crop_seconds = settings.crop_seconds
    window = min(crop_seconds or clip_seconds, config.video.max_seconds)
    datamodule = StadDataModule(data_dir, max_seconds=window, crop_seconds=crop_seconds and window, **datamodule_args)

    codec_source = codec or (summary.get("codec") or {}).get("source") or ENCODEC_DEFAULT
    encodec_dir = Path(os.path.expanduser(codec_source)) / "encodec"
    try:
        encodec = EncodecCodec.load(str(encodec_dir) if encodec_dir.is_dir() else codec_source, device="cpu")
    except V2MError as e:
        rank_zero_warn(f"EnCodec cannot be loaded ({e}): no audio samples, no exported pipeline")
        encodec = None

    def make_module() -> StadModule:
        return StadModule(config, settings.seed, model=model, codec=encodec, sample_every=settings.sample_every,
                          cfg_scale=cfg_scale)

    def export(checkpoint: Path, folder: Path) -> Path:
        return export_checkpoint(checkpoint, folder, encodec)

    return run(make_module, datamodule, out, settings, resume_from=resume_from,
               export=None if encodec is None else export, exporter="EnCodec", callbacks=callbacks,
               gradient_clip_val=1.0)
