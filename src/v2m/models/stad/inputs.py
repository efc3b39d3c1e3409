"""ControllableV2M's input processor: the shots and objects of a window -> one item of model inputs.

A video's decomposition (:mod:`v2m.analysis.objects`) and a prepared dataset's clip are shots
that follow each other (:class:`~v2m.analysis.shot_objects.StadShot`). :func:`window_inputs`
takes a window's seconds of them and lays them out as the video encoder reads them
(:func:`~v2m.analysis.shot_objects.clip_tensors`: shots padded to ``max_shots``, objects to
``n_objects``, seconds to ``max_seconds``, with ``time_mask``). The generator (one item per
window) and the training data (one item per clip) both make their items here, and both batch
them with torch's default collate.
"""

from __future__ import annotations

import torch

from ...analysis.shot_objects import StadShot, clip_tensors, window_shots
from .model import VIDEO_KEYS

INPUTS = (*VIDEO_KEYS, "time_mask")


def window_inputs(shots: list[StadShot], start: int, seconds: int, max_shots: int, n_objects: int,
                  max_seconds: int) -> dict[str, torch.Tensor]:
    """Seconds [start, start + seconds) of the consecutive ``shots`` as one item: the object
    streams (``semantic``, ``hist``, ``area``, ``start``, ``move``) and ``time_mask``."""
    laid_out = clip_tensors(window_shots(shots, start, seconds), max_shots, n_objects, max_seconds)
    return {k: torch.from_numpy(laid_out[k]) for k in INPUTS}
