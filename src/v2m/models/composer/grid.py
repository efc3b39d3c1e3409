"""The beat grid: beats and bars laid so that the video's cuts land on beats, the way a composer
working to a click track lays them: a steady tempo or slow ramps, and a bar of 2/4 or 3/4 where
a cut that matters must fall on a downbeat.

**The tempo curve.** The tempo ``f(t)`` (beats per second) is a straight line in time between
consecutive *anchors* (beats placed on cuts) and constant before the first anchor and after the
last. Between anchor beats ``G`` seconds apart, going from ``f`` to ``f'``, it holds
``n = (f + f') * G / 2`` beats, a whole number. Three rules bound it:

- the tempo stays within ``tempo_range``, or within ``FIXED_BAND`` (3 %) of ``tempo`` when
  that is given;
- from one anchor to the next it changes by at most ``RAMP_PER_BEAT`` (0.72 %) per beat,
  ``|ln(f' / f)| <= RAMP_PER_BEAT * n``; as the tempo is straight in time, not in beats, a
  single beat may change by a little more (under 0.8 %), and the change from one bar to the
  next, per beat, stays under 3 %;
- an anchor's beat is within ``HIT_TOLERANCE`` (40 ms) of its cut, exact where the rules allow.
  Exact hits on every cut of a busy edit would need tempo jumps; 40 ms is about a frame at
  30 fps.

**Which cuts, how many beats.** A dynamic program over the cuts in time order chooses the
anchored cuts, the beat count between consecutive anchors, the tempo at each anchor and each
anchor beat's offset from its cut. A state is (cut, tempo at its beat, offset), kept exactly;
at each cut the states are pooled in bins (0.3 % of tempo by 5 ms of offset) where the best
survives, and states more than ``BEAM`` below the cut's best are dropped. From each state and
each beat count that the rules allow, the tempo at the next anchor is one of: the one that lands
its beat on the cut, or a third, two thirds or all of the tolerance either side of it, the same tempo, or either end of
the ramp allowed. A path may start at any cut with any tempo and may leave out any cut; from a
cut it goes on to one of the next ``SUCCESSORS`` cuts or to the first one at least a
``_long_gap`` later (far enough that some beat count always fits the rules). It maximises:

- per anchored cut, ``(1 + importance) * (1 - OFFSET_COST * (offset / HIT_TOLERANCE)^2)``;
- minus ``VARIATION_COST * |ln(f' / f)|`` per tempo change: of two paths that hit the same
  cuts, the steadier wins, and one tempo wins wherever it hits as much;
- per visual beat between two anchored cuts, ``VISUAL_WEIGHT * strength`` times its closeness
  to the nearest beat, ``exp(-d^2 / (2 * VISUAL_SIGMA^2))``, the beats taken as evenly spaced
  from one cut to the other (offsets and ramps left out); visual beats are never anchors;
- a small preference (``CENTRE_PRIOR``) for the middle of the tempo range where a path starts.

A video with fewer than two cuts, or whose best path anchors fewer than two, gets one steady
tempo and phase: those that put the cuts and the visual beats closest to beats (a search over
tempos in 0.25 BPM steps and phases in 5 ms steps), then moved by at most 5 ms to put the cut
nearest a beat exactly on it.

**Half beats.** As a composer catching hits off a click adds or drops an eighth, a beat count
between two anchors may be a half (from 1.5 on), at a cost (``HALF_COST``) that a path pays only
where it buys a hit: the eighth is the last interval before the anchor, and ends a bar of 7/8 or
5/8. On busy edits (cuts 1.5-3.5 s apart) this takes the cuts within the tolerance of a beat from
about 80 % to about 92 %, with an eighth in about one bar in eleven; sparse edits need none.
``BeatGrid.units`` holds each beat interval's length in beats (1, or 0.5 for the eighth), and
``BeatGrid.position`` counts beats, so MIDI ticks and tempi are those of quarter notes.

**Bars.** Bars are 4/4 by default. The first bar line is at or before 0: the one of the last four
beats at or before 0 that makes the first important cut's beat a downbeat (a pickup). An important
cut (``importance >= 0.5``), and any anchor that follows an eighth, is made a downbeat when it is
anchored or within ``HIT_TOLERANCE`` of a beat: where the beats since the previous such downbeat
are not a multiple of 4, the last bars before it are shortened: one bar of 2/4, 3/4, 5/8 or 7/8
(a remainder of 2, 3, 2.5 or 3.5), or a short bar borrowed from the bar before (a remainder of 1:
3/4 + 2/4; of 0.5: 2/4 + 5/8; of 1.5: 2/4 + 7/8). An important cut one beat after the previous
downbeat cannot be one and stays a plain beat; the other cuts fall on whatever beat they are on.
The grid runs from the first bar line to the bar line that closes the bar in which ``duration``
falls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RAMP_PER_BEAT = 0.0072  # the largest tempo change per beat, as a log ratio
FIXED_BAND = 0.03  # with ``tempo`` given, the tempo stays within this share of it
HIT_TOLERANCE = 0.04  # seconds from an anchor's beat to its cut
OFFSET_COST = 0.3  # an anchor's worth falls by this share at the tolerance's edge
VARIATION_COST = 1.0  # per unit of |ln(f' / f)|
VISUAL_WEIGHT = 0.2
VISUAL_SIGMA = 0.025  # seconds
CENTRE_PRIOR = 0.05
TEMPO_BIN = 0.003  # states are pooled in bins of this log width of tempo (0.3 %)
OFFSET_BIN = 0.005  # and of this width of offset (seconds)
BEAM = 1.5  # states this far below the best at their cut are dropped
SUCCESSORS = 3
HALF_COST = 0.9  # a path's cost for a beat count with an eighth in it (a bar of 5/8 or 7/8)
TARGETS = np.linspace(-HIT_TOLERANCE, HIT_TOLERANCE, 7)  # landing offsets tried from each state
IMPORTANT = 0.5
BAR = 4  # beats in the default bar
MAX_EVENTS = 400  # the steady search weighs at most this many visual beats (the strongest)


@dataclass
class BeatGrid:
    """Beats and bars. Every bar line is a beat: ``bar_starts`` are those where a bar begins and
    ``times[-1]`` is the one that closes the last bar."""

    times: np.ndarray  # beat times in seconds, increasing; times[0] is a bar line at or before 0
    bar_starts: np.ndarray  # indices into times where each bar begins, 0 first
    bpm: float  # the tempo the grid is fitted around: ``tempo`` when given, else the median beat's
    anchors: list[tuple[int, float]] = field(default_factory=list)  # (beat index, cut time), see fit_grid
    beats_per_bar: int = BAR  # the default metre; bar_lengths has each bar's
    units: np.ndarray | None = None  # per beat interval, its length in beats: 1, or 0.5 (None: all 1)

    @property
    def index(self) -> np.ndarray:
        """Consecutive beat numbers, 0 at the first bar line (an eighth-note beat counts as one)."""
        return np.arange(len(self.times))

    @property
    def beat_units(self) -> np.ndarray:
        """Each beat interval's length in beats: 1, or 0.5 for the eighth that ends a bar of 5/8 or 7/8."""
        return np.ones(len(self.times) - 1) if self.units is None else np.asarray(self.units, np.float64)

    @property
    def counts(self) -> np.ndarray:
        """Per beat, the beats (quarter notes) from the first bar line to it."""
        return np.concatenate([[0.0], np.cumsum(self.beat_units)])

    @property
    def bar_lengths(self) -> np.ndarray:
        """Beats in each bar: 2, 3 or 4, or 2.5 / 3.5 (5/8, 7/8)."""
        counts = self.counts
        lengths = np.diff(counts[np.append(self.bar_starts, len(self.times) - 1)])
        return lengths.astype(np.int64) if np.all(lengths == np.round(lengths)) else lengths

    @property
    def is_downbeat(self) -> np.ndarray:
        """Per beat, whether it is a bar line (the closing one included)."""
        out = np.zeros(len(self.times), bool)
        out[self.bar_starts] = True
        out[-1] = True
        return out

    @property
    def beat_in_bar(self) -> np.ndarray:
        """Per beat, its place in its bar: 0 on a downbeat, then 1, 2, 3."""
        lines = np.flatnonzero(self.is_downbeat)
        return self.index - lines[np.cumsum(self.is_downbeat) - 1]

    def bars(self) -> list[np.ndarray]:
        """The beat times of each bar, from the first bar line (at or before 0) to the bar in
        which the video ends."""
        ends = np.append(self.bar_starts[1:], len(self.times) - 1)
        return [self.times[s:e] for s, e in zip(self.bar_starts, ends)]

    def meter_changes(self) -> list[tuple[int, float]]:
        """``(beat index, beats per bar)`` of the first bar and of each bar whose length differs
        from the one before it."""
        lengths = self.bar_lengths
        return [(int(self.bar_starts[i]), lengths[i].item()) for i in range(len(lengths))
                if i == 0 or lengths[i] != lengths[i - 1]]

    def position(self, t: np.ndarray | float) -> np.ndarray:
        """The beats (quarter notes) from the first bar line at time ``t``: linear between beats,
        at the first and the last beat's tempo outside the grid."""
        t = np.asarray(t, np.float64)
        counts, units = self.counts, self.beat_units
        pos = np.interp(t, self.times, counts)
        first = (self.times[1] - self.times[0]) / units[0]
        last = (self.times[-1] - self.times[-2]) / units[-1]
        pos = np.where(t < self.times[0], (t - self.times[0]) / first, pos)
        return np.where(t > self.times[-1], counts[-1] + (t - self.times[-1]) / last, pos)


# --- the dynamic program ------------------------------------------------------------------------


@dataclass
class _States:
    """The states at one cut, one entry each."""

    tempo: np.ndarray  # beats per second at the anchor beat
    offset: np.ndarray  # the anchor beat's time minus the cut's, seconds
    score: np.ndarray
    parent_cut: np.ndarray  # the previous anchor's cut, -1 where the path starts here
    parent_state: np.ndarray
    beats: np.ndarray  # beats since the previous anchor


def _pool(tempo, offset, score, parent_cut, parent_state, beats, lo: float) -> _States:
    """Of the states within ``BEAM`` of the best, the best in each (tempo, offset) bin."""
    near = np.flatnonzero(score >= score.max() - BEAM)
    key = (np.round(np.log(tempo[near] / lo) / TEMPO_BIN).astype(np.int64) * 1000
           + np.round(offset[near] / OFFSET_BIN).astype(np.int64))
    order = np.lexsort((-score[near], key))
    keep = near[order[np.r_[True, key[order][1:] != key[order][:-1]]]]
    return _States(tempo[keep], offset[keep], score[keep], parent_cut[keep], parent_state[keep], beats[keep])


def _closeness(phase: np.ndarray, tempo: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-d^2 / (2 sigma^2))`` for the time ``d`` from beat phase ``phase`` (at ``tempo``
    beats per second) to the nearest whole beat."""
    d = np.abs(phase - np.round(phase)) / tempo
    return np.exp(-0.5 * (d / sigma) ** 2)


def _long_gap(lo: float, hi: float) -> float:
    """A gap long enough that some whole beat count fits the rules from any tempo in
    ``[lo, hi]``: from either end of the range (where the tempo can move one way only) the beat
    counts within reach span more than a beat."""
    for gap in np.arange(1.0, 600.0, 0.5):
        up = min(hi, lo * np.exp(RAMP_PER_BEAT * lo * gap)) - lo
        down = hi - max(lo, hi * np.exp(-RAMP_PER_BEAT * hi * gap))
        if min(up, down) * gap / 2 >= 1.2:
            return float(gap)
    return np.inf


def _path(cuts: np.ndarray, weights: np.ndarray, vb_t: np.ndarray, vb_w: np.ndarray, lo: float, hi: float,
          centre: float) -> list[tuple[int, float, float, int]]:
    """The best path of the module docstring, as ``[(cut index, anchor beat time, tempo there,
    beats since the previous anchor)]``; ``lo``, ``hi`` and ``centre`` in beats per second."""
    m = len(cuts)
    n_bins = int(np.floor(np.log(hi / lo) / TEMPO_BIN)) + 1
    start_tempo = np.minimum(lo * np.exp(TEMPO_BIN * np.arange(n_bins)), hi)
    start_score = CENTRE_PRIOR * np.exp(-(((start_tempo - centre) / max((hi - lo) / 2, 1e-3)) ** 2))
    no_parent = np.full(n_bins, -1)
    long_gap = _long_gap(lo, hi)
    incoming: list[list[tuple]] = [[] for _ in range(m)]
    states: list[_States] = []
    for j in range(m):
        begin = (start_tempo, np.zeros(n_bins), start_score + weights[j], no_parent, no_parent,
                 np.zeros(n_bins))
        here = _pool(*(np.concatenate(x) for x in zip(begin, *incoming[j])), lo=lo)
        incoming[j] = []
        states.append(here)
        successors = list(range(j + 1, min(m, j + 1 + SUCCESSORS)))
        far = np.flatnonzero(cuts[j + 1 + SUCCESSORS:] - cuts[j] >= long_gap)
        if len(far):
            successors.append(j + 1 + SUCCESSORS + int(far[0]))
        beat = cuts[j] + here.offset
        f = here.tempo[:, None]
        for k in successors:
            span = (cuts[k] - beat)[:, None]  # from each state's anchor beat to the next cut
            # whole beat counts, and from 1.5 on half ones: an eighth added or dropped
            whole = np.arange(max(1, int(np.floor(lo * (span.min() - HIT_TOLERANCE)))),
                              int(np.ceil(hi * (span.max() + HIT_TOLERANCE))) + 1)
            n = np.sort(np.concatenate([whole, whole[whole >= 1] + 0.5]))[None, :]
            # The tempo windows of each (state, beat count): the ramp and the range, and the
            # tempos that land the n-th beat (at beat + 2 n / (f + f')) within the tolerance.
            ramp_lo = np.maximum(lo, f * np.exp(-RAMP_PER_BEAT * n))
            ramp_hi = np.minimum(hi, f * np.exp(RAMP_PER_BEAT * n))
            land_lo = 2.0 * n / (span + HIT_TOLERANCE) - f
            land_hi = 2.0 * n / np.maximum(span - HIT_TOLERANCE, 1e-9) - f
            s_idx, n_idx = np.nonzero(np.maximum(ramp_lo, land_lo) <= np.minimum(ramp_hi, land_hi))
            if not len(s_idx):
                continue
            f0, nn, sp = here.tempo[s_idx][:, None], n[0, n_idx][:, None], span[s_idx]
            r_lo, r_hi = ramp_lo[s_idx, n_idx][:, None], ramp_hi[s_idx, n_idx][:, None]
            cand = np.concatenate([2.0 * nn / np.maximum(sp + TARGETS, 1e-9) - f0, f0, r_lo, r_hi], axis=1)
            off = 2.0 * nn / (f0 + cand) - sp
            p_idx, c_idx = np.nonzero((cand >= r_lo - 1e-12) & (cand <= r_hi + 1e-12)
                                      & (np.abs(off) <= HIT_TOLERANCE + 1e-12))
            f1, off, src, beats = cand[p_idx, c_idx], off[p_idx, c_idx], s_idx[p_idx], nn[p_idx, 0]
            score = (here.score[src] + weights[k] * (1.0 - OFFSET_COST * (off / HIT_TOLERANCE) ** 2)
                     - VARIATION_COST * np.abs(np.log(f1 / here.tempo[src])) - HALF_COST * (beats % 1 != 0))
            va, vz = np.searchsorted(vb_t, [cuts[j] + 1e-6, cuts[k] - 1e-6])
            if vz > va:  # visual beats between the two cuts, against n beats evenly spaced between them
                rate = n[0, :, None] / (cuts[k] - cuts[j])
                fit = (vb_w[None, va:vz] * _closeness((vb_t[None, va:vz] - cuts[j]) * rate, rate, VISUAL_SIGMA)).sum(1)
                score += VISUAL_WEIGHT * fit[n_idx[p_idx]]
            incoming[k].append((f1, off, score, np.full(len(f1), j), src, beats))
    i = int(np.argmax([s.score.max() for s in states]))
    s = int(np.argmax(states[i].score))
    chain = []
    while i >= 0:
        st = states[i]
        chain.append((i, float(cuts[i] + st.offset[s]), float(st.tempo[s]), float(st.beats[s])))
        i, s = int(st.parent_cut[s]), int(st.parent_state[s])
    return chain[::-1]


def _steady(events: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The tempo (beats per second, ``lo`` to ``hi``) and phase (seconds, the first beat at or
    after 0) that put ``events`` closest to beats, by ``weights``."""
    centre, span = (lo + hi) / 2, max((hi - lo) / 2, 1e-3)
    if not len(events):
        return centre, 0.0
    best = (-np.inf, centre, 0.0)
    for f in np.arange(lo, hi + 1e-9, 0.25 / 60) if hi > lo else [lo]:
        phases = np.arange(0.0, 1.0 / f, 0.005)
        x = (events[None, :] - phases[:, None]) * f
        score = (weights * _closeness(x, f, VISUAL_SIGMA)).sum(1) + CENTRE_PRIOR * np.exp(-(((f - centre) / span) ** 2))
        i = int(np.argmax(score))
        if score[i] > best[0] + 1e-9:
            best = (float(score[i]), float(f), float(phases[i]))
    return best[1], best[2]


# --- beats, then bars ---------------------------------------------------------------------------


def _beat_times(chain: list[tuple[int, float, float, float]], duration: float
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Beat times along the path from at least ``2 * BAR`` beats before 0 to ``3 * BAR`` beats past
    ``duration``, each interval's length in beats (an eighth ends a half beat count, just before
    its anchor), and the beat index of each anchor."""
    t0, f_first = chain[0][1], chain[0][2]
    lead = int(np.ceil(max(t0, 0.0) * f_first)) + 2 * BAR
    times = [t0 - (lead - i) / f_first for i in range(lead)]
    units = [1.0] * lead
    anchors = [lead]
    for (_, a, f0, _), (_, b, f1, n) in zip(chain, chain[1:]):
        slope = (f1 - f0) / (b - a)
        times.append(a)
        steps = int(np.ceil(n))
        for i in range(1, steps):  # when f0 * tau + slope * tau^2 / 2 reaches i beats
            times.append(a + 2.0 * i / (f0 + np.sqrt(f0 * f0 + 2.0 * slope * i)))
        units += [1.0] * (steps - 1) + [n - (steps - 1)]
        anchors.append(anchors[-1] + steps)
    t_last, f_last = chain[-1][1], chain[-1][2]
    tail = int(np.ceil(max(duration - t_last, 0.0) * f_last)) + 3 * BAR
    times.extend(t_last + i / f_last for i in range(tail + 1))
    units += [1.0] * tail
    return np.array(times), np.array(units), anchors


def _bars(times: np.ndarray, units: np.ndarray, downbeats: list[int], duration: float) -> tuple[int, np.ndarray, int]:
    """``(first, starts, last)``: the first bar line, the start of every bar through the one in
    which ``duration`` falls, and the bar line that closes it (indices into ``times``), with
    ``downbeats`` (sorted beat indices) made downbeats as the module docstring lays them. A beat
    that follows an eighth (``units`` 0.5) must be among them: the eighth ends a bar of 5/8 or 7/8
    (or 3/8 right after a downbeat)."""
    counts = np.concatenate([[0.0], np.cumsum(units)])
    at = {int(round(2 * c)): i for i, c in enumerate(counts)}  # the beat at each count of eighths
    zero = int(np.flatnonzero(times <= 1e-9)[-1])
    first = zero
    if downbeats and downbeats[0] >= zero:
        ahead = counts[downbeats[0]] - counts[zero]
        if ahead == round(ahead):
            first = zero - int(round(ahead)) % BAR
    starts = [first]
    for target in [b for b in downbeats if b > first] + [None]:
        if target is None:  # after the last one: whole bars to the end of the beats
            while (nxt := at.get(int(round(2 * (counts[starts[-1]] + BAR))))) is not None:
                starts.append(nxt)
            break
        total = counts[target] - counts[starts[-1]]
        if total == 1:
            continue  # one beat after the previous downbeat: stays a plain beat
        whole, rest = divmod(total, BAR)
        whole = int(whole)
        if rest in (1.0, 0.5, 1.5) and whole:  # a short remainder borrows a bar: 3+2, 2+2.5, 2+3.5
            lengths = [BAR] * (whole - 1) + {1.0: [3, 2], 0.5: [2, 2.5], 1.5: [2, 3.5]}[rest]
        else:
            lengths = [BAR] * whole + ([rest] if rest else [])
        for n in lengths:
            starts.append(at[int(round(2 * (counts[starts[-1]] + n)))])
    starts = np.array(starts)
    end_bar = int(np.flatnonzero(times[starts] <= duration)[-1])
    return first, starts[: end_bar + 1], int(starts[end_bar + 1])


def fit_grid(
    duration: float,
    cuts: np.ndarray,
    beat_times: np.ndarray = np.zeros(0),
    beat_strengths: np.ndarray = np.zeros(0),
    tempo_range: tuple[float, float] = (80.0, 130.0),
    tempo: float | None = None,
    cut_importance: np.ndarray | None = None,
    preferred: float | None = None,
) -> BeatGrid:
    """The beat grid for a video of ``duration`` seconds with hard cuts at ``cuts`` (seconds) and
    visual beats at ``beat_times`` of ``beat_strengths`` in [0, 1], as the module docstring lays
    it. ``tempo_range`` is in BPM; ``tempo`` (BPM) replaces it with ``tempo`` +- 3 %;
    ``cut_importance`` (per cut, in [0, 1]; None: all 1) weighs the cuts, and those of 0.5 and
    more land on downbeats; ``preferred`` (BPM, inside the range) is the tempo the search leans to
    (default: the range's middle), and a video without a usable path keeps within 15 % of it. The
    grid's ``anchors`` are ``(beat index, cut time)`` of the cuts the
    tempo curve was fitted to, each within ``HIT_TOLERANCE`` of its beat."""
    cuts = np.asarray(cuts, np.float64)
    importance = np.ones(len(cuts)) if cut_importance is None else np.asarray(cut_importance, np.float64)
    inside = (cuts > 0) & (cuts < duration)
    cuts, where = np.unique(cuts[inside], return_inverse=True)
    imp = np.zeros(len(cuts))
    np.maximum.at(imp, where, importance[inside])  # one cut per time, the most important
    order = np.argsort(np.asarray(beat_times, np.float64), kind="stable")
    vb_t = np.asarray(beat_times, np.float64)[order]
    vb_s = np.asarray(beat_strengths, np.float64)[order]
    if tempo:
        lo, hi, centre = tempo * (1 - FIXED_BAND) / 60, tempo * (1 + FIXED_BAND) / 60, tempo / 60
    else:
        lo, hi = tempo_range[0] / 60, tempo_range[1] / 60
        centre = (lo + hi) / 2 if preferred is None else min(hi, max(lo, preferred / 60))

    chain = _path(cuts, 1.0 + imp, vb_t, vb_s, lo, hi, centre) if len(cuts) else []
    if len(chain) >= 2:
        times, units, beat_of_anchor = _beat_times(chain, duration)
        anchored = dict(zip(beat_of_anchor, cuts[[i for i, *_ in chain]]))
    else:  # one steady tempo
        strongest = np.sort(np.argsort(vb_s, kind="stable")[-MAX_EVENTS:])
        events = np.concatenate([cuts, vb_t[strongest]])
        weights = np.concatenate([1.0 + imp, VISUAL_WEIGHT * vb_s[strongest]])
        if tempo:
            f, phase = _steady(events, weights, centre, centre)
        elif preferred is not None:
            f, phase = _steady(events, weights, max(lo, centre / 1.15), min(hi, centre * 1.15))
        else:
            f, phase = _steady(events, weights, lo, hi)
        times = phase + (np.arange(int(np.ceil(duration * f)) + 4 * BAR) - BAR) / f
        units = np.ones(len(times) - 1)
        if len(cuts):
            miss = cuts[:, None] - times[None, :]
            nearest = miss.flat[np.argmin(np.abs(miss))]
            if abs(nearest) <= 0.005:
                times = times + nearest
        anchored = {}
        for c in cuts:
            b = int(np.argmin(np.abs(times - c)))
            if abs(times[b] - c) <= HIT_TOLERANCE:
                anchored[b] = c
    downbeats = {b + 1 for b in np.flatnonzero(units != 1.0)}  # the beat after an eighth
    for c, w in zip(cuts, imp):
        b = int(np.argmin(np.abs(times - c)))
        if w >= IMPORTANT and abs(times[b] - c) <= HIT_TOLERANCE + 1e-9:
            downbeats.add(b)
    first, starts, last = _bars(times, units, sorted(downbeats), duration)
    times, units = times[first : last + 1], units[first:last]
    anchors = [(b - first, float(c)) for b, c in sorted(anchored.items()) if first <= b <= last]
    bpm = float(tempo) if tempo else float(np.median(60.0 * units / np.diff(times)))
    return BeatGrid(times=times, bar_starts=starts - first, bpm=bpm, anchors=anchors,
                    units=None if np.all(units == 1.0) else units)
