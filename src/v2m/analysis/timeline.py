"""The analysis of one video (:class:`Analysis`): a per-second timeline (second ``i`` covers
``[i, i + 1)``, ``t = 0`` at the first frame) plus exact event times, saved as one NumPy
``.npz`` file, format ``v2m-analysis`` version :data:`VERSION` (nothing pickled; the entries and
their meanings are tabled in docs/analysis.md). Readers check ``format`` and ``version``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import V2MError
from ..fsutil import atomic_path

FORMAT = "v2m-analysis"
VERSION = 1
SUFFIX = ".v2m.npz"

_ARRAYS = (
    "transitions",
    "shots",
    "scene_cut",
    "frame_times",
    "frame_diff",
    "beat_times",
    "beat_strengths",
    "pseudo_beat",
    "motion",
    "color_hist",
    "brightness",
    "saturation",
    "warmth",
    "sample_times",
)


def fit_length(x: np.ndarray, length: int, axis: int = 0) -> np.ndarray:
    """``x`` cut or zero-padded to ``length`` along ``axis`` (a timeline's seconds, say)."""
    x = np.asarray(x)
    if x.shape[axis] >= length:
        return np.take(x, np.arange(length), axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, length - x.shape[axis])
    return np.pad(x, widths)


@dataclass
class Analysis:
    """Everything v2m knows about one video's picture, on a per-second timeline."""

    meta: dict
    transitions: np.ndarray
    shots: np.ndarray
    scene_cut: np.ndarray
    frame_times: np.ndarray
    frame_diff: np.ndarray
    beat_times: np.ndarray
    beat_strengths: np.ndarray
    pseudo_beat: np.ndarray
    motion: np.ndarray
    color_hist: np.ndarray
    brightness: np.ndarray
    saturation: np.ndarray
    warmth: np.ndarray
    sample_times: np.ndarray
    clip: np.ndarray | None = field(default=None)

    @property
    def duration(self) -> float:
        return float(self.meta["duration"])

    @property
    def n_seconds(self) -> int:
        return int(self.meta["n_seconds"])

    @property
    def cut_times(self) -> np.ndarray:
        """Start time of every shot after the first (the middle of a gradual transition)."""
        if len(self.transitions) == 0:
            return np.zeros(0)
        hard = self.transitions[:, 0] == self.transitions[:, 1]
        return np.where(hard, self.transitions[:, 1], self.transitions.mean(axis=1))

    def summary(self) -> dict:
        """A JSON-ready digest: duration, shots, visual beats."""
        return {
            "source": self.meta["source"]["path"],
            "duration": round(self.duration, 4),
            "fps": round(float(self.meta["probe"]["fps"]), 4),
            "n_seconds": self.n_seconds,
            "shots": [[round(float(a), 4), round(float(b), 4)] for a, b in self.shots],
            "cuts": [round(float(c), 4) for c in self.cut_times],
            "visual_beats": [
                [round(float(t), 4), round(float(s), 4)] for t, s in zip(self.beat_times, self.beat_strengths)
            ],
            "semantics": self.meta.get("semantics"),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically in the ``v2m-analysis`` v1 format."""
        arrays = {name: np.asarray(getattr(self, name)) for name in _ARRAYS}
        if self.clip is not None:
            arrays["clip"] = np.asarray(self.clip, np.float32)
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Analysis":
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != FORMAT:
                    raise V2MError("not a v2m analysis file", path)
                if meta.get("version") != VERSION:
                    raise V2MError(f"analysis format version {meta.get('version')} is not supported "
                                   f"(this v2m reads version {VERSION}); re-run `v2m analyze`", path)
                arrays = {name: z[name] for name in _ARRAYS}
                clip = z["clip"] if "clip" in z.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
            raise V2MError(f"not a readable v2m analysis file ({e})", path) from None
        return cls(meta=meta, clip=clip, **arrays)

    @staticmethod
    def read_meta(path: str | os.PathLike) -> dict | None:
        """Only the ``meta`` entry, or None when the file is missing or unreadable."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as z:
                return json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return None

