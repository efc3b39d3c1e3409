"""v2m gives a video its soundtrack.

The Python API mirrors the command line; heavy modules load only when used::

    import v2m
    a = v2m.analyze("clip.mp4")          # per-second timeline: shots, visual beats, colour, CLIP
    a.save("clip.v2m.npz")
    r = v2m.generate("clip.mp4", "clip_scored.mp4", plot=True)   # the scored video, .wav, .mid, .png
"""

from .version import __version__

__all__ = ["__version__", "analyze", "generate", "probe", "Analysis", "AnalysisSettings", "Controls", "V2MError"]


def __getattr__(name):  # lazy: `import v2m` stays fast for `v2m --help`
    if name in ("analyze", "Analysis", "AnalysisSettings"):
        from . import analysis

        return getattr(analysis, name)
    if name == "generate":
        from .soundtrack import generate

        return generate
    if name == "Controls":
        from .controls import Controls

        return Controls
    if name == "probe":
        from .media import probe

        return probe
    if name == "V2MError":
        from .errors import V2MError

        return V2MError
    raise AttributeError(name)
