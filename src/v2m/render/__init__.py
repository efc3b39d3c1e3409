"""From generated music to the finished file: loudness, fades, mixing, and the alignment picture."""

from .audio import finish_audio, fit_length, integrated_loudness

__all__ = ["finish_audio", "fit_length", "integrated_loudness"]
