"""Loudness and peak meters for float audio ``[channels, samples]``.

- :func:`integrated_loudness`: ITU-R BS.1770 integrated loudness in LUFS, through pyloudnorm.
- :class:`LoudnessMeter`: the same measurement fed block by block (the K-weighting filters'
  state carried from block to block, the 400 ms gating blocks with 75 % overlap kept as their
  mean squares only), for audio too long to hold; :func:`gated_loudness` applies the gates.
- :func:`mono_loss`: how much quieter the fold-down ``(L + R) / 2`` is than the stereo signal,
  in LU. The fold-down is measured as dual mono (the same signal on both channels, as two
  speakers playing the mono mix), so a centred signal loses 0 LU and anti-phase content loses
  what cancels; measured as one channel, every value would be 3.01 LU higher.
- :func:`true_peak_envelope` and :func:`true_peak_dbtp`: the true peak in the manner of
  BS.1770-4 Annex 2, the signal oversampled 4x. The interpolation filter is
  ``scipy.signal.resample_poly``'s (a Kaiser-windowed FIR), not the Annex's 48-tap example, so
  a value can differ from a meter's by a few hundredths of a dB. Long audio is oversampled in
  blocks, so memory stays bounded.

These are the only meters in v2m: the composer's mono guard, the finishing of every soundtrack
(:mod:`v2m.render`) and the evaluation (:mod:`v2m.evaluate.symbolic`) all measure with them.
The functions trust their input (finite samples, a positive rate); the evaluation's wrappers
check what users give them.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .workers import usable_cores

OVERSAMPLE = 4  # BS.1770-4 Annex 2
_BLOCK = 65536  # samples oversampled at a time (bounded memory; quiet blocks are skipped)
_MARGIN = 16  # samples either side of a block: the interpolation filter reaches 10 samples out


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of float audio ``[channels, samples]`` (-inf for silence)."""
    import pyloudnorm

    if audio.shape[1] < int(0.4 * sample_rate):  # BS.1770 gates on 400 ms blocks
        audio = np.pad(audio, ((0, 0), (0, int(0.4 * sample_rate) - audio.shape[1] + 1)))
    # float32 keeps an hour of stereo audio at 1.3 GB per copy (the meter copies and filters)
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.T.astype(np.float32, copy=False)))


BLOCK_SECONDS, OVERLAP = 0.4, 0.75  # BS.1770's gating blocks, as pyloudnorm's meter cuts them
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU under the loudness of the blocks above the absolute gate


def gated_loudness(power: np.ndarray) -> float:
    """BS.1770's gated integrated loudness in LUFS from the channel-weighted mean square of each
    gating block ``[blocks]`` (the sum of the channels' K-weighted mean squares): the blocks
    above -70 LUFS, then those above that average less 10 LU, averaged; -inf when none pass."""
    power = np.asarray(power, np.float64)
    with np.errstate(divide="ignore"):
        block = -0.691 + 10.0 * np.log10(power)
    loud = block >= ABSOLUTE_GATE
    if not loud.any():
        return float("-inf")
    relative = -0.691 + 10.0 * math.log10(power[loud].mean()) + RELATIVE_GATE
    passed = (block > relative) & loud
    if not passed.any():
        return float("-inf")
    return float(-0.691 + 10.0 * math.log10(power[passed].mean()))


class LoudnessMeter:
    """:func:`integrated_loudness` measured block by block: :meth:`add` consecutive blocks
    ``[channels, k]`` of any lengths, then :meth:`integrated` (or :meth:`power`, the K-weighted
    mean square of each channel in each gating block). The K-weighting is pyloudnorm's own pair
    of biquads, run as second-order sections whose state passes from block to block; the gating
    blocks are cut where pyloudnorm cuts them (the last ones shortened at the end of the signal,
    as its slices are), so the result equals pyloudnorm's on the whole signal to float rounding.
    Memory: one number per channel per 100 ms."""

    def __init__(self, sample_rate: int, channels: int = 2):
        from pyloudnorm import IIRfilter

        self.sample_rate, self.channels, self.n = sample_rate, channels, 0
        stages = (IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),  # pyloudnorm's "K-weighting"
                  IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"))
        sos = np.array([np.concatenate([f.b / f.a[0], f.a / f.a[0]]) for f in stages])
        sos[0, :3] *= np.prod([f.passband_gain for f in stages])
        self._sos = sos
        self._state = np.zeros((len(stages), channels, 2))
        self._energy = np.zeros(channels)  # of the K-weighted samples so far
        self._lower: list[np.ndarray] = []  # the energy before each gating block's first sample ...
        self._upper: list[np.ndarray] = []  # ... and before its end

    def _bound(self, j: int, upper: bool) -> int:
        step = 1.0 - OVERLAP
        return int(BLOCK_SECONDS * (j * step + (1 if upper else 0)) * self.sample_rate)  # pyloudnorm's expression

    def add(self, block: np.ndarray) -> None:
        from scipy.signal import sosfilt

        k = block.shape[1]
        if k == 0:
            return
        weighted, self._state = sosfilt(self._sos, np.asarray(block, np.float64), axis=1, zi=self._state)
        before = np.cumsum(np.square(weighted), axis=1)
        before = np.concatenate([np.zeros((self.channels, 1)), before], axis=1)  # energy before each sample
        for bounds, upper in ((self._lower, False), (self._upper, True)):
            while (at := self._bound(len(bounds), upper) - self.n) < k:
                bounds.append(self._energy + before[:, at])
        self._energy = self._energy + before[:, k]
        self.n += k

    def power(self) -> np.ndarray:
        """float64 ``[channels, gating blocks]``: each channel's K-weighted mean square in each."""
        short = int(BLOCK_SECONDS * self.sample_rate) - self.n
        if short > 0:  # as integrated_loudness pads a signal shorter than one gating block
            self.add(np.zeros((self.channels, short + 1)))
        seconds = self.n / self.sample_rate
        count = int(np.round((seconds - BLOCK_SECONDS) / (BLOCK_SECONDS * (1.0 - OVERLAP)))) + 1
        lower = np.array(self._lower[:count])
        upper = np.array([self._upper[j] if j < len(self._upper) else self._energy for j in range(count)])
        return ((upper - lower) / (BLOCK_SECONDS * self.sample_rate)).T

    def integrated(self) -> float:
        """The integrated loudness in LUFS of everything added (-inf for silence)."""
        return gated_loudness(self.power().sum(axis=0))


def mono_loss(audio: np.ndarray, sample_rate: int, stereo: float | None = None) -> float:
    """Integrated loudness of the stereo ``audio`` ``[2, samples]`` minus that of its dual-mono
    fold-down, in LU: 0 for a centred signal, +inf when the fold-down is silent, NaN when the
    stereo signal is (below the -70 LUFS gate). ``stereo``: its loudness, when already measured."""
    if stereo is None:
        stereo = integrated_loudness(audio, sample_rate)
    if not math.isfinite(stereo):
        return math.nan
    mid = audio.mean(axis=0, dtype=np.float32)
    mono = integrated_loudness(np.stack([mid, mid]), sample_rate)
    return stereo - mono if math.isfinite(mono) else math.inf


@functools.lru_cache(maxsize=4)
def _interpolator(oversample: int) -> tuple[np.ndarray, float]:
    """The oversampling filter (``resample_poly``'s own default design: a Kaiser-windowed sinc,
    beta 5, 10 taps per phase either side) and its largest gain on any interpolated point, the
    sum of the absolute taps of its worst phase: no point between samples can exceed the largest
    nearby absolute sample times that gain (2.24 at 4x)."""
    from scipy.signal import firwin

    taps = firwin(2 * 10 * oversample + 1, 1.0 / oversample, window=("kaiser", 5.0))
    gain = oversample * max(float(np.abs(taps[p::oversample]).sum()) for p in range(oversample))
    return taps, gain


def true_peak_envelope(audio: np.ndarray, oversample: int = OVERSAMPLE, above: float = 0.0) -> np.ndarray:
    """float32 ``[samples]``: for each sample period, the largest absolute value of any channel
    at the sample itself and at the ``oversample - 1`` points interpolated after it. Only the
    blocks where an interpolated point could exceed ``above`` are oversampled (on all usable
    cores); elsewhere the value is the sample's own, and both are at most ``above`` there."""
    from scipy.ndimage import maximum_filter1d
    from scipy.signal import resample_poly

    n = audio.shape[1]
    envelope = np.max(np.abs(audio), axis=0).astype(np.float32)
    if oversample <= 1 or n == 0:
        return envelope
    taps, gain = _interpolator(oversample)
    nearby = maximum_filter1d(envelope, 2 * _MARGIN + 1, mode="constant")
    starts = [s for s in range(0, n, _BLOCK) if nearby[s : s + _BLOCK].max() * gain > above]

    def oversampled(start: int) -> None:  # resample_poly lets other threads run meanwhile
        stop = min(n, start + _BLOCK)
        a, z = max(0, start - _MARGIN), min(n, stop + _MARGIN)
        up = resample_poly(audio[:, a:z].astype(np.float64), oversample, 1, axis=1, window=taps)
        up = np.abs(up[:, (start - a) * oversample : (stop - a) * oversample]).max(axis=0)
        peaks = np.max([up[p::oversample] for p in range(oversample)], axis=0)  # per sample period
        np.maximum(envelope[start:stop], peaks, out=envelope[start:stop])

    with ThreadPoolExecutor(max(1, min(usable_cores(), len(starts)))) as pool:
        list(pool.map(oversampled, starts))  # the blocks write disjoint parts of the envelope
    return envelope


def true_peak_dbtp(audio: np.ndarray, oversample: int = OVERSAMPLE) -> float:
    """The true peak in dBTP: the largest absolute value of every channel oversampled
    ``oversample`` times; -inf for silence."""
    sample_peak = float(np.max(np.abs(audio), initial=0.0))
    peak = float(true_peak_envelope(audio, oversample, above=sample_peak).max(initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")
