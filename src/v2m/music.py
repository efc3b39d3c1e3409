"""Music analysis: the targets both models learn, and beats for evaluation and the composer.

Diff-V2M's rhythm targets: :func:`odf_per_second` (``[T]``, ``T = ceil(seconds)``),
:func:`lowres_mel` and :func:`lowres_tempogram` (``[T, 16]``), and :func:`zscore`, the per-clip
normalisation the datasets apply. ControllableV2M's music features: :func:`stad_features`
(pitch, chroma, loudness and spectral centroid at one frame per second) and
:class:`FeatureStats` (their dataset-wide mean and std, saved as the official ``stats.json``).
Beats: :func:`beats` (librosa's tracker, with the tempo; the downbeats are the beat phase of
``beats_per_bar`` whose beats carry the most onset strength).

The functions take float audio in [-1, 1], ``[samples]`` or ``[channels, samples]``, and work on
its mono mix; :func:`v2m.media.read_audio` decodes any file to that. How each target is
computed, and where v2m departs from the official code: docs/datasets.md ("The music targets").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .fsutil import write_bytes_atomic

STAD_KINDS = ("pitch", "chroma", "loudness", "spectral_centroid")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``[channels, samples]`` or ``[samples]`` -> ``[samples]`` float32 (the channel mean)."""
    audio = np.asarray(audio, np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def n_seconds(n_samples: int, sr: int) -> int:
    return max(1, int(np.ceil(n_samples / sr - 1e-9)))


def odf_peaks(y: np.ndarray, sr: int, hop_length: int = 512, prominence: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the z-scored onset strength: ``(times, values)``."""
    import librosa
    from scipy.signal import find_peaks

    odf = librosa.onset.onset_strength(y=to_mono(y), sr=sr, hop_length=hop_length)
    odf = (odf - odf.mean()) / (odf.std() + 1e-6)
    times = librosa.frames_to_time(np.arange(len(odf)), sr=sr, hop_length=hop_length)
    peaks, _ = find_peaks(odf, prominence=prominence)
    return times[peaks], odf[peaks].astype(np.float32)


def odf_per_second(y: np.ndarray, sr: int, hop_length: int = 512, prominence: float = 0.05) -> np.ndarray:
    """Diff-V2M's ODF rhythm target ``[T]``: each second's largest positive peak of the z-scored
    onset strength, a peak at time ``t`` counting for second ``round(t)`` (docs/datasets.md)."""
    out = np.zeros(n_seconds(len(to_mono(y)), sr), np.float32)
    for t, value in zip(*odf_peaks(y, sr, hop_length, prominence)):
        sec = int(round(float(t)))
        if sec < len(out):
            out[sec] = max(out[sec], value)
    return out


def _block_average(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``[frames, bins]`` -> ``[rows, cols]`` by averaging near-equal blocks."""
    r = np.array_split(np.arange(x.shape[0]), rows)
    c = np.array_split(np.arange(x.shape[1]), cols)
    return np.array([[x[np.ix_(ri, ci)].mean() if len(ri) and len(ci) else 0.0 for ci in c] for ri in r],
                    np.float32)


def lowres_mel(y: np.ndarray, sr: int, bands: int = 16) -> np.ndarray:
    """128-band mel dB, block-averaged to ``[T, bands]``."""
    import librosa

    y = to_mono(y)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128, power=2.0, htk=True,
                                         norm=None)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    return _block_average(db.T, n_seconds(len(y), sr), bands)


def lowres_tempogram(y: np.ndarray, sr: int, bands: int = 16) -> np.ndarray:
    """librosa tempogram (hop 128, window 384), block-averaged to ``[T, bands]``."""
    import librosa

    y = to_mono(y)
    tg = librosa.feature.tempogram(y=y, sr=sr, hop_length=128, win_length=384)
    return _block_average(tg.T, n_seconds(len(y), sr), bands)


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x - x.mean()) / (x.std() + 1e-6)


def stad_features(y: np.ndarray, sr: int, frames_per_second: int = 1, n_fft: int = 2048) -> dict[str, np.ndarray]:
    """ControllableV2M's music features at ``frames_per_second``: ``pitch`` (piptrack's
    frequencies) ``[1025, F]``, ``chroma`` ``[12, F]``, ``loudness`` (RMS) and
    ``spectral_centroid`` ``[F]``, F = ``floor(samples / hop) + 1`` (docs/datasets.md)."""
    import librosa

    y = to_mono(y)
    hop = int(round(sr / frames_per_second))
    pitches, _ = librosa.piptrack(y=y, sr=sr, n_fft=n_fft, hop_length=hop)
    return {
        "pitch": pitches.astype(np.float32),
        "chroma": librosa.feature.chroma_stft(y=y, sr=sr, n_fft=n_fft, hop_length=hop).astype(np.float32),
        "loudness": librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0].astype(np.float32),
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop)[0].astype(
            np.float32),
    }


@dataclass
class FeatureStats:
    """Running dataset-wide statistics per feature kind (count, sum, sum of squares, min, max),
    mergeable across workers and shards; saved as the official ``stats.json``."""

    acc: dict[str, list[float]] = field(default_factory=lambda: {k: [0, 0.0, 0.0, np.inf, -np.inf] for k in STAD_KINDS})

    def update(self, features: dict[str, np.ndarray]) -> None:
        for kind in STAD_KINDS:
            v = np.asarray(features[kind], np.float64).ravel()
            a = self.acc[kind]
            a[0] += v.size
            a[1] += float(v.sum())
            a[2] += float((v * v).sum())
            a[3] = min(a[3], float(v.min()))
            a[4] = max(a[4], float(v.max()))

    def merge(self, other: "FeatureStats") -> None:
        for kind in STAD_KINDS:
            a, b = self.acc[kind], other.acc[kind]
            self.acc[kind] = [a[0] + b[0], a[1] + b[1], a[2] + b[2], min(a[3], b[3]), max(a[4], b[4])]

    def mean_std(self, kind: str) -> tuple[float, float]:
        n, s, ss = self.acc[kind][:3]
        mean = s / max(n, 1)
        return mean, float(np.sqrt(max(ss / max(n, 1) - mean * mean, 0.0)))

    def normalise(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for kind in STAD_KINDS:
            mean, std = self.mean_std(kind)
            out[kind] = ((np.asarray(features[kind], np.float64) - mean) / (std + 1e-12)).astype(np.float32)
        return out

    def to_official(self) -> dict[str, list[float]]:
        """``{kind: [min, max, mean, std]}`` of the normalised values, as the official stats.json
        (its min and max are taken after normalisation)."""
        out = {}
        for kind in STAD_KINDS:
            mean, std = self.mean_std(kind)
            lo, hi = self.acc[kind][3:]
            out[kind] = [(lo - mean) / (std + 1e-12), (hi - mean) / (std + 1e-12), mean, std]
        return out

    def save(self, path: str | os.PathLike) -> None:

        write_bytes_atomic(path, json.dumps({**self.to_official(), "_v2m_accumulators": self.acc}).encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        data = json.loads(open(path).read())
        stats = cls()
        if "_v2m_accumulators" in data:
            stats.acc = {k: list(v) for k, v in data["_v2m_accumulators"].items()}
        else:  # an official stats.json: only mean and std are known
            for kind in STAD_KINDS:
                lo, hi, mean, std = data[kind]
                stats.acc[kind] = [1, mean, std * std + mean * mean, lo * std + mean, hi * std + mean]
        return stats


@dataclass
class Beats:
    tempo: float  # BPM
    times: np.ndarray  # beat times, seconds
    downbeats: np.ndarray  # the beats that start a bar


def beats(y: np.ndarray, sr: int, beats_per_bar: int = 4, hop_length: int = 512) -> Beats:
    """Beats and tempo (librosa), downbeats by the strongest beat phase."""
    import librosa

    y = to_mono(y)
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop_length)
    tempo, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop_length)
    tempo = float(np.atleast_1d(tempo)[0])
    times = librosa.frames_to_time(frames, sr=sr, hop_length=hop_length)
    if len(frames) == 0:
        return Beats(tempo, times, times)
    strength = env[np.clip(frames, 0, len(env) - 1)]
    phase = int(np.argmax([strength[p::beats_per_bar].mean() if len(strength[p::beats_per_bar]) else 0
                           for p in range(beats_per_bar)]))
    return Beats(tempo, times, times[phase::beats_per_bar])
