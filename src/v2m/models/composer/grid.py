"""The beat grid: a tempo and phase that put the video's events on beats, bent to make cuts exact.

1. Search. For every tempo in the allowed range (0.25 BPM steps) and every bar phase (5 ms
   steps), score how close the events fall to the grid: each event adds
   ``weight * exp(-d^2 / (2 * 25 ms^2))`` for its distance ``d`` to the nearest beat, and cuts
   add the same again for their distance to the nearest downbeat. Cuts weigh 1, visual beats
   half their strength. A weak prior prefers the middle of the tempo range.
2. Bend. Cuts (and strong visual beats, strength >= 0.5, worth 0.4 x strength of a cut)
   become anchors on their nearest downbeat (cuts only) or nearest beats, chosen together (a
   longest path) so that as much as possible is anchored, cuts on downbeats preferred, while
   the tempo between consecutive anchors stays within ``max_bend`` (10 %) of the base tempo.
   Between anchors beats are evenly spaced (a constant local tempo); before the first and after
   the last anchor the base tempo holds. The bar numbering of the ideal grid is kept, so
   downbeats stay downbeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIGMA = 0.025
MAX_EVENTS = 400


@dataclass
class BeatGrid:
    times: np.ndarray  # beat times in seconds, increasing; may start before 0 (a pickup)
    index: np.ndarray  # the beats' numbers in the ideal grid; a downbeat when index % beats_per_bar == 0
    bpm: float  # base tempo
    beats_per_bar: int
    anchors: list[tuple[int, float]]  # (beat number, time) made exact

    @property
    def is_downbeat(self) -> np.ndarray:
        return self.index % self.beats_per_bar == 0

    def bars(self) -> list[np.ndarray]:
        """Beat times of every bar that overlaps the grid, each ``beats_per_bar`` long."""
        starts = np.flatnonzero(self.is_downbeat)
        return [self.times[i : i + self.beats_per_bar] for i in starts if i + self.beats_per_bar <= len(self.times)]

    def position(self, t: np.ndarray | float) -> np.ndarray:
        """Fractional beat number (in grid index units) at time ``t``: for writing MIDI ticks."""
        return np.interp(t, self.times, self.index.astype(np.float64))


def _search(events: np.ndarray, w_beat: np.ndarray, w_down: np.ndarray, tempos: np.ndarray, bpb: int,
            centre: float, span: float) -> tuple[float, float]:
    best = (-np.inf, float(tempos[0]), 0.0)
    for bpm in tempos:
        period = 60.0 / bpm
        bar = period * bpb
        phases = np.arange(0.0, bar, 0.005)
        x = events[None, :] - phases[:, None]
        d_beat = np.abs(((x / period) + 0.5) % 1.0 - 0.5) * period
        d_down = np.abs(((x / bar) + 0.5) % 1.0 - 0.5) * bar
        score = (w_beat * np.exp(-0.5 * (d_beat / SIGMA) ** 2)).sum(1) + (
            w_down * np.exp(-0.5 * (d_down / SIGMA) ** 2)
        ).sum(1)
        score = score + 0.05 * np.exp(-(((bpm - centre) / max(span, 1.0)) ** 2))
        i = int(np.argmax(score))
        if score[i] > best[0] + 1e-9:
            best = (float(score[i]), float(bpm), float(phases[i]))
    return best[1], best[2]


def _anchor(times: np.ndarray, values: np.ndarray, downbeat_ok: np.ndarray, phase: float, period: float, bpb: int,
            max_bend: float, window: int = 8) -> list[tuple[int, float]]:
    """Beat numbers for the events at ``times`` (sorted), chosen together: a longest path over
    (event, candidate beat) pairs that maximises the anchored events' ``values`` (x1.5 on a
    downbeat where ``downbeat_ok``), such that the local tempo between consecutive anchors stays
    within ``max_bend`` of the base tempo. Looks back ``window`` events."""
    nodes: list[list[tuple[int, float]]] = []  # per event: (beat number, value)
    for t, value, down_ok in zip(times, values, downbeat_ok):
        k_float = (t - phase) / period
        down = int(round(k_float / bpb)) * bpb
        cands = dict.fromkeys(([down] if down_ok else []) + [int(round(k_float)), int(np.floor(k_float)),
                                                              int(np.ceil(k_float))])
        nodes.append([(k, value * (1.5 if down_ok and k % bpb == 0 else 1.0)) for k in cands])
    best: list[list[tuple[float, tuple[int, int] | None]]] = []
    for i, cands in enumerate(nodes):
        row = []
        for k, value in cands:
            top, parent = 0.0, None
            for i0 in range(max(0, i - window), i):
                for j0, (k0, _) in enumerate(nodes[i0]):
                    if k0 < k and abs((times[i] - times[i0]) / (k - k0) / period - 1.0) <= max_bend:
                        if best[i0][j0][0] > top:
                            top, parent = best[i0][j0][0], (i0, j0)
            row.append((top + value, parent))
        best.append(row)
    if not best:
        return []
    node = max(((i, j) for i in range(len(best)) for j in range(len(best[i]))), key=lambda ij: best[ij[0]][ij[1]][0])
    chain = []
    while node is not None:
        i, j = node
        chain.append((nodes[i][j][0], float(times[i])))
        node = best[i][j][1]
    return chain[::-1]


def fit_grid(
    duration: float,
    cuts: np.ndarray,
    beat_times: np.ndarray = np.zeros(0),
    beat_strengths: np.ndarray = np.zeros(0),
    tempo_range: tuple[float, float] = (80.0, 130.0),
    tempo: float | None = None,
    beats_per_bar: int = 4,
    max_bend: float = 0.10,
) -> BeatGrid:
    """The beat grid for a video of ``duration`` seconds (see the module docstring).
    ``tempo`` fixes the base tempo instead of searching ``tempo_range``."""
    cuts = np.sort(np.asarray(cuts, np.float64))
    cuts = cuts[(cuts > 0) & (cuts < duration)]
    vb_t = np.asarray(beat_times, np.float64)
    vb_s = np.asarray(beat_strengths, np.float64)
    if len(vb_t) > MAX_EVENTS:  # long videos: the strongest beats decide the tempo
        keep = np.argsort(vb_s)[-MAX_EVENTS:]
        vb_t, vb_s = vb_t[keep], vb_s[keep]
    events = np.concatenate([cuts[:MAX_EVENTS], vb_t])
    w_beat = np.concatenate([np.ones(min(len(cuts), MAX_EVENTS)), 0.5 * vb_s])
    w_down = np.concatenate([np.ones(min(len(cuts), MAX_EVENTS)), np.zeros(len(vb_t))])
    lo, hi = (tempo, tempo) if tempo else tempo_range
    centre, span = (lo + hi) / 2, (hi - lo) / 2
    if len(events):
        bpm, phase = _search(events, w_beat, w_down, np.arange(lo, hi + 1e-9, 0.25), beats_per_bar, centre, span)
    else:
        bpm, phase = float(centre), 0.0
    period = 60.0 / bpm

    strong = vb_s >= 0.5
    order = np.argsort(np.concatenate([cuts, vb_t[strong]]), kind="stable")
    a_times = np.concatenate([cuts, vb_t[strong]])[order]
    a_values = np.concatenate([np.ones(len(cuts)), 0.4 * vb_s[strong]])[order]
    a_down = np.concatenate([np.ones(len(cuts), bool), np.zeros(int(strong.sum()), bool)])[order]
    keep = np.ones(len(a_times), bool)
    keep[1:] = np.diff(a_times) > 0.05  # two events at one time: keep the first (a cut sorts first)
    anchors = _anchor(a_times[keep], a_values[keep], a_down[keep], phase, period, beats_per_bar, max_bend)
    if not anchors:
        anchors = [(0, phase)]
    ks = np.array([k for k, _ in anchors], np.float64)
    ts = np.array([t for _, t in anchors])

    def time_of(k: np.ndarray) -> np.ndarray:
        t = np.interp(k, ks, ts)
        t = np.where(k < ks[0], ts[0] + (k - ks[0]) * period, t)
        return np.where(k > ks[-1], ts[-1] + (k - ks[-1]) * period, t)

    # Beats from the downbeat at or before 0 to one bar past the end.
    k_first = int(np.floor((0.0 - ts[0]) / period + ks[0])) - beats_per_bar
    k_last = int(np.ceil((duration - ts[-1]) / period + ks[-1])) + beats_per_bar
    index = np.arange(k_first, k_last + 1)
    times = time_of(index.astype(np.float64))
    first_down = np.flatnonzero((index % beats_per_bar == 0) & (times <= 1e-9))
    start = first_down[-1] if len(first_down) else 0
    keep = slice(start, None)
    index, times = index[keep], times[keep]
    end = np.flatnonzero(times >= duration)
    if len(end):
        index, times = index[: end[0] + 1], times[: end[0] + 1]
    return BeatGrid(times=times, index=index, bpm=bpm, beats_per_bar=beats_per_bar, anchors=anchors)
