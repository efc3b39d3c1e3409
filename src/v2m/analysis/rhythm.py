"""Visual rhythm: the frame-difference curve, visual beats, Diff-V2M's pseudo beats, motion.

The curve ``d`` is the mean absolute luma difference between consecutive reduced frames, in
[0, 1] (frame 0 has 0). It is brought to a common frame interval (``d * median_dt / dt``) so
that variable frame rates do not fake events.

Visual beats are sudden changes of the picture: the novelty ``max(0, d - running median of d
over window seconds)``, divided by a per-video scale (its 99th percentile, but never less than
``min_change``) and clipped to [0, 1], gives each frame a strength; peaks of at least ``height``
and ``prominence``, at least ``min_interval`` apart, are the beats. Frames inside shot
transitions are taken out of the curve first (cuts are events of their own, reported as shots).

Per second ``i`` (frames with ``i <= t < i + 1``):

- ``pseudo_beat[i]``: the strongest visual beat in that second, 0 when there is none (the real
  value per second Diff-V2M's rhythm predictor reads as ``pseudo_beats``);
- ``motion[i]``: the mean rate of luma change, ``d / dt`` (fraction of full scale per second),
  over that second's frames outside transitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks


@dataclass(frozen=True)
class BeatSettings:
    window: float = 1.0  # seconds of the running median that novelty is measured against
    min_change: float = 0.01  # floor of the strength scale (mean |luma change|, 1.0 = full scale)
    height: float = 0.3  # minimum strength of a beat, after scaling
    prominence: float = 0.2
    min_interval: float = 0.2  # seconds between beats


def transition_mask(times: np.ndarray, transitions: list[tuple[float, float]]) -> np.ndarray:
    """True for frames that belong to a transition: from its start up to and including the new
    shot's first frame (whose difference to the previous frame is the cut itself)."""
    mask = np.zeros(len(times), dtype=bool)
    for start, end in transitions:
        mask |= (times >= start - 1e-6) & (times <= end + 1e-6)
    return mask


def _evened(times: np.ndarray, diffs: np.ndarray) -> np.ndarray:
    """Differences brought to the median frame interval."""
    dt = np.diff(times, prepend=times[0])
    if len(times) < 2:
        return diffs.astype(np.float64)
    step = float(np.median(dt[1:]))
    out = diffs.astype(np.float64).copy()
    ok = dt > 0
    out[ok] = out[ok] * step / dt[ok]
    return out


def visual_beats(
    times: np.ndarray, diffs: np.ndarray, excluded: np.ndarray, settings: BeatSettings = BeatSettings()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visual beats from the frame-difference curve.

    Returns ``(beat_times, beat_strengths, strength_curve)``; ``strength_curve`` has one value
    per frame (0 inside transitions)."""
    n = len(times)
    if n < 3:
        return np.zeros(0), np.zeros(0), np.zeros(n, np.float32)
    d = _evened(times, diffs)
    step = float(np.median(np.diff(times)))
    keep = ~excluded
    if keep.sum() >= 2:
        # Take transitions out of the curve: fill them from the surrounding frames.
        d[excluded] = np.interp(np.flatnonzero(excluded), np.flatnonzero(keep), d[keep])
    win = max(3, int(round(settings.window / step)) | 1)
    novelty = np.maximum(0.0, d - median_filter(d, size=win, mode="nearest"))
    novelty[excluded] = 0.0
    scale = max(float(np.quantile(novelty, 0.99)), settings.min_change)
    strength = np.clip(novelty / scale, 0.0, 1.0)
    peaks, _ = find_peaks(
        strength,
        height=settings.height,
        prominence=settings.prominence,
        distance=max(1, int(round(settings.min_interval / step))),
    )
    return times[peaks].astype(np.float64), strength[peaks].astype(np.float32), strength.astype(np.float32)


def per_second_max(event_times: np.ndarray, values: np.ndarray, n_seconds: int) -> np.ndarray:
    """For each second, the largest value of the events in it (0 where none)."""
    out = np.zeros(n_seconds, np.float32)
    sec = np.floor(np.asarray(event_times) + 1e-9).astype(np.int64)
    ok = (sec >= 0) & (sec < n_seconds)
    np.maximum.at(out, sec[ok], np.asarray(values, np.float32)[ok])
    return out


def per_second_flags(event_times, n_seconds: int) -> np.ndarray:
    """1 for each second that contains an event, else 0."""
    return (per_second_max(np.asarray(event_times, np.float64), np.ones(len(event_times)), n_seconds) > 0).astype(
        np.uint8
    )


def motion_per_second(times: np.ndarray, diffs: np.ndarray, excluded: np.ndarray, n_seconds: int) -> np.ndarray:
    """Mean rate of luma change (per second) within each second, transitions left out."""
    out = np.zeros(n_seconds, np.float32)
    if len(times) < 2:
        return out
    dt = np.diff(times)
    rate = np.zeros(len(times))
    rate[1:] = np.where(dt > 0, diffs[1:] / np.maximum(dt, 1e-9), 0.0)
    use = ~excluded
    use[0] = False
    sec = np.floor(times + 1e-9).astype(np.int64)
    use &= (sec >= 0) & (sec < n_seconds)
    sums = np.bincount(sec[use], weights=rate[use], minlength=n_seconds)[:n_seconds]
    counts = np.bincount(sec[use], minlength=n_seconds)[:n_seconds]
    np.divide(sums, counts, out=out, where=counts > 0, casting="unsafe")
    return out
