"""Finishing audio: loudness normalisation (BS.1770, :mod:`v2m.loudness`), a true-peak limiter,
fades, mixing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from ..loudness import integrated_loudness, true_peak_envelope

CEILING = 10 ** (-1.0 / 20)  # -1 dBTP: the true peak (4x oversampled) of finished audio
AIM = 10 ** (-0.001 / 20)  # the limiter aims this much under its ceiling: float32 rounding stays under


def limiter_gain(envelope: np.ndarray, sample_rate: int, ceiling: float = CEILING, lookahead: float = 0.005,
                 hold: float = 0.05) -> np.ndarray | None:
    """The gain ``[samples]`` that keeps a signal whose true-peak envelope is ``envelope``
    (:func:`v2m.loudness.true_peak_envelope`) at most ``ceiling``, or None where no peak passes
    it. The gain falls over ``lookahead`` seconds before a peak, stays down ``hold`` seconds after
    it and rises again over ``lookahead``: held that long, it does not follow single bass cycles
    (which would distort them), and it moves only around the peaks."""
    if envelope.max(initial=0.0) <= ceiling:
        return None
    aim = np.float32(ceiling * AIM)
    need = np.minimum(np.float32(1.0), aim / np.maximum(envelope, np.float32(1e-12)))
    ahead = max(1, int(lookahead * sample_rate))
    behind = max(ahead, int(hold * sample_rate))
    # the least gain needed from `behind` samples back to `ahead` samples ahead ...
    floor = minimum_filter1d(need, ahead + behind + 1, origin=(behind - ahead) // 2)
    # ... ramped over `ahead` samples: every sample of the ramp's window still covers this one
    gain = uniform_filter1d(floor, ahead)
    return np.minimum(gain, need, out=gain)  # numerical safety at the edges


def limit(audio: np.ndarray, sample_rate: int, ceiling: float = CEILING) -> np.ndarray:
    """``audio`` true-peak limited to ``ceiling`` (:func:`limiter_gain`); unchanged where its true
    peak is already at most that."""
    for _ in range(3):  # a moving gain shifts the interpolated peaks a little: check, and again
        gain = limiter_gain(true_peak_envelope(audio, above=ceiling), sample_rate, ceiling)
        if gain is None:
            break
        audio = audio * gain[None, :]
    return audio


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or pad (with silence) to exactly ``n`` samples."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def fades(audio: np.ndarray, sample_rate: int, fade_in: float = 0.02, fade_out: float = 0.5,
          longest: float = 0.1) -> np.ndarray:
    """Linear fade-in and fade-out of the given seconds, each at most ``longest`` of the length."""
    n = audio.shape[1]
    out = audio.copy()
    a = min(int(fade_in * sample_rate), int(longest * n))
    z = min(int(fade_out * sample_rate), int(longest * n))
    if a > 0:
        out[:, :a] *= np.linspace(0.0, 1.0, a, dtype=np.float32)
    if z > 0:
        out[:, n - z :] *= np.linspace(1.0, 0.0, z, dtype=np.float32)
    return out


def finish_audio(music: np.ndarray, sample_rate: int, n_samples: int, target_lufs: float = -14.0,
                 underneath: np.ndarray | None = None, mix: float = 0.0, fade_in: float = 0.02,
                 fade_out: float = 0.5, longest_fade: float = 0.1) -> np.ndarray:
    """The final soundtrack: exactly ``n_samples`` long, the original soundtrack (``underneath``)
    mixed in at ``mix`` (a linear gain relative to the music, after both are loudness-matched),
    faded in and out (:func:`fades`, seconds), normalised to ``target_lufs`` integrated (within 0.1 LU where four rounds
    of limiting and measuring get there) and true-peak limited to -1 dBTP."""
    out = fit_length(music.astype(np.float32), n_samples)
    if underneath is not None and mix > 0:
        under = fit_length(underneath.astype(np.float32), n_samples)
        lm, lu = integrated_loudness(out, sample_rate), integrated_loudness(under, sample_rate)
        if np.isfinite(lm) and np.isfinite(lu):
            under = under * 10 ** ((lm - lu) / 20)
        out = out + mix * under
    out = fades(out, sample_rate, fade_in, fade_out, longest_fade)  # first: the loudness measured is delivered
    # The envelope scales with the signal: measured once (on other threads, while the loudness is
    # measured here), it gives the limiter's gain at every level tried on the way to the target.
    with ThreadPoolExecutor(1) as pool:
        envelope = pool.submit(true_peak_envelope, out)
        loudness = integrated_loudness(out, sample_rate)
        envelope = envelope.result()
    finished, gain_db, slope = out, 0.0, 1.0  # slope: LU gained per dB of gain (limiting makes it less than 1)
    for _ in range(4):  # secant steps: two or three measurements get within 0.1 LU
        if not np.isfinite(loudness) or abs(loudness - target_lufs) < 0.1:
            break
        step = (target_lufs - loudness) / slope
        gain_db += step
        level = np.float32(10 ** (gain_db / 20))
        gain = limiter_gain(level * envelope, sample_rate)
        finished = out * level if gain is None else out * (level * gain)[None, :]
        measured = integrated_loudness(finished, sample_rate)
        slope = float(np.clip((measured - loudness) / step, 0.05, 1.0))
        loudness = measured
    return limit(finished, sample_rate)
