"""The alignment picture: shots, visual beats and the music's beats on one time axis."""

from __future__ import annotations

import numpy as np

from ..analysis.timeline import Analysis
from ..fsutil import atomic_path
from ..version import WRITER


LEVEL_RATE = 20  # values per second of the level curve


def level_curve(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 ``[frames]``: the largest mean of the channels' absolute values in each
    1/:data:`LEVEL_RATE` s of ``audio`` (a last partial frame left out). Blocks cut at whole
    frames (:func:`v2m.blocks.block_size`) give the curve of their concatenation."""
    hop = max(1, sample_rate // LEVEL_RATE)
    frames = audio.shape[1] // hop
    mono = np.abs(audio[:, : frames * hop]).mean(axis=0)
    return mono.reshape(frames, hop).max(axis=1).astype(np.float32)


def alignment_plot(path: str, analysis: Analysis, beats: np.ndarray, downbeats: np.ndarray,
                   title: str = "", level: np.ndarray | None = None, sample_rate: int = 44100) -> None:
    """Write a PNG: shots as bands, cuts as lines, visual beats as stems (height = strength),
    motion as a curve, the music's beats and downbeats as ticks, and the music's level
    (``level``: :func:`level_curve` of the music at ``sample_rate``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = analysis.duration
    fig, (ax_v, ax_m) = plt.subplots(2, 1, figsize=(min(40, max(10, duration / 3)), 4.6), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 2]})
    palette = ("#e8eef7", "#f7efe4")
    for i, (a, z) in enumerate(analysis.shots):
        ax_v.axvspan(a, z, color=palette[i % 2], lw=0)
        ax_v.text((a + z) / 2, 1.04, f"shot {i}", ha="center", va="bottom", fontsize=8, color="#555")
    for c in analysis.cut_times:
        ax_v.axvline(c, color="#c0392b", lw=1.6, label="cut")
    if len(analysis.beat_times):
        ax_v.vlines(analysis.beat_times, 0, analysis.beat_strengths, color="#2c7fb8", lw=1.6, label="visual beat")
    seconds = np.arange(analysis.n_seconds) + 0.5
    motion = analysis.motion / (analysis.motion.max() + 1e-9)
    ax_v.plot(seconds, motion, color="#7f7f7f", lw=1, label="motion")
    ax_v.set_ylim(0, 1.15)
    ax_v.set_yticks([])
    ax_v.set_title(title or "picture and music on one time axis", loc="left", fontsize=10)

    if level is not None and level.size:
        hop = max(1, sample_rate // LEVEL_RATE)
        ax_m.fill_between(np.arange(len(level)) * hop / sample_rate, 0, level / (level.max() + 1e-9),
                          color="#d9d9d9", lw=0, label="music level")
    ax_m.vlines(beats, 0, 0.55, color="#31a354", lw=1, label="music beat")
    ax_m.vlines(downbeats, 0, 1.0, color="#006d2c", lw=2, label="downbeat")
    for c in analysis.cut_times:
        ax_m.axvline(c, color="#c0392b", lw=1.0, ls="--")
    ax_m.set_ylim(0, 1.05)
    ax_m.set_yticks([])
    ax_m.set_xlim(0, duration)
    ax_m.set_xlabel("time (s)")
    handles = {}
    for ax in (ax_v, ax_m):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": WRITER})
    plt.close(fig)
