"""The symbolic and audio statistics of v2m.evaluate.symbolic on hand-made notes with known answers,
a held-out corpus tune, and signals whose peak and mono fold-down are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2m.evaluate import symbolic as S

# --- note statistics ----------------------------------------------------------------------------


def test_repeats_runs_and_steps_counted_by_hand():
    p = [60, 60, 62, 62, 62, 64]  # pairs: same, up 2, same, same, up 2
    assert S.repeated_note_ratio(p) == pytest.approx(3 / 5)
    assert S.longest_repeat_run(p) == 3
    assert S.stepwise_share(p) == pytest.approx(2 / 5)
    assert S.longest_repeat_run([60, 62, 64]) == 1
    assert S.repeated_note_ratio([60, 62, 64]) == 0.0
    # a semitone and a whole tone are steps, a minor third is not, a repeat is not
    assert S.stepwise_share([60, 61, 63, 66, 66]) == pytest.approx(2 / 4)
    assert S.longest_repeat_run([67, 67, 67, 67, 67, 60, 60]) == 5


def test_note_statistics_refuse_bad_input():
    with pytest.raises(ValueError):
        S.repeated_note_ratio([60])
    with pytest.raises(ValueError):
        S.stepwise_share([60, 128])
    with pytest.raises(ValueError):
        S.repeated_note_ratio([60, 60.5])
    with pytest.raises(ValueError):
        S.longest_repeat_run([])
    with pytest.raises(ValueError):
        S.repeated_note_ratio([[60, 62], [64, 65]])
    with pytest.raises(ValueError):
        S.pitch_class_entropy([0.0, float("nan")], [60, 62], [0, 4])


def test_pitch_class_entropy_per_8_bar_window():
    bars = np.arange(17.0)  # 16 bars of one unit
    onsets = np.arange(16.0) + 0.25
    pitches = [60] * 8 + [60, 62, 64, 65, 67, 69, 71, 73]  # one pitch class, then eight different ones
    assert S.pitch_class_entropy(onsets, pitches, bars) == pytest.approx((0.0 + 3.0) / 2)
    # 12 bars: the last window spans 4 bars (half of 8) and counts; 11 bars: 3 bars, left out
    assert S.pitch_class_entropy(onsets[:12], pitches[:12], bars[:13]) == pytest.approx((0.0 + 2.0) / 2)
    assert S.pitch_class_entropy(onsets[:11], pitches[:11], bars[:12]) == 0.0
    # a short line is one window; the maximum is log2(12)
    assert S.pitch_class_entropy(np.arange(12.0) / 4, np.arange(60, 72), [0, 1, 2, 3]) == pytest.approx(math.log2(12))
    with pytest.raises(ValueError):
        S.pitch_class_entropy([20.0], [60], bars)  # no note inside the bars
    with pytest.raises(ValueError):
        S.pitch_class_entropy([0.5], [60], [0, 2, 1])  # bar lines not increasing


def test_interval_and_length_histograms_and_overlap():
    h = S.interval_histogram(S.intervals([60, 62, 64, 62, 77]))  # +2, +2, -2, +15
    assert h.shape == (27,) and h.sum() == pytest.approx(1.0)
    assert h[13 + 2] == pytest.approx(0.5) and h[13 - 2] == pytest.approx(0.25)
    assert h[26] == pytest.approx(0.25)  # beyond an octave: the end bin
    lengths = S.note_length_histogram([1.0, 1.5, 2.0, 100.0])
    assert lengths.shape == (13,) and np.count_nonzero(lengths) == 4  # quarter, dotted, half, (clipped) long
    assert lengths[-1] == pytest.approx(0.25)
    assert S.overlap(h, h) == pytest.approx(1.0)
    assert S.overlap([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(0.5)
    assert S.overlap([1, 0], [0, 3]) == 0.0  # each normalised first
    assert S.overlap([2, 2, 0], [0, 1, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        S.overlap([1, 0], [1, 0, 0])
    with pytest.raises(ValueError):
        S.note_length_histogram([1.0, 0.0])
    with pytest.raises(ValueError):
        S.interval_histogram([])


# --- bar statistics -----------------------------------------------------------------------------

A = [(0.0, 60), (1.0, 62), (2.0, 64), (3.0, 65)]
B = [(0.0, 67), (2.0, 65)]
C = [(0.0, 72), (1.5, 71)]


def _bars(*contents, lengths=None):
    """Onsets, pitches and bar lines of bars with the given contents (``None``: an empty bar)."""
    lengths = lengths or [4.0] * len(contents)
    lines = np.concatenate([[0.0], np.cumsum(lengths)])
    on, p = [], []
    for start, length, content in zip(lines, lengths, contents):
        for pos, pitch in content or []:
            on.append(start + pos * length / 4.0)
            p.append(pitch)
    return np.array(on), np.array(p), lines


def test_repeated_bars_counted_by_hand():
    on, p, lines = _bars(A, B, A, A, None, B)  # non-empty: A, B, A*, A*, B*
    assert S.repeated_bar_share(on, p, lines) == pytest.approx(3 / 5)
    on, p, lines = _bars(A, B, C)
    assert S.repeated_bar_share(on, p, lines) == 0.0
    # a bar stretched by a bent tempo still repeats: onsets are compared relative to the bar
    on, p, lines = _bars(A, A, lengths=[4.0, 4.4])
    assert S.repeated_bar_share(on, p, lines) == pytest.approx(1 / 2)
    # a transposed bar is not a repeat
    on, p, lines = _bars(A, [(t, q + 2) for t, q in A])
    assert S.repeated_bar_share(on, p, lines) == 0.0


def test_longest_two_bar_run():
    on, p, lines = _bars(A, B, A, B, A, B, C)
    assert S.longest_two_bar_run(on, p, lines) == 3
    on, p, lines = _bars(C, A, B, A, B, C)  # the riff starts on an odd bar: the other pairing finds it
    assert S.longest_two_bar_run(on, p, lines) == 2
    on, p, lines = _bars(A, B, C, A)
    assert S.longest_two_bar_run(on, p, lines) == 1
    on, p, lines = _bars(A, A, None, None, None, None, A, A)  # empty units break the run
    assert S.longest_two_bar_run(on, p, lines) == 1
    with pytest.raises(ValueError):
        S.longest_two_bar_run([0.0], [60], [0.0, 4.0])  # one bar


def test_largest_tempo_change():
    assert S.largest_tempo_change([0, 2, 4, 6.2, 8.4]) == pytest.approx(1.0 - 2.0 / 2.2)  # 2.0 -> 2.2 s: 9.1 % slower
    assert S.largest_tempo_change([0, 2.5, 5.0, 7.5]) == pytest.approx(0.0)
    assert S.largest_tempo_change([0, 2, 3]) == pytest.approx(1.0)  # the second bar twice as fast
    with pytest.raises(ValueError):
        S.largest_tempo_change([0, 2])


def test_largest_tempo_change_per_beat_across_metres():
    # 4/4 then 3/4 then 4/4 at one tempo (0.5 s a beat): the bars' durations differ, the tempo does not
    assert S.largest_tempo_change([0, 2, 3.5, 5.5], beats_per_bar=[4, 3, 4]) == pytest.approx(0.0)
    assert S.largest_tempo_change([0, 2, 3.5, 5.5]) == pytest.approx(2.0 / 1.5 - 1.0)  # read as one metre
    # a 2/4 bar at 0.53 s a beat after a 4/4 bar at 0.5 s: 0.5 / 0.53 - 1
    assert S.largest_tempo_change([0, 2, 3.06], beats_per_bar=[4, 2]) == pytest.approx(1.0 - 0.5 / 0.53)
    with pytest.raises(ValueError):
        S.largest_tempo_change([0, 2, 3.5], beats_per_bar=[4])  # one count for two bars
    with pytest.raises(ValueError):
        S.largest_tempo_change([0, 2, 3.5], beats_per_bar=[4, 0])


# --- melody against accompaniment ---------------------------------------------------------------


def test_strong_beat_chord_tones_by_hand():
    acc_on = [0, 0, 0, 4, 4, 4]
    acc_end = [4, 4, 4, 6, 6, 6]
    acc_p = [48, 64, 67, 55, 59, 62]  # C major, then G major, silence from 6
    mel_on = [0.0, 1.0, 2.0, 4.01, 6.0]
    mel_p = [76, 65, 62, 67, 72]  # E (chord tone), F (weak beat), D (not in C), G (in G), C (no chord sounding)
    got = S.strong_beat_chord_tones(mel_on, mel_p, acc_on, acc_end, acc_p, strong_beats=[0, 2, 4, 6])
    assert got == pytest.approx(2 / 3)
    assert math.isnan(S.strong_beat_chord_tones([1.0], [60], acc_on, acc_end, acc_p, strong_beats=[0, 2]))


def test_semitone_clashes_by_hand():
    acc_on, acc_end, acc_p = [0, 0, 0], [8, 8, 8], [60, 64, 67]
    mel_on = [0, 1, 2, 3, 7.99]
    mel_end = [1, 2, 3, 4, 9]
    mel_p = [61, 72, 73, 71, 61]  # minor 2nd; octave; minor 9th; major 7th (not counted); overlaps 0.01 only
    assert S.semitone_clashes(mel_on, mel_end, mel_p, acc_on, acc_end, acc_p) == pytest.approx(2 / 5)
    assert S.semitone_clashes([0], [1], [61], [], [], []) == 0.0
    with pytest.raises(ValueError):
        S.semitone_clashes([1], [0.5], [61], acc_on, acc_end, acc_p)  # ends before it starts


def test_tonic_at_the_last_frame():
    assert S.tonic_at_end([28.0], [30.0], [48], tonic=0, duration=30.0)
    assert not S.tonic_at_end([28.0], [29.95], [48], tonic=0, duration=30.0)  # ended before the last frame
    assert not S.tonic_at_end([28.0, 28.0], [31.0, 31.0], [50, 55], tonic=0, duration=30.0)
    assert S.tonic_at_end([28.0, 20.0], [31.0, 31.0], [50, 57], tonic=9, duration=30.0)
    with pytest.raises(ValueError):
        S.tonic_at_end([0.0], [1.0], [60], tonic=12, duration=30.0)


# --- a held-out corpus tune ---------------------------------------------------------------------


def test_held_out_folk_tune():
    """A reel from Ryan's Mammoth Collection (the composer learns only from O'Neill's 1850, which
    sorts first and holds more than its 600 tunes): a real tune rarely repeats a note."""
    from music21 import corpus

    tune = corpus.parse("ryansMammoth/YouBetReel.abc")
    on, end, p = S.music21_line(tune)
    lines = S.music21_bar_lines(tune)
    assert len(p) > 60
    assert S.repeated_note_ratio(p) < 0.12
    stats = S.line_statistics(on, p, lines)
    assert stats["longest_run"] <= 4
    assert 2.0 < stats["pc_entropy"] < math.log2(12)
    assert stats["stepwise"] > 0.3
    assert lines[0] < 0 < lines[1]  # the pickup bar starts before the first note
    assert np.all(np.diff(lines) > 0) and lines[-1] >= end.max() - 1e-9


# --- audio --------------------------------------------------------------------------------------

SR = 48000


def test_true_peak_between_samples():
    n = np.arange(SR)
    x = 0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)  # at sr/4, every sample misses the crest: peak 0.3536
    ramp = np.minimum(1.0, np.minimum(n, n[::-1]) / (0.1 * SR))
    x = x * ramp  # faded in and out: an abrupt start would ring above the crest after oversampling
    assert 20 * math.log10(np.abs(x).max()) == pytest.approx(-9.03, abs=0.01)
    assert S.true_peak_dbtp(np.stack([x, 0.5 * x])) == pytest.approx(20 * math.log10(0.5), abs=0.03)
    assert S.true_peak_dbtp(np.zeros((2, 100))) == float("-inf")
    with pytest.raises(ValueError):
        S.true_peak_dbtp(np.full((2, 10), np.nan))


def test_mono_loss_of_in_phase_and_anti_phase_stereo():
    x = np.random.default_rng(0).normal(0, 0.1, 3 * SR).astype(np.float32)
    assert S.mono_loss(np.stack([x, x]), SR) == pytest.approx(0.0, abs=0.01)
    # L = x, R = -x/2: stereo power 1.25, fold-down (x/4 on both) 2 * 1/16: 10 log10(10) = 10 LU
    assert S.mono_loss(np.stack([x, -0.5 * x]), SR) == pytest.approx(10.0, abs=0.05)
    assert S.mono_loss(np.stack([x, -x]), SR) == float("inf")
    with pytest.raises(ValueError):
        S.mono_loss(x[None, :], SR)  # mono
    with pytest.raises(ValueError):
        S.mono_loss(np.zeros((2, SR), np.float32), SR)  # silence


def test_cuts_heard_in_audio():
    sr = 22050
    y = np.zeros(5 * sr, np.float32)
    burst = np.random.default_rng(1).normal(0, 0.5, 2000) * np.exp(-np.arange(2000) / 300)
    for t in (1.0, 2.0, 3.0, 4.0):
        y[int(t * sr): int(t * sr) + 2000] += burst
    got = S.cuts_in_audio(np.stack([y, y]), sr, cuts=[1.0, 2.0, 3.5, 4.0], beats=[1.0, 2.0, 3.0],
                          downbeats=[1.0, 3.0])
    # heard: 1, 2, 4 (3.5 is silent); on a beat and heard: 1, 2; on a downbeat and heard: 1
    assert got == {"cuts": 4, "onset": 0.75, "beat": 0.5, "downbeat": 0.25}
    onsets = S.audio_onsets(y, sr)
    assert len(onsets) == 4 and np.abs(onsets - [1.0, 2.0, 3.0, 4.0]).max() < 0.05
    assert math.isnan(S.cuts_in_audio(y, sr, [], [1.0], [1.0])["onset"])
