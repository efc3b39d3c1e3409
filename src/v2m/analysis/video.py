"""Analyse one video in a single streaming decode.

Each decoded frame is reduced at once (:func:`v2m.media.reduce_frame`, longest side ``size``,
256 by default) to the luma image that feeds the frame-difference curve and the shot detector,
then dropped. For every second the frame closest to the second's middle is kept until the second
ends; reduced the same way in colour (BT.601, :func:`v2m.media.reduce_frame_bgr`), it gives the
colour features and, when semantics are on, the CLIP embedding (from the frame itself, embedded
in batches as the decode goes). Memory therefore stays flat
whatever the video's length.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Callable

import av
import cv2
import numpy as np

from ..version import __version__
from ..workers import usable_cores
from ..errors import MediaError
from ..media import VideoReader, not_regular_file, reduce_frame_bgr, reduced_frames
from .color import RECIPES, color_descriptors, color_histogram
from .rhythm import BeatSettings, motion_per_second, per_second_flags, per_second_max, transition_mask, visual_beats
from .semantic import ClipEmbedder
from .shots import DETECTORS, make_detector
from .shots import REVISIONS as SHOT_REVISIONS
from .timeline import FORMAT, VERSION, Analysis


# Bumped whenever the reduction of frames (media.reduce_frame) changes the frame differences,
# so earlier analyses are redone (2: luma only, halved by 2x2 averaging then bilinear; 3: an odd
# last row or column dropped before halving, and the colour sample reduced the same way).
FRAME_REDUCTION_REVISION = 3


@dataclass(frozen=True)
class AnalysisSettings:
    """How a video is analysed. All fields but ``device`` and ``threads`` shape the result."""

    size: int = 256  # longest side of the reduced frames, in pixels
    shots: str = "scenedetect"  # shot detector: scenedetect | transnetv2
    shot_threshold: float | None = None  # None: the detector's default (27 / 0.5)
    min_shot: float = 0.5  # seconds
    beats: BeatSettings = field(default_factory=BeatSettings)
    color_recipe: str = "rgbuv32"
    clip: str | None = None  # CLIP hub id or directory; None: no semantics
    device: str = "auto"  # torch device for CLIP and TransNetV2
    threads: int = 0  # FFmpeg decoding threads (0 = every core but the one the analysis runs on)

    def __post_init__(self):
        if self.shots not in DETECTORS:
            raise ValueError(f"unknown shot detector {self.shots!r}; choose one of {', '.join(DETECTORS)}")
        if self.color_recipe not in RECIPES:
            raise ValueError(f"unknown colour recipe {self.color_recipe!r}; choose one of {', '.join(RECIPES)}")
        if self.size < 16:
            raise ValueError("analysis size must be at least 16 pixels")

    def shaping(self) -> dict:
        """The settings that change the result (recorded in every analysis file)."""
        d = asdict(self)
        d.pop("device")
        d.pop("threads")
        d["shot_detector_revision"] = SHOT_REVISIONS[self.shots]
        d["frame_reduction_revision"] = FRAME_REDUCTION_REVISION
        return d

    def key(self) -> str:
        text = json.dumps({"format": FORMAT, "version": VERSION, **self.shaping()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_key(path: str, chunk: int = 1 << 20) -> str:
    """A digest of the file's bytes (BLAKE2b-128): the same video under another name matches.

    Only a regular file is hashed: anything else (a named pipe, whose read would wait forever
    for a writer; a device) is a MediaError before it is opened. OSError when it cannot be read."""
    if problem := not_regular_file(os.stat(path).st_mode):
        raise MediaError(problem, path)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def reduced_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """(w, h) with the longest side at most ``longest``, aspect kept, never upscaled, even sides."""
    scale = min(1.0, longest / max(width, height))
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def _clip_input(frame: av.VideoFrame, rotation: int, shortest: int) -> np.ndarray:
    """The frame as RGB, upright, its shortest side reduced to at most ``shortest``."""
    w, h = frame.width, frame.height
    scale = min(1.0, shortest / min(w, h))
    rgb = frame.reformat(max(1, round(w * scale)), max(1, round(h * scale)), "rgb24", interpolation="AREA")
    img = rgb.to_ndarray()
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90)) if rotation else img


def decoding_threads(threads: int = 0) -> int:
    """FFmpeg's decoding threads for an analysis: ``threads``, or when 0 every core this process
    may use but one. The analysis itself (reduction, shots, colour) keeps one core busy while the
    decoder runs; FFmpeg's own choice (a thread per core, and one more) would compete with it
    (measured on 2 cores: 1.57 s instead of 1.65-1.72 s for a 60 s 720p video)."""
    return threads if threads > 0 else max(1, usable_cores() - 1)


@contextlib.contextmanager
def _opencv_on_one_thread():
    """OpenCV on the calling thread only, for the block. FFmpeg's decoding threads already keep
    every core busy; OpenCV's pool would only add hand-offs for images this small (about 10 %
    more CPU time on a 720p video). The setting is process-wide, so it is restored after."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class _SecondSampler:
    """Keeps, for the current second, the frame closest to its middle; emits one per second."""

    def __init__(self, on_sample: Callable[[int, float, av.VideoFrame, np.ndarray], None]):
        self._emit = on_sample
        self.second = 0
        self._best: tuple[float, float, av.VideoFrame, np.ndarray] | None = None
        self._last: tuple[float, av.VideoFrame, np.ndarray] | None = None

    def push(self, t: float, frame: av.VideoFrame, luma: np.ndarray) -> None:
        sec = int(math.floor(t + 1e-9))
        while sec > self.second:
            self._close_second()
        dist = abs(t - (sec + 0.5))
        if self._best is None or dist < self._best[0]:
            self._best = (dist, t, frame, luma)

    def _close_second(self) -> None:
        if self._best is not None:
            self._last = self._best[1:]
        if self._last is not None:  # a second without frames repeats the last sample
            self._emit(self.second, *self._last)
        self._best = None
        self.second += 1

    def finish(self, n_seconds: int) -> None:
        while self.second < n_seconds:
            self._close_second()


def analyze_video(
    path: str,
    settings: AnalysisSettings = AnalysisSettings(),
    embedder: ClipEmbedder | None = None,
    semantics_note: str | None = None,
    source_key: str | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> Analysis:
    """Analyse the video at ``path``. ``embedder`` (already loaded, its source must match
    ``settings.clip``) adds CLIP semantics; without it ``semantics_note`` says why not.
    ``progress(t, duration)`` is called about once per second of video."""
    with VideoReader(path, threads=decoding_threads(settings.threads)) as reader, _opencv_on_one_thread():
        info = reader.info
        w, h = reduced_size(info.width, info.height, settings.size)
        detector = make_detector(settings.shots, settings.shot_threshold, settings.min_shot, info.fps, settings.device)
        times: list[float] = []
        diffs: list[float] = []
        samples: dict[str, list] = {"t": [], "hist": [], "desc": []}
        clip_rows: list[np.ndarray] = []
        clip_pending: list[np.ndarray] = []
        clip_side = 0
        if embedder is not None:
            crop = embedder.processor.crop_size
            clip_side = 2 * max(crop["height"], crop["width"]) if isinstance(crop, dict) else 448

        def on_sample(second: int, t: float, frame: av.VideoFrame, luma: np.ndarray) -> None:
            rgb = cv2.cvtColor(reduce_frame_bgr(frame, w, h, luma=luma), cv2.COLOR_BGR2RGB)
            samples["t"].append(t)
            samples["hist"].append(color_histogram(rgb, settings.color_recipe))
            samples["desc"].append(color_descriptors(rgb))
            if embedder is not None:
                clip_pending.append(_clip_input(frame, info.rotation, clip_side))
                if len(clip_pending) >= embedder.batch_size:
                    clip_rows.append(embedder(clip_pending))
                    clip_pending.clear()
            if progress is not None:
                progress(t, info.duration)

        sampler = _SecondSampler(on_sample)
        prev_gray = None
        last_frame = None
        for t, frame, gray in reduced_frames(reader, w, h):
            detector.push(t, gray, frame)
            diffs.append(0.0 if prev_gray is None else cv2.norm(gray, prev_gray, cv2.NORM_L1) / (gray.size * 255.0))
            times.append(t)
            prev_gray = gray
            sampler.push(t, frame, gray)
            last_frame = frame

        if len(times) < 2:
            raise MediaError(f"has only {len(times)} frame; at least 2 frames are needed", path)
        if info.frame_count and len(times) < 0.98 * info.frame_count - 2:
            raise MediaError(
                f"truncated: the frames stop at {times[-1]:.2f} s ({len(times)} of the "
                f"{info.frame_count} frames its index lists)",
                path,
            )
        frame_times = np.asarray(times, np.float64)
        step = float(np.median(np.diff(frame_times)))
        if last_frame is not None and last_frame.duration and last_frame.time_base:
            step = float(last_frame.duration * last_frame.time_base)
        duration = float(frame_times[-1] + step)
        n_seconds = max(1, math.ceil(duration - 1e-6))
        sampler.finish(n_seconds)
        if clip_pending:
            clip_rows.append(embedder(clip_pending))
        transitions = detector.finish()

    frame_diff = np.asarray(diffs, np.float32)
    excluded = transition_mask(frame_times, transitions)
    beat_times, beat_strengths, _ = visual_beats(frame_times, frame_diff, excluded, settings.beats)
    starts = [0.0] + [end for _, end in transitions]
    ends = [start for start, _ in transitions] + [duration]
    desc = np.asarray(samples["desc"], np.float32).reshape(-1, 3)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "v2m_version": __version__,
        "source": {"path": path, "size_bytes": info.size_bytes, "content_key": source_key or content_key(path)},
        "probe": info.to_dict(),
        "settings": settings.shaping(),
        "settings_key": settings.key(),
        "duration": duration,
        "n_seconds": n_seconds,
        "n_frames": len(frame_times),
        "analysis_size": [w, h],
        "semantics": embedder.source if embedder is not None else None,
        "semantics_note": None if embedder is not None else (semantics_note or "semantics not requested"),
    }
    return Analysis(
        meta=meta,
        transitions=np.asarray(transitions, np.float64).reshape(-1, 2),
        shots=np.stack([starts, ends], axis=1).astype(np.float64),
        scene_cut=per_second_flags([end for _, end in transitions], n_seconds),
        frame_times=frame_times,
        frame_diff=frame_diff,
        beat_times=beat_times,
        beat_strengths=beat_strengths,
        pseudo_beat=per_second_max(beat_times, beat_strengths, n_seconds),
        motion=motion_per_second(frame_times, frame_diff, excluded, n_seconds),
        color_hist=np.asarray(samples["hist"], np.float32).reshape(n_seconds, -1),
        brightness=desc[:, 0].copy(),
        saturation=desc[:, 1].copy(),
        warmth=desc[:, 2].copy(),
        sample_times=np.asarray(samples["t"], np.float64),
        clip=np.concatenate(clip_rows).astype(np.float32) if clip_rows else None,
    )
