"""Video analysis on a per-second timeline (see :mod:`v2m.analysis.timeline` for the format).

The names below load their modules on first use, so importing one light module of the package
(:mod:`.timeline`, say) does not pull in PyAV, OpenCV or torch.
"""

from __future__ import annotations

import importlib

_WHERE = {  # name -> (module, attribute)
    "Analysis": (".timeline", "Analysis"),
    "AnalysisSettings": (".video", "AnalysisSettings"),
    "BeatSettings": (".rhythm", "BeatSettings"),
    "ClipEmbedder": (".semantic", "ClipEmbedder"),
    "CLIP_ALIASES": (".semantic", "ALIASES"),
    "RunReport": (".batch", "RunReport"),
    "analyze_video": (".video", "analyze_video"),
    "export_diffv2m": (".export", "export_diffv2m"),
    "read_diffv2m": (".export", "read_diffv2m"),
    "run_analysis": (".batch", "run_analysis"),
}

__all__ = sorted([*_WHERE, "analyze"])


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(module, __name__), attribute)


def analyze(path: str, *, clip: str | None = None, device: str = "auto", **settings):
    """Analyse one video (an :class:`Analysis`). ``clip`` (hub id, local directory, or
    ``diffv2m`` / ``stad``) adds CLIP semantics and must load; other keywords are
    :class:`AnalysisSettings` fields."""
    from .video import AnalysisSettings, analyze_video
    from .semantic import ClipEmbedder

    s = AnalysisSettings(clip=clip, device=device, **settings)
    embedder = ClipEmbedder(clip, device=device) if clip else None
    return analyze_video(path, s, embedder=embedder)
