"""PyTorch datasets over a prepared dataset folder (``v2m prepare``).

:class:`DiffV2MDataset` and :class:`StadDataset` read ``manifest.jsonl`` (:func:`read_manifest`)
and yield one window of whole seconds of a clip per item, padded to a fixed length with masks
so that items batch with the default collate; :func:`target_shift` is ControllableV2M's
augmentation of the codec targets. Arrays are read with ``allow_pickle=False`` only. Crops,
latent draws and shifts take their randomness from :attr:`_ClipDataset.rng`, one generator per
process, seeded from ``seed`` and, in a DataLoader worker, the worker's seed. Every item's keys
and shapes: docs/datasets.md ("What the datasets yield").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import music
from ..analysis.shot_objects import unpack_shots
from ..analysis.timeline import fit_length
from ..codecs import OobleckCodec
from ..media import read_audio
from ..models.diffv2m.inputs import window_inputs as diffv2m_inputs
from ..models.stad.inputs import window_inputs as stad_inputs


def read_manifest(root: str | Path, split: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (Path(root) / "manifest.jsonl").read_text().splitlines() if line]
    return [r for r in rows if split is None or r["split"] == split]


class _ClipDataset(Dataset):
    sample_rate = 44100
    channels = 2

    def __init__(self, root: str | Path, split: str | None = "train", max_seconds: int = 30,
                 crop_seconds: int | None = None, random_crop: bool = True, seed: int = 0, audio: bool = True):
        self.root = Path(root)
        self.rows = read_manifest(self.root, split)
        self.max_seconds = int(crop_seconds or max_seconds)
        self.random_crop = random_crop
        self.seed = seed
        self.with_audio = audio
        self._rng_key: tuple | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def rng(self) -> np.random.Generator:
        """This process' generator: (seed, worker seed) in a DataLoader worker, seed otherwise."""
        info = torch.utils.data.get_worker_info()
        key = (self.seed,) if info is None else (self.seed, info.seed)
        if key != self._rng_key:
            self._rng, self._rng_key = np.random.default_rng(key), key
        return self._rng

    def torch_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.rng.integers(2**63)))

    def _window(self, seconds: int) -> tuple[int, int]:
        n = min(seconds, self.max_seconds)
        start = int(self.rng.integers(0, seconds - n + 1)) if self.random_crop and seconds > n else 0
        return start, n

    def _load(self, index: int):
        """The clip's row, its feature arrays and its window (start second, seconds)."""
        row = self.rows[index]
        with np.load(self.root / row["features"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        start, n = self._window(int(row["seconds"]))
        return row, arrays, start, n

    @staticmethod
    def _timing(row: dict, start: int) -> dict:
        """The window's ``seconds_start`` in its source video and the clip's duration as ``seconds_total``."""
        return {"seconds_start": float(row["start"]) + start, "seconds_total": float(row["duration"])}

    def _audio(self, row: dict, start: int, n: int) -> dict:
        """The audio of seconds [start, start + n) padded to the window, with its mask (none when
        ``audio`` is off)."""
        if not self.with_audio:
            return {}
        sr, T = self.sample_rate, self.max_seconds
        audio = read_audio(self.root / row["audio"], sr, channels=self.channels)[:, start * sr : (start + n) * sr]
        return {"audio": torch.from_numpy(fit_length(audio, T * sr, axis=1).astype(np.float32)),
                "audio_mask": torch.from_numpy(np.arange(T * sr) < audio.shape[1])}

    def _frames(self, row: dict, frames: np.ndarray, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Codec frames [..., F] of seconds [start, start + n), padded to the window's frame count,
        with their mask."""
        codec = row["codec"]
        per_second = codec["sample_rate"] / codec["hop_length"]
        total = int(self.max_seconds * codec["sample_rate"]) // codec["hop_length"]
        a = int(round(start * per_second))
        b = min(frames.shape[-1], a + int(n * codec["sample_rate"]) // codec["hop_length"])
        window = frames[..., a:b]
        return fit_length(window, total, axis=-1), np.arange(total) < window.shape[-1]


class DiffV2MDataset(_ClipDataset):
    sample_rate, channels = 44100, 2

    def __init__(self, root: str | Path, *args, sample_latents: bool = True, **kwargs):
        super().__init__(root, *args, **kwargs)
        self.sample_latents = sample_latents

    def __getitem__(self, index: int) -> dict:
        row, z, start, n = self._load(index)
        T = self.max_seconds
        out = diffv2m_inputs(z, start, n, T, **self._timing(row, start), class_label=row.get("class_label"))
        out.update(self._audio(row, start, n), has_clip="clip" in z)
        for name in ("odf", "mel", "tempogram"):
            out[name] = torch.from_numpy(fit_length(music.zscore(z[name][start : start + n]), T))
        if "latent_mean" in z:
            mean, mask = self._frames(row, z["latent_mean"], start, n)
            std, _ = self._frames(row, z["latent_std"], start, n)
            latents = (OobleckCodec.sample(mean, std, self.torch_generator()) if self.sample_latents
                       else torch.from_numpy(mean.astype(np.float32)))
            out["latents"] = latents * torch.from_numpy(mask)
            out["latents_mask"] = torch.from_numpy(mask)
        return out


class StadDataset(_ClipDataset):
    sample_rate, channels = 32000, 1

    def __init__(self, root: str | Path, *args, target_shift: bool = False, max_shots: int = 10, n_objects: int = 5,
                 **kwargs):
        super().__init__(root, *args, **kwargs)
        self.stats = music.FeatureStats.load(Path(root) / "stats.json")
        self.target_shift = target_shift
        self.max_shots, self.n_objects = max_shots, n_objects

    def __getitem__(self, index: int) -> dict:
        row, z, start, n = self._load(index)
        T = self.max_seconds
        out = {"mask": torch.from_numpy(np.arange(T) < n), **self._timing(row, start), **self._audio(row, start, n)}
        features = self.stats.normalise({k: z[k] for k in music.STAD_KINDS})
        for kind, values in features.items():  # frames are the last axis; one frame per second
            values = fit_length(np.moveaxis(np.atleast_2d(values), -1, 0)[start : start + n], T)
            out[kind] = torch.from_numpy(values.squeeze(-1) if values.shape[-1] == 1 else values)
        for name in ("motion", "brightness", "saturation", "warmth", "scene_cut"):
            out[name] = torch.from_numpy(fit_length(z[name][start : start + n], T).astype(np.float32))
        out["has_objects"] = "obj_seconds" in z
        if out["has_objects"]:
            out.update(stad_inputs(unpack_shots(z), start, n, self.max_shots, self.n_objects, T))
        if "codes" in z:
            codes, mask = self._frames(row, z["codes"], start, n)
            codes, mask = torch.from_numpy(codes.astype(np.int64)), torch.from_numpy(mask)
            if self.target_shift:
                codes, mask = target_shift(codes, self.torch_generator(), mask=mask)
            out["codes"], out["codes_mask"] = codes, mask
        return out


def target_shift(codes: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5,
                 max_shift: int = 200, mask: torch.Tensor | None = None):
    """ControllableV2M's augmentation: with probability ``p`` drop the first 1..``max_shift``
    frames of ``codes`` [..., frames] and pad the end with zeros (same length). With ``mask``
    [frames], the mask is shifted the same way and ``(codes, mask)`` returned."""
    n = 0
    if torch.rand(1, generator=generator).item() < p:
        n = min(int(torch.randint(1, max_shift + 1, (1,), generator=generator).item()), codes.shape[-1])
    shifted = torch.nn.functional.pad(codes[..., n:], (0, n)) if n else codes
    if mask is None:
        return shifted
    return shifted, (torch.nn.functional.pad(mask[n:], (0, n)) if n else mask)
