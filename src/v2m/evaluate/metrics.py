"""The field's video-to-music metrics as pure functions of arrays (../design/evaluation.md).

Distribution metrics (on embeddings or classifier posteriors of generated and reference audio):

- :func:`frechet_distance`: Frechet distance between Gaussian fits of two embedding sets,
  ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` with unbiased covariances. With VGGish
  at 16 kHz and no PCA it is the "FAD" of V2M papers; with PANNs CNN14 their "FD".
- :func:`kl_divergence`: KL(reference || generated) between the classifier posteriors of each
  generated clip and its reference, averaged over clips (audioldm_eval's convention); ``softmax``
  for class distributions, ``sigmoid`` for independent per-class (multi-label) posteriors.
- :func:`inception_score`: ``exp(E_x KL(p(y|x) || p(y)))`` over the generated clips.
- :func:`prdc`: precision, recall, density and coverage of Naeem et al. (2020) with k-nearest-
  neighbour balls (k = 5), usually on CLAP audio embeddings.

Rhythm metrics (on event times in seconds):

- :func:`beat_scores`: Beat Coverage and Beat Hit Scores. Onsets are binned per second; with G
  seconds holding a generated onset, R holding a reference onset and H holding both, the D2M-GAN
  variant (Diff-V2M and most V2M papers) is BCS = G / R, BHS = H / R; the LORIS variant is
  BCS = H / G, BHS = H / R. Report the variant with the number.
- :func:`event_f_measure` / :func:`beat_f_measure`: mir_eval's onset and beat F-measures (70 ms
  window) between the music's onsets or beats and the video's events (cuts, visual beats).
- :func:`cuts_on_beats`: the share of hard cuts with a music beat within +/- 50 ms.
- :func:`controllability`: Pearson and Spearman correlation between a control's weights and the
  feature measured on the outputs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

BEAT_SCORE_VARIANTS = ("d2m-gan", "loris")


def _matrix(x, name: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [items, dimensions], got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} items, got {x.shape[0]}")
    return x


def _times(x) -> np.ndarray:
    return np.sort(np.asarray(x, np.float64).reshape(-1))


# --- distributions -----------------------------------------------------------------------------


def frechet_from_stats(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}")
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: the usual FID remedy
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if np.abs(covmean.imag).max() > 1e-3 * max(1.0, np.abs(covmean.real).max()):
            raise ValueError("the covariance product has a large imaginary square root; too few items?")
        covmean = covmean.real
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance(a, b, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussian fits of embedding sets ``a`` [N, D] and ``b`` [M, D]."""
    a, b = _matrix(a, "the first set", 2), _matrix(b, "the second set", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False), eps)


def kl_divergence(p_generated, p_reference, kind: str = "softmax", eps: float = 1e-6) -> float:
    """Mean over clips of KL(reference || generated) between paired posteriors [N, C]."""
    g, r = _matrix(p_generated, "generated posteriors"), _matrix(p_reference, "reference posteriors")
    if g.shape != r.shape:
        raise ValueError(f"posteriors must be paired: {g.shape} vs {r.shape}")
    if kind == "softmax":
        per_clip = (r * (np.log(r + eps) - np.log(g + eps))).sum(1)
    elif kind == "sigmoid":
        per_clip = (r * (np.log(r + eps) - np.log(g + eps))
                    + (1 - r) * (np.log(1 - r + eps) - np.log(1 - g + eps))).sum(1)
    else:
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    return float(per_clip.mean())


def inception_score(posteriors, splits: int = 1, eps: float = 1e-12) -> dict:
    """Inception score of class posteriors [N, C]; the mean and std over ``splits`` parts."""
    p = _matrix(posteriors, "posteriors", max(1, splits))
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(1)
        scores.append(math.exp(float(kl.mean())))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores))}


def _kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def prdc(real, fake, k: int = 5) -> dict:
    """Precision, recall, density and coverage (Naeem et al. 2020) of ``fake`` against ``real``."""
    real, fake = _matrix(real, "the real set", k + 1), _matrix(fake, "the fake set", k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"embedding sizes differ: {real.shape[1]} and {fake.shape[1]}")
    r_real, r_fake = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    d = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # [N real, M fake]
    inside_real = d <= r_real[:, None]
    return {"precision": float(inside_real.any(0).mean()),
            "recall": float((d <= r_fake[None, :]).any(1).mean()),
            "density": float(inside_real.sum() / (k * fake.shape[0])),
            "coverage": float((d.min(1) <= r_real).mean())}


# --- rhythm ------------------------------------------------------------------------------------


def onsets_per_second(times, duration: float) -> np.ndarray:
    """1 for each one-second bin of [0, duration) that holds at least one of ``times``."""
    n = int(math.ceil(duration - 1e-9))
    bins = np.zeros(n, np.int64)
    t = _times(times)
    t = t[(t >= 0) & (t < duration)]
    bins[np.floor(t).astype(int)] = 1
    return bins


def beat_scores(generated, reference, duration: float, variant: str = "d2m-gan") -> dict:
    """Beat Coverage / Hit Scores of ``generated`` onsets against ``reference`` ones (seconds)."""
    if variant not in BEAT_SCORE_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(BEAT_SCORE_VARIANTS)}, got {variant!r}")
    g, r = onsets_per_second(generated, duration), onsets_per_second(reference, duration)
    G, R, H = int(g.sum()), int(r.sum()), int((g & r).sum())
    div = lambda a, b: a / b if b else float("nan")  # noqa: E731
    bcs = div(G, R) if variant == "d2m-gan" else div(H, G)
    return {"variant": variant, "bcs": bcs, "bhs": div(H, R), "generated_bins": G, "reference_bins": R, "hits": H}


def event_f_measure(music_times, video_times, window: float = 0.07) -> dict:
    """mir_eval's onset F-measure of the music's events against the video's (``window`` s)."""
    import mir_eval

    est, ref = _times(music_times), _times(video_times)
    if not len(est) or not len(ref):
        return {"f": 0.0, "precision": 0.0, "recall": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, p, r = mir_eval.onset.f_measure(ref, est, window=window)
    return {"f": float(f), "precision": float(p), "recall": float(r)}


def beat_f_measure(music_beats, video_beats, window: float = 0.07) -> float:
    """mir_eval's beat F-measure of the music's beats against the video's, untrimmed (mir_eval's
    evaluator drops the first 5 s; clips here are short, so every beat counts)."""
    import mir_eval

    est, ref = _times(music_beats), _times(video_beats)
    if not len(est) or not len(ref):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window))


def cuts_on_beats(cuts, beats, tolerance: float = 0.05) -> float:
    """Share of ``cuts`` with one of ``beats`` within +/- ``tolerance`` seconds (nan without cuts)."""
    c, b = _times(cuts), _times(beats)
    if not len(c):
        return float("nan")
    if not len(b):
        return 0.0
    nearest = np.abs(b[None, :] - c[:, None]).min(1)
    return float((nearest <= tolerance + 1e-9).mean())


def controllability(weights, measured) -> dict:
    """Pearson r and Spearman rho between control weights and the feature measured on each output."""
    from scipy import stats

    w, m = np.asarray(weights, np.float64).reshape(-1), np.asarray(measured, np.float64).reshape(-1)
    if w.shape != m.shape or len(w) < 3:
        raise ValueError(f"need at least 3 (weight, measurement) pairs, got {len(w)} and {len(m)}")
    if np.ptp(w) == 0 or np.ptp(m) == 0:
        raise ValueError("weights and measurements must both vary to be correlated")
    return {"pearson": float(stats.pearsonr(w, m)[0]), "spearman": float(stats.spearmanr(w, m)[0]), "n": len(w)}
