"""The one interface every v2m music generator implements.

A generator takes a :class:`GenerationRequest` (the video's analysis, the duration wanted, the
user's controls and a seed) and returns :class:`GeneratedMusic` (stereo audio and the beat grid
it follows). The audio is an array, or a signal read a block at a time (:mod:`v2m.blocks`: the
composer's parts wait in temporary files, so an hour of music is not held in memory). Its :class:`~v2m.models.cards.ModelCard` says what it takes (options, controls)
and how to summarise what it made; its ``embedder`` is the CLIP whose per-second embeddings
its analysis must hold (None: none). A generator may also carry ``warnings``, one-line notes for
the user about how it was set up (the composer's fallback soundfont), which the caller prints
once per run (:func:`v2m.soundtrack.load_generator`). ``v2m generate`` and :func:`v2m.generate` only ever talk
to this interface, so the neural models plug in beside the composer without changing either.
The neural models finish their audio the same way: :func:`normalised_music`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .. import music
from ..blocks import ArraySignal, Signal
from ..analysis.timeline import Analysis
from ..controls import Controls
from .cards import ModelCard

if TYPE_CHECKING:
    from ..analysis.semantic import ClipEmbedder


@dataclass(frozen=True)
class GenerationRequest:
    analysis: Analysis
    duration: float  # seconds of music wanted (the video's duration)
    controls: Controls = Controls()
    seed: int = 0
    # (start, end) seconds where someone speaks in the video's own sound (analysis.speech); the
    # composer writes thinner there, the mix ducks the music
    speech: tuple[tuple[float, float], ...] = ()
    scratch: str | None = None  # a folder for temporary audio files (None: the system's)


@dataclass
class GeneratedMusic:
    # float32 [channels, samples], exactly round(duration * sample_rate) long: an array, or a signal
    # (v2m.blocks.Signal) such as the composer's Stems, whose parts it also reads one by one
    audio: np.ndarray | Signal
    sample_rate: int
    beats: np.ndarray  # beat times in seconds within [0, duration]
    downbeats: np.ndarray  # the subset of beats that start a bar
    midi: object | None = None  # a mido.MidiFile when the generator writes a score
    info: dict = field(default_factory=dict)  # what the generator chose (key, tempo, ...)

    def signal(self) -> Signal:
        """The audio as a signal (an array wrapped, see :mod:`v2m.blocks`)."""
        return ArraySignal(self.audio) if isinstance(self.audio, np.ndarray) else self.audio

    def array(self) -> np.ndarray:
        """The audio as one array (all of it in memory)."""
        signal = self.signal()
        return signal.read(0, signal.n)

    def close(self) -> None:
        """Free what the audio holds on disk (a signal's temporary files), if anything."""
        getattr(self.audio, "close", lambda: None)()


PEAK = 0.95  # the neural models' audio is peak-normalised to this


def normalised_music(audio: np.ndarray, sample_rate: int, info: dict) -> GeneratedMusic:
    """``audio`` [C, n] peak-normalised to :data:`PEAK` as :class:`GeneratedMusic`, with the beats
    and downbeats librosa's tracker finds in it, and their tempo added to ``info`` as ``bpm``."""
    peak = float(np.abs(audio).max())
    if peak > 0:
        audio = audio / peak * PEAK
    beats = music.beats(audio, sample_rate)
    return GeneratedMusic(audio=audio, sample_rate=sample_rate, beats=beats.times, downbeats=beats.downbeats,
                          info={**info, "bpm": round(beats.tempo, 1)})


class Generator(Protocol):
    card: ModelCard
    name: str  # card.name
    embedder: ClipEmbedder | None  # the CLIP the analysis needs for this model; None: no semantics

    def generate(self, request: GenerationRequest) -> GeneratedMusic: ...
