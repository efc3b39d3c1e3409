"""The evaluation metrics on data with known answers: closed forms and hand-counted cases."""

from __future__ import annotations

import math

import mir_eval
import numpy as np
import pytest

from v2m.evaluate.metrics import (BEAT_SCORE_VARIANTS, beat_f_measure, beat_scores, controllability,
                                  cuts_on_beats, event_f_measure, frechet_distance, frechet_from_stats,
                                  inception_score, kl_divergence, onsets_per_second, prdc)

# --- Frechet distance ---------------------------------------------------------------------------


def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 6))
    assert abs(frechet_distance(x, x)) < 1e-6


def test_frechet_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.5, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 2.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = frechet_from_stats(mu1, np.diag(s1), mu2, np.diag(s2))
    assert abs(got - expected) < 1e-8


def test_frechet_samples_approach_true_parameters_and_symmetry():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + 0.5 * np.eye(4), b @ b.T + 0.5 * np.eye(4)
    m1, m2 = np.array([0.0, 0.0, 1.0, -1.0]), np.array([1.0, 0.5, 0.0, 0.0])
    truth = frechet_from_stats(m1, c1, m2, c2)
    x = rng.multivariate_normal(m1, c1, size=20000)
    y = rng.multivariate_normal(m2, c2, size=20000)
    est = frechet_distance(x, y)
    assert truth > 1.0
    assert est == pytest.approx(truth, rel=0.05)
    assert frechet_distance(y, x) == pytest.approx(est, abs=1e-8)
    assert frechet_from_stats(m2, c2, m1, c1) == pytest.approx(truth, abs=1e-8)


def test_frechet_singular_covariances_and_errors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 8))  # 3 items in 8 dimensions: rank-deficient covariance
    assert math.isfinite(frechet_distance(x, x + 1.0))
    assert frechet_distance(x, x + 1.0) >= 8.0 - 1e-3  # the mean shift alone
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(x, x[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        frechet_distance(x[0], x)
    with pytest.raises(ValueError):
        frechet_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


# --- KL divergence ------------------------------------------------------------------------------


def test_kl_identical_is_zero():
    p = np.random.default_rng(3).dirichlet(np.ones(6), size=20)
    assert abs(kl_divergence(p, p, eps=0.0)) < 1e-12
    assert abs(kl_divergence(p, p, kind="sigmoid", eps=0.0)) < 1e-12
    # eps only enters the generated side: identical sets score a hair below 0, as in audioldm_eval
    assert -6 * 1e-6 <= kl_divergence(p, p) < 0


def test_kl_matches_torch_kl_div_on_softmaxed_logits():
    """audioldm_eval's "KL": kl_div((softmax(gen) + 1e-6).log(), softmax(ref), "sum") / N."""
    import torch

    rng = np.random.default_rng(9)
    gen_logits, ref_logits = rng.normal(size=(7, 527)) * 3, rng.normal(size=(7, 527)) * 3
    g, r = torch.from_numpy(gen_logits).softmax(1), torch.from_numpy(ref_logits).softmax(1)
    theirs = torch.nn.functional.kl_div((g + 1e-6).log(), r, reduction="sum").item() / 7
    assert kl_divergence(g.numpy(), r.numpy()) == pytest.approx(theirs, rel=1e-9)


def test_kl_softmax_hand_computed_direction():
    gen = np.array([[0.5, 0.5], [0.2, 0.8]])
    ref = np.array([[0.9, 0.1], [0.2, 0.8]])
    # KL(reference || generated) for clip 1, 0 for clip 2, averaged over the two clips
    clip1 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert kl_divergence(gen, ref, eps=0.0) == pytest.approx(clip1 / 2, abs=1e-12)
    # the other direction is a different number: the order of the arguments matters
    other = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_divergence(ref, gen, eps=0.0) == pytest.approx(other / 2, abs=1e-12)


def test_kl_sigmoid_hand_computed_bernoulli():
    gen, ref = np.array([[0.5, 0.6]]), np.array([[0.9, 0.2]])
    class0 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    class1 = 0.2 * math.log(0.2 / 0.6) + 0.8 * math.log(0.8 / 0.4)
    assert kl_divergence(gen, ref, kind="sigmoid", eps=0.0) == pytest.approx(class0 + class1, abs=1e-12)


def test_kl_nonnegative_and_errors():
    rng = np.random.default_rng(4)
    for _ in range(20):
        g, r = rng.dirichlet(np.ones(5), size=8), rng.dirichlet(np.ones(5), size=8)
        assert kl_divergence(g, r) >= 0.0
        assert kl_divergence(g, r, kind="sigmoid") >= 0.0
    with pytest.raises(ValueError, match="paired"):
        kl_divergence(g, r[:4])
    with pytest.raises(ValueError, match="softmax"):
        kl_divergence(g, r, kind="logits")
    with pytest.raises(ValueError, match="probabilities"):
        kl_divergence(g * 3, r)


# --- Inception score ----------------------------------------------------------------------------


def test_inception_score_uniform_and_one_hot():
    assert inception_score(np.full((12, 5), 0.2))["mean"] == pytest.approx(1.0, abs=1e-9)
    c = 7
    one_hot = np.eye(c)[np.arange(70) % c]
    assert abs(inception_score(one_hot)["mean"] - c) < 1e-6
    assert inception_score(one_hot)["std"] == 0.0


def test_inception_score_splits():
    # first half confident and varied (IS 4), second half uniform (IS 1)
    half1 = np.eye(4)[np.arange(40) % 4]
    half2 = np.full((40, 4), 0.25)
    out = inception_score(np.vstack([half1, half2]), splits=2)
    assert set(out) == {"mean", "std"}
    assert out["mean"] == pytest.approx(2.5, abs=1e-6)
    assert out["std"] == pytest.approx(1.5, abs=1e-6)
    # parts are cut at rows i * N // splits: 5 rows in 2 splits are 2 + 3, so one-hot rows 0, 1 and
    # 2, 3, 4 (classes 0, 1 | 0, 1, 2) score 2 and 3
    five = np.eye(3)[[0, 1, 0, 1, 2]]
    assert inception_score(five, splits=2)["mean"] == pytest.approx(2.5, abs=1e-6)
    # a seeded shuffle reorders the rows before the split, reproducibly
    shuffled = inception_score(five, splits=2, seed=2020)
    assert shuffled == inception_score(five[np.random.RandomState(2020).permutation(5)], splits=2)
    with pytest.raises(ValueError):
        inception_score(half1[:3], splits=4)
    with pytest.raises(ValueError):
        inception_score(half1, splits=0)


# --- precision / recall / density / coverage ----------------------------------------------------


def test_prdc_identical_sets():
    x = np.random.default_rng(5).normal(size=(60, 4))
    k = 5
    out = prdc(x, x, k=k)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    # every ball holds its centre and the k - 1 nearer neighbours; the k-th lies on the boundary,
    # which is outside (strict <, as in the authors' prdc)
    assert out["density"] == pytest.approx(1.0, abs=1e-12)


def test_prdc_far_apart_sets_score_zero():
    x = np.random.default_rng(6).normal(size=(30, 3))
    out = prdc(x, x + 100.0, k=5)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_hand_built_1d():
    # real 0, 1, 3, 7, 50 with k = 2: radii 3, 2, 3, 6, 47
    # fake 2, 13, 20 with k = 2: radii 18, 11, 18
    real = np.array([[0.0], [1.0], [3.0], [7.0], [50.0]])
    fake = np.array([[2.0], [13.0], [20.0]])
    out = prdc(real, fake, k=2)
    # fake 2 lies in the balls of 0, 1, 3, 7; fake 13 only in that of 50 (it is on the edge of 7's
    # ball, 6 = 6, which is outside); fake 20 in that of 50 -> density (4 + 1 + 1) / (2 * 3)
    assert out["density"] == pytest.approx(6 / 6, abs=1e-12)
    assert out["precision"] == 1.0
    # every real ball holds some fake point
    assert out["coverage"] == 1.0
    # real 50 is farther than each fake radius from its fake point (48 > 18, 37 > 11, 30 > 18)
    assert out["recall"] == pytest.approx(4 / 5, abs=1e-12)


def test_prdc_partial_coverage_and_errors():
    real = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])  # k = 1: every radius is 1
    fake = np.array([[0.5], [1.5], [30.0]])  # fake radii (k = 1): 1, 1, 28.5
    out = prdc(real, fake, k=1)
    assert out["coverage"] == pytest.approx(3 / 6)  # only reals 0, 1, 2 are near a fake point
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["density"] == pytest.approx((2 + 2) / (1 * 3))  # 0.5 in balls of 0, 1; 1.5 in 1, 2
    # reals 0, 1, 2 lie within 1 of fake 0.5 or 1.5; reals 10, 11, 12 within 28.5 of fake 30
    assert out["recall"] == 1.0
    with pytest.raises(ValueError, match="at least 6"):
        prdc(real[:5], fake, k=5)
    with pytest.raises(ValueError, match="dimension"):
        prdc(np.zeros((6, 2)), np.zeros((6, 3)), k=2)


# --- beat coverage / hit scores -----------------------------------------------------------------


def test_onsets_per_second():
    bins = onsets_per_second([0.0, 0.4, 2.99, 3.0, -0.1, 5.5, 7.0], 5.5)
    assert bins.tolist() == [1, 0, 1, 1, 0, 0]  # 5.5 and 7.0 are outside [0, 5.5)
    assert len(onsets_per_second([], 6.0)) == 6


def test_beat_scores_both_variants():
    reference = [0.1, 1.3, 1.7, 2.5, 3.0]  # seconds 0, 1, 2, 3
    generated = [1.9, 2.2, 5.4]  # seconds 1, 2, 5
    d = beat_scores(generated, reference, 6.0)
    assert (d["generated_bins"], d["reference_bins"], d["hits"]) == (3, 4, 2)
    assert d["variant"] == "d2m-gan" and d["bcs"] == 0.75 and d["bhs"] == 0.5
    lo = beat_scores(generated, reference, 6.0, variant="loris")
    assert lo["variant"] == "loris"
    assert lo["bcs"] == pytest.approx(2 / 3) and lo["bhs"] == 0.5
    assert BEAT_SCORE_VARIANTS == ("d2m-gan", "loris")


def test_beat_scores_empty_and_bad_variant():
    empty_ref = beat_scores([1.0, 2.0], [], 4.0)
    assert math.isnan(empty_ref["bcs"]) and math.isnan(empty_ref["bhs"])
    empty_gen = beat_scores([], [1.0, 2.0], 4.0, variant="loris")
    assert math.isnan(empty_gen["bcs"]) and empty_gen["bhs"] == 0.0
    assert beat_scores([], [1.0, 2.0], 4.0)["bcs"] == 0.0
    with pytest.raises(ValueError, match="d2m-gan.*loris"):
        beat_scores([1.0], [1.0], 4.0, variant="lorris")


# --- onset / beat F-measures --------------------------------------------------------------------


def test_event_f_measure():
    events = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    assert event_f_measure(events, events)["f"] == 1.0
    assert event_f_measure(events + 0.05, events)["f"] == 1.0
    assert event_f_measure(events + 0.1, events)["f"] == 0.0
    # unsorted estimate, 2 of 3 matched against 5 references: precision 2/3, recall 2/5
    part = event_f_measure([9.0, 1.52, 0.47], events)
    assert part["precision"] == pytest.approx(2 / 3) and part["recall"] == pytest.approx(2 / 5)
    assert part["f"] == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    assert event_f_measure([], events) == {"f": 0.0, "precision": 0.0, "recall": 0.0}
    assert event_f_measure(events, [])["f"] == 0.0


def test_beat_f_measure_untrimmed():
    beats = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])  # all in the first 5 s
    assert beat_f_measure(beats, beats) == 1.0
    assert beat_f_measure(beats + 0.05, beats) == 1.0
    assert beat_f_measure(beats + 0.1, beats) == 0.0
    # mir_eval's trimmed evaluation would see no beats at all here
    trimmed = mir_eval.beat.trim_beats(beats)
    assert trimmed.size == 0
    # 3 of 4 estimates match 3 of 6 references: F = 2 * 0.75 * 0.5 / 1.25
    assert beat_f_measure([0.52, 1.48, 2.0, 4.0], beats) == pytest.approx(0.6)
    assert beat_f_measure([], beats) == 0.0


# --- cuts on beats ------------------------------------------------------------------------------


def test_cuts_on_beats():
    beats = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert cuts_on_beats([0.52, 1.2, 1.96, 0.7], beats) == pytest.approx(2 / 4)
    assert cuts_on_beats([0.55], beats) == 1.0  # exactly on the +/- 50 ms edge: counted
    assert cuts_on_beats([0.551], beats) == 0.0  # just past it
    assert cuts_on_beats([0.45], beats, tolerance=0.05) == 1.0
    assert cuts_on_beats([0.58], beats, tolerance=0.1) == 1.0
    assert math.isnan(cuts_on_beats([], beats))
    assert cuts_on_beats([1.0], []) == 0.0


# --- controllability ----------------------------------------------------------------------------


def test_controllability():
    w = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    lin = controllability(w, 3.0 * w - 1.0)
    assert lin["pearson"] == pytest.approx(1.0) and lin["spearman"] == pytest.approx(1.0) and lin["n"] == 5
    curved = controllability(w, np.exp(6.0 * w))
    assert curved["spearman"] == pytest.approx(1.0) and curved["pearson"] < 0.95
    inverse = controllability(w, -w ** 3)
    assert inverse["spearman"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="vary"):
        controllability(w, np.ones(5))
    with pytest.raises(ValueError, match="at least 3"):
        controllability([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError):
        controllability(w, w[:4])
