"""Training ControllableV2M with Lightning, following the official recipe.

The loss is :meth:`Stad.training_loss` (cross-entropy over the 4 codebooks, both alignment
losses, the four curve L1 losses, all weight 1; feature-free guidance drops and the Dirichlet
rescale inside the model), with the target-shift augmentation done by the dataset. Optimiser:
schedule-free AdamW (lr 1e-4, weight decay 0.1; the ``schedulefree`` package), gradient clipping
at 1.0, bf16 through Lightning's precision. Schedule-free optimisers keep two sequences of
weights: the module switches the optimiser to its evaluation weights for validation and
checkpoints and back for training, as the method requires.

Checkpointing, logs, resume and strategies are those of :mod:`v2m.train.diffv2m`.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from ..models.stad import Stad, StadConfig


class StadModule(pl.LightningModule):
    def __init__(self, config: dict | StadConfig, seed: int = 0):
        super().__init__()
        config = config if isinstance(config, StadConfig) else StadConfig.from_dict(config)
        self.save_hyperparameters({"config": config.to_dict(), "seed": int(seed)})
        self.config = config
        self.model = Stad(config)

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
