"""What the web app does, without the page: check an upload, keep each session's files in its own
folder (removed when the session ends or after a time limit), score a video or three variations
of it, and describe the result in the command line's words.

Everything here goes through :func:`v2m.soundtrack.generate`, the function ``v2m generate`` runs:
the app has no second path to the music.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from ..analysis.timeline import Analysis
from ..controls import Controls
from ..errors import MediaError, V2MError
from ..media import VideoInfo, mux_extensions, not_regular_file, probe
from ..models.cards import card
from ..soundtrack import Progress, Result, analyze_for, generate, summary_line


@dataclass(frozen=True)
class Limits:
    """What an upload may be, and how long its files are kept."""

    max_seconds: float = 600.0  # the longest video scored
    max_megabytes: float = 2048.0  # the largest upload
    keep_minutes: float = 60.0  # a session's files are removed this long after its last use

    def __post_init__(self):
        for name in ("max_seconds", "max_megabytes", "keep_minutes"):
            if not getattr(self, name) > 0:
                raise V2MError(f"the app's {name.replace('_', ' ')} must be positive, got {getattr(self, name)!r}")


def check_upload(path: str, limits: Limits = Limits()) -> VideoInfo:
    """The upload's :class:`VideoInfo`, or one :class:`V2MError` line naming the file and why it is
    refused: not a regular file, too large, not a video, or too long."""
    name = os.path.basename(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise V2MError(f"cannot be read ({e.strerror or e})", name) from None
    if problem := not_regular_file(st.st_mode):
        raise V2MError(problem, name)
    megabytes = st.st_size / 2**20
    if megabytes > limits.max_megabytes:
        raise V2MError(f"is {megabytes:.0f} MB; the app takes videos up to {limits.max_megabytes:.0f} MB", name)
    try:
        info = probe(path)
    except MediaError as e:
        raise V2MError(e.message, name) from None
    if info.duration > limits.max_seconds:
        raise V2MError(f"is {info.duration:.0f} s long; the app scores videos up to {limits.max_seconds:.0f} s "
                       "(v2m generate takes any length)", name)
    return info


class Workspace:
    """A folder per session under ``root`` (a new temporary folder by default). A session's folder
    is touched whenever it is used; :meth:`sweep` removes those unused for longer than the limit."""

    def __init__(self, root: str | None = None, limits: Limits = Limits()):
        self.owned = root is None  # a folder made here is removed by close()
        self.root = root or tempfile.mkdtemp(prefix="v2m-app-")
        os.makedirs(self.root, exist_ok=True)
        self.limits = limits
        self._made: set[str] = set()

    def close(self) -> None:
        """Remove the root when it was made here; otherwise the sessions this workspace made."""
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            for key in self._made:
                self.remove(key)

    def session(self, key: str) -> str:
        """The folder of session ``key`` (letters, digits, ``-`` and ``_``), made if needed."""
        if not key or not all(c.isalnum() or c in "-_" for c in key):
            raise V2MError(f"invalid session key {key!r}")
        folder = os.path.join(self.root, key)
        os.makedirs(folder, exist_ok=True)
        os.utime(folder)
        self._made.add(key)
        return folder

    def remove(self, key: str) -> None:
        shutil.rmtree(os.path.join(self.root, key), ignore_errors=True)

    def sweep(self, now: float | None = None) -> list[str]:
        """Remove the sessions unused for longer than ``keep_minutes``; returns their keys."""
        now = time.time() if now is None else now
        gone = []
        for key in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, key)
            if os.path.isdir(folder) and now - os.path.getmtime(folder) > 60 * self.limits.keep_minutes:
                shutil.rmtree(folder, ignore_errors=True)
                gone.append(key)
        return gone


def shot_choices(analysis: Analysis) -> list[tuple[str, int]]:
    """``(label, shot index)`` for every shot, as the page lists them: ``shot 2 (4.1-9.0 s)``."""
    return [(f"shot {i} ({a:.1f}-{z:.1f} s)", i) for i, (a, z) in enumerate(analysis.shots)]


def video_control(shot: int | None, feature: str, weight: float) -> str:
    """The ``--video-control`` text for a shot picked from the list (None: every shot)."""
    return f"{-1 if shot is None else int(shot)},-1,{feature},{float(weight):g}"


def score(video: str, folder: str, *, generator, controls: Controls = Controls(), seed: int = 0,
          mix: float | None = None, lufs: float = -14.0, keep_speech: bool = False,
          analysis: Analysis | None = None, progress: Progress | None = None) -> Result:
    """Score ``video`` into ``folder`` as ``v2m generate --plot`` would (the video, WAV, MIDI and
    alignment picture), named by the seed so variations sit side by side. The video is an MP4,
    which every browser plays, unless its stream cannot go in one. ``analysis``
    (:func:`v2m.soundtrack.analyze_for` of this video and generator) saves decoding it again;
    ``progress``, ``mix`` and ``keep_speech`` are :func:`v2m.soundtrack.generate`'s."""
    stem = os.path.splitext(os.path.basename(video))[0]
    works = mux_extensions(video)
    ext = ".mp4" if ".mp4" in works or not works else works[0]  # none: generate names the problem
    out = os.path.join(folder, f"{stem}_seed{seed}{ext}")
    base = os.path.splitext(out)[0]
    for old in (out, *(base + ext for ext in (".wav", ".mid", ".png", ".json"))):  # a rerun replaces its own files
        if os.path.exists(old):
            os.remove(old)
    return generate(video, out, generator=generator, controls=controls, seed=seed, mix=mix, lufs=lufs, plot=True,
                    keep_speech=keep_speech, analysis=analysis, progress=progress)


def variations(video: str, folder: str, *, generator, seeds: tuple[int, ...] = (0, 1, 2),
               analysis: Analysis | None = None, progress: Progress | None = None, **kwargs) -> list[Result]:
    """:func:`score` once per seed, on one analysis of the video (made here unless given).
    ``progress(stage, fraction)`` hears the stages of every seed, the fraction over all of them."""
    analysis = analysis or analyze_for(video, generator)
    results = []
    for k, s in enumerate(seeds):
        share = None if progress is None else (
            lambda stage, f, k=k: progress(stage, (k + stage_share(stage, f)) / len(seeds)))
        results.append(score(video, folder, generator=generator, seed=s, analysis=analysis, progress=share, **kwargs))
    return results


# The share of one video's scoring done when each stage of v2m.soundtrack.STAGES begins (analysis
# is about as long as composing on the composer; rendering and muxing are quick).
STAGE_START = {"analysis": 0.0, "music": 0.4, "render": 0.75, "mux": 0.9, "done": 1.0}
STAGE_WORDS = {"analysis": "analysing the video", "music": "making the music", "render": "rendering the audio",
               "mux": "writing the video"}


def stage_share(stage: str, fraction: float) -> float:
    """How much of scoring one video is done at ``fraction`` of ``stage``."""
    order = list(STAGE_START)
    start = STAGE_START[stage]
    end = STAGE_START[order[order.index(stage) + 1]]
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def describe(result: Result, model: str = "composer") -> str:
    """The result in the words of ``v2m generate``'s summary line."""
    return summary_line(result, card(model))
