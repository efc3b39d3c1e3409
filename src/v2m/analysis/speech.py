"""Where someone speaks in a soundtrack: spans in seconds, found with Silero VAD.

Speech-aware mixing (issue 17) keeps a video's own sound and ducks the music wherever someone
speaks; the composer writes a thinner arrangement there. Both need the same thing from the
soundtrack: the spans of speech, as ``(start, end)`` seconds, sorted and apart.

:func:`speech_spans` folds the audio to mono, resamples it to 16 kHz in blocks and runs Silero
VAD (the ``silero-vad`` package, whose model ships inside it; loaded once per process) window by
window, 32 ms at a time, so an hour of sound needs little more memory than the audio itself. The
per-window speech probabilities become spans with Silero's own hysteresis
(``get_speech_timestamps_from_probs``); then spans closer than ``min_gap`` are merged (the
pauses between words and sentences are not "no speech": music that rose in every breath would
pump) and spans shorter than ``min_speech`` dropped (a cough, a door). :func:`video_speech_spans`
reads a video's soundtrack and does the same.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings

import numpy as np

from ..errors import MediaError

VAD_RATE = 16000  # Silero VAD's sample rate
WINDOW = 512  # samples per speech probability at 16 kHz (32 ms)
BLOCK_SECONDS = 30.0  # the resampler's and the detector's block
MIN_GAP = 0.7  # seconds of pause inside one span of speech
MIN_SPEECH = 0.3  # seconds: shorter detections are dropped
THRESHOLD = 0.5  # Silero's speech probability threshold (its default)

_lock = threading.Lock()  # the model keeps its state between windows: one stream at a time


@functools.lru_cache(maxsize=1)
def _model():
    """Silero VAD's TorchScript model, loaded once. Importing ``silero_vad`` sets torch to one
    thread for the whole process; the count from before is put back."""
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad

        with warnings.catch_warnings():  # torch 2.13 calls its own torch.jit.load deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return silero_vad.load_silero_vad()
    finally:
        torch.set_num_threads(threads)


def _mono_blocks(audio: np.ndarray, sample_rate: int, block_seconds: float = BLOCK_SECONDS):
    """The mono fold-down of ``audio`` [channels, samples] at 16 kHz, in float32 blocks.

    Each block is resampled (``scipy.signal.resample_poly``) with a margin of its neighbours'
    samples on both sides, so the blocks join as the one-piece resampling would."""
    from scipy.signal import resample_poly

    n = audio.shape[1]
    g = math.gcd(int(sample_rate), VAD_RATE)
    up, down = VAD_RATE // g, int(sample_rate) // g
    # input samples per block and per margin, multiples of ``down``: block edges fall on output samples
    block = max(1, int(block_seconds * sample_rate) // down) * down
    half = 10 * max(up, down) / up + 10  # resample_poly's filter half-length, in input samples
    margin = int(math.ceil(half / down)) * down
    for a in range(0, n, block):
        z = min(n, a + block)
        lo, hi = max(0, a - margin), min(n, z + margin)
        mono = audio[:, lo:hi].astype(np.float32).mean(axis=0)
        if up == down:
            yield mono[a - lo: z - lo]
            continue
        out = resample_poly(mono, up, down).astype(np.float32)
        skip = (a - lo) * up // down
        yield out[skip: skip + int(math.ceil((z - a) * up / down))]


def speech_probabilities(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Silero VAD's speech probability for each 32 ms window (512 samples at 16 kHz) of ``audio``
    (float [channels, samples] or [samples], any sample rate), float32."""
    import torch

    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be [channels, samples], not of shape {audio.shape}")
    model = _model()
    probs: list[float] = []
    rest = np.zeros(0, np.float32)  # samples left over from the last block (under one window)
    with _lock, torch.inference_mode():
        model.reset_states()
        for block in _mono_blocks(np.nan_to_num(audio), sample_rate):
            x = np.concatenate([rest, block])
            whole = len(x) // WINDOW * WINDOW
            windows = torch.from_numpy(np.ascontiguousarray(x[:whole])).reshape(-1, WINDOW)
            probs += [float(model(w, VAD_RATE)) for w in windows]
            rest = x[whole:]
        if len(rest):  # the last window, padded with silence as Silero pads it
            probs.append(float(model(torch.from_numpy(np.pad(rest, (0, WINDOW - len(rest)))), VAD_RATE)))
        model.reset_states()
    return np.asarray(probs, np.float32)


def merge_spans(spans, min_gap: float = MIN_GAP, min_speech: float = MIN_SPEECH) -> list[tuple[float, float]]:
    """``spans`` (start, end) sorted, overlapping ones and those closer than ``min_gap`` seconds
    merged, then those shorter than ``min_speech`` dropped."""
    out: list[list[float]] = []
    for a, z in sorted((float(a), float(z)) for a, z in spans if z > a):
        if out and a - out[-1][1] < min_gap:
            out[-1][1] = max(out[-1][1], z)
        else:
            out.append([a, z])
    return [(a, z) for a, z in out if z - a >= min_speech]


def speech_spans(audio: np.ndarray, sample_rate: int, *, threshold: float = THRESHOLD, min_gap: float = MIN_GAP,
                 min_speech: float = MIN_SPEECH, pad: float = 0.03) -> list[tuple[float, float]]:
    """The spans of speech in ``audio`` (float [channels, samples] or [samples] at
    ``sample_rate``), as sorted, disjoint ``(start, end)`` seconds rounded to the millisecond.

    ``threshold`` is Silero's speech probability (0.5; lower finds quieter speech and more false
    alarms); spans closer than ``min_gap`` (0.7 s) are one span, spans shorter than
    ``min_speech`` (0.3 s) are dropped, and each span is widened by ``pad`` (30 ms, Silero's own
    padding) on both sides. Music, tones and room tone give no spans."""
    from silero_vad import get_speech_timestamps_from_probs

    probs = speech_probabilities(audio, sample_rate)
    n = int(np.asarray(audio).shape[-1])
    length = n * VAD_RATE // max(1, int(sample_rate))
    found = get_speech_timestamps_from_probs(probs.tolist(), sampling_rate=VAD_RATE, threshold=threshold,
                                             min_speech_duration_ms=100, min_silence_duration_ms=100,
                                             speech_pad_ms=int(round(1000 * pad)), audio_length_samples=length)
    duration = n / sample_rate
    spans = merge_spans([(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in found], min_gap, min_speech)
    return [(round(max(0.0, a), 3), round(min(duration, z), 3)) for a, z in spans]


def video_speech_spans(path: str | os.PathLike, *, stream: int = 0, **options) -> list[tuple[float, float]]:
    """:func:`speech_spans` of a video's soundtrack (its audio ``stream``, decoded mono at 16 kHz);
    ``options`` go to :func:`speech_spans`. A video without sound is one
    :class:`~v2m.errors.MediaError` line."""
    from ..media import probe, read_audio

    if not probe(path).has_audio:
        raise MediaError("has no audio track, so there is no speech to find in it", path)
    return speech_spans(read_audio(path, VAD_RATE, channels=1, stream=stream), VAD_RATE, **options)
