"""Ducking (issue 17): the music's gain under speech, a pure function of time."""

from __future__ import annotations

import numpy as np

from v2m.render.duck import ATTACK, DEPTH_DB, LEAD, RELEASE, duck, duck_gain

SR = 8000
DOWN = 10 ** (DEPTH_DB / 20)


def _at(gain: np.ndarray, t: float) -> float:
    return float(gain[int(round(t * SR))])


def test_down_under_speech_and_up_away_from_it():
    gain = duck_gain([(3.0, 5.0)], 0, 10 * SR, SR)
    assert gain.dtype == np.float32 and len(gain) == 10 * SR
    for t in (3.0 - LEAD, 3.0, 4.0, 5.0):  # down before the first word lands, and to the last
        assert abs(_at(gain, t) - DOWN) < 1e-6, t
    for t in (0.0, 3.0 - LEAD - ATTACK - 0.01, 5.0 + RELEASE + 0.01, 9.9):
        assert _at(gain, t) == 1.0, t
    assert DOWN < _at(gain, 3.0 - LEAD - ATTACK / 2) < 1.0  # on the ramps, between
    assert DOWN < _at(gain, 5.0 + RELEASE / 2) < 1.0
    assert np.all(gain <= 1.0) and np.all(gain >= DOWN - 1e-6)


def test_the_depth_is_a_choice():
    gain = duck_gain([(1.0, 2.0)], 0, 3 * SR, SR, depth_db=-6.0)
    assert abs(_at(gain, 1.5) - 10 ** (-6 / 20)) < 1e-6
    assert np.all(duck_gain([(1.0, 2.0)], 0, 3 * SR, SR, depth_db=0.0) == 1.0)


def test_the_ramps_are_smooth():
    spans = [(1.0, 2.0), (6.0, 6.4)]
    gain = duck_gain(spans, 0, 9 * SR, SR)
    db = 20 * np.log10(gain.astype(np.float64))
    steepest = np.pi / 2 * abs(DEPTH_DB) / min(ATTACK, RELEASE) / SR  # dB per sample, a raised cosine's peak slope
    assert np.abs(np.diff(db)).max() <= steepest * 1.001
    assert np.abs(np.diff(db, 2)).max() < 1e-3  # no corner either: the slope changes gradually
    # a monotone fall, a plateau, a monotone rise
    around = db[int(0.0 * SR): int(4.0 * SR)]
    low = np.flatnonzero(around <= DEPTH_DB + 1e-4)
    assert np.all(np.diff(around[: low[0] + 1]) <= 1e-9) and np.all(np.diff(around[low[-1]:]) >= -1e-9)


def test_block_by_block_equals_one_piece():
    spans = [(0.5, 1.7), (2.4, 2.9), (7.0, 8.5)]
    whole = duck_gain(spans, 0, 10 * SR, SR)
    rng = np.random.default_rng(0)
    edges = np.unique(np.concatenate([[0, 10 * SR], rng.integers(0, 10 * SR, 40)]))
    blocks = np.concatenate([duck_gain(spans, a, b - a, SR) for a, b in zip(edges, edges[1:])])
    assert np.array_equal(blocks, whole)
    assert np.array_equal(duck_gain(spans, 3 * SR, 0, SR), np.zeros(0, np.float32))


def test_the_music_stays_down_between_words_and_comes_back_between_scenes():
    words = [(2.0, 2.6), (3.1, 3.9), (4.8, 6.0)]  # pauses of 0.5 and 0.9 s
    gain = duck_gain(words, 0, 12 * SR, SR)
    assert np.all(np.abs(gain[int(2.0 * SR): int(6.0 * SR)] - DOWN) < 1e-6)  # no pumping
    apart = duck_gain([(2.0, 3.0), (8.0, 9.0)], 0, 12 * SR, SR)
    assert _at(apart, 5.0) == 1.0  # five seconds apart: the music comes back between


def test_spans_in_any_order_and_overlapping():
    a = duck_gain([(5.0, 6.0), (1.0, 2.0), (1.5, 2.5)], 0, 8 * SR, SR)
    b = duck_gain([(1.0, 2.5), (5.0, 6.0)], 0, 8 * SR, SR)
    assert np.array_equal(a, b)
    assert np.all(duck_gain([], 0, SR, SR) == 1.0)


def test_duck_applies_the_gain_to_each_channel():
    music = np.ones((2, 4 * SR), np.float32)
    out = duck(music, [(1.0, 2.0)], SR, start_sample=SR)  # this block starts at 1 s of the soundtrack
    assert out.shape == music.shape and out.dtype == np.float32
    assert np.array_equal(out[0], out[1])
    assert abs(out[0, int(0.5 * SR)] - DOWN) < 1e-6  # 1.5 s of the soundtrack
    assert out[0, -1] == 1.0
