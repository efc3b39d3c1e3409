"""Finishing a soundtrack (v2m.render.audio.finish_audio): the target loudness, and a true peak of
at most -1 dBTP measured 4x oversampled, on signals whose peaks fall between samples; the same
finish a block at a time (finish_signal), the block-wise meter and the spools it works with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2m.blocks import ArraySignal, Spool
from v2m.loudness import LoudnessMeter, integrated_loudness, true_peak_dbtp
from v2m.render.audio import CEILING, fade_block, fades, finish_audio, finish_signal, limit
from v2m.render.plot import level_curve

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


# --- block by block ------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [44100, 48000, 11025])
def test_the_block_meter_equals_the_whole_signal_meter(sample_rate):
    rng = np.random.default_rng(5)
    n = 9 * sample_rate + 321
    swell = np.linspace(0.0, 1.0, n) ** 3  # quiet blocks fall under both gates
    audio = (rng.normal(0, 0.2, (2, n)) * swell * [[1.0], [0.4]]).astype(np.float32)
    meter, start = LoudnessMeter(sample_rate), 0
    while start < n:  # blocks of every length, one sample included
        size = int(rng.choice([1, 17, 4410, 30_000]))
        meter.add(audio[:, start : start + size])
        start += size
    assert meter.integrated() == pytest.approx(integrated_loudness(audio, sample_rate), abs=0.01)
    short = audio[:, : sample_rate // 5]  # under one gating block: padded as the whole-signal meter pads it
    meter = LoudnessMeter(sample_rate)
    meter.add(short)
    assert meter.integrated() == pytest.approx(integrated_loudness(short, sample_rate), abs=0.01)
    assert LoudnessMeter(sample_rate).integrated() == float("-inf")


def test_a_spool_gives_back_what_was_written_and_silence_past_its_end():
    audio = np.random.default_rng(2).normal(0, 1, (2, 10_000)).astype(np.float32)
    with Spool(2) as spool:
        spool.write(audio[:, :3000])
        spool.write(audio[:, 3000:])
        assert spool.n == 10_000
        assert np.array_equal(spool.read(2500, 7000), audio[:, 2500:7000])
        tail = spool.read(9000, 11_000)
        assert np.array_equal(tail[:, :1000], audio[:, 9000:]) and not tail[:, 1000:].any()


def test_the_fades_of_a_block_are_the_fades_of_the_whole():
    audio = np.ones((2, 3 * SR + 7), np.float32)
    whole = fades(audio, SR)
    pieces = [fade_block(audio[:, a : a + 10_000], a, audio.shape[1], SR) for a in range(0, audio.shape[1], 10_000)]
    assert np.array_equal(np.concatenate(pieces, axis=1), whole)


@pytest.mark.parametrize("make", [_intersample_bursts, _half_sample_clicks])
def test_the_finish_in_small_blocks_equals_the_finish_in_one_piece(make):
    """No seam: the limiter's lookahead and hold, the envelope's interpolation and the fades see
    across block boundaries (blocks of a quarter second here, 20 of them)."""
    audio = make()
    under = np.random.default_rng(4).normal(0, 0.05, (2, audio.shape[1] - SR)).astype(np.float32)
    n = audio.shape[1] + SR // 3  # padded with silence
    one = finish_audio(audio, SR, n, target_lufs=-9.0, underneath=under, mix=0.5, block=10 * n)
    blocks = finish_audio(audio, SR, n, target_lufs=-9.0, underneath=under, mix=0.5, block=SR // 4 + 3)
    assert one.shape == blocks.shape == (2, n)
    assert np.abs(one - blocks).max() < 1e-6
    assert true_peak_dbtp(blocks) <= -1.0
    assert integrated_loudness(blocks, SR) == pytest.approx(-9.0, abs=0.1)
    boundaries = np.arange(SR // 4 + 3, n, SR // 4 + 3)
    jumps = np.abs(np.diff(blocks, axis=1)).max(axis=0)
    assert jumps[boundaries - 1].max() <= jumps.max()  # nothing at a boundary beyond the music's own steps


def test_the_streamed_finish_reports_its_loudness_and_level_and_applies_a_music_gain():
    audio = _half_sample_clicks()
    n, asked = audio.shape[1], []

    def gain(start: int, count: int) -> np.ndarray:  # the music silent for its first 2 s
        asked.append((start, count))
        return (np.arange(start, start + count) >= 2 * SR).astype(np.float32)

    finished = finish_signal(ArraySignal(audio), SR, n, target_lufs=-16.0, music_gain=gain, block=SR)
    try:
        out = finished.audio.read(0, n)
        assert finished.loudness == pytest.approx(integrated_loudness(out, SR), abs=0.01)
        assert finished.loudness == pytest.approx(-16.0, abs=0.1)
        assert not out[:, : 2 * SR - SR // 10].any() and out[:, 2 * SR + SR // 10 :].any()
        assert np.allclose(finished.level, level_curve(out, SR))
        assert np.concatenate([np.arange(a, a + k) for a, k in asked[: n // SR + 1]]).tolist() == list(range(n))
    finally:
        finished.close()
