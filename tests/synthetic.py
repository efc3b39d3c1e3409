"""Videos with known events, written with PyAV, for tests, benchmarks and demos.

A synthetic video is a sequence of shots (hard cuts at known times). Each shot has its own
colour and texture; a square drifts slowly across it (steady, low motion) and jumps to a new
place at each "pulse" time (a sudden motion event: one large frame difference). Frame times can
be irregular (variable frame rate), the stream can carry a rotation, and a sine tone can be added
as an audio track.

For the shot detector's hard cases the whole picture can be dimmed (``brightness``), the texture
can pan (a camera move), film grain can be added, and "flashes" can light up a few frames
without changing the shot. :func:`write_dark_edit` uses them for a night-time edit.

The audio track may also be given as samples (speech in a known span, say) instead of the tone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import av
import numpy as np

# Shot colours (RGB) that any shot detector separates easily.
PALETTE = [
    (200, 40, 40),
    (40, 60, 200),
    (40, 170, 60),
    (220, 200, 60),
    (150, 50, 170),
    (40, 180, 190),
    (230, 120, 30),
    (90, 90, 90),
]


@dataclass
class SyntheticVideo:
    """The events a synthetic video was made with (times in seconds)."""

    path: str
    duration: float
    fps: float
    cut_times: list[float]
    pulse_times: list[float]
    frame_times: np.ndarray = field(repr=False)


def _texture(h: int, w: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """A shot's texture in [0, 1]: two crossed sine gratings; ``shift`` pans it by that many
    frame widths."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx += np.float32(shift * w)
    fx, fy = rng.uniform(1.0, 4.0, size=2) * 2 * np.pi
    return 0.5 + 0.25 * np.sin(fx * xx / w + fy * yy / h) + 0.25 * np.sin(fy * xx / w - fx * yy / h)


def write_video(
    path: str | os.PathLike,
    *,
    duration: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (160, 96),
    cut_times: Sequence[float] = (),
    pulse_times: Sequence[float] = (),
    shot_colors: Sequence[tuple[int, int, int]] | None = None,
    frame_times: Sequence[float] | None = None,
    rotation: int = 0,
    audio: bool | np.ndarray = False,
    audio_rate: int = 44100,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int = 23,
    preset: str = "veryfast",
    drift: float = 0.15,
    seed: int = 0,
    brightness: float = 1.0,
    pan: float = 0.0,
    grain: float = 0.0,
    flash_times: Sequence[float] = (),
    flash_length: float = 0.08,
) -> SyntheticVideo:
    """Write a video with hard cuts at ``cut_times`` and motion pulses at ``pulse_times``.

    ``size`` is (width, height). ``frame_times`` (seconds) overrides the regular ``fps`` grid to
    make a variable-frame-rate video. ``drift`` is the square's steady speed in frame widths per
    second. ``pix_fmt`` yuv444p allows odd sizes. ``codec`` is any FFmpeg encoder (``crf`` and
    ``preset`` apply to libx264 and libx265) and the container follows the extension of
    ``path``. Returns the events, with the exact frame times.

    ``audio`` True adds a 440 Hz tone as long as the video; an array (float, [samples] or
    [channels, samples] at ``audio_rate``, one or two channels) is the audio track itself, as
    long as it is, in stereo AAC.

    ``brightness`` scales the whole picture (:func:`write_dark_edit` sets it), ``pan`` moves the texture by that
    many frame widths per second (a camera pan), ``grain`` adds Gaussian noise of that standard
    deviation in 8-bit levels, and each of ``flash_times`` lights the picture up for
    ``flash_length`` seconds (two thirds of the way to white) without a cut.
    """
    path = os.fspath(path)
    w, h = size
    if frame_times is None:
        times = np.arange(int(round(duration * fps))) / fps
        time_base = Fraction(1, int(round(fps))) if float(fps).is_integer() else Fraction(1, 90000)
    else:
        times = np.asarray(frame_times, dtype=np.float64)
        time_base = Fraction(1, 1000)
    colors = list(shot_colors or PALETTE)
    bounds = [0.0, *sorted(cut_times), float("inf")]
    texture, texture_shot = None, -1  # one shot's texture at a time: memory stays flat
    side = max(4, min(w, h) // 4)
    rng = np.random.default_rng(seed)
    jumps = {float(p): rng.uniform(0.1, 0.7, size=2) for p in sorted(pulse_times)}
    grain_rng = np.random.default_rng(seed + 1)
    flashes = sorted(float(f) for f in flash_times)

    container = av.open(path, "w")
    try:
        stream = container.add_stream(codec, rate=int(round(fps)) if frame_times is None else 1000)
        stream.width, stream.height = w, h
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": preset}
        elif codec == "libx265":
            stream.options = {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"}
        if rotation:
            stream.set_display_rotation(rotation)
        astream = None
        track = None if isinstance(audio, bool) else np.atleast_2d(np.asarray(audio, np.float32))
        if track is not None and track.shape[0] == 1:
            track = np.concatenate([track, track])
        if track is not None or audio:
            astream = container.add_stream("aac", rate=audio_rate if track is not None else 44100)
            astream.layout = "stereo"
        offset = np.zeros(2)
        for t in times:
            shot = int(np.searchsorted(bounds, t, side="right") - 1)
            if pan:
                texture = _texture(h, w, seed + shot, pan * t)[..., None]
            elif shot != texture_shot:
                texture, texture_shot = _texture(h, w, seed + shot)[..., None], shot
            col = np.asarray(colors[shot % len(colors)], dtype=np.float32)
            img = texture * col[None, None, :]
            for p, jump in jumps.items():
                if p <= t:
                    offset = jump
            u = (offset[0] + drift * t) % 1.6  # bounce back and forth: no jump at the edges
            x = int((0.8 - abs(u - 0.8)) * (w - side))
            y = int(offset[1] * (h - side))
            img[y : y + side, x : x + side] = 255.0 - col
            if brightness != 1.0:
                img *= brightness
            if any(f - 1e-9 <= t < f + flash_length - 1e-9 for f in flashes):
                img += (255.0 - img) * (2.0 / 3.0)
            if grain:
                img += grain_rng.normal(0.0, grain, img.shape).astype(np.float32)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = int(round(t / time_base))
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if track is not None:
            from v2m.media import encode_audio

            encode_audio(container, astream, np.ascontiguousarray(track), audio_rate)
        elif astream is not None:
            _write_tone(container, astream, float(times[-1]) + 1.0 / fps)
    finally:
        container.close()
    return SyntheticVideo(path, float(times[-1]) + 1.0 / fps if frame_times is None else float(times[-1]),
                          fps, sorted(float(c) for c in cut_times), sorted(jumps), times)


# Shot colours of dark edits, at full scale (``write_dark_edit`` dims them): one hue family, so
# consecutive shots differ only a little in colour, or the mixed light of a night-time city.
DARK_PALETTES = {
    "blue": [(30, 60, 180), (40, 75, 210), (25, 50, 150), (35, 70, 200), (30, 65, 170), (40, 80, 220)],
    "night": [(40, 60, 200), (40, 170, 60), (128, 128, 128), (40, 160, 170), (230, 140, 40), (120, 60, 180)],
}


def write_dark_edit(path: str | os.PathLike, *, palette: str = "night", level: float = 0.1, pan: float = 0.1,
                    grain: float = 1.5, **kwargs) -> SyntheticVideo:
    """A dark edit: :func:`write_video` with shots of ``DARK_PALETTES[palette]`` dimmed so that
    the average shot's mean luma is ``level`` of full scale (0.05-0.15 is night footage), the
    texture panning ``pan`` frame widths per second under ``grain``. Other keywords (cut_times,
    pulse_times, flash_times, size, ...) go to :func:`write_video`."""
    colors = np.asarray(DARK_PALETTES[palette], np.float64)
    luma = colors @ np.array([0.299, 0.587, 0.114])
    brightness = level / (0.5 * luma.mean() / 255.0)  # the texture's mean is 0.5
    return write_video(path, shot_colors=[tuple(c) for c in DARK_PALETTES[palette]], brightness=brightness,
                       pan=pan, grain=grain, **kwargs)


def _write_tone(container, stream, duration: float, freq: float = 440.0) -> None:
    from v2m.media import encode_audio

    sr = 44100
    wave = (0.2 * np.sin(2 * np.pi * freq * np.arange(int(duration * sr)) / sr)).astype(np.float32)
    encode_audio(container, stream, np.stack([wave, wave]), sr)


def write_audio_only(path: str | os.PathLike, duration: float = 1.0) -> str:
    """Write an audio-only file (AAC in MP4/M4A)."""
    path = os.fspath(path)
    container = av.open(path, "w", format="mp4")
    try:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "stereo"
        _write_tone(container, stream, duration)
    finally:
        container.close()
    return path


def write_image(path: str | os.PathLike, size: tuple[int, int] = (64, 48)) -> str:
    """Write a still PNG image."""
    path = os.fspath(path)
    from PIL import Image

    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
    return path


@dataclass
class CorpusMusic:
    """A music21 corpus piece rendered to audio, with its exact note onsets."""

    audio: np.ndarray  # float32 [2, samples]
    sample_rate: int
    onsets: np.ndarray  # seconds, sorted, unique
    key: str  # music21's analysis of the piece, e.g. "F# minor"
    bpm: float


def corpus_music(piece: str = "bach/bwv66.6", bpm: float = 96.0, seconds: float | None = None, program: int = 0,
                 sample_rate: int = 44100, soundfont: str | None = None) -> CorpusMusic:
    """Render a piece of the music21 corpus (shipped inside the music21 package) at ``bpm``
    quarter notes per minute with a General MIDI soundfont, cut to ``seconds``. The soundfont is
    ``soundfont``, else TimGM6mb as pretty-midi ships it: every install has that one, so what is
    measured on the rendering does not depend on the soundfonts a machine has."""
    import pretty_midi
    from music21 import corpus

    from v2m.models.composer.score import Note, Part, Score, find_soundfont
    from v2m.theory import parse_key

    score = corpus.parse(piece)
    if hasattr(score, "scores"):
        score = score.scores[0]
    spq = 60.0 / bpm
    notes = []
    for n in score.flatten().notes:
        for p in getattr(n, "pitches", ()):
            start, end = float(n.offset) * spq, float(n.offset + n.quarterLength) * spq
            if seconds is None or start < seconds:
                notes.append(Note(start, end - 0.01, int(p.midi), 90, 0))
    duration = seconds or max(n.end for n in notes) + 0.5
    key = score.analyze("key")
    soundfont = find_soundfont(soundfont or os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2"))
    rendered = Score([Part("music", program, 0, reverb=20)], notes, grid=None, key=parse_key(key.tonic.name.replace("-", "b")),
                     duration=duration).render(soundfont, sample_rate)
    onsets = np.unique(np.round([n.start for n in notes], 6))
    return CorpusMusic(rendered, sample_rate, onsets, f"{key.tonic.name} {key.mode}", bpm)


def room_tone(seconds: float, level: float = 0.003, seed: int = 0, sample_rate: int = 44100) -> np.ndarray:
    """Stereo room tone: brown-ish noise at about -50 dBFS."""
    rng = np.random.default_rng(seed)
    white = rng.normal(0.0, 1.0, (2, int(seconds * sample_rate)))
    from scipy.signal import lfilter

    tone = lfilter([1.0], [1.0, -0.95], white, axis=1)
    return (level * tone / tone.std()).astype(np.float32)


def place(track: np.ndarray, voice: np.ndarray, at: float, sample_rate: int = 44100) -> tuple[float, float]:
    """Add ``voice`` to both channels of ``track`` from ``at`` seconds; its span in seconds."""
    a = int(at * sample_rate)
    track[:, a: a + len(voice)] += voice
    return at, at + len(voice) / sample_rate
