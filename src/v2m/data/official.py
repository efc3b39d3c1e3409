"""The official ControllableV2M per-shot feature files, read into v2m's layout and written back.

The official preprocessing writes, per clip folder, for each shot ``<shot>.npz`` with ``area``
``(O, 1)``, ``hist`` ``(O, 3, 256)`` (BGR histograms, raw counts), ``s_pos`` ``(O, 2, 1)`` (start
position in [-1, 1]) and ``position`` ``(O, 2, seconds_of_shot)`` (trajectory relative to the start,
pixels), and ``<shot>.pt``, a torch-saved float16 ``(O, 768)`` CLIP ViT-L/14-336 tensor (loaded
with ``weights_only=True``: no code runs). O = 5 objects (4 + background).

The shots are :class:`~v2m.analysis.shot_objects.StadShot`; their array layouts for the model and
the datasets live beside that type.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..analysis.objects import mask_overview
from ..analysis.shot_objects import StadShot
from ..analysis.timeline import SUFFIX
from ..errors import V2MError
from ..fsutil import atomic_dir, atomic_path


def _npz_get(z, name: str) -> np.ndarray:
    for key in (name, f"{name}.npy"):
        if key in z.files:
            return z[key]
    raise KeyError(name)


def load_stad_shot(npz_path: str | os.PathLike, pt_path: str | os.PathLike) -> StadShot:
    import torch

    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: np.asarray(_npz_get(z, k), np.float32) for k in ("area", "hist", "s_pos", "position")}
        semantic = torch.load(pt_path, map_location="cpu", weights_only=True)
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise V2MError(f"not an official ControllableV2M shot file ({e})", npz_path) from None
    return StadShot(semantic=semantic.float().numpy(), hist=arrays["hist"], area=arrays["area"],
                    start=arrays["s_pos"][..., 0], position=arrays["position"])


def load_stad_clip(folder: str | os.PathLike) -> list[StadShot]:
    """Every shot of an official clip folder, in shot order."""
    folder = Path(folder)
    shots = sorted((p for p in folder.glob("*.npz") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not shots:
        raise V2MError("no <shot>.npz files", folder)
    return [load_stad_shot(p, p.with_suffix(".pt")) for p in shots]


def save_stad_clip(shots: list[StadShot], folder: str | os.PathLike) -> None:
    """Write ``shots`` as the official per-shot files ``<i>.npz`` + ``<i>.pt`` in ``folder``, with
    the official member names and dtypes (area, s_pos, position float64; hist float32; the CLIP
    tensor float16), each file atomically."""
    import torch

    folder = Path(folder)
    for i, shot in enumerate(shots):
        with atomic_path(folder / f"{i}.npz", suffix=".npz") as tmp:
            np.savez(tmp, area=shot.area.astype(np.float64), hist=shot.hist.astype(np.float32),
                     s_pos=shot.start[..., None].astype(np.float64), position=shot.position.astype(np.float64))
        with atomic_path(folder / f"{i}.pt", suffix=".pt") as tmp:
            torch.save(torch.from_numpy(np.ascontiguousarray(shot.semantic)).half(), tmp)


def write_analyses_objects(analyses: list, outputs: list[str], decomposer, progress: bool = True
                           ) -> list[tuple[str, str]]:
    """``v2m analyze --objects``: each analysed video's decomposition (``decomposer``, an
    :class:`~v2m.analysis.objects.ObjectDecomposer`) as ``<name>.objects/`` beside its analysis
    file ``outputs[i]`` (:func:`write_objects`). Returns the failures, (path, reason)."""
    from tqdm.auto import tqdm

    failed = []
    pairs = list(zip(analyses, outputs))
    for analysis, out in tqdm(pairs, desc="objects", unit="video", disable=None if progress and len(pairs) > 1 else True,
                              file=sys.stderr):
        video = analysis.meta["source"]["path"]
        folder = (out[: -len(SUFFIX)] if out.endswith(SUFFIX) else out) + ".objects"
        try:
            masks = []
            shots = decomposer.of_analysis(analysis, progress=progress, keep_masks=masks)
            write_objects(shots, masks, folder, video)
        except V2MError as e:
            failed.append((e.path or video, e.message))
    return failed


def write_objects(shots: list[StadShot], masks: list[tuple[np.ndarray, list[np.ndarray]]], folder: str | os.PathLike,
                  video: str = "") -> dict:
    """Write a decomposition (``v2m analyze --objects``) as one folder, atomically: the official
    per-shot files (``<i>.npz``, ``<i>.pt``; :func:`save_stad_clip`), ``objects.png``
    (:func:`v2m.analysis.objects.mask_overview`) and ``objects.json`` (per shot: seconds, objects
    found, their area shares and start positions). Returns the summary."""
    import json

    import cv2

    summary = {"video": video, "shots": [
        {"seconds": s.seconds, "objects": int((s.area[:, 0] > 0).sum()),
         "area": [round(float(a), 4) for a in s.area[:, 0]],
         "start": [[round(float(v), 4) for v in p] for p in s.start]} for s in shots]}
    with atomic_dir(folder) as tmp:
        save_stad_clip(shots, tmp)
        if masks:
            cv2.imwrite(str(tmp / "objects.png"), cv2.cvtColor(mask_overview(masks), cv2.COLOR_RGB2BGR))
        (tmp / "objects.json").write_text(json.dumps(summary, indent=1))
    return summary
