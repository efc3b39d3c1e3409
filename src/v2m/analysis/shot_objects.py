"""A shot of the ControllableV2M decomposition and the array layouts made from shots.

:class:`StadShot` holds one shot's objects: CLIP semantics, colour histograms, areas, start
positions and trajectories (:mod:`v2m.analysis.objects` makes them; the official per-shot files
are read and written by :mod:`v2m.data.official`). :func:`clip_tensors` lays a clip out for the
model: shots padded to ``max_shots``, each shot's trajectory placed after the previous shots'
seconds on a ``seconds``-long timeline (as the official data loader), every stream shot-major
(the official loader orders the semantic stream object-major, which mixes objects: defect 2 in
stad.md), with masks for the padding. :func:`pack_shots` / :func:`unpack_shots` flatten shots for
dataset files; :func:`window_shots` and :func:`merge_shots` cut and join them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StadShot:
    semantic: np.ndarray  # (O, 768) float32
    hist: np.ndarray  # (O, 3, 256) float32
    area: np.ndarray  # (O, 1) float32
    start: np.ndarray  # (O, 2) float32
    position: np.ndarray  # (O, 2, seconds) float32

    @property
    def seconds(self) -> int:
        return int(self.position.shape[2])


def window_shots(shots: list[StadShot], start: int, seconds: int) -> list[StadShot]:
    """The shots of seconds [start, start + seconds) of a video whose ``shots`` follow each other,
    each cut to its seconds inside the window (trajectory and all)."""
    out, t = [], 0
    for shot in shots:
        a, b = t, t + shot.seconds
        t = b
        lo, hi = max(a, start), min(b, start + seconds)
        if hi <= lo:
            continue
        position = shot.position[..., lo - a : hi - a]
        out.append(StadShot(shot.semantic, shot.hist, shot.area, shot.start, position))
    return out


def merge_shots(shots: list[StadShot], max_shots: int) -> list[StadShot]:
    """At most ``max_shots`` shots covering the same seconds: while there are more, the shortest
    shot joins the one before it (the first joins the second), which keeps its objects and
    continues its trajectory from where it ended with the merged shot's movement. The official
    code drops the shots after the 10th, and with them the video of their seconds."""
    shots = list(shots)
    while len(shots) > max(1, max_shots):
        i = min(range(len(shots)), key=lambda k: (shots[k].seconds, -k))
        a, b = (i - 1, i) if i > 0 else (0, 1)
        keep, tail = shots[a], shots[b]
        if b == i:
            o = min(keep.position.shape[0], tail.position.shape[0])
            moved = tail.position[:o] + (keep.position[:o, :, -1:] if keep.seconds else 0.0)
            position = np.concatenate([keep.position[:o], moved], axis=2)
            shots[a : b + 1] = [StadShot(keep.semantic, keep.hist, keep.area, keep.start, position)]
        else:  # the first shot is the shortest: the second takes its seconds, before its own
            o = min(keep.position.shape[0], tail.position.shape[0])
            still = np.zeros_like(keep.position[:o])  # its objects wait at their start position
            position = np.concatenate([still, tail.position[:o]], axis=2)
            shots[a : b + 1] = [StadShot(tail.semantic, tail.hist, tail.area, tail.start, position)]
    return shots


def clip_tensors(shots: list[StadShot], max_shots: int = 10, n_objects: int = 5, seconds: int = 35) -> dict:
    """Padded arrays for one clip: ``semantic`` (S, O, D) (D = 768 for CLIP ViT-L/14-336),
    ``hist`` (S, O, 3, 256), ``area`` (S, O, 1), ``start`` (S, O, 2), ``move`` (seconds, S, O, 2),
    ``shot_mask`` (S,), ``time_mask`` (seconds,), ``shot_of_second`` (seconds,) (-1 after the last
    shot). More than ``max_shots`` shots are merged (:func:`merge_shots`)."""
    S, O = max_shots, n_objects
    shots = merge_shots(shots, S)
    dim = shots[0].semantic.shape[1] if shots else 768
    out = {"semantic": np.zeros((S, O, dim), np.float32), "hist": np.zeros((S, O, 3, 256), np.float32),
           "area": np.zeros((S, O, 1), np.float32), "start": np.zeros((S, O, 2), np.float32),
           "move": np.zeros((seconds, S, O, 2), np.float32), "shot_mask": np.zeros(S, bool),
           "time_mask": np.zeros(seconds, bool), "shot_of_second": np.full(seconds, -1, np.int64)}
    t = 0
    for s, shot in enumerate(shots[:S]):
        o = min(O, shot.semantic.shape[0])
        out["semantic"][s, :o] = shot.semantic[:o]
        out["hist"][s, :o] = shot.hist[:o]
        out["area"][s, :o] = shot.area[:o]
        out["start"][s, :o] = shot.start[:o]
        n = max(0, min(shot.seconds, seconds - t))
        out["move"][t : t + n, s, :o] = np.moveaxis(shot.position[:o, :, :n], 2, 0)
        out["shot_mask"][s] = True
        out["time_mask"][t : t + n] = True
        out["shot_of_second"][t : t + n] = s
        t += n
    return out


def pack_shots(shots: list[StadShot]) -> dict[str, np.ndarray]:
    """A clip's shots as flat arrays for a dataset file: ``obj_semantic`` (S, O, D) float16,
    ``obj_hist`` (S, O, 3, 256), ``obj_area`` (S, O, 1), ``obj_start`` (S, O, 2), ``obj_position``
    (O, 2, seconds) (the shots' trajectories one after the other) and ``obj_seconds`` (S,)."""
    return {"obj_semantic": np.stack([s.semantic for s in shots]).astype(np.float16),
            "obj_hist": np.stack([s.hist for s in shots]).astype(np.float32),
            "obj_area": np.stack([s.area for s in shots]).astype(np.float32),
            "obj_start": np.stack([s.start for s in shots]).astype(np.float32),
            "obj_position": np.concatenate([s.position for s in shots], axis=2).astype(np.float32),
            "obj_seconds": np.array([s.seconds for s in shots], np.int32)}


def unpack_shots(arrays) -> list[StadShot]:
    """The inverse of :func:`pack_shots`."""
    bounds = np.concatenate([[0], np.cumsum(arrays["obj_seconds"])])
    return [StadShot(np.asarray(arrays["obj_semantic"][i], np.float32), arrays["obj_hist"][i], arrays["obj_area"][i],
                     arrays["obj_start"][i], arrays["obj_position"][..., bounds[i] : bounds[i + 1]])
            for i in range(len(bounds) - 1)]
