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

    def window(self, start: float, end: float) -> "Analysis":
        """The analysis of the part ``[start, end)`` of the video, as if it were a video of its
        own: ``t = 0`` at ``start``. Events (cuts, frames, visual beats) keep their exact times,
        shifted; the transitions wholly inside the window are kept, and the shots are those they
        divide the window into (a cut at the window's start is no cut);
        second ``j`` of the per-second rows is second ``floor(start) + j`` of the video.
        ``meta["window"]`` records ``[start, end]``."""
        if not 0.0 <= start < end <= self.duration + 1e-6:
            raise V2MError(f"the window {start:g}-{end:g} s is not inside the video (0-{self.duration:g} s)")
        length = end - start
        n = max(1, int(np.ceil(length - 1e-9)))
        rows = np.minimum(int(np.floor(start)) + np.arange(n), self.n_seconds - 1)

        def inside(times: np.ndarray) -> np.ndarray:
            return (times >= start) & (times < end)

        keep = (self.transitions[:, 0] > start + 1e-6) & (self.transitions[:, 1] < end - 1e-6)
        transitions = self.transitions[keep] - start
        shots = np.stack([np.r_[0.0, transitions[:, 1]], np.r_[transitions[:, 0], length]], axis=1)
        frames, beats = inside(self.frame_times), inside(self.beat_times)
        meta = {**self.meta, "duration": length, "n_seconds": n, "n_frames": int(frames.sum()),
                "window": [float(start), float(end)]}
        per_second = {name: np.asarray(getattr(self, name))[rows] for name in
                      ("pseudo_beat", "motion", "color_hist", "brightness", "saturation", "warmth")}
        return Analysis(
            meta=meta,
            transitions=transitions.reshape(-1, 2),
            shots=shots,
            scene_cut=np.isin(np.arange(n), np.floor(transitions[:, 1]).astype(int)).astype(np.uint8)
            if len(transitions) else np.zeros(n, np.uint8),
            frame_times=self.frame_times[frames] - start,
            frame_diff=self.frame_diff[frames],
            beat_times=self.beat_times[beats] - start,
            beat_strengths=self.beat_strengths[beats],
            sample_times=np.clip(self.sample_times[rows] - np.floor(start), 0.0, None),
            clip=None if self.clip is None else self.clip[rows],
            **per_second,
        )

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

