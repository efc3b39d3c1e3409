"""`v2m generate`: a video in, the same video with a fitting soundtrack out.

For each video: analyse it (no CLIP needed by the composer), ask the chosen generator for music
of exactly the video's duration, finish the audio (original soundtrack mixed underneath when
asked, loudness normalised, peak-limited, faded), then write, each atomically:

- the video with its video stream copied packet for packet and the music as AAC;
- ``<name>.wav`` beside it (16-bit PCM), and ``<name>.mid`` when the generator writes a score;
- ``<name>.png``, the alignment picture, with ``plot=True``;
- ``<name>.json``, what made the music (:mod:`v2m.provenance`), also in the video's metadata;
- with ``stems=True`` (the composer only), ``<name>.stems/<part>.wav``: each part of the score
  alone (32-bit float, the mono narrowing applied), sample-aligned with the video; the stems
  add up to the mix before it is mastered (mixed with the original, faded, normalised, limited).

The audio is made and finished a block at a time (:func:`v2m.render.finish_signal`), waiting
between passes in temporary files beside the output, so memory does not grow with the length
(a part scored with ``start``/``end`` is finished in memory, :func:`_score_span`).

With ``start``/``end`` only that part of the video is scored; the original sound plays elsewhere.
An input is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .analysis import AnalysisSettings, analyze_video
from .analysis.timeline import Analysis
from .controls import Controls
from .errors import MediaError, OutputError, V2MError
from .evaluate.metrics import cuts_on_beats
from .fsutil import WRITE_ERRNOS, atomic_set, check_output, find_files, nothing_found, remove_stale_parts
from .blocks import block_size
from .media import (VIDEO_EXTENSIONS, audio_blocks, check_mux, mux_extensions, mux_music, probe, read_audio,
                    read_comment, write_wav)
from .models import GenerationRequest, get_generator
from .models.cards import card
from . import provenance
from .render import finish_audio, finish_signal
from .render.audio import fit_length, limit
from .render.plot import level_curve
from .render.duck import DEPTH_DB, duck_gain
from .render.midi import delay

CUT_TOLERANCE = 0.05  # seconds: a cut "lands on a beat" within this
# What generate() reports to a progress(stage, fraction) callback, in order: the video's analysis
# (fraction: the share of the video decoded), the music (composed or sampled), the audio's finish
# (mix, loudness, limiter) and writing the files (the video muxed last).
STAGES = ("analysis", "music", "render", "mux")
Progress = Callable[[str, float], None]


@dataclass
class Result:
    source: str
    video: str
    wav: str | None
    midi: str | None
    plot: str | None
    duration: float
    info: dict = field(default_factory=dict)
    cuts_on_beats: float | None = None  # share of the scored cuts within 50 ms of a music beat (None: no cuts)
    provenance: str | None = None  # <name>.json: what made the music (v2m.provenance)
    span: tuple[float, float] | None = None  # the part scored (None: all of it)
    stems: dict[str, str] = field(default_factory=dict)  # part name -> its WAV, with stems=True


def output_path(source: str, output: str | None, multiple: bool, relative: str | None = None) -> str:
    """Where the scored video goes. Default: ``<stem>_scored<ext>`` beside the source. With
    several inputs ``output`` is a folder, and a video found in an input folder keeps its path
    ``relative`` to that folder. Where v2m picks the name, ``<ext>`` is the source's own when
    that container can hold its video with AAC music, else the first of .mkv, .mp4, .mov that
    can (a VP8 .webm comes out as .mkv, a ProRes .mov stays .mov)."""
    src = Path(source)
    if output is not None and not (multiple or output.endswith(os.sep) or os.path.isdir(output)):
        return output
    works = mux_extensions(source)
    ext = next((e for e in (src.suffix.lower(), ".mkv", ".mp4", ".mov") if e in works), ".mkv")
    if output is None:
        return str(src.with_name(f"{src.stem}_scored{ext}"))
    rel = Path(relative or src.name)
    return str(Path(output) / rel.parent / f"{rel.stem}{ext}")


def load_generator(model: str = "composer", *, device: str = "auto", **options):
    """:func:`v2m.models.get_generator`, then its ``warnings`` (if it has any) printed once, each
    as a ``v2m: warning: ...`` line on stderr."""
    generator = get_generator(model, device=device, **options)
    for warning in getattr(generator, "warnings", ()):
        print(f"v2m: warning: {warning}", file=sys.stderr)
    return generator


def summary_line(result: Result, model_card) -> str:
    """What ``v2m generate`` prints for one scored video: where it went, how long it is, the
    model's one-line description of the music and the share of cuts on a beat."""
    share = "" if result.cuts_on_beats is None else f", {100 * result.cuts_on_beats:.0f}% of cuts on a beat"
    return f"{result.video}: {result.duration:.1f} s, {model_card.describe(result.info)}{share}"


def _share_of_cuts_on_beats(cut_times: np.ndarray, beats: np.ndarray) -> float | None:
    """:func:`v2m.evaluate.metrics.cuts_on_beats` within ``CUT_TOLERANCE``; None without cuts."""
    share = cuts_on_beats(cut_times, beats, tolerance=CUT_TOLERANCE)
    return None if math.isnan(share) else share


def _written_by_v2m(path: str) -> bool:
    """Whether the file at ``path`` carries v2m's mark (see :mod:`v2m.version`)."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".wav":

            return (read_comment(path) or "").startswith("v2m")
        if ext == ".mid":
            import mido

            return mido.MidiFile(path).tracks[0].name.startswith("v2m")
        if ext == ".json":
            with open(path, encoding="utf-8") as f:
                return json.load(f).get("format") == provenance.FORMAT
        if ext == ".png":
            from PIL import Image

            with Image.open(path) as image:
                return str(image.info.get("Software", "")).startswith("v2m")
    except Exception:  # unreadable or not what its name says: not ours
        return False
    return False


def _check_outputs(out: str | None, sidecars: list[str]) -> None:
    """Before any work: every output can be written, and no file beside the video that v2m did
    not write (a video's own music ``x.wav``, a score) would be replaced."""
    for path in ([out] if out else []) + sidecars:
        check_output(path)
    for path in sidecars:
        if os.path.lexists(path) and not _written_by_v2m(path):
            raise V2MError("exists and was not written by v2m; it is left alone: choose another -o, or move the "
                           "file away", path)


def stems_folder(out: str) -> str:
    """Where ``stems=True`` puts the parts of the video ``out``: ``<name>.stems/`` beside it."""
    return os.path.splitext(out)[0] + ".stems"


def _scratch(out: str) -> str:
    """The folder for the render's temporary files: the output's, or the nearest one above it
    that exists (nothing is created before the outputs are)."""
    folder = os.path.dirname(os.path.abspath(out))
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def analyze_for(video: str, generator, device: str = "auto", progress: Progress | None = None) -> Analysis:
    """The analysis of ``video`` that ``generator`` reads: with the semantics of its CLIP, if it has
    one. ``progress("analysis", share decoded)`` about once per second of video."""
    embedder = generator.embedder  # the CLIP whose semantics the model reads (None: none)
    seen = None if progress is None else (lambda t, duration: progress("analysis", min(1.0, t / max(duration, 1e-9))))
    return analyze_video(video, AnalysisSettings(clip=embedder.source if embedder else None, device=device),
                         embedder=embedder, progress=seen)


def generate(
    video: str,
    output: str | None = None,
    *,
    model: str = "composer",
    checkpoint: str | None = None,
    controls: Controls = Controls(),
    seed: int = 0,
    mix: float | None = None,
    lufs: float = -14.0,
    plot: bool = False,
    wav: bool = True,
    midi: bool = True,
    soundfont: str | None = None,
    style: str | None = None,
    stems: bool = False,
    device: str = "auto",
    generator=None,
    analysis: Analysis | None = None,
    progress: Progress | None = None,
    start: float | None = None,
    end: float | None = None,
    fade: float = 1.0,
    keep_speech: bool = False,
    duck_db: float = DEPTH_DB,
) -> Result:
    """Score one video (see the module docstring); returns where everything went. ``generator``
    (already loaded) replaces ``model``, ``checkpoint``, ``soundfont`` and ``style``; ``analysis``
    (:func:`analyze_for` of this video and generator, already made) replaces the decode.
    ``progress(stage, fraction)`` hears each of :data:`STAGES` begin (and the analysis advance).
    ``start`` / ``end`` (seconds) score only that part of the video, the music faded in and out
    over ``fade`` seconds there and the original sound kept elsewhere (:func:`_score_span`).
    ``stems``: also one WAV per part of the score (:func:`stems_folder`), for the models whose
    card says they make parts (the composer). ``keep_speech``: keep the original soundtrack
    (``mix`` defaults to 1 then, else to 0) and duck the music by ``duck_db`` wherever someone
    speaks in it (:func:`v2m.analysis.speech.video_speech_spans`, :func:`v2m.render.duck.duck_gain`);
    the composer also writes thinner there."""
    report = progress or (lambda stage, fraction: None)
    if mix is None:
        mix = 1.0 if keep_speech else 0.0
    out = output_path(video, output, multiple=False)
    if os.path.exists(video) and os.path.exists(out) and os.path.samefile(video, out):
        raise V2MError("the output would overwrite the input; choose another -o", out)
    if not 0.0 <= mix <= 4.0:
        raise V2MError(f"--mix must be between 0 and 4 (a gain for the original soundtrack), got {mix}")
    if not math.isfinite(lufs):
        raise V2MError(f"the loudness target must be a finite number of LUFS, got {lufs}")
    if not (math.isfinite(fade) and fade >= 0):
        raise V2MError(f"--fade must be a number of seconds >= 0, got {fade}")
    if not (math.isfinite(duck_db) and -60.0 <= duck_db <= 0.0):
        raise V2MError(f"--duck must be between -60 and 0 dB (how far the music dips under speech), got {duck_db}")
    model_card = generator.card if generator is not None else card(model)
    if stems and not model_card.stems:
        raise V2MError(f"--stems: --model {model_card.name} makes one mixed signal, not parts; stems come from the "
                       "composer (--model composer)")
    probe(video)  # a bad file gets its one-line error before any model loads
    check_mux(video, out)  # and so does an output container that cannot hold its video
    stem = os.path.splitext(out)[0]
    planned = {".wav": wav, ".mid": midi, ".png": plot, ".json": True}
    _check_outputs(out, [stem + ext for ext, wanted in planned.items() if wanted])
    if stems:
        check_output(stems_folder(out), folder=True)
    remove_stale_parts(os.path.dirname(os.path.abspath(out)))
    generator = generator or load_generator(model, checkpoint=checkpoint, device=device, soundfont=soundfont,
                                            style=style)
    if analysis is None:
        analysis = analyze_for(video, generator, device, progress=report)
    if analysis.duration < 1.0:
        raise MediaError(f"is {analysis.duration:.2f} s long; v2m scores videos of at least 1 s", video)
    span = scored_span(analysis.duration, start, end, video)
    part = analysis if span is None else analysis.window(*span)  # what the music is written for
    missing = controls.missing_shots(len(part.shots))
    if missing:
        print(f"v2m: warning: {video}: has {len(part.shots)} shot(s), numbered 0-{len(part.shots) - 1}; the "
              f"video control(s) on shot {', '.join(map(str, missing))} do nothing", file=sys.stderr)
    speech = None
    if keep_speech:
        from .analysis.speech import video_speech_spans

        speech = video_speech_spans(video)  # one line when the video has no sound
    heard = () if speech is None else _inside(speech, span or (0.0, analysis.duration))  # in the part's time
    report("music", 0.0)
    scratch = _scratch(out)
    with _temporary_audio(out):
        music = generator.generate(GenerationRequest(part, part.duration, controls, seed, scratch=scratch,
                                                     speech=heard))
        try:
            return _finish_and_write(video, out, music, analysis, part, span, generator, controls=controls,
                                     seed=seed, mix=mix, lufs=lufs, fade=fade, wav=wav, midi=midi, plot=plot,
                                     stems=stems, scratch=scratch, report=report, speech=speech, heard=heard,
                                     duck_db=duck_db)
        finally:
            music.close()


@contextlib.contextmanager
def _temporary_audio(out: str) -> Iterator[None]:
    """A write the system refuses to the render's temporary files (no space left beside ``out``,
    a file-size limit) as one line naming the output."""
    try:
        yield
    except OSError as e:
        if e.errno in WRITE_ERRNOS and not isinstance(e, FileNotFoundError):
            raise OutputError(out, f"its temporary audio: {e.strerror or e}") from None
        raise


def _finish_and_write(video: str, out: str, music, analysis: Analysis, part: Analysis,
                      span: tuple[float, float] | None, generator, *, controls: Controls, seed: int, mix: float,
                      lufs: float, fade: float, wav: bool, midi: bool, plot: bool, stems: bool, scratch: str,
                      report: Progress, speech: list[tuple[float, float]] | None,
                      heard: tuple[tuple[float, float], ...], duck_db: float) -> Result:
    """The rest of :func:`generate` once the music is made: the finish and every file. ``heard``:
    the speech in the part's time, under which the music is ducked by ``duck_db``."""
    stem = os.path.splitext(out)[0]
    parts = music.audio.names if stems else []  # a Stems: the model card said so
    stem_paths = {name: os.path.join(stems_folder(out), f"{name}.wav") for name in parts}
    _check_outputs(None, list(stem_paths.values()))  # the part names are known now, before anything is written
    report("render", 0.0)
    sr = music.sample_rate
    n = int(round(analysis.duration * sr))
    has_audio = analysis.meta["probe"]["has_audio"]
    if mix > 0 and not has_audio:
        print(f"v2m: warning: {video}: no soundtrack to mix underneath; --mix ignored", file=sys.stderr)
    offset = 0.0 if span is None else span[0]
    finished = None
    duck = None if not heard else (lambda first, count: duck_gain(heard, first, count, sr, duck_db))
    if span is None:
        underneath = audio_blocks(video, sr, channels=2) if mix > 0 and has_audio else None
        finished = finish_signal(music.signal(), sr, n, target_lufs=lufs, underneath=underneath, mix=mix,
                                 music_gain=duck, folder=scratch)
        audio, level = finished.blocks, finished.level
    else:
        original = read_audio(video, sr, channels=2) if has_audio else None
        whole = _score_span(music.array(), sr, n, span, original, mix=mix, lufs=lufs, fade=fade, music_gain=duck)
        audio, level = (lambda: [whole]), level_curve(whole, sr)
    try:
        beats, downbeats = music.beats + offset, music.downbeats + offset
        score = None if music.midi is None else delay(music.midi, offset)
        rec = provenance.record(source=video, model=generator.name, generator=generator, info=music.info, seed=seed,
                                controls=controls, span=span, duration=analysis.duration, mix=mix, lufs=lufs,
                                speech=speech, duck_db=None if speech is None else duck_db)
        mark = provenance.summary(rec)

        wav_path = stem + ".wav" if wav else None
        midi_path = stem + ".mid" if midi and score is not None else None
        plot_path = stem + ".png" if plot else None
        json_path = stem + ".json"
        report("mux", 0.0)
        # One set, renamed into place together at the end, the video last: a killed run leaves
        # neither a video without its WAV and MIDI nor new sidecars beside an old video.
        written = [p for p in (wav_path, midi_path, plot_path) if p] + list(stem_paths.values()) + [json_path, out]
        with atomic_set(written) as temp:
            if wav_path:
                write_wav(temp[wav_path], audio(), sr, comment=mark)
            for name, path in stem_paths.items():
                write_wav(temp[path], _aligned(music.audio, name, int(round(offset * sr)), n), sr, comment=mark,
                          float32=True)
            if midi_path:
                score.save(temp[midi_path])
            if plot_path:
                from .render.plot import alignment_plot

                title = f"{os.path.basename(video)} - {generator.name}: {generator.card.describe(music.info)}"
                alignment_plot(temp[plot_path], analysis, beats, downbeats, title=title, level=level, sample_rate=sr)
            provenance.write(temp[json_path], rec)
            mux_music(video, temp[out], audio(), sr, start_time=analysis.meta["probe"]["start_time"], comment=mark,
                      metadata={"description": json.dumps(rec, separators=(",", ":"))}, samples=n)
    finally:
        if finished is not None:
            finished.close()
    return Result(source=video, video=out, wav=wav_path, midi=midi_path, plot=plot_path, provenance=json_path,
                  duration=analysis.duration, info=music.info, span=span,
                  cuts_on_beats=_share_of_cuts_on_beats(part.cut_times, music.beats), stems=stem_paths)


def _aligned(stems, name: str, offset: int, n: int):
    """Part ``name`` of ``stems`` in consecutive blocks, placed ``offset`` samples into the video and
    padded with silence to its ``n`` samples (the scored part of a video scored in part)."""
    size = block_size(stems.sample_rate)
    for a in range(0, n, size):
        z = min(n, a + size)
        lo, hi = max(a, offset), min(z, offset + stems.n)
        block = np.zeros((2, z - a), np.float32)
        if hi > lo:
            block[:, lo - a : hi - a] = stems.read_part(name, lo - offset, hi - offset)
        yield block


def _inside(spans: list[tuple[float, float]], part: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """The ``spans`` (video seconds) that overlap ``part``, clipped to it, in the part's time."""
    a, z = part
    return tuple((max(s, a) - a, min(e, z) - a) for s, e in spans if e > a and s < z)


def parse_time(text: str) -> float:
    """``"75"``, ``"75.5"``, ``"1:15"`` or ``"1:02:03.5"`` -> seconds (for ``--start``/``--end``)."""
    try:
        value = 0.0
        for field_ in text.strip().split(":"):
            value = 60 * value + float(field_)
    except ValueError:
        raise ValueError(f"time {text!r} not understood; write seconds (75.5) or minutes:seconds (1:15.5)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time {text!r} must be a finite number of seconds >= 0")
    return value


def scored_span(duration: float, start: float | None, end: float | None,
                video: str | None = None) -> tuple[float, float] | None:
    """The part ``[start, end]`` of a video of ``duration`` s to score (None: all of it), or one
    line saying why it cannot be: outside the video, or shorter than 1 s."""
    if start is None and end is None:
        return None
    a = 0.0 if start is None else float(start)
    z = duration if end is None else min(float(end), duration)
    if a >= duration:
        raise V2MError(f"--start {a:g} s is at or after the video's end ({duration:.2f} s)", video)
    if z - a < 1.0:
        raise V2MError(f"the part to score, {a:g}-{z:g} s, is shorter than 1 s (--start must come at least 1 s "
                       "before --end)", video)
    if a <= 0 and z >= duration - 1e-3:
        return None
    return a, z


def _score_span(music: np.ndarray, sr: int, n: int, span: tuple[float, float], original: np.ndarray | None, *,
                mix: float, lufs: float, fade: float, music_gain=None) -> np.ndarray:
    """The soundtrack of a partly scored video: the music finished (mix, loudness, limiter, the
    ``music_gain`` of :func:`v2m.render.finish_signal` in the part's samples) over its span, faded
    in and out over ``fade`` seconds (at most a quarter of the span each) while the original sound
    fades out and back in under it; the original sound as it was elsewhere. The whole is
    true-peak limited."""
    a, z = (int(round(t * sr)) for t in span)
    z = min(z, n)
    length = z - a
    under = None if original is None else fit_length(original, n)
    ramp = min(int(fade * sr), length // 4)  # a fade takes at most a quarter of the part
    scored = finish_audio(music, sr, length, target_lufs=lufs, fade_in=ramp / sr, fade_out=ramp / sr,
                          longest_fade=0.25, underneath=None if under is None else under[:, a:z], mix=mix,
                          music_gain=music_gain)
    out = np.zeros((2, n), np.float32) if under is None else under.copy()
    if under is not None:  # the original crossfades with the music: out over the fade-in, back over the fade-out
        keep = np.zeros(length, np.float32)
        if ramp > 0:
            keep[:ramp] = np.cos(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2
            keep[length - ramp:] = keep[:ramp][::-1]
        out[:, a:z] *= keep
    out[:, a:z] += scored
    return limit(out, sr)


def find_videos(inputs: list[str]) -> list[tuple[str, str]]:
    """``(path, name relative to its input folder)`` for files as given and for the video files
    found recursively in folders (hidden ones and earlier ``*_scored`` outputs left out);
    :class:`V2MError` when there is none at all."""
    found, missing = find_files(inputs, VIDEO_EXTENSIONS, skip=lambda p: p.stem.endswith("_scored"))
    if not found and not missing:
        raise nothing_found(inputs, VIDEO_EXTENSIONS)
    return found + [(raw, os.path.basename(raw)) for raw in missing]  # missing ones fail one by one
