"""Audio samples during training, shared by the models' Lightning modules."""

from __future__ import annotations

import torch


class SamplesEveryN:
    """Mixin for a LightningModule with ``hparams.sample_every`` / ``hparams.sample_count`` and a
    ``log_samples(batch)`` method: calls it every ``sample_every`` optimiser steps on the same
    clips each time. The module sets ``_sample_batch = None`` and ``_last_sampled_step = -1``."""

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
