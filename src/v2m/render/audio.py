"""Loudness normalisation (ITU-R BS.1770 through pyloudnorm), a peak limiter, fades, mixing."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

CEILING = 10 ** (-1.0 / 20)  # -1 dBFS sample peak


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of float audio ``[channels, samples]`` (-inf for silence)."""
    import pyloudnorm

    if audio.shape[1] < int(0.4 * sample_rate):  # BS.1770 gates on 400 ms blocks
        audio = np.pad(audio, ((0, 0), (0, int(0.4 * sample_rate) - audio.shape[1] + 1)))
    # float32 keeps an hour of stereo audio at 1.3 GB per copy (the meter copies and filters)
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.T.astype(np.float32, copy=False)))


def limit(audio: np.ndarray, sample_rate: int, ceiling: float = CEILING, lookahead: float = 0.005) -> np.ndarray:
    """A look-ahead peak limiter: no sample exceeds ``ceiling``; gain changes are smoothed over
    ``lookahead`` seconds, and only where peaks would pass the ceiling."""
    peak = np.max(np.abs(audio), axis=0)
    need = np.minimum(np.float32(1.0), np.float32(ceiling) / np.maximum(peak, np.float32(1e-12)))
    del peak
    if need.min() >= 1.0:
        return audio
    radius = max(1, int(lookahead * sample_rate))
    gain = uniform_filter1d(minimum_filter1d(need, 2 * radius + 1), radius)
    np.minimum(gain, need, out=gain)  # numerical safety at the edges
    return audio * gain[None, :]


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or pad (with silence) to exactly ``n`` samples."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def fades(audio: np.ndarray, sample_rate: int, fade_in: float = 0.02, fade_out: float = 0.5) -> np.ndarray:
    """Short linear fade-in and fade-out (each at most a tenth of the length)."""
    n = audio.shape[1]
    out = audio.copy()
    a = min(int(fade_in * sample_rate), n // 10)
    z = min(int(fade_out * sample_rate), n // 10)
    if a > 0:
        out[:, :a] *= np.linspace(0.0, 1.0, a, dtype=np.float32)
    if z > 0:
        out[:, n - z :] *= np.linspace(1.0, 0.0, z, dtype=np.float32)
    return out


def finish_audio(music: np.ndarray, sample_rate: int, n_samples: int, target_lufs: float = -14.0,
                 underneath: np.ndarray | None = None, mix: float = 0.0) -> np.ndarray:
    """The final soundtrack: exactly ``n_samples`` long, the original soundtrack (``underneath``)
    mixed in at ``mix`` (a linear gain relative to the music, after both are loudness-matched),
    normalised to ``target_lufs`` integrated, peak-limited to -1 dBFS, faded in and out."""
    out = fit_length(music.astype(np.float32), n_samples)
    if underneath is not None and mix > 0:
        under = fit_length(underneath.astype(np.float32), n_samples)
        lm, lu = integrated_loudness(out, sample_rate), integrated_loudness(under, sample_rate)
        if np.isfinite(lm) and np.isfinite(lu):
            under = under * 10 ** ((lm - lu) / 20)
        out = out + mix * under
    loudness = integrated_loudness(out, sample_rate)
    for _ in range(3):  # limiting lowers loudness a little: converge in a few rounds
        if not np.isfinite(loudness) or abs(loudness - target_lufs) < 0.2:
            break
        out = limit(out * np.float32(10 ** ((target_lufs - loudness) / 20)), sample_rate)
        loudness = integrated_loudness(out, sample_rate)
    return fades(np.clip(out, -CEILING, CEILING), sample_rate)
