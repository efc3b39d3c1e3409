"""ControllableV2M's spatial-temporal decomposition: shots -> objects -> per-object features.

:class:`ObjectDecomposer` holds SAM (:class:`SamSegmenter`) and CLIP, loaded once, and turns a
video's shots (from :mod:`v2m.analysis`) into one :class:`~v2m.analysis.shot_objects.StadShot`
per shot that holds a second; it serves ``v2m analyze --objects``, ``v2m prepare --model stad``
and the ControllableV2M generator. :func:`shot_seconds` and :func:`sample_times` decide which
seconds and frames each shot gets; :func:`describe_shot` selects the objects on the shot's first
frame (:func:`select_objects`), tracks them once per second (:meth:`SamSegmenter.track`) and
computes their features. Any model with :class:`Segmenter`'s two methods can stand in for SAM.

When SAM or CLIP cannot be loaded, :class:`~v2m.errors.WeightsUnavailable` says so; objects are
never made up. What each step computes, and where it departs from the official code:
docs/stad.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..errors import MediaError
from ..media import VideoReader
from ..weights import load_pretrained, resolve_device
from .semantic import ClipEmbedder
from .shot_objects import StadShot

DEFAULT_SAM = "facebook/sam-vit-base"
SAM_ALIASES = {"base": "facebook/sam-vit-base", "large": "facebook/sam-vit-large", "huge": "facebook/sam-vit-huge"}
LONGEST_SIDE = 256  # the official preprocessing re-reads shots at this size
_PIXEL_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # SAM's normalisation (ImageNet)
_PIXEL_STD = np.array([0.229, 0.224, 0.225], np.float32)


class Segmenter(Protocol):
    """What the decomposition needs from a segmentation model."""

    def masks(self, image: np.ndarray) -> list[np.ndarray]:
        """Candidate object masks (bool [H, W]) of an RGB uint8 frame."""

    def track(self, image: np.ndarray, masks: list[np.ndarray]) -> list[np.ndarray]:
        """Each of ``masks`` (from an earlier frame) found again on ``image``."""


@dataclass(frozen=True)
class MaskSettings:
    """SAM's automatic mask generator settings (its published defaults; the official
    ControllableV2M run sets ``min_mask_region_area`` to 100)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 100


# --- mask geometry ---------------------------------------------------------------------------


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """``[x0, y0, x1, y1]`` (inclusive pixel bounds) of a mask, or None when it is empty."""
    rows, cols = np.any(mask, 1), np.any(mask, 0)
    if not rows.any():
        return None
    r = np.flatnonzero(rows)
    c = np.flatnonzero(cols)
    return np.array([c[0], r[0], c[-1], r[-1]], np.float32)


def mask_centre(mask: np.ndarray) -> np.ndarray | None:
    """Centre of the mask's box as ``(row, col)`` in pixels, as the official code measures it."""
    box = mask_box(mask)
    return None if box is None else np.array([(box[1] + box[3]) / 2, (box[0] + box[2]) / 2], np.float32)


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression (highest score first) at box IoU ``threshold``."""
    order = list(np.argsort(-scores, kind="stable"))
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep = []
    while order:
        i, rest = order[0], np.array(order[1:], int)
        keep.append(int(i))
        if not len(rest):
            break
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1, 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1, 0, None)
        iou = w * h / (area[i] + area[rest] - w * h)
        order = [int(j) for j in rest[iou <= threshold]]
    return keep


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Fill holes and drop islands smaller than ``min_area`` pixels (SAM's post-processing; when
    every island is small, the largest stays)."""
    out = mask.copy()
    for holes in (True, False):
        work = (~out if holes else out).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
        sizes = stats[1:, cv2.CC_STAT_AREA]
        small = np.flatnonzero(sizes < min_area) + 1
        if not len(small):
            continue
        if holes:
            out = out | np.isin(labels, small)
        else:
            keep = np.flatnonzero(sizes >= min_area) + 1
            if not len(keep):
                keep = [int(np.argmax(sizes)) + 1]
            out = np.isin(labels, keep)
    return out


def select_objects(masks: list[np.ndarray], n_objects: int = 5, max_overlap: float = 0.4) -> list[np.ndarray]:
    """The official selection: sort by area (largest first), keep the largest, then accept a
    mask when no kept mask covers more than ``max_overlap`` of its pixels, until ``n_objects - 1``
    are kept; the last object is the background, NOT(union of the kept masks)."""
    ranked = sorted((m for m in masks if m.any()), key=lambda m: int(m.sum()), reverse=True)
    kept: list[np.ndarray] = []
    for m in ranked:
        if len(kept) >= n_objects - 1:
            break
        size = m.sum()
        if all(np.logical_and(m, k).sum() / size <= max_overlap for k in kept):
            kept.append(m)
    shape = masks[0].shape if masks else None
    union = np.logical_or.reduce(kept) if kept else (np.zeros(shape, bool) if shape else None)
    return kept + ([~union] if union is not None else [])


# --- SAM -------------------------------------------------------------------------------------


class SamSegmenter:
    """SAM (transformers ``SamModel``) as automatic mask generator and box-prompted tracker."""

    def __init__(self, source: str = DEFAULT_SAM, device: str = "auto", settings: MaskSettings = MaskSettings(),
                 model=None, flag: str = ""):
        """``flag``: the command's option that turns the objects off, named when the weights
        cannot be loaded (none by default: the caller knows which command it serves)."""
        import torch
        from transformers import SamModel

        self.source = SAM_ALIASES.get(source, source)
        self.device = resolve_device(device)
        if model is None:  # a ready SamModel may be passed instead (benchmarks, custom loading)
            model = load_pretrained(SamModel, self.source, "SAM", flag=flag)
        self.model = model.to(self.device).eval()
        self.dtype = next(self.model.parameters()).dtype
        self.size = int(self.model.config.vision_config.image_size)
        self.settings = settings
        self._torch = torch

    def _embed(self, image: np.ndarray):
        """SAM's input recipe: longest side resized to the model's size, normalised, padded at
        the bottom right; returns the image embedding and the resize factor."""
        torch = self._torch
        h, w = image.shape[:2]
        scale = self.size / max(h, w)
        rh, rw = int(h * scale + 0.5), int(w * scale + 0.5)
        x = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        x = np.pad((x - _PIXEL_MEAN) / _PIXEL_STD, ((0, self.size - rh), (0, self.size - rw), (0, 0)))
        pixels = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(self.device, self.dtype)
        with torch.inference_mode():
            return self.model.get_image_embeddings(pixels), scale, (rh, rw)

    def _logits(self, low, h: int, w: int, resized: tuple[int, int]):
        """Low-resolution mask logits [N, h', w'] (the padded input square) -> logits at the
        frame's size [N, h, w]: the part covering the image, resized straight to the frame (SAM
        goes through the 1024 px square first, 16x the work for the same masks up to a pixel)."""
        F = self._torch.nn.functional
        scale = low.shape[-1] / self.size
        x = low[:, None, : max(1, round(resized[0] * scale)), : max(1, round(resized[1] * scale))].float()
        return F.interpolate(x, (h, w), mode="bilinear", align_corners=False)[:, 0]

    def masks(self, image: np.ndarray) -> list[np.ndarray]:
        torch, s = self._torch, self.settings
        h, w = image.shape[:2]
        emb, scale, resized = self._embed(image)
        n = s.points_per_side
        grid = (np.arange(n) + 0.5) / n
        points = np.stack(np.meshgrid(grid * w, grid * h), -1).reshape(-1, 2).astype(np.float32) * scale
        found, scores = [], []
        for i in range(0, len(points), s.points_per_batch):
            p = torch.from_numpy(points[i : i + s.points_per_batch]).to(self.device, self.dtype)
            with torch.inference_mode():
                out = self.model(image_embeddings=emb, input_points=p[None, :, None, :],
                                 input_labels=torch.ones(1, len(p), 1, dtype=torch.long, device=self.device),
                                 multimask_output=True)
            iou = out.iou_scores[0].flatten().float()
            logits = self._logits(out.pred_masks[0].flatten(0, 1), h, w, resized)
            hi = (logits > s.stability_score_offset).flatten(1).sum(1)
            lo = (logits > -s.stability_score_offset).flatten(1).sum(1)
            stable = hi.float() / lo.clamp(min=1).float()
            ok = (iou > s.pred_iou_thresh) & (stable >= s.stability_score_thresh) & (hi > 0)
            for j in torch.nonzero(ok).flatten().tolist():
                found.append((logits[j] > 0).cpu().numpy())
                scores.append(float(iou[j]))
        found, scores = self._dedupe(found, np.array(scores, np.float32))
        cleaned = [remove_small_regions(m, s.min_mask_region_area) for m in found]
        changed = np.array([not np.array_equal(a, b) for a, b in zip(found, cleaned)], np.float32)
        cleaned, _ = self._dedupe(cleaned, 1.0 - changed)  # SAM prefers masks the clean-up left alone
        return cleaned

    def _dedupe(self, masks: list[np.ndarray], scores: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        pairs = [(m, sc, mask_box(m)) for m, sc in zip(masks, scores) if m.any()]
        if not pairs:
            return [], np.zeros(0, np.float32)
        keep = box_nms(np.stack([b for *_, b in pairs]), np.array([sc for _, sc, _ in pairs]), self.settings.box_nms_thresh)
        return [pairs[i][0] for i in keep], np.array([pairs[i][1] for i in keep], np.float32)

    def track(self, image: np.ndarray, masks: list[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        live = [i for i, m in enumerate(masks) if m.any()]
        out = [m.copy() for m in masks]
        if not live:
            return out
        h, w = image.shape[:2]
        emb, scale, resized = self._embed(image)
        boxes = np.stack([mask_box(masks[i]) for i in live]) * scale
        points = np.stack([interior_point(masks[i]) for i in live]).astype(np.float32) * scale
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device, self.dtype)  # noqa: E731
        with torch.inference_mode():
            pred = self.model(image_embeddings=emb, input_boxes=as_t(boxes)[None], input_points=as_t(points)[None, :, None],
                              input_labels=torch.ones(1, len(live), 1, dtype=torch.long, device=self.device),
                              multimask_output=False)
        logits = self._logits(pred.pred_masks[0, :, 0], h, w, resized)
        for k, i in enumerate(live):
            found = (logits[k] > 0).cpu().numpy()
            if found.any():
                out[i] = found
        return out


def interior_point(mask: np.ndarray) -> np.ndarray:
    """``(x, y)`` of the mask pixel farthest from its edge: a point prompt surely inside it."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return np.array([c, r], np.float32)


# --- per-object features ---------------------------------------------------------------------


def bgr_histograms(image_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BGR histograms (3, 256) of the mask's pixels, raw counts."""
    pixels = image_rgb[mask]
    return np.stack([np.bincount(pixels[:, c], minlength=256) for c in (2, 1, 0)]).astype(np.float32)


def describe_shot(frames: list[np.ndarray], segmenter: Segmenter, embedder, n_objects: int = 5,
                  max_overlap: float = 0.4, keep_masks: list | None = None) -> StadShot:
    """One shot's objects and features from its sampled RGB frames (frame 0 = the shot's first
    frame, then one per second); the steps are described in docs/stad.md."""
    first = frames[0]
    h, w = first.shape[:2]
    objects = select_objects(segmenter.masks(first), n_objects, max_overlap)
    if not objects:
        objects = [np.ones((h, w), bool)]
    tracked_objects = objects[:-1]  # the background follows from the others
    per_frame = [objects]
    for frame in frames[1:]:
        tracked_objects = segmenter.track(frame, tracked_objects)
        union = np.logical_or.reduce(tracked_objects) if tracked_objects else np.zeros((h, w), bool)
        per_frame.append(tracked_objects + [~union])
    if keep_masks is not None:
        keep_masks.append((first, objects))

    k, O = len(objects), n_objects
    dim = getattr(embedder, "dim", 768)
    semantic = np.zeros((O, dim), np.float32)
    present = [i for i, m in enumerate(objects) if m.any()]
    if present:
        masked = [np.where(objects[i][..., None], first, 0).astype(np.uint8) for i in present]
        semantic[present] = embedder(masked)
    hist = np.zeros((O, 3, 256), np.float32)
    area = np.zeros((O, 1), np.float32)
    start = np.zeros((O, 2), np.float32)
    position = np.zeros((O, 2, len(frames)), np.float32)
    for i in range(k):
        hist[i] = bgr_histograms(first, objects[i])
        area[i] = objects[i].sum()
        centre = mask_centre(objects[i])
        if centre is None:
            continue
        start[i] = (centre / np.array([h, w], np.float32) - 0.5) * 2
        last = centre
        for j, masks in enumerate(per_frame):
            c = mask_centre(masks[i])
            last = last if c is None else c  # a lost object stays where it was last seen
            position[i, :, j] = last - centre
    area /= max(float(area.sum()), 1.0)
    return StadShot(semantic=semantic, hist=hist, area=area, start=start, position=position)


# --- the video -------------------------------------------------------------------------------


def shot_seconds(shots: np.ndarray, duration: float) -> list[tuple[int, int, int]]:
    """``(shot index, first second, end second)`` for every shot that holds at least one second's
    middle; seconds are ``0 .. ceil(duration) - 1``."""
    n = int(np.ceil(duration - 1e-6))
    starts = np.asarray(shots, np.float64).reshape(-1, 2)[:, 0]
    mids = np.minimum(np.arange(n) + 0.5, max(duration - 1e-3, 0.0))
    owner = np.clip(np.searchsorted(starts, mids, side="right") - 1, 0, len(starts) - 1)
    out = []
    for s in range(n):
        if out and out[-1][0] == owner[s]:
            out[-1][2] = s + 1
        else:
            out.append([int(owner[s]), s, s + 1])
    return [tuple(x) for x in out]


def sample_times(shots: np.ndarray, duration: float) -> list[tuple[int, list[float]]]:
    """Per shot with seconds: its index and the times of its samples (first frame, then the start
    of each following second)."""
    starts = np.asarray(shots, np.float64).reshape(-1, 2)[:, 0]
    return [(i, [max(float(starts[i]), 0.0)] + [float(t) for t in range(a + 1, b)])
            for i, a, b in shot_seconds(shots, duration)]


def read_frames_at(video: str, times: list[float], longest: int = LONGEST_SIDE, progress=None) -> list[np.ndarray]:
    """RGB uint8 frames (longest side ``longest``) at each of ``times`` (seconds, ascending): the
    first frame at or after each time (the last frame for times past the end)."""
    order = np.argsort(times, kind="stable")
    out: list[np.ndarray | None] = [None] * len(times)
    with VideoReader(video) as reader:
        info = reader.info
        scale = longest / max(info.width, info.height)
        size = (max(2, int(round(info.width * scale / 2)) * 2), max(2, int(round(info.height * scale / 2)) * 2))
        half = 0.5 / info.fps if info.fps > 0 else 0.02
        k, last = 0, None
        for t, frame in reader.frames():
            if k >= len(order):
                break
            if t + half < times[order[k]]:
                continue
            last = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
            while k < len(order) and t + half >= times[order[k]]:
                out[order[k]] = last
                k += 1
                if progress is not None:
                    progress(1)
    if last is None:
        raise MediaError("no frames could be read for the object decomposition", video)
    return [last if f is None else f for f in out]


class ObjectDecomposer:
    """SAM and CLIP, loaded once, decomposing any number of videos (docs/stad.md): the
    one driver of ``v2m analyze --objects``, ``v2m prepare --model stad`` and the ControllableV2M
    generator. ``segmenter`` / ``embedder`` replace SAM / CLIP (loaded from ``sam`` / ``clip``
    otherwise); ``flag`` is the command's option that turns the objects off, named when the
    weights cannot be loaded."""

    def __init__(self, sam: str = DEFAULT_SAM, clip: str = "stad", device: str = "auto", n_objects: int = 5, *,
                 segmenter: Segmenter | None = None, embedder=None, flag: str = ""):
        self.segmenter = segmenter or SamSegmenter(sam, device=device, flag=flag)
        self.embedder = embedder or ClipEmbedder(clip, device=device, flag=flag)
        self.n_objects = n_objects

    def __call__(self, video: str, shots, duration: float, *, progress: bool = False,
                 keep_masks: list | None = None) -> list[StadShot]:
        """The video's shots as ControllableV2M objects, in order, covering its ``ceil(duration)``
        seconds. ``shots``: ``[N, 2]`` (start, end) seconds from the video's analysis.
        ``keep_masks``: a list that receives each shot's first frame and object masks (for
        :func:`mask_overview`)."""
        plan = sample_times(shots, duration)
        times = [t for _, ts in plan for t in ts]
        bar = tqdm(total=len(times) + len(plan), desc=f"objects {os.path.basename(video)}", unit="frame",
                   disable=None if progress else True, leave=False)
        try:
            frames = read_frames_at(video, times, progress=bar.update)
            out, k = [], 0
            for _, ts in plan:
                out.append(describe_shot(frames[k : k + len(ts)], self.segmenter, self.embedder, self.n_objects,
                                         keep_masks=keep_masks))
                k += len(ts)
                bar.update(1)
        finally:
            bar.close()
        return out

    def of_analysis(self, analysis, **kwargs) -> list[StadShot]:
        """The decomposition of the video an :class:`~v2m.analysis.timeline.Analysis` describes."""
        return self(analysis.meta["source"]["path"], analysis.shots, analysis.duration, **kwargs)


def decompose(video: str, shots, duration: float, *, sam: str = DEFAULT_SAM, clip: str = "stad",
              device: str = "auto", n_objects: int = 5, segmenter: Segmenter | None = None, embedder=None,
              progress: bool = False, keep_masks: list | None = None) -> list[StadShot]:
    """One video's decomposition: :class:`ObjectDecomposer` for a single call."""
    decomposer = ObjectDecomposer(sam, clip, device, n_objects, segmenter=segmenter, embedder=embedder)
    return decomposer(video, shots, duration, progress=progress, keep_masks=keep_masks)


def mask_overview(frames_and_masks: list[tuple[np.ndarray, list[np.ndarray]]], width: int = 256) -> np.ndarray:
    """One RGB picture: each shot's first frame with its objects tinted (background untinted),
    shots side by side in rows of four."""
    colours = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                        (145, 30, 180), (70, 240, 240)], np.float32)
    tiles = []
    for frame, masks in frames_and_masks:
        tile = frame.astype(np.float32)
        for i, m in enumerate(masks[:-1]):
            tile[m] = 0.45 * tile[m] + 0.55 * colours[i % len(colours)]
        h = int(round(frame.shape[0] * width / frame.shape[1]))
        tiles.append(cv2.resize(tile.astype(np.uint8), (width, h), interpolation=cv2.INTER_AREA))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 4 if len(tiles) > 4 else 0)
    rows = [np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)]
    return np.concatenate(rows, 0)
