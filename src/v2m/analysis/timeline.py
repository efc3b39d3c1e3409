"""The analysis of one video: a per-second timeline plus exact event times, and its file format.

File format ``v2m-analysis`` version 1 (``<name>.v2m.npz``)
------------------------------------------------------------
A NumPy ``.npz`` archive (zip; load with ``allow_pickle=False``, nothing in it is pickled). The
entry ``meta`` holds a JSON string; every other entry is a numeric array. ``T`` is the number of
seconds, ``ceil(duration)``: second ``i`` covers ``[i, i + 1)`` with ``t = 0`` at the first
frame. Times are seconds (float64).

========================  =============  ======================================================
entry                     shape, dtype   meaning
========================  =============  ======================================================
meta                      JSON string    ``format``, ``version``, ``v2m_version``, ``source``
                                         (path, size, ``content_key``), ``probe`` (VideoInfo),
                                         ``settings`` and ``settings_key``, ``duration``,
                                         ``n_seconds``, ``n_frames``, ``semantics`` (CLIP model
                                         id, or null with ``semantics_note`` saying why)
transitions               [C, 2] f64     shot transitions (start, end); end = the new shot's
                                         first frame; start == end for a hard cut
shots                     [C + 1, 2] f64 shots as (start, end)
scene_cut                 [T] uint8      1 for each second containing a shot start (not t = 0)
frame_times               [F] f64        time of every decoded frame
frame_diff                [F] f32        mean |luma difference| to the previous frame, [0, 1]
beat_times                [B] f64        visual beats
beat_strengths            [B] f32        their strengths, (0, 1]
pseudo_beat               [T] f32        strongest visual beat in each second (0 where none)
motion                    [T] f32        mean rate of luma change in each second
color_hist                [T, 3072] f32  colour histogram of each second's sample frame
brightness, saturation,   [T] f32        plain colour descriptors of the sample frame
warmth
sample_times              [T] f64        time of each second's sample frame (closest to the
                                         second's middle)
clip                      [T, D] f32     CLIP image embedding of the sample frame (only when
                                         ``semantics`` is set)
========================  =============  ======================================================

Readers must check ``format`` and ``version``; v2m refuses versions it does not know.
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

