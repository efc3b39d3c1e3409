"""Reading audio the way each metric's reference implementation reads it.

Small differences in decoding and resampling move embedding statistics, so each embedder gets its
clips as its reference tool prepares them (the module of each embedder documents its protocol):

- VGGish (FAD, audioldm_eval / frechet-audio-distance): mean of the channels, resampy
  ``kaiser_best`` to 16 kHz.
- PANNs CNN14 (FD, KL, IS, audioldm_eval): first channel, mean removed, torchaudio's sinc
  resampler, zero-padded to 32000 samples.
- ImageBind (IB): all channels, torchaudio's sinc resampler to 16 kHz (its filterbank reads
  the first channel after removing the mean of all).
- CLAP (density / coverage): mono at 48 kHz.

All decoding goes through :mod:`v2m.media` (PyAV).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import V2MError
from ..media import audio_sample_rate, read_audio

PANNS_MIN_SAMPLES = 32000  # audioldm_eval pads shorter clips with zeros to this many samples


def sinc_resample(wave: np.ndarray, orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Band-limited resampling of a 1-D signal with a Hann-windowed sinc (torchaudio's default).

    The rates are reduced by their gcd to ``orig`` input and ``new`` output phases; each output
    phase has its own kernel (a sinc with cut-off ``rolloff * min(orig, new)``, ``zeros`` zero
    crossings either side), and all are applied as one strided convolution."""
    if orig == new:
        return np.asarray(wave, np.float32)
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    cutoff = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / cutoff)
    # float32 throughout and in this order of operations, as torchaudio computes it for float32 audio
    taps = torch.arange(-width, width + orig, dtype=torch.float32) / orig
    t = (-torch.arange(new, dtype=torch.float32)[:, None] / new + taps[None]) * cutoff  # [new, taps]
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * (window * (cutoff / orig))
    x = torch.as_tensor(np.asarray(wave, np.float32))
    n = x.shape[-1]
    x = F.pad(x[None, None], (width, width + orig))
    out = F.conv1d(x, kernel[:, None], stride=orig)  # [1, new, steps]
    return out[0].T.reshape(-1)[: math.ceil(new * n / orig)].numpy()


def _native(path) -> tuple[np.ndarray, int]:
    """[2, samples] at the file's own rate (a mono file gives two equal channels) and that rate."""
    rate = audio_sample_rate(path)
    audio = read_audio(path, rate, channels=2)
    if audio.shape[1] == 0:
        raise V2MError("has no audio", path)
    return audio, rate


def for_vggish(path) -> np.ndarray:
    import resampy

    audio, rate = _native(path)
    wave = audio.mean(0)
    return wave if rate == 16000 else resampy.resample(wave, rate, 16000, filter="kaiser_best").astype(np.float32)


def for_panns(path, sample_rate: int = 16000) -> np.ndarray:
    audio, rate = _native(path)
    wave = sinc_resample(audio[0] - audio[0].mean(), rate, sample_rate)
    return np.pad(wave, (0, max(0, PANNS_MIN_SAMPLES - len(wave))))


def for_imagebind(path) -> np.ndarray:
    """[channels, samples] at 16 kHz: ImageBind centres each clip over all channels, then reads the first."""
    audio, rate = _native(path)
    return np.stack([sinc_resample(channel, rate, 16000) for channel in audio])


def for_clap(path, sample_rate: int = 48000) -> np.ndarray:
    return read_audio(path, sample_rate, channels=1)[0]
