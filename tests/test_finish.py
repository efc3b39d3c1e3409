"""Finishing a soundtrack (v2m.render.audio.finish_audio): the target loudness, and a true peak of
at most -1 dBTP measured 4x oversampled, on signals whose peaks fall between samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2m.loudness import integrated_loudness, true_peak_dbtp
from v2m.render.audio import CEILING, finish_audio, limit

SR = 44100


def _bed(seconds: float) -> np.ndarray:
    """Noise, for the loudness: the peaks below stand 20 dB and more above it."""
    return np.random.default_rng(1).normal(0, 0.03, int(seconds * SR))


def _intersample_bursts() -> np.ndarray:
    """3 ms bursts, twice a second, of a sine at a quarter of the sample rate, 45 degrees off its
    samples: every sample of a burst misses the crest by 3 dB."""
    n = np.arange(6 * SR)
    bursts = np.sin(2 * np.pi * n / 4 + np.pi / 4) * (n % (SR // 2) < 0.003 * SR)
    x = (_bed(6) + 0.6 * bursts).astype(np.float32)
    return np.stack([x, x])


def _half_sample_clicks() -> np.ndarray:
    """Band-limited clicks (windowed sincs) centred half-way between two samples, four a second:
    the two nearest samples reach 64 % (-3.9 dB) of the click's crest."""
    x = _bed(6)
    k = np.arange(-64, 64)
    click = np.sinc(k + 0.5) * np.hanning(len(k))
    for start in range(SR // 8, len(x) - SR // 8, SR // 4):
        x[start + k] += 0.8 * click
    return np.stack([x, -0.7 * x]).astype(np.float32)


@pytest.mark.parametrize("make", [_intersample_bursts, _half_sample_clicks])
@pytest.mark.parametrize("target", [-14.0, -9.0])
def test_finished_audio_is_at_most_minus_1_dbtp_at_the_target_loudness(make, target):
    audio = make()
    out = finish_audio(audio, SR, audio.shape[1], target_lufs=target)
    assert true_peak_dbtp(out) <= -1.0
    assert integrated_loudness(out, SR) == pytest.approx(target, abs=0.2)
    assert out.shape == audio.shape and out.dtype == np.float32


def test_the_limiter_leaves_quiet_audio_alone_and_does_not_distort_a_bass_note():
    quiet = _half_sample_clicks() * 0.2
    assert limit(quiet, SR) is quiet
    t = np.arange(3 * SR) / SR
    bass = (2.0 * np.sin(2 * np.pi * 41.2 * t) * np.exp(-t / 3)).astype(np.float32)  # E1, 7 dB over the ceiling
    y = limit(np.stack([bass, bass]), SR)[0, SR : 2 * SR].astype(np.float64)
    assert np.abs(y).max() <= CEILING
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    fundamental = spectrum[np.abs(freqs - 41.2) < 3].max()
    harmonics = math.sqrt(sum(spectrum[np.abs(freqs - k * 41.2) < 3].max() ** 2 for k in range(2, 20)))
    assert harmonics < 1e-3 * fundamental  # under 0.1 % distortion
