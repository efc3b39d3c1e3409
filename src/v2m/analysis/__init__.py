"""Video analysis on a per-second timeline (see :mod:`v2m.analysis.timeline` for the format)."""

from __future__ import annotations

from .batch import RunReport, run_analysis
from .export import export_diffv2m, read_diffv2m
from .pipeline import AnalysisSettings, analyze_video
from .rhythm import BeatSettings
from .semantic import ALIASES as CLIP_ALIASES
from .semantic import ClipEmbedder
from .timeline import Analysis

__all__ = [
    "Analysis",
    "AnalysisSettings",
    "BeatSettings",
    "ClipEmbedder",
    "CLIP_ALIASES",
    "RunReport",
    "analyze",
    "analyze_video",
    "export_diffv2m",
    "read_diffv2m",
    "run_analysis",
]


def analyze(path: str, *, clip: str | None = None, device: str = "auto", **settings) -> Analysis:
    """Analyse one video. ``clip`` (hub id, local directory, or ``diffv2m`` / ``stad``) adds
    CLIP semantics and must load; other keywords are :class:`AnalysisSettings` fields."""
    s = AnalysisSettings(clip=clip, device=device, **settings)
    embedder = ClipEmbedder(clip, device=device) if clip else None
    return analyze_video(path, s, embedder=embedder)
