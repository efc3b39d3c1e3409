"""Finishing audio: loudness normalisation (BS.1770, :mod:`v2m.loudness`), a true-peak limiter,
fades, mixing.

:func:`finish_signal` finishes a soundtrack of any length a block at a time (the passes below,
each holding one block and its margins), with the audio between passes in temporary files
(:class:`v2m.blocks.Spool`); :func:`finish_audio` is the same for an array in memory.

1. With an original soundtrack to mix underneath: it is decoded into a spool, and the
   integrated loudness of it and of the music are measured (:class:`v2m.loudness.LoudnessMeter`).
2. The mix (the music times the optional music gain, the original loudness-matched and scaled
   by ``mix``), faded, goes into a spool; its loudness is measured on the way, and its true-peak
   envelope goes into a spool of its own in a second sweep.
3. Secant steps toward the target loudness: each a pass that scales the mix, limits it with the
   gain :func:`limiter_gain` computes from the scaled envelope, and measures the result.
4. The last pass scales, limits with that gain, then by :func:`limit` (the envelope checked
   again) and writes the finished soundtrack, measuring its loudness and level curve.

Every stage that looks at neighbouring samples (the envelope's interpolation, the limiter's
lookahead and hold) reads its block with margins of :func:`reach` samples per round either
side, so a block comes out as it would from the whole signal: there are no seams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from ..blocks import ArraySignal, Signal, Spool, block_size, blocks
from ..loudness import LoudnessMeter, true_peak_envelope

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


def limit(audio: np.ndarray, sample_rate: int, ceiling: float = CEILING, rounds: int = 3) -> np.ndarray:
    """``audio`` true-peak limited to ``ceiling`` (:func:`limiter_gain`); unchanged where its true
    peak is already at most that. ``rounds``: how many times the envelope is measured again."""
    for _ in range(rounds):  # a moving gain shifts the interpolated peaks a little: check, and again
        gain = limiter_gain(true_peak_envelope(audio, above=ceiling), sample_rate, ceiling)
        if gain is None:
            break
        audio = audio * gain[None, :]
    return audio


def reach(sample_rate: int, lookahead: float = 0.005, hold: float = 0.05) -> int:
    """Samples either side of a sample that one round of :func:`limiter_gain` over
    :func:`v2m.loudness.true_peak_envelope` looks at for it (the lookahead and hold filters,
    the ramp, the interpolation filter's reach), with room to spare."""
    ahead = max(1, int(lookahead * sample_rate))
    behind = max(ahead, int(hold * sample_rate))
    return ahead + behind + 1 + 2 * ahead + 32


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or pad (with silence) to exactly ``n`` samples."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def fade_block(block: np.ndarray, start: int, n: int, sample_rate: int, fade_in: float = 0.02,
               fade_out: float = 0.5, longest: float = 0.1) -> np.ndarray:
    """Linear fade-in and fade-out of ``fade_in`` and ``fade_out`` seconds (each at most ``longest``
    of the length) of a signal ``n`` samples long, applied to its samples ``start`` to ``start +
    block.shape[1]``: the ramps of the whole signal, block by block."""
    out = block.copy()
    stop = start + block.shape[1]
    a = min(int(fade_in * sample_rate), int(longest * n))
    z = min(int(fade_out * sample_rate), int(longest * n))
    if a > 0 and start < a:
        out[:, : a - start] *= np.linspace(0.0, 1.0, a, dtype=np.float32)[start : min(a, stop)]
    if z > 0 and stop > n - z:
        first = max(start, n - z)
        out[:, first - start :] *= np.linspace(1.0, 0.0, z, dtype=np.float32)[first - (n - z) : stop - (n - z)]
    return out


def fades(audio: np.ndarray, sample_rate: int, fade_in: float = 0.02, fade_out: float = 0.5,
          longest: float = 0.1) -> np.ndarray:
    """:func:`fade_block` of a whole signal."""
    return fade_block(audio, 0, audio.shape[1], sample_rate, fade_in, fade_out, longest)


MusicGain = Callable[[int, int], np.ndarray]  # (first sample, count) -> float32 [count]: a gain on the music


@dataclass
class Finished:
    """What :func:`finish_signal` made: the soundtrack in a spool (close it when done), its
    integrated loudness (measured as it was written) and its level curve for the alignment
    picture (:func:`v2m.render.plot.level_curve`, computed block by block)."""

    audio: Spool
    sample_rate: int
    loudness: float
    level: np.ndarray

    def blocks(self) -> Iterable[np.ndarray]:
        """The soundtrack in consecutive blocks."""
        return (block for _, block in blocks(self.audio, block_size(self.sample_rate)))

    def close(self) -> None:
        self.audio.close()


def _fit(chunks: Iterable[np.ndarray], n: int) -> Iterable[np.ndarray]:
    """Consecutive blocks of ``chunks`` cut or padded with silence to ``n`` samples in all."""
    done = 0
    for chunk in chunks:
        if done >= n:
            break
        chunk = np.asarray(chunk[:, : n - done], np.float32)
        done += chunk.shape[1]
        yield chunk
    if done < n:
        yield np.zeros((2, n - done), np.float32)


def _limited(mixed: Spool, envelope: Spool | None, start: int, stop: int, level: float, sample_rate: int,
             rounds: int) -> np.ndarray:
    """Samples ``start`` to ``stop`` of the mix scaled by ``level``, limited with the gain of its
    scaled ``envelope`` (None: not), then by :func:`limit` in ``rounds`` rounds: read with the
    margins those need, so the result is the one the whole signal would give."""
    margin = (rounds + 1) * reach(sample_rate)
    a, z = max(0, start - margin), min(mixed.n, stop + margin)
    x = mixed.read(a, z)
    scale = np.float32(level)
    gain = None if envelope is None else limiter_gain(scale * envelope.read(a, z)[0], sample_rate)
    y = x * scale if gain is None else x * (scale * gain)[None, :]
    if rounds:
        y = limit(y, sample_rate, rounds=rounds)
    return y[:, start - a : stop - a]


def finish_signal(music: Signal, sample_rate: int, n_samples: int, target_lufs: float = -14.0,
                  underneath: Iterable[np.ndarray] | None = None, mix: float = 0.0,
                  music_gain: MusicGain | None = None, folder: str | None = None,
                  block: int | None = None, fade_in: float = 0.02, fade_out: float = 0.5,
                  longest_fade: float = 0.1) -> Finished:
    """The final soundtrack, as :func:`finish_audio` makes it, of a ``music`` signal of any
    length, a block at a time (see the module docstring): exactly ``n_samples`` long, the
    original soundtrack (``underneath``: consecutive stereo blocks, e.g.
    :func:`v2m.media.audio_blocks`) mixed in at ``mix`` after both are loudness-matched, faded in
    and out (:func:`fade_block`, seconds), normalised to ``target_lufs`` and true-peak limited to -1 dBTP.

    ``music_gain(start, count)``, when given, scales the music's samples ``start`` to ``start +
    count`` (ducking under speech) in the mix: the original is matched to the music's loudness
    as written (a dip under speech does not pull the original down with it), and the
    normalisation sees the mix as it is heard. ``folder``: where the temporary files
    go (None: the system's temporary folder); ``block``: samples per block (default
    :func:`v2m.blocks.block_size`)."""
    n, sr = n_samples, sample_rate
    size = block or block_size(sr)
    spools: list[Spool] = []

    def spool(channels: int = 2) -> Spool:
        spools.append(Spool(channels, folder))
        return spools[-1]

    def music_block(start: int, stop: int) -> np.ndarray:
        x = music.read(start, stop).astype(np.float32, copy=False)
        return x if music_gain is None else x * np.asarray(music_gain(start, stop - start), np.float32)[None, :]

    try:
        under, under_gain = None, 1.0
        if underneath is not None and mix > 0:  # pass 1: the original, and both loudnesses
            under, meter_under, meter_music = spool(), LoudnessMeter(sr), LoudnessMeter(sr)
            for chunk in _fit(underneath, n):
                under.write(chunk)
                meter_under.add(chunk)
            for start in range(0, n, size):
                meter_music.add(music.read(start, min(n, start + size)).astype(np.float32, copy=False))
            lm, lu = meter_music.integrated(), meter_under.integrated()
            if np.isfinite(lm) and np.isfinite(lu):
                under_gain = 10 ** ((lm - lu) / 20)
        mixed, meter = spool(), LoudnessMeter(sr)  # pass 2: the faded mix, its loudness, its envelope
        for start in range(0, n, size):
            stop = min(n, start + size)
            x = music_block(start, stop)
            if under is not None:
                x = x + mix * (under.read(start, stop) * under_gain)
            x = fade_block(x, start, n, sr, fade_in, fade_out, longest_fade)  # first: the loudness measured is the loudness delivered
            mixed.write(x)
            meter.add(x)
        if under is not None:
            under.close()
        loudness = meter.integrated()
        envelope = spool(1)
        margin = reach(sr)
        for start in range(0, n, size):
            a, z = max(0, start - margin), min(n, start + size + margin)
            envelope.write(true_peak_envelope(mixed.read(a, z))[None, start - a : min(n, start + size) - a])

        # Secant steps: two or three measurements get within 0.1 LU. slope: LU gained per dB of
        # gain (limiting makes it less than 1).
        gain_db, slope, stepped = 0.0, 1.0, False
        for _ in range(4):
            if not np.isfinite(loudness) or abs(loudness - target_lufs) < 0.1:
                break
            step = (target_lufs - loudness) / slope
            gain_db += step
            stepped = True
            trial = LoudnessMeter(sr)
            for start in range(0, n, size):
                trial.add(_limited(mixed, envelope, start, min(n, start + size), 10 ** (gain_db / 20), sr, 0))
            measured = trial.integrated()
            slope = float(np.clip((measured - loudness) / step, 0.05, 1.0))
            loudness = measured
        from .plot import level_curve

        out, final, levels = Spool(2, folder), LoudnessMeter(sr), []
        try:  # the last pass: limited, checked, written
            for start in range(0, n, size):
                y = _limited(mixed, envelope if stepped else None, start, min(n, start + size),
                             10 ** (gain_db / 20) if stepped else 1.0, sr, 3)
                out.write(y)
                final.add(y)
                levels.append(level_curve(y, sr))
        except BaseException:
            out.close()
            raise
        return Finished(out, sr, final.integrated(), np.concatenate(levels) if levels else np.zeros(0, np.float32))
    finally:
        for s in spools:
            s.close()


def finish_audio(music: np.ndarray, sample_rate: int, n_samples: int, target_lufs: float = -14.0,
                 underneath: np.ndarray | None = None, mix: float = 0.0, fade_in: float = 0.02,
                 fade_out: float = 0.5, longest_fade: float = 0.1, music_gain: MusicGain | None = None,
                 block: int | None = None) -> np.ndarray:
    """The final soundtrack: exactly ``n_samples`` long, the original soundtrack (``underneath``)
    mixed in at ``mix`` (a linear gain relative to the music, after both are loudness-matched),
    faded in and out (:func:`fade_block`, seconds), normalised to ``target_lufs`` integrated (within 0.1 LU where four rounds
    of limiting and measuring get there) and true-peak limited to -1 dBTP: :func:`finish_signal`
    of an array (``music_gain`` as there), returned as one."""
    size = block or block_size(sample_rate)
    chunks = None
    if underneath is not None:
        under = ArraySignal(np.asarray(underneath, np.float32))
        chunks = (chunk for _, chunk in blocks(under, size))
    finished = finish_signal(ArraySignal(np.asarray(music, np.float32)), sample_rate, n_samples, target_lufs,
                             chunks, mix, music_gain=music_gain, block=size, fade_in=fade_in, fade_out=fade_out,
                             longest_fade=longest_fade)
    try:
        return finished.audio.read(0, n_samples)
    finally:
        finished.close()
