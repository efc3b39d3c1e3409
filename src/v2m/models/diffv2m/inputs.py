"""Diff-V2M's input processor: a window of per-second video features -> one item of model inputs.

The analysis (:class:`~v2m.analysis.timeline.Analysis`) and the prepared datasets hold one row
per second under the same names: ``clip`` [T, D], ``color_hist`` [T, 3072], ``scene_cut`` [T]
and ``pseudo_beat`` [T]. :func:`window_inputs` cuts a window's seconds out of them, zero-pads
them to the model's ``max_seconds`` with a ``mask`` (True on real seconds) and adds the timing
and class label, under the names :class:`~.conditioning.Conditioner` reads. The generator (one
item per window) and the training data (one item per clip) both make their items here, and both
batch them with torch's default collate.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ...analysis.timeline import fit_length

# per-second feature -> (the conditioner's name for it, dtype)
FEATURES = {"clip": ("clip", np.float32), "color_hist": ("color", np.float32), "scene_cut": ("scene_cut", np.int64),
            "pseudo_beat": ("pseudo_beat", np.float32)}
NO_CLIP_WIDTH = 512  # the zero rows standing in for CLIP when a dataset was prepared without it
DEFAULT_CLASS = 2  # the official class label when a clip has none


def window_inputs(features: Mapping[str, np.ndarray], start: int, seconds: int, max_seconds: int, *,
                  seconds_start: float = 0.0, seconds_total: float | None = None,
                  class_label: int | None = None) -> dict:
    """Seconds [start, start + seconds) of the per-second ``features`` as one item: each feature
    zero-padded to ``max_seconds`` rows, ``mask`` True on the first ``seconds``, the timing
    (``seconds_total`` defaults to ``seconds``) and ``class_label`` (None: 2). Without ``clip``
    (absent or None), its rows are zeros of :data:`NO_CLIP_WIDTH`."""
    item = {}
    for name, (key, dtype) in FEATURES.items():
        if features.get(name) is not None:
            values = np.asarray(features[name])[start : start + seconds]
            item[key] = torch.from_numpy(fit_length(values, max_seconds).astype(dtype))
    item.setdefault("clip", torch.zeros(max_seconds, NO_CLIP_WIDTH))
    item["mask"] = torch.from_numpy(np.arange(max_seconds) < seconds)
    item["seconds_start"] = float(seconds_start)
    item["seconds_total"] = float(seconds if seconds_total is None else seconds_total)
    item["class_label"] = DEFAULT_CLASS if class_label is None else int(class_label)
    return item
