"""Training ControllableV2M with Lightning, following the official recipe.

The loss is :meth:`Stad.training_loss` (cross-entropy over the 4 codebooks, both alignment
losses, the four curve L1 losses, all weight 1; feature-free guidance drops and the Dirichlet
rescale inside the model), with the target-shift augmentation done by the dataset. Optimiser:
schedule-free AdamW (lr 1e-4, weight decay 0.1; the ``schedulefree`` package), gradient clipping
at 1.0, bf16 through Lightning's precision. Schedule-free optimisers keep two sequences of
weights: the module switches the optimiser to its evaluation weights for validation and
checkpoints and back for training, as the method requires.

Checkpointing, logs, resume and strategies are those of :mod:`v2m.train.diffv2m`: :func:`fit`
trains on a prepared dataset (``v2m prepare --model stad`` with EnCodec tokens and objects),
keeps ``out/checkpoints/last.ckpt`` (resumed automatically), TensorBoard logs in ``out/logs``
and CSV in ``out/metrics``, writes audio samples every N steps, and exports the evaluation
weights as a pipeline folder ``out/final`` that ``v2m generate --model stad`` loads.

    from v2m.train.stad import fit
    fit("small", "data/stad", "runs/stad", init="facebook/musicgen-small", precision="bf16-mixed", devices=4)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..errors import V2MError
from ..models.stad import Stad, StadConfig
from ..models.stad.pipeline import sample_tokens
from .samples import SamplesEveryN


class StadModule(SamplesEveryN, pl.LightningModule):
    def __init__(self, config: dict | StadConfig, seed: int = 0, *, model: Stad | None = None, codec=None,
                 sample_every: int = 0, sample_count: int = 2, cfg_scale: float = 3.0):
        super().__init__()
        config = config if isinstance(config, StadConfig) else StadConfig.from_dict(config)
        self.save_hyperparameters({"config": config.to_dict(), "seed": int(seed), "sample_every": int(sample_every),
                                   "sample_count": int(sample_count), "cfg_scale": float(cfg_scale)})
        self.config = config
        self.model = model if model is not None else Stad(config)
        self.codec = codec  # EnCodec for audio samples (not a submodule: not trained, not checkpointed)
        self._sample_batch: dict | None = None
        self._last_sampled_step = -1

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
        """Generate for ``batch``, decode with EnCodec, keep each clip's real seconds, write
        ``step<N>_<i>.wav`` into ``folder`` (default ``samples/`` in the log folder) and to
        TensorBoard. Returns the files written (none without a codec)."""
        if self.codec is None:
            rank_zero_warn("no EnCodec to decode samples with: audio samples are skipped")
            return []
        tokens = self.sample(batch)
        attached = self._trainer is not None
        if attached and not self.trainer.is_global_zero:
            return []
        from ..media import write_wav

        sr, step = self.config.sample_rate, self.global_step
        log_dir = (getattr(self.logger, "log_dir", None) if attached and self.logger is not None else None)
        folder = Path(folder or Path(log_dir or (self.trainer.default_root_dir if attached else ".")) / "samples")
        writer = None
        if attached:
            from lightning.pytorch.loggers import TensorBoardLogger

            writer = self.logger.experiment if isinstance(self.logger, TensorBoardLogger) else None
        paths = []
        for i, codes in enumerate(tokens.cpu().numpy()):
            seconds = int(batch["mask"][i].sum())
            audio = self.codec.decode({"codes": codes})[:, : seconds * sr]
            audio = np.clip(audio / max(float(np.abs(audio).max()), 1e-8), -1, 1).astype(np.float32)
            path = folder / f"step{step:08d}_{i}.wav"
            write_wav(path, audio, sr)
            paths.append(path)
            if writer is not None:
                writer.add_audio(f"samples/{i}", torch.from_numpy(audio), global_step=step, sample_rate=sr)
        return paths


# --- export and fit ---------------------------------------------------------------------------


def _read_checkpoint(path: str | os.PathLike) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a directory (DeepSpeed), a truncated file, a pickle with code
        raise V2MError(f"cannot be read as a ControllableV2M training checkpoint ({' '.join(str(e).split())[:160]})",
                       path) from None


def export_checkpoint(checkpoint: str | os.PathLike, folder: str | os.PathLike, codec) -> Path:
    """A Lightning checkpoint of :class:`StadModule` -> our pipeline folder with its evaluation
    weights (schedule-free's x sequence) and ``codec``, which ``StadPipeline.load`` reads."""
    from ..models.stad.pipeline import StadPipeline
    from ..weights import load_matching

    state = _read_checkpoint(checkpoint)
    try:
        config = StadConfig.from_dict(state["hyper_parameters"]["config"])
    except (KeyError, TypeError, ValueError):
        raise V2MError("was not written by v2m's ControllableV2M training (no config in it)", checkpoint) from None
    weights = state.get("eval_weights") or {k[len("model."):]: v for k, v in state["state_dict"].items()
                                            if k.startswith("model.")}
    config_no_init = replace(config, lm=replace(config.lm, init_from=None))  # the weights are all here
    with torch.device("meta"):
        model = Stad(config_no_init)
    load_matching(model, weights, "ControllableV2M training", os.fspath(checkpoint))
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


@dataclass
class StadFitResult:
    trainer: pl.Trainer
    module: StadModule
    checkpoint: Path  # out/checkpoints/last.ckpt
    final: Path | None  # out/final (None when interrupted)


def _dataset_semantic_dim(data_dir: Path) -> int | None:
    from ..data.datasets import read_manifest

    rows = read_manifest(data_dir)
    if not rows:
        return None
    with np.load(data_dir / rows[0]["features"], allow_pickle=False) as z:
        return int(z["obj_semantic"].shape[-1]) if "obj_semantic" in z.files else None


def fit(config: StadConfig | Mapping | str | os.PathLike | None, data_dir: str | os.PathLike,
        out_dir: str | os.PathLike, *, init: str | None = None, max_epochs: int = 100, max_steps: int = -1,
        batch_size: int = 6, num_workers: int = 4, accumulate: int = 1, precision: str | None = None,
        devices: int | str | Sequence[int] = "auto", num_nodes: int = 1, strategy: str = "auto",
        val_every: int | None = None, sample_every: int = 0, checkpoint_every: int = 500, log_every: int = 50,
        crop_seconds: int | None = None, seed: int = 42, resume: bool = True, codec: str | None = None,
        cfg_scale: float = 3.0, progress: bool = True, callbacks: Sequence[pl.Callback] = (),
        accelerator: str = "auto") -> StadFitResult:
    """Train ControllableV2M on the prepared dataset ``data_dir``; everything goes to ``out_dir``.

    ``config``: ``small`` (default) / ``medium`` / a config (file). ``init``: a MusicGen source
    (``facebook/musicgen-small``, a folder) whose decoder starts the LM, or our pipeline folder
    to fine-tune. When ``out_dir/checkpoints/last.ckpt`` exists and ``resume`` is on, training
    continues from it with its config. ``codec``: the EnCodec for samples and the exported
    pipeline (default: the one the dataset was encoded with). Hardware, precision, strategies
    and checkpoints as :func:`v2m.train.diffv2m.fit`; gradients are clipped at 1.0."""
    from ..codecs import ENCODEC_DEFAULT, EncodecCodec
    from ..data.modules import StadDataModule
    from ..models.stad.pipeline import StadPipeline
    from .diffv2m import STRATEGIES, _default_precision, _loggers

    out, data_dir = Path(out_dir), Path(data_dir)
    last = out / "checkpoints" / "last.ckpt"
    resume_from = last if resume and last.is_file() else None
    model = None
    if resume_from is not None:  # the checkpoint holds every weight: no MusicGen to start from
        config = StadConfig.from_dict(_read_checkpoint(resume_from)["hyper_parameters"]["config"])
        config = replace(config, lm=replace(config.lm, init_from=None))
    elif init and (Path(os.path.expanduser(init)) / "model.safetensors").is_file():
        pipeline = StadPipeline.load(init, device="cpu")  # fine-tuning one of ours
        config, model = pipeline.config, pipeline.model.train()
        codec = codec or pipeline.source
    else:
        config = resolve_config(config, init)

    datamodule_args = {"batch_size": batch_size, "num_workers": num_workers, "seed": seed,
                       "max_shots": config.video.max_shots, "n_objects": config.video.n_objects,
                       "pin_memory": torch.cuda.is_available()}
    probe = StadDataModule(data_dir, **datamodule_args)
    summary = probe.summary
    if summary.get("clips_with_codec", 0) < summary.get("clips", 0) or not summary.get("clips"):
        raise V2MError("needs EnCodec tokens for every clip (prepare it with the codec weights)", data_dir)
    dim = _dataset_semantic_dim(data_dir)
    if dim is not None and dim != config.video.semantic_dim:
        raise V2MError(f"the dataset's objects have {dim}-value CLIP embeddings, the config expects "
                       f"{config.video.semantic_dim}", data_dir)
    clip_seconds = math.ceil(summary.get("settings", {}).get("clip_seconds", 30) - 1e-6)
    window = min(crop_seconds or clip_seconds, config.video.max_seconds)
    datamodule = StadDataModule(data_dir, max_seconds=window, crop_seconds=crop_seconds and window, **datamodule_args)

    codec_source = codec or (summary.get("codec") or {}).get("source") or ENCODEC_DEFAULT
    encodec_dir = Path(os.path.expanduser(codec_source)) / "encodec"
    try:
        encodec = EncodecCodec.load(str(encodec_dir) if encodec_dir.is_dir() else codec_source, device="cpu")
    except V2MError as e:
        rank_zero_warn(f"EnCodec cannot be loaded ({e}): no audio samples, no exported pipeline")
        encodec = None

    pl.seed_everything(seed, workers=True, verbose=False)
    module = StadModule(config, seed, model=model, codec=encodec, sample_every=sample_every, cfg_scale=cfg_scale)
    datamodule.setup("validate")
    has_val = len(datamodule.datasets["val"]) > 0
    validation = ({"limit_val_batches": 0} if not has_val else
                  {"check_val_every_n_epoch": 1} if not val_every else
                  {"val_check_interval": int(val_every) * int(accumulate), "check_val_every_n_epoch": None})
    checkpointing = pl.callbacks.ModelCheckpoint(dirpath=str(last.parent), save_top_k=0, save_last=True,
                                                 every_n_train_steps=checkpoint_every, enable_version_counter=False)
    trainer = pl.Trainer(default_root_dir=str(out), logger=_loggers(out), callbacks=[checkpointing, *callbacks],
                         max_epochs=max_epochs, max_steps=max_steps, accumulate_grad_batches=accumulate,
                         gradient_clip_val=1.0, precision=precision or _default_precision(), accelerator=accelerator,
                         devices=devices, num_nodes=num_nodes, strategy=STRATEGIES.get(strategy, strategy),
                         log_every_n_steps=log_every, num_sanity_val_steps=0, enable_progress_bar=progress,
                         enable_model_summary=progress, **validation)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)

    final = None
    if not trainer.interrupted:
        trainer.save_checkpoint(last, weights_only=False)
        if trainer.is_global_zero:
            if encodec is None:
                rank_zero_warn("no EnCodec: the final pipeline is not exported (use export_checkpoint with one)")
            else:
                final = export_checkpoint(last, out / "final", encodec)
    return StadFitResult(trainer, module, last, final)
