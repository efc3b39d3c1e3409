"""Lightning DataModules over a prepared dataset folder (``v2m prepare``), one per model.

The train split gets random whole-second crops (and, for ControllableV2M, target shifting);
val and test take each clip's first window, deterministically. Batches are the datasets' dicts
collated by the default collate (every item is padded to the window with masks). When the
dataset holds codec targets the wav files are not decoded at all, unless ``audio=True``.

    dm = DiffV2MDataModule("data/diffv2m", batch_size=32, num_workers=8)
    trainer.fit(model, datamodule=dm)
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from ..errors import V2MError
from .datasets import DiffV2MDataset, StadDataset


class _PreparedDataModule(pl.LightningDataModule):
    dataset_cls: type = DiffV2MDataset
    model = "diffv2m"

    def __init__(self, root: str | Path, batch_size: int = 8, num_workers: int = 0, max_seconds: int = 30,
                 crop_seconds: int | None = None, audio: bool | None = None, seed: int = 0,
                 pin_memory: bool = False):
        super().__init__()
        self.root = Path(root)
        summary_path = self.root / "dataset.json"
        try:
            self.summary = json.loads(summary_path.read_text())
        except (OSError, ValueError):
            raise V2MError("is not a prepared dataset (no readable dataset.json; run `v2m prepare`)", root) from None
        if self.summary.get("model") != self.model:
            raise V2MError(f"was prepared for {self.summary.get('model')!r}, not {self.model!r}", root)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        has_codec = self.summary.get("clips_with_codec", 0) == self.summary.get("clips", 0) > 0
        self.dataset_kwargs = {"max_seconds": max_seconds, "crop_seconds": crop_seconds, "seed": seed,
                               "audio": (not has_codec) if audio is None else audio}
        self.datasets: dict = {}

    def _split_kwargs(self, split: str) -> dict:
        return {}

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = self.dataset_cls(self.root, split=split, random_crop=split == "train",
                                                        **self.dataset_kwargs, **self._split_kwargs(split))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup({"train": "fit", "val": "validate"}.get(split, "test"))
        dataset = self.datasets[split]
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0,
                          drop_last=shuffle and len(dataset) > self.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class DiffV2MDataModule(_PreparedDataModule):
    """Diff-V2M batches: CLIP, colour, scene cuts, visual beats, rhythm targets, VAE latents."""

    dataset_cls, model = DiffV2MDataset, "diffv2m"

    def _split_kwargs(self, split: str) -> dict:
        return {} if split == "train" else {"sample_latents": False}  # evaluation sees the posterior mean


class StadDataModule(_PreparedDataModule):
    """ControllableV2M batches: per-second video timeline, music features, EnCodec tokens
    (target-shifted in training)."""

    dataset_cls, model = StadDataset, "stad"

    def __init__(self, root: str | Path, *args, max_shots: int = 10, n_objects: int = 5, **kwargs):
        super().__init__(root, *args, **kwargs)
        if self.summary.get("clips_with_objects", 0) < self.summary.get("clips", 0):
            raise V2MError("has clips without objects (SAM or CLIP could not be loaded when it was prepared); "
                           "run `v2m prepare --model stad` again with the weights to add them", root)
        self.dataset_kwargs.update(max_shots=max_shots, n_objects=n_objects)

    def _split_kwargs(self, split: str) -> dict:
        return {"target_shift": split == "train"}
