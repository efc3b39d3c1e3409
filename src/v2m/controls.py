"""ControllableV2M's control vocabulary, shared by every v2m generator.

``--music-control FEATURE,WEIGHT``
    scales one music feature: ``pitch`` (register), ``loudness`` (dynamics), ``chroma``
    (harmonic colour), ``spectral`` (brightness of the sound), or ``all``.
``--video-control SHOT,OBJ,FEATURE,WEIGHT``
    scales one video feature of one shot (0-based; -1 = every shot) and object (-1 = every
    object): ``semantic``, ``color``, ``move``, ``area``, ``position``, or ``all``. For example
    ``2,-1,move,0.5`` halves the motion of shot 2, calming its music.

Weights are non-negative numbers; 1 leaves a feature as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .theory import parse_key

MUSIC_FEATURES = ("pitch", "chroma", "loudness", "spectral")
VIDEO_FEATURES = ("semantic", "color", "move", "area", "position")


class ControlError(ValueError):
    """A malformed control; the message names the allowed values."""


def _weight(text: str, spec: str) -> float:
    try:
        w = float(text)
    except ValueError:
        raise ControlError(f"{spec!r}: WEIGHT must be a number, got {text!r}") from None
    if not math.isfinite(w) or w < 0:
        raise ControlError(f"{spec!r}: WEIGHT must be a finite number >= 0, got {text!r}")
    return w


@dataclass(frozen=True)
class MusicControl:
    feature: str  # one of MUSIC_FEATURES or "all"
    weight: float

    @classmethod
    def parse(cls, spec: str) -> "MusicControl":
        parts = [p.strip() for p in spec.split(",")]
        allowed = ", ".join((*MUSIC_FEATURES, "all"))
        if len(parts) != 2:
            raise ControlError(f"music control {spec!r} must be FEATURE,WEIGHT (FEATURE: {allowed})")
        feature = parts[0].lower()
        if feature not in (*MUSIC_FEATURES, "all"):
            raise ControlError(f"music control {spec!r}: unknown feature {parts[0]!r}; allowed: {allowed}")
        return cls(feature, _weight(parts[1], spec))

    def applies_to(self, feature: str) -> bool:
        return self.feature in ("all", feature)


@dataclass(frozen=True)
class VideoControl:
    shot: int  # -1 = every shot
    obj: int  # -1 = every object
    feature: str  # one of VIDEO_FEATURES or "all"
    weight: float

    @classmethod
    def parse(cls, spec: str) -> "VideoControl":
        parts = [p.strip() for p in spec.split(",")]
        allowed = ", ".join((*VIDEO_FEATURES, "all"))
        if len(parts) != 4:
            raise ControlError(f"video control {spec!r} must be SHOT,OBJ,FEATURE,WEIGHT (FEATURE: {allowed}; "
                               "SHOT and OBJ are 0-based, -1 = all)")
        try:
            shot, obj = int(parts[0]), int(parts[1])
        except ValueError:
            raise ControlError(f"video control {spec!r}: SHOT and OBJ must be integers >= -1") from None
        if shot < -1 or obj < -1:
            raise ControlError(f"video control {spec!r}: SHOT and OBJ must be integers >= -1")
        feature = parts[2].lower()
        if feature not in (*VIDEO_FEATURES, "all"):
            raise ControlError(f"video control {spec!r}: unknown feature {parts[2]!r}; allowed: {allowed}")
        return cls(shot, obj, feature, _weight(parts[3], spec))

    def applies_to(self, feature: str, shot: int) -> bool:
        return self.feature in ("all", feature) and self.shot in (-1, shot)


@dataclass(frozen=True)
class Controls:
    """Everything a user can steer, for any generator."""

    music: tuple[MusicControl, ...] = ()
    video: tuple[VideoControl, ...] = ()
    tempo: float | None = None  # beats per minute; None = chosen from the video
    key: str | None = None  # e.g. "D minor", "F# major"; None = chosen from the video

    @classmethod
    def parse(cls, music=(), video=(), tempo=None, key=None) -> "Controls":
        if tempo is not None and not (20 <= tempo <= 300):
            raise ControlError(f"tempo must be between 20 and 300 BPM, got {tempo}")
        if key is not None:
            key = parse_key(key).name
        return cls(tuple(MusicControl.parse(s) for s in music), tuple(VideoControl.parse(s) for s in video),
                   tempo, key)

    def music_weight(self, feature: str) -> float:
        """The product of the weights of every music control on ``feature``."""
        w = 1.0
        for c in self.music:
            if c.applies_to(feature):
                w *= c.weight
        return w

    def missing_shots(self, n_shots: int) -> list[int]:
        """Shots that video controls name but a video with ``n_shots`` shots does not have."""
        return sorted({c.shot for c in self.video if c.shot >= n_shots})

    def video_weight(self, feature: str, shot: int) -> float:
        """The product of the weights of every video control on ``feature`` of ``shot`` (all objects
        of a shot count, since a shot-level feature belongs to all of them)."""
        w = 1.0
        for c in self.video:
            if c.applies_to(feature, shot):
                w *= c.weight
        return w
