"""The official Diff-V2M on-disk layout, written from and read into v2m analyses.

The official code (Tayjsl97/Diff-V2M-Code, ``audio_video_dir`` datasets) pairs files by sorted
stem and reads, per dataset:

- ``video_feat``: a folder of ``<stem>.npy``, CLIP embeddings ``[T, 512]`` (float32);
- ``video_color``: a folder of ``<stem>.npy``, colour histograms ``[T, 3072]`` (float32);
- ``video_info``: one JSON file ``{"<stem>.mp4": {"scene_cut": [T ints 0/1],
  "pseudo_beats": [T floats]}}`` (the key always ends in ``.mp4``, whatever the container).

v2m writes ``clip/``, ``color/`` and ``video_info.json`` under one folder; the official dataset
config then points ``video_feat``, ``video_color`` and ``video_info`` at them. Clips longer than
the model's 30 s are cut by ``v2m prepare``; this export keeps each video's whole timeline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import V2MError
from ..fsutil import atomic_path, write_bytes_atomic
from .timeline import Analysis

INFO_FILE = "video_info.json"


def _stem(analysis: Analysis) -> str:
    return Path(analysis.meta["source"]["path"]).stem


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array, np.float32))


def write_features(out_dir: str | os.PathLike, items, clip_dir: str = "clip", color_dir: str = "color",
                   info_file: str = INFO_FILE) -> None:
    """Write ``items`` ``(stem, clip or None, color, scene_cut, pseudo_beat)`` in the official
    layout: ``<clip_dir>/<stem>.npy``, ``<color_dir>/<stem>.npy`` and one info JSON, merged
    with what the folder already holds."""
    out = Path(out_dir)
    info_path = out / info_file
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    for stem, clip, color, scene_cut, pseudo_beat in items:
        _save_npy(out / color_dir / f"{stem}.npy", color)
        if clip is not None:
            _save_npy(out / clip_dir / f"{stem}.npy", clip)
        info[f"{stem}.mp4"] = {"scene_cut": [int(x) for x in scene_cut],
                               "pseudo_beats": [round(float(x), 6) for x in pseudo_beat]}
    write_bytes_atomic(info_path, json.dumps(info, indent=1, sort_keys=True).encode())


def export_diffv2m(analyses: list[Analysis], out_dir: str | os.PathLike, warn=None) -> list[str]:
    """Write ``analyses`` in the official layout under ``out_dir``; returns the stems written.

    ``video_info.json`` is merged with what the folder already holds. Two videos with one stem
    cannot both live in this layout: the second is refused with an error."""
    items, seen = [], set()
    for a in analyses:
        stem = _stem(a)
        if stem in seen:
            raise V2MError(f"two videos share the stem {stem!r}; the Diff-V2M layout pairs files by stem",
                           a.meta["source"]["path"])
        seen.add(stem)
        if a.clip is None and warn is not None:
            warn(f"v2m: warning: {a.meta['source']['path']}: no CLIP features, clip/{stem}.npy not written")
        items.append((stem, a.clip, a.color_hist, a.scene_cut, a.pseudo_beat))
    write_features(out_dir, items)
    return [item[0] for item in items]


def read_diffv2m(folder: str | os.PathLike, stem: str) -> dict[str, np.ndarray]:
    """One video's features from the official layout: ``clip`` (if present), ``color``,
    ``scene_cut`` and ``pseudo_beat``, as arrays."""
    folder = Path(folder)
    info = json.loads((folder / INFO_FILE).read_text())
    key = f"{stem}.mp4"
    if key not in info:
        raise V2MError(f"{key} is not in {INFO_FILE}", folder)
    out = {
        "color": np.load(folder / "color" / f"{stem}.npy", allow_pickle=False),
        "scene_cut": np.asarray(info[key]["scene_cut"], np.int64),
        "pseudo_beat": np.asarray(info[key]["pseudo_beats"], np.float32),
    }
    clip = folder / "clip" / f"{stem}.npy"
    if clip.exists():
        out["clip"] = np.load(clip, allow_pickle=False)
    return out
