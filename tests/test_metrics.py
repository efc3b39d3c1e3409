"""The evaluation metrics on data with known answers (closed forms and hand-counted cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2m.evaluate.metrics import (beat_f_measure, beat_scores, controllability, cuts_on_beats, event_f_measure,
                                  frechet_distance, frechet_from_stats, inception_score, kl_divergence,
                                  onsets_per_second, prdc)


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    assert frechet_distance(a, a) < 1e-6
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt s1 - sqrt s2)^2 exactly
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert abs(frechet_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) - expected) < 1e-8
    # samples of two full-covariance Gaussians approach the closed form of their parameters
    A, B = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = A @ A.T + np.eye(4), B @ B.T + np.eye(4)
    m1, m2 = np.zeros(4), np.full(4, 0.5)
    truth = frechet_from_stats(m1, c1, m2, c2)
    x, y = rng.multivariate_normal(m1, c1, 20000), rng.multivariate_normal(m2, c2, 20000)
    assert truth > 1 and abs(frechet_distance(x, y) - truth) < 0.05 * truth
    assert abs(frechet_distance(x, y) - frechet_distance(y, x)) < 1e-6
    with pytest.raises(ValueError):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError):
        frechet_distance(a, a[:, :4])


def test_kl_divergence():
    p = np.array([[0.7, 0.3], [0.5, 0.5]])
    assert abs(kl_divergence(p, p)) < 1e-9
    gen, ref = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    hand = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # KL(ref || gen)
    assert abs(kl_divergence(gen, ref, eps=0) - hand) < 1e-12
    bern = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5) + 0.2 * math.log(0.2 / 0.6) + 0.8 * math.log(0.8 / 0.4)
    assert abs(kl_divergence([[0.5, 0.6]], [[0.9, 0.2]], kind="sigmoid", eps=0) - bern) < 1e-12
    rng = np.random.default_rng(1)
    g, r = rng.dirichlet(np.ones(5), 10), rng.dirichlet(np.ones(5), 10)
    assert kl_divergence(g, r) > 0
    with pytest.raises(ValueError):
        kl_divergence(g, r[:5])


def test_inception_score():
    assert abs(inception_score(np.full((10, 4), 0.25))["mean"] - 1.0) < 1e-9
    onehot = np.eye(4)[np.arange(40) % 4]
    assert abs(inception_score(onehot)["mean"] - 4.0) < 1e-6
    split = inception_score(onehot, splits=2)
    assert abs(split["mean"] - 4.0) < 1e-6 and split["std"] < 1e-9


def test_prdc():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3))
    same = prdc(x, x, k=5)
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1 and same["density"] >= 1
    far = prdc(x, x + 100, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # 1-D by hand, k = 1: real at 0, 1, 3 -> radii 1, 1, 2; fake at 0.5, 2.5
    real, fake = np.array([[0.0], [1.0], [3.0]]), np.array([[0.5], [2.5]])
    out = prdc(real, fake, k=1)
    # fake 0.5 lies in the balls of 0 and 1; fake 2.5 in the ball of 3 -> density (2 + 1) / (1 * 2)
    assert out["density"] == 1.5 and out["coverage"] == 1.0 and out["precision"] == 1.0
    # fake radii (k = 1): 2, 2 -> real 0, 1 and 3 are within 2 of a fake point
    assert out["recall"] == 1.0


def test_beat_scores_both_variants():
    reference, generated = [0.2, 1.5, 2.1, 3.9], [1.1, 2.7, 5.2]
    assert list(onsets_per_second(reference, 6)) == [1, 1, 1, 1, 0, 0]
    d = beat_scores(generated, reference, 6.0)
    assert (d["generated_bins"], d["reference_bins"], d["hits"]) == (3, 4, 2)
    assert d["variant"] == "d2m-gan" and d["bcs"] == 0.75 and d["bhs"] == 0.5
    lo = beat_scores(generated, reference, 6.0, variant="loris")
    assert lo["bcs"] == pytest.approx(2 / 3) and lo["bhs"] == 0.5
    assert math.isnan(beat_scores(generated, [], 6.0)["bcs"])
    with pytest.raises(ValueError, match="d2m-gan, loris"):
        beat_scores(generated, reference, 6.0, variant="lorris")


def test_onset_and_beat_f_measures():
    events = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    assert event_f_measure(events, events)["f"] == 1.0
    assert event_f_measure(events + 0.05, events)["f"] == 1.0
    assert event_f_measure(events + 0.1, events)["f"] == 0.0
    part = event_f_measure([0.5, 1.5, 9.0], events)  # 2 hits: precision 2/3, recall 2/5
    assert part["precision"] == pytest.approx(2 / 3) and part["recall"] == pytest.approx(0.4)
    assert part["f"] == pytest.approx(2 * (2 / 3) * 0.4 / (2 / 3 + 0.4))
    assert beat_f_measure(events, events) == 1.0  # every beat is in the first 5 s: nothing trimmed
    assert beat_f_measure([], events) == 0.0


def test_cuts_on_beats():
    beats = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert cuts_on_beats([0.52, 1.2, 1.96], beats) == pytest.approx(2 / 3)
    assert cuts_on_beats([0.55], beats) == 1.0 and cuts_on_beats([0.56], beats) == 0.0  # the +/- 50 ms edge
    assert math.isnan(cuts_on_beats([], beats))


def test_controllability():
    w = np.array([0.5, 1.0, 1.5, 2.0])
    assert controllability(w, 3 * w + 1) == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0), "n": 4}
    curved = controllability(w, np.exp(4 * w))
    assert curved["spearman"] == pytest.approx(1.0) and curved["pearson"] < 0.99
    with pytest.raises(ValueError):
        controllability(w, np.ones(4))
