"""From generated music to the finished file: loudness, fades, mixing (a block at a time), and the
alignment picture."""

from ..loudness import integrated_loudness
from .audio import Finished, finish_audio, finish_signal, fit_length

__all__ = ["Finished", "finish_audio", "finish_signal", "fit_length", "integrated_loudness"]
