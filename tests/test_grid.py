"""The composer's beat grid (v2m.models.composer.grid): cuts on beats under a smooth tempo, important
cuts on downbeats by 2/4 and 3/4 bars, an eighth (a bar of 5/8 or 7/8) where it buys a hit, the
--tempo control, and the MIDI tempo map and metre as a MIDI player reads them back."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest

from v2m.evaluate.symbolic import largest_tempo_change
from v2m.models.composer.grid import HIT_TOLERANCE, BeatGrid, fit_grid
from v2m.models.composer.score import TICKS_PER_BEAT, Note, Part, Score
from v2m.theory import Key

FPS = 30


def edit(seed: int, seconds: float, gaps: tuple[float, float]) -> np.ndarray:
    """Cuts at random gaps, on a 30 fps frame grid, the last at least a second before the end."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    while True:
        t += float(rng.uniform(*gaps))
        if t >= seconds - 1.0:
            return np.array(out)
        out.append(math.ceil(t * FPS - 1e-9) / FPS)


def distance_to_beat(grid: BeatGrid, times: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(times)[:, None] - grid.times[None, :]).min(axis=1)


def bar_to_bar(grid: BeatGrid) -> float:
    """The benchmark's measure: bar-to-bar tempo change, per beat."""
    return largest_tempo_change(grid.times[grid.is_downbeat], grid.bar_lengths)


def beat_to_beat(grid: BeatGrid) -> float:
    period = np.diff(grid.times) / grid.beat_units  # seconds per beat; an eighth is half a beat
    return float(np.max(np.abs(np.log(period[1:] / period[:-1]))))


def bpm(grid: BeatGrid) -> np.ndarray:
    """The tempo of every beat (an eighth is half a beat)."""
    return 60.0 * grid.beat_units / np.diff(grid.times)


def check_bars(grid: BeatGrid, duration: float) -> None:
    """The layout every grid must have."""
    assert np.all(np.diff(grid.times) > 0)
    assert grid.times[0] <= 0 and grid.bar_starts[0] == 0
    assert set(grid.bar_lengths.tolist()) <= {1.5, 2, 2.5, 3, 3.5, 4}  # 3/8, 2/4, 5/8, 3/4, 7/8, 4/4
    assert grid.bar_lengths.sum() == grid.counts[-1]  # bars tile the beats; the last beat closes the last bar
    units = grid.beat_units
    assert set(units.tolist()) <= {0.5, 1.0}
    for b in np.flatnonzero(units == 0.5):  # an eighth ends its bar
        assert grid.is_downbeat[b + 1]
    start_of_last = grid.times[grid.bar_starts[-1]]
    assert start_of_last <= duration < grid.times[-1]  # the bar in which the video ends is whole
    assert np.array_equal(np.flatnonzero(grid.beat_in_bar == 0), np.flatnonzero(grid.is_downbeat))
    assert [len(b) for b in grid.bars()] == [math.ceil(n) for n in grid.bar_lengths.tolist()]
    changes = grid.meter_changes()
    assert changes[0] == (0, grid.bar_lengths[0].item())
    lengths = dict(zip(grid.bar_starts.tolist(), grid.bar_lengths.tolist()))
    for (beat, n), nxt in zip(changes, changes[1:] + [(len(grid.times) - 1, None)]):
        run = [lengths[s] for s in grid.bar_starts if beat <= s < nxt[0]]
        assert run and set(run) == {n}  # every bar from one change to the next has its length


@pytest.mark.parametrize("seed", range(4))
def test_sparse_edit_every_cut_exactly_on_a_downbeat(seed):
    duration = 60.0
    cuts = edit(seed, duration, (4.0, 12.0))
    grid = fit_grid(duration, cuts)
    check_bars(grid, duration)
    d = distance_to_beat(grid, cuts)
    assert np.all(d < 0.005), d
    nearest = np.abs(cuts[:, None] - grid.times[None, :]).argmin(axis=1)
    assert grid.is_downbeat[nearest].all()  # all cuts important by default
    assert [t for _, t in grid.anchors] == pytest.approx(cuts.tolist())
    assert bar_to_bar(grid) <= 0.03
    assert grid.units is None  # whole beats only: no eighth is needed to hit these


def test_busy_edit_most_cuts_on_beats_with_a_smooth_tempo():
    # Five minutes, 150 cuts 1.5-3.5 s apart at random: a single tempo puts about one cut in six
    # within the tolerance (40 ms) of a beat; the grid puts most of them there with the tempo changing by at most
    # 3 % from bar to bar.
    rng = np.random.default_rng(11)
    cuts = np.round(np.cumsum(rng.uniform(1.5, 3.5, 150)) * FPS) / FPS
    duration = float(cuts[-1] + 2.0)
    grid = fit_grid(duration, cuts)
    check_bars(grid, duration)
    d = distance_to_beat(grid, cuts)
    assert np.mean(d <= HIT_TOLERANCE + 1e-9) >= 0.90, np.mean(d <= HIT_TOLERANCE)
    for b, t in grid.anchors:  # an anchor is a cut within the tolerance of its beat
        assert abs(grid.times[b] - t) <= HIT_TOLERANCE + 1e-9
    assert bar_to_bar(grid) <= 0.03
    assert beat_to_beat(grid) <= 0.008
    eighths = int((grid.beat_units == 0.5).sum())
    assert 0 < eighths <= 0.15 * len(grid.bar_lengths)  # an eighth where it buys a hit, not everywhere
    assert 80 - 1e-6 <= bpm(grid).min() and bpm(grid).max() <= 130 + 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_short_busy_edits(seed):
    duration = 30.0
    cuts = edit(seed, duration, (1.5, 3.5))
    grid = fit_grid(duration, cuts, tempo_range=(110.0, 140.0))
    check_bars(grid, duration)
    assert np.mean(distance_to_beat(grid, cuts) <= 0.05) >= 0.7
    assert bar_to_bar(grid) <= 0.03


def test_important_cuts_on_downbeats_the_others_on_any_beat():
    rng = np.random.default_rng(5)
    cuts = edit(5, 90.0, (1.5, 4.0))
    importance = rng.uniform(0.0, 1.0, len(cuts))
    grid = fit_grid(90.0, cuts, cut_importance=importance)
    check_bars(grid, 90.0)
    nearest = np.abs(cuts[:, None] - grid.times[None, :]).argmin(axis=1)
    hit = distance_to_beat(grid, cuts) <= HIT_TOLERANCE + 1e-9
    important = importance >= 0.5
    assert hit[important].mean() >= 0.7 and hit[important].mean() >= hit[~important].mean()
    assert grid.is_downbeat[nearest[hit & important]].all()
    off_downbeat = ~grid.is_downbeat[nearest[hit & ~important]]
    assert off_downbeat.mean() > 0.3  # unimportant cuts take whatever beat they fall on
    # the short bars are where they are needed: each ends on an important cut's downbeat or on an
    # anchor after an eighth (5/8, 7/8), or is the first of a pair (3/4 + 2/4, 2/4 + 5/8 or 7/8)
    # that does
    wanted = set(nearest[hit & important].tolist()) | {b for b, _ in grid.anchors}
    ends = np.append(grid.bar_starts[1:], len(grid.times) - 1)
    lengths = grid.bar_lengths
    for i, n in enumerate(lengths):
        if n < 4:
            pair = n in (2, 3) and i + 1 < len(ends) and lengths[i + 1] < 4 and ends[i + 1] in wanted
            assert ends[i] in wanted or pair


def test_a_cut_one_beat_after_another_cannot_be_a_downbeat():
    # 100 BPM held (0.6 s a beat): cuts 2.4 s apart, then one 0.6 s later. Both are hit, the
    # third one only as a plain beat.
    cuts = np.array([2.4, 4.8, 5.4])
    grid = fit_grid(10.0, cuts, tempo=100)
    check_bars(grid, 10.0)
    nearest = np.abs(cuts[:, None] - grid.times[None, :]).argmin(axis=1)
    assert np.all(distance_to_beat(grid, cuts) < 0.005)
    assert grid.is_downbeat[nearest].tolist() == [True, True, False]
    assert nearest[2] - nearest[1] == 1


def test_tempo_control_holds_the_tempo_within_3_percent():
    cuts = edit(2, 60.0, (2.0, 6.0))
    grid = fit_grid(60.0, cuts, tempo=90)
    check_bars(grid, 60.0)
    bpm_ = bpm(grid)
    assert grid.bpm == 90
    assert np.all(np.abs(bpm_ / 90 - 1) <= 0.03 + 1e-9), (bpm_.min(), bpm_.max())
    assert bar_to_bar(grid) <= 0.03
    free = fit_grid(60.0, cuts)
    assert abs(free.bpm - 90) > 3  # without the control the tempo is elsewhere: the control did it


def test_no_cuts_one_steady_tempo_that_fits_the_visual_beats():
    grid = fit_grid(20.0, [])
    check_bars(grid, 20.0)
    assert np.ptp(np.diff(grid.times)) < 1e-9 and 80 <= grid.bpm <= 130
    assert set(grid.bar_lengths.tolist()) == {4}
    pulses = 0.37 + np.arange(20) * 0.6  # a visual pulse at 100 BPM
    grid = fit_grid(14.0, [], pulses, np.ones(len(pulses)))
    assert grid.bpm == pytest.approx(100.0, abs=0.01)
    assert np.all(distance_to_beat(grid, pulses[pulses < 14]) < 0.005)


def test_one_cut_exactly_on_a_downbeat_of_one_steady_tempo():
    grid = fit_grid(20.0, [7.3])
    check_bars(grid, 20.0)
    assert np.ptp(np.diff(grid.times)) < 1e-9
    b = int(np.argmin(np.abs(grid.times - 7.3)))
    assert abs(grid.times[b] - 7.3) < 1e-9 and grid.is_downbeat[b]
    assert grid.anchors == [(b, 7.3)]


def test_visual_beats_choose_between_equal_fits():
    # Two cuts 4.8 s apart fit 8 beats at 100 BPM or 9 at 112.5 (and others); visual beats on
    # every beat at 112.5 BPM between them decide.
    cuts = np.array([2.0, 6.8])
    pulses = 2.0 + np.arange(1, 9) * 4.8 / 9
    grid = fit_grid(10.0, cuts, pulses, np.ones(len(pulses)))
    assert np.all(distance_to_beat(grid, pulses) < 0.01)
    plain = fit_grid(10.0, cuts)
    assert not np.all(distance_to_beat(plain, pulses) < 0.01)


def test_deterministic():
    cuts = edit(3, 120.0, (1.5, 4.0))
    a, b = fit_grid(120.0, cuts), fit_grid(120.0, cuts)
    assert np.array_equal(a.times, b.times) and np.array_equal(a.bar_starts, b.bar_starts)
    assert a.anchors == b.anchors


@pytest.mark.parametrize("duration", [4.0, 9.99, 31.0])
def test_the_grid_covers_the_bar_in_which_the_video_ends(duration):
    cuts = edit(1, duration, (2.0, 3.0))
    grid = fit_grid(duration, cuts)
    check_bars(grid, duration)


def test_position_counts_beats():
    grid = fit_grid(20.0, [3.1, 9.7, 14.0])
    assert grid.position(grid.times) == pytest.approx(grid.index.astype(float))
    mid = (grid.times[5] + grid.times[6]) / 2
    assert float(grid.position(mid)) == pytest.approx(5.5)
    after = grid.times[-1] + 0.5 * (grid.times[-1] - grid.times[-2])
    assert float(grid.position(after)) == pytest.approx(len(grid.times) - 0.5)


def _played(midi: mido.MidiFile) -> tuple[list[tuple[int, int]], list[tuple[float, int]]]:
    """What a MIDI player makes of the file: time signatures as (tick, beats per bar: 3.5 for 7/8)
    and note-ons as (seconds from the start, pitch), the seconds from mido's own reading of the
    tempo map."""
    signatures, now = [], 0
    for msg in midi.tracks[0]:
        now += msg.time
        if msg.type == "time_signature":
            assert msg.denominator in (4, 8)
            beats = msg.numerator * 4 / msg.denominator
            signatures.append((now, int(beats) if beats == int(beats) else beats))
    notes, seconds = [], 0.0
    for msg in midi:  # all tracks merged, msg.time in seconds under the tempo map
        seconds += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            notes.append((seconds, msg.note))
    return signatures, notes


@pytest.mark.parametrize("gaps", [(4.0, 9.0), (1.5, 3.5)])
def test_midi_tempo_map_and_metre_as_played(tmp_path, gaps):
    duration = 40.0
    cuts = edit(2, duration, gaps)
    importance = (np.arange(len(cuts)) % 3 != 1).astype(float)  # every third cut unimportant
    grid = fit_grid(duration, cuts, cut_importance=importance)
    assert len(grid.meter_changes()) > 1  # the test needs bars of other lengths
    # a note on every beat inside the video (pitch = 60 + place in bar), and one on each anchor
    notes = [Note(t, t + 0.1, 60 + int(p), 80, 0) for t, p in zip(grid.times, grid.beat_in_bar)
             if 0 <= t < duration]
    notes += [Note(grid.times[b], grid.times[b] + 0.1, 90, 80, 1) for b, _ in grid.anchors]
    score = Score(parts=[Part("beats", 0, 0), Part("cuts", 0, 1)], notes=notes, grid=grid,
                  key=Key(0, "major"), duration=duration)
    path = tmp_path / "grid.mid"
    score.to_midi().save(path)
    signatures, played = _played(mido.MidiFile(path))

    ticks = np.round(grid.counts * TICKS_PER_BEAT).astype(int)  # each beat's tick
    assert signatures == [(ticks[b], n) for b, n in grid.meter_changes()]
    # the bar lines the signatures imply are the grid's
    lines, (tick, beats) = [], signatures[0]
    for nxt in signatures[1:] + [(ticks[-1], None)]:
        while tick < nxt[0]:
            lines.append(tick)
            tick += int(round(beats * TICKS_PER_BEAT))
        tick, beats = nxt
    assert lines == ticks[grid.bar_starts].tolist()
    # every beat sounds where the grid has it (seconds from MIDI time 0, the first bar line)
    beats = [(s, p) for s, p in played if p < 90]
    inside = grid.times[(grid.times >= 0) & (grid.times < duration)]
    assert len(beats) == len(inside)
    assert np.abs(np.array([s for s, _ in beats]) + grid.times[0] - inside).max() < 0.001
    # the cuts: on a beat (within the tolerance) at the time the player plays them, on a
    # downbeat for the important ones
    hits = np.array([s for s, p in played if p == 90]) + grid.times[0]
    anchored = np.array([t for _, t in grid.anchors])
    assert len(hits) == len(anchored) and np.abs(hits - anchored).max() <= HIT_TOLERANCE + 0.001
    hit_ticks, now = [], 0
    for msg in mido.MidiFile(path).tracks[2]:  # the "cuts" part, as written
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            hit_ticks.append(now)
    assert hit_ticks == [ticks[b] for b, _ in grid.anchors]  # each on a beat
    downbeat_ticks = set(lines)
    important_hits = [tick for tick, (_, t) in zip(hit_ticks, grid.anchors)
                      if importance[np.argmin(np.abs(cuts - t))] >= 0.5]
    assert important_hits and set(important_hits) <= downbeat_ticks
