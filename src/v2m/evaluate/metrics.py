"""The metrics of the video-to-music field as pure functions of arrays.

Distribution metrics, on embeddings or classifier posteriors: :func:`frechet_distance` (and
:func:`frechet_from_stats`), :func:`kl_divergence`, :func:`inception_score`, :func:`prdc`.
Rhythm metrics, on event times in seconds: :func:`beat_scores` (on :func:`onsets_per_second`),
:func:`event_f_measure`, :func:`beat_f_measure`, :func:`cuts_on_beats`. Also
:func:`controllability`. Each function's docstring says exactly what it computes.

The functions take numpy arrays or lists and return floats or small dicts of floats; wrong
shapes, empty sets and too few samples raise :class:`ValueError`. Some details copy a reference
tool on purpose, so that the numbers compare with published ones: prdc's strict ``<`` (the
authors' package), and the ``eps`` placement of the KL and the split boundaries of the Inception
Score (audioldm_eval). What the metrics mean and how v2m runs them: docs/evaluation.md.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

BEAT_SCORE_VARIANTS = ("d2m-gan", "loris")

# Slack for comparisons of times against a tolerance (0.55 - 0.5 is 0.05000000000000004).
_TIME_SLACK = 1e-9


# --- input checks -------------------------------------------------------------------------------


def _as_matrix(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite float64 array [rows, columns] with at least ``min_rows`` rows."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [items, dimensions]; got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} items; got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no dimensions (shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _as_probabilities(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    """``x`` as a matrix of posteriors, every value in [0, 1]."""
    arr = _as_matrix(x, name, min_rows)
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got values in "
                         f"[{arr.min():g}, {arr.max():g}]")
    return arr


def _as_times(x: Any, name: str) -> np.ndarray:
    """``x`` as a sorted 1-D float64 array of finite times in seconds."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a 1-D list of times; got shape {arr.shape}")
    arr = arr.reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite times")
    return np.sort(arr)


def _as_vector(x: Any, name: str) -> np.ndarray:
    """``x`` as a finite 1-D float64 array."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


# --- distribution metrics -----------------------------------------------------------------------


def frechet_from_stats(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``; ``eps * I`` is added to both
    covariances if the square root is not finite, and tiny negative results are clamped to 0.
    """
    from scipy import linalg

    m1, m2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if m1.ndim != 1 or m2.ndim != 1 or m1.shape != m2.shape:
        raise ValueError(f"means must be 1-D vectors of one size; got shapes {m1.shape} and {m2.shape}")
    d = m1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"covariances must be [{d}, {d}] to match the means; "
                         f"got shapes {s1.shape} and {s2.shape}")
    for name, v in (("mu1", m1), ("sigma1", s1), ("mu2", m2), ("sigma2", s2)):
        if not np.isfinite(v).all():
            raise ValueError(f"{name} holds NaN or infinite values")

    with warnings.catch_warnings():  # a singular product (fewer items than dimensions) is handled here
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(root).all():
            shift = eps * np.eye(d)
            s1, s2 = s1 + shift, s2 + shift
            root = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(root).all():
            raise ValueError("the square root of the covariance product is not finite, even with eps added")
    if np.iscomplexobj(root):
        imag = float(np.abs(root.imag).max())
        if imag > 1e-3 * max(1.0, float(np.abs(root.real).max())):
            raise ValueError(f"the square root of the covariance product has a large imaginary part "
                             f"({imag:.3g}); too few items for the dimension?")
        root = root.real

    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root))
    return max(value, 0.0)


def frechet_distance(a: Any, b: Any, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussian fits of embedding sets ``a`` [N, D] and ``b`` [M, D] (N, M >= 2)."""
    x = _as_matrix(a, "the first embedding set", min_rows=2)
    y = _as_matrix(b, "the second embedding set", min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the embedding sets differ in dimension: {x.shape[1]} and {y.shape[1]}")
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    return frechet_from_stats(x.mean(axis=0), cov_x, y.mean(axis=0), cov_y, eps=eps)


def kl_divergence(p_generated: Any, p_reference: Any, kind: str = "softmax", eps: float = 1e-6) -> float:
    """Mean over paired clips of KL(reference || generated) between posteriors [N, C].

    ``softmax``: ``sum_c r_c log r_c - r_c log(g_c + eps)`` per clip (``0 log 0 = 0``); ``eps`` sits
    only in the generated term, exactly as audioldm_eval's ``kl_div((g + eps).log(), r)``.
    ``sigmoid``: the same for every class plus its complement ``(1 - r_c)``, i.e. the Bernoulli KL
    of each class, summed over the classes.
    """
    from scipy.special import xlogy

    gen = _as_probabilities(p_generated, "the generated posteriors")
    ref = _as_probabilities(p_reference, "the reference posteriors")
    if gen.shape != ref.shape:
        raise ValueError(f"the posteriors must be paired clip by clip with the same classes; "
                         f"got shapes {gen.shape} (generated) and {ref.shape} (reference)")
    per_class = xlogy(ref, ref) - ref * np.log(gen + eps)
    if kind == "sigmoid":
        per_class = per_class + xlogy(1.0 - ref, 1.0 - ref) - (1.0 - ref) * np.log(1.0 - gen + eps)
    elif kind != "softmax":
        raise ValueError(f"kind must be 'softmax' or 'sigmoid'; got {kind!r}")
    return float(per_class.sum(axis=1).mean())


def inception_score(posteriors: Any, splits: int = 1, eps: float = 1e-12, seed: int | None = None) -> dict:
    """Inception score ``exp(mean_i KL(p(y|x_i) || p(y)))`` of posteriors [N, C]: ``{"mean", "std"}``.

    The set is cut into ``splits`` parts at rows ``i * N // splits`` (as audioldm_eval does), each
    scored with its own marginal ``p(y)``; ``std`` is the population standard deviation over the
    parts (0 for one split). ``seed``: shuffle the rows first with ``RandomState(seed)``
    (audioldm_eval: 10 splits, seed 2020).
    """
    if isinstance(splits, bool) or int(splits) != splits or splits < 1:
        raise ValueError(f"splits must be a positive integer; got {splits!r}")
    splits = int(splits)
    p = _as_probabilities(posteriors, "the posteriors", min_rows=splits)
    n = p.shape[0]
    if seed is not None:
        p = p[np.random.RandomState(seed).permutation(n)]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(axis=1)
        scores.append(math.exp(float(kl.mean())))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores))}


def _pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(x), len(y)], each computed directly from its pair of points."""
    from scipy.spatial.distance import cdist

    return cdist(x, y, metric="euclidean")


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point of ``x`` to its k-th nearest other point."""
    dist = _pairwise(x, x)
    np.fill_diagonal(dist, np.inf)  # the point itself is not its own neighbour
    return np.partition(dist, k - 1, axis=1)[:, k - 1]


def prdc(real: Any, fake: Any, k: int = 5) -> dict:
    """Precision, recall, density and coverage (Naeem et al. 2020) of ``fake`` [M, D] against ``real`` [N, D].

    Balls have the Euclidean distance to the k-th nearest neighbour as radius; a point exactly on a
    ball's boundary is outside (the authors' strict ``<``). Both sets need more than ``k`` points.
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    k = int(k)
    x = _as_matrix(real, "the real set", min_rows=k + 1)
    y = _as_matrix(fake, "the fake set", min_rows=k + 1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the real and fake sets differ in dimension: {x.shape[1]} and {y.shape[1]}")
    r_real, r_fake = _knn_radii(x, k), _knn_radii(y, k)
    dist = _pairwise(x, y)  # [N real, M fake]
    in_real_ball = dist < r_real[:, None]
    in_fake_ball = dist < r_fake[None, :]
    return {
        "precision": float(in_real_ball.any(axis=0).mean()),
        "recall": float(in_fake_ball.any(axis=1).mean()),
        "density": float(in_real_ball.sum() / (k * y.shape[0])),
        "coverage": float(in_real_ball.any(axis=1).mean()),
    }


# --- rhythm metrics ----------------------------------------------------------------------------


def onsets_per_second(times: Any, duration: float) -> np.ndarray:
    """Int array of ``ceil(duration)`` one-second bins: 1 where at least one of ``times`` falls.

    Times outside ``[0, duration)`` are ignored.
    """
    duration = float(duration)
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0; got {duration!r}")
    t = _as_times(times, "the times")
    bins = np.zeros(math.ceil(duration), dtype=np.int64)
    t = t[(t >= 0) & (t < duration)]
    bins[np.floor(t).astype(np.int64)] = 1
    return bins


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def beat_scores(generated: Any, reference: Any, duration: float, variant: str = "d2m-gan") -> dict:
    """Beat Coverage / Beat Hit Scores of ``generated`` against ``reference`` onset times (seconds).

    ``d2m-gan``: BCS = G / R, BHS = H / R; ``loris``: BCS = H / G, BHS = H / R, with G, R, H the
    one-second bins holding a generated onset, a reference onset, and both. A zero denominator
    gives NaN.
    """
    if variant not in BEAT_SCORE_VARIANTS:
        raise ValueError(f"variant must be 'd2m-gan' or 'loris'; got {variant!r}")
    gen = onsets_per_second(generated, duration)
    ref = onsets_per_second(reference, duration)
    g, r, h = int(gen.sum()), int(ref.sum()), int((gen & ref).sum())
    bcs = _ratio(g, r) if variant == "d2m-gan" else _ratio(h, g)
    return {"variant": variant, "bcs": bcs, "bhs": _ratio(h, r),
            "generated_bins": g, "reference_bins": r, "hits": h}


def event_f_measure(music_times: Any, video_times: Any, window: float = 0.07) -> dict:
    """mir_eval's onset F-measure of the music's events (estimate) against the video's (reference).

    Returns ``{"f", "precision", "recall"}``; all 0.0 when either list is empty.
    """
    import mir_eval

    est = _as_times(music_times, "the music times")
    ref = _as_times(video_times, "the video times")
    if est.size == 0 or ref.size == 0:
        return {"f": 0.0, "precision": 0.0, "recall": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, precision, recall = mir_eval.onset.f_measure(ref, est, window=window)
    return {"f": float(f), "precision": float(precision), "recall": float(recall)}


def beat_f_measure(music_beats: Any, video_beats: Any, window: float = 0.07) -> float:
    """mir_eval's beat F-measure of the music's beats (estimate) against the video's (reference).

    Unlike mir_eval's ``beat.evaluate``, the beats are NOT trimmed with ``trim_beats`` (which drops
    the first 5 s): clips are short, so every beat counts. 0.0 when either list is empty.
    """
    import mir_eval

    est = _as_times(music_beats, "the music beats")
    ref = _as_times(video_beats, "the video beats")
    if est.size == 0 or ref.size == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window))


def cuts_on_beats(cuts: Any, beats: Any, tolerance: float = 0.05) -> float:
    """Share of ``cuts`` with one of ``beats`` within +/- ``tolerance`` s (boundary included); NaN without cuts."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 seconds; got {tolerance!r}")
    c = _as_times(cuts, "the cuts")
    b = _as_times(beats, "the beats")
    if c.size == 0:
        return float("nan")
    if b.size == 0:
        return 0.0
    nearest = np.abs(c[:, None] - b[None, :]).min(axis=1)
    return float((nearest <= tolerance + _TIME_SLACK).mean())


def controllability(weights: Any, measured: Any) -> dict:
    """Pearson r and Spearman rho between control weights and the feature measured on each output.

    Returns ``{"pearson", "spearman", "n"}``; needs at least 3 pairs and neither input constant.
    """
    from scipy import stats

    w = _as_vector(weights, "the weights")
    m = _as_vector(measured, "the measurements")
    if w.shape != m.shape:
        raise ValueError(f"weights and measurements must pair up; got {w.size} and {m.size} values")
    if w.size < 3:
        raise ValueError(f"need at least 3 (weight, measurement) pairs; got {w.size}")
    if np.ptp(w) == 0 or np.ptp(m) == 0:
        raise ValueError("weights and measurements must both vary; a constant input has no correlation")
    pearson = stats.pearsonr(w, m)[0]
    spearman = stats.spearmanr(w, m)[0]
    return {"pearson": float(pearson), "spearman": float(spearman), "n": int(w.size)}
