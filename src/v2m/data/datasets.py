"""PyTorch datasets over a prepared dataset folder (``v2m prepare``).

Every item is padded to ``max_seconds`` with a boolean ``mask`` (True on real seconds), so clips
shorter than the maximum batch with the default collate. ``crop_seconds`` takes a random window
of whole seconds from longer clips (training), or the first window (evaluation, ``random_crop``
off). Arrays come from ``allow_pickle=False`` loads only.

:class:`DiffV2MDataset` yields the Diff-V2M conditions (``clip`` [T, 512] - zeros with
``has_clip`` False when the dataset has no semantics - ``color`` [T, 3072], ``scene_cut`` [T]
long, ``pseudo_beat`` [T]), the rhythm targets z-scored per clip (``odf`` [T], ``mel`` and
``tempogram`` [T, 16]) and the 44.1 kHz stereo audio [2, T * sr] with ``seconds_start`` /
``seconds_total`` as the official timing conditioner expects.

:class:`StadDataset` yields the per-second video timeline, the four music features normalised
with the dataset's ``stats.json`` and the 32 kHz mono audio. :func:`target_shift` is
ControllableV2M's augmentation of codec tokens (with probability 0.5 drop the first 1-200
frames and pad the end), for token targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import music
from ..media import read_audio


def read_manifest(root: str | Path, split: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (Path(root) / "manifest.jsonl").read_text().splitlines() if line]
    return [r for r in rows if split is None or r["split"] == split]


def _pad(x: np.ndarray, length: int, axis: int = 0) -> np.ndarray:
    x = np.asarray(x)
    if x.shape[axis] >= length:
        return np.take(x, np.arange(length), axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, length - x.shape[axis])
    return np.pad(x, widths)


class _ClipDataset(Dataset):
    sample_rate = 44100
    channels = 2

    def __init__(self, root: str | Path, split: str | None = "train", max_seconds: int = 30,
                 crop_seconds: int | None = None, random_crop: bool = True, seed: int = 0):
        self.root = Path(root)
        self.rows = read_manifest(self.root, split)
        self.max_seconds = int(crop_seconds or max_seconds)
        self.random_crop = random_crop
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def _window(self, seconds: int) -> tuple[int, int]:
        n = min(seconds, self.max_seconds)
        start = int(self.rng.integers(0, seconds - n + 1)) if self.random_crop and seconds > n else 0
        return start, n

    def _load(self, index: int):
        row = self.rows[index]
        with np.load(self.root / row["features"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        audio = read_audio(self.root / row["audio"], self.sample_rate, channels=self.channels)
        start, n = self._window(int(row["seconds"]))
        sr, T = self.sample_rate, self.max_seconds
        mask = np.zeros(T, bool)
        mask[: min(n, row["seconds"])] = True
        clip_audio = audio[:, start * sr : (start + n) * sr]
        out = {"mask": torch.from_numpy(mask),
               "audio": torch.from_numpy(_pad(clip_audio, T * sr, axis=1).astype(np.float32)),
               "audio_mask": torch.from_numpy(np.arange(T * sr) < clip_audio.shape[1]),
               "seconds_start": float(row["start"]) + start, "seconds_total": float(row["duration"])}
        return row, arrays, start, n, out


class DiffV2MDataset(_ClipDataset):
    sample_rate, channels = 44100, 2

    def __getitem__(self, index: int) -> dict:
        row, z, start, n, out = self._load(index)
        T = self.max_seconds

        def take(name, dtype=np.float32):
            return torch.from_numpy(_pad(z[name][start : start + n], T).astype(dtype))

        out.update(color=take("color_hist"), scene_cut=take("scene_cut", np.int64), pseudo_beat=take("pseudo_beat"))
        out["has_clip"] = "clip" in z
        out["clip"] = take("clip") if "clip" in z else torch.zeros(T, 512)
        for name in ("odf", "mel", "tempogram"):
            values = music.zscore(z[name][start : start + n])
            out[name] = torch.from_numpy(_pad(values, T))
        return out


class StadDataset(_ClipDataset):
    sample_rate, channels = 32000, 1

    def __init__(self, root: str | Path, *args, **kwargs):
        super().__init__(root, *args, **kwargs)
        self.stats = music.FeatureStats.load(Path(root) / "stats.json")

    def __getitem__(self, index: int) -> dict:
        row, z, start, n, out = self._load(index)
        T = self.max_seconds
        features = self.stats.normalise({k: z[k] for k in music.STAD_KINDS})
        for kind, values in features.items():  # frames are the last axis; one frame per second
            values = np.moveaxis(np.atleast_2d(values), -1, 0)[start : start + n]
            out[kind] = torch.from_numpy(_pad(values, T).squeeze(-1) if values.shape[-1] == 1 else _pad(values, T))
        for name in ("motion", "brightness", "saturation", "warmth", "scene_cut"):
            out[name] = torch.from_numpy(_pad(z[name][start : start + n], T).astype(np.float32))
        return out


def target_shift(codes: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5,
                 max_shift: int = 200) -> torch.Tensor:
    """ControllableV2M's augmentation: with probability ``p`` drop the first 1..``max_shift``
    frames of ``codes`` [..., frames] and pad the end with zeros (same length)."""
    if torch.rand(1, generator=generator).item() >= p:
        return codes
    n = int(torch.randint(1, max_shift + 1, (1,), generator=generator).item())
    n = min(n, codes.shape[-1])
    return torch.nn.functional.pad(codes[..., n:], (0, n))
