"""Measure the offline composer's music (issue 15): the symbolic statistics of its melody and
bass, how its cuts, loudness and peaks come out in the audio, and its speed, on synthetic videos;
the same statistics of held-out corpus tunes beside them, and the issue's targets.

    python benchmarks/bench_music.py              # 30 s, 2 min and 5 min videos
    python benchmarks/bench_music.py --quick      # the 30 s videos only
    python benchmarks/bench_music.py --workdir D  # keep the videos and the corpus sample in D (reused)

Each video is analysed (``analyze_video`` with default settings), scored by the composer (seed
0, no controls), rendered and finished as ``v2m generate`` finishes it (``finish_audio``: -14
LUFS, fades, a -1 dBTP true-peak limiter). Every statistic is one of :mod:`v2m.evaluate.symbolic` (the
definitions are there). The melody's accompaniment is the harmony part and the bass; the strong beats are
beats 1 and 3 of each bar of the composer's grid (a 2/4 bar has beat 1 only); the tempo change is
measured per beat, each bar's duration over its beats (the grid has 2/4 and 3/4 bars); the hard cuts are the ones written into the video
(on the frame grid), and a cut counts as on a beat when the finished audio has an onset within
50 ms of it and the score's grid a beat (a downbeat) within 50 ms.

Reference: the first 50 folk tunes after the 600 that ``v2m.models.composer.train`` reads (its
collections, its order and its test of a usable tune), and the soprano and bass lines of the
first 50 four-part Bach chorales after the 120 it reads; as written (repeats not expanded),
times in quarter notes (0.6 s each, 100 BPM, for the tolerances in seconds). Interval and
note-length overlaps: the composer's melody against all the folk tunes pooled, its bass
against all the chorale bass lines pooled; a reference line against the others of its own set
pooled (leave one out). Strong-beat chord tones and clashes of the chorales: the soprano
against the other three voices (which often leave the chord's third to the soprano alone, so
the chorales' chord-tone share is low by construction). The folk tunes' tonic is the key they
are written in (ABC's K: field), the chorales' music21's key analysis; a tune as written may
end before a repeat, off the tonic.

Times: wall seconds in this process for the analysis, the composer (score and audio) and the
finishing, on this machine as it is loaded (imports and writing the videos not counted).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py

import numpy as np  # noqa: E402

REF_TUNES = 50
TRAIN_TUNES, TRAIN_CHORALES = 600, 120  # what v2m.models.composer.train reads by default
SPQ = 0.6  # seconds per quarter note for the corpus lines
FPS = 30

BRIGHT = [(255, 220, 150), (250, 200, 120), (255, 235, 180), (240, 190, 140), (255, 210, 170), (250, 240, 160)]
NEUTRAL = [(150, 150, 140), (130, 140, 150)]


@dataclass(frozen=True)
class Video:
    name: str
    seconds: float
    mood: str  # calm | medium | busy
    look: str  # bright | dark | night | plain | neutral
    gaps: tuple[float, float] | None  # seconds between cuts (None: one shot)
    size: tuple[int, int]

    def cuts(self) -> list[float]:
        """The hard cuts, on the frame grid (where the picture changes)."""
        if self.gaps is None:
            return []
        rng = np.random.default_rng(int(self.seconds) * 7 + len(self.name))
        t, out = 0.0, []
        while True:
            t += float(rng.uniform(*self.gaps))
            if t >= self.seconds - 1.0:
                return out
            out.append(math.ceil(t * FPS - 1e-9) / FPS)

    def write(self, path: str) -> None:
        from synthetic import write_dark_edit, write_video

        rng = np.random.default_rng(int(self.seconds) + 3 * len(self.name))
        pulse_gap = {"calm": (8.0, 15.0), "medium": (3.0, 6.0), "busy": (0.5, 1.2)}[self.mood]
        pulses = np.cumsum(rng.uniform(*pulse_gap, size=int(self.seconds / pulse_gap[0]) + 2))
        common = dict(duration=self.seconds, fps=FPS, size=self.size, cut_times=self.cuts(),
                      pulse_times=[float(p) for p in pulses if p < self.seconds - 0.5], seed=len(self.name))
        drift = {"calm": 0.03, "medium": 0.15, "busy": 0.5}[self.mood]
        pan = 0.25 if self.mood == "busy" else 0.0
        if self.look in ("dark", "night"):
            write_dark_edit(path, palette="blue" if self.look == "dark" else "night", level=0.08,
                            pan=max(pan, 0.05), drift=drift, **common)
        else:
            colours = {"bright": BRIGHT, "neutral": NEUTRAL, "plain": None}[self.look]
            write_video(path, shot_colors=colours, brightness=1.4 if self.look == "bright" else 1.0, drift=drift,
                        pan=pan, grain=2.0 if self.mood == "busy" else 0.0, **common)


HD, SD = (1280, 720), (640, 360)
VIDEOS = [
    Video("30s calm bright few cuts", 30, "calm", "bright", (7.0, 12.0), HD),
    Video("30s busy bright many cuts", 30, "busy", "bright", (1.5, 3.5), HD),
    Video("30s calm dark few cuts", 30, "calm", "dark", (7.0, 12.0), HD),
    Video("30s busy dark many cuts", 30, "busy", "night", (1.5, 3.5), HD),
    Video("2min busy bright many cuts", 120, "busy", "bright", (1.5, 4.0), SD),
    Video("2min calm dark few cuts", 120, "calm", "dark", (6.0, 14.0), SD),
    Video("5min cuts every 15-40 s", 300, "medium", "plain", (15.0, 40.0), SD),
    Video("5min one shot calm", 300, "calm", "neutral", None, SD),
]


# --- statistics ---------------------------------------------------------------------------------


def _safe(fn, *args, **kwargs):
    """``fn(...)``, or NaN where the statistic is undefined for this line (too few notes or bars:
    the symbolic module's ValueError)."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return float("nan")


def line_stats(on, p, bar_lines, lengths_in_beats) -> dict:
    """A line's statistics; its intervals and note lengths are kept for the overlaps."""
    from v2m.evaluate import symbolic as S

    order = np.argsort(on, kind="stable")
    on, p, lengths = np.asarray(on)[order], np.asarray(p)[order], np.asarray(lengths_in_beats)[order]
    out = _safe(S.line_statistics, on, p, bar_lines)
    if not isinstance(out, dict):
        keys = ("repeated", "longest_run", "stepwise", "pc_entropy", "repeated_bars", "two_bar_run")
        out = dict.fromkeys(keys, float("nan"))
    out["notes"] = len(p)
    out["_intervals"] = S.intervals(p).tolist()
    out["_lengths"] = [float(x) for x in lengths if x > 0]
    return out


def add_overlaps(rows: list[dict], pool_rows: list[dict], leave_one_out: bool) -> None:
    """Each row's interval and note-length overlap against the pooled ``pool_rows``."""
    from v2m.evaluate import symbolic as S

    for i, row in enumerate(rows):
        others = [r for j, r in enumerate(pool_rows) if not (leave_one_out and j == i)]
        pool_iv = np.concatenate([r["_intervals"] for r in others])
        pool_len = np.concatenate([r["_lengths"] for r in others])
        row["iv_overlap"] = _safe(lambda: S.overlap(S.interval_histogram(row["_intervals"]),
                                                    S.interval_histogram(pool_iv)))
        row["len_overlap"] = _safe(lambda: S.overlap(S.note_length_histogram(row["_lengths"]),
                                                     S.note_length_histogram(pool_len)))


def _arrays(notes):
    return (np.array([n.start for n in notes], np.float64), np.array([n.end for n in notes], np.float64),
            np.array([n.pitch for n in notes], np.int64))


def _beat_position(grid, t: np.ndarray) -> np.ndarray:
    """Beats (quarter notes) from the grid's first bar line, extrapolated past its ends."""
    return grid.position(t)


def measure_piece(video: Video, path: str, generator) -> dict:
    from v2m.analysis import AnalysisSettings, analyze_video
    from v2m.evaluate import symbolic as S
    from v2m.models import GenerationRequest
    from v2m.render import finish_audio

    t0 = time.perf_counter()
    analysis = analyze_video(path, AnalysisSettings())
    t1 = time.perf_counter()
    request = GenerationRequest(analysis, analysis.duration, seed=0)
    music = generator.generate(request)
    t2 = time.perf_counter()
    sr = music.sample_rate
    audio = finish_audio(music.array(), sr, int(round(analysis.duration * sr)))
    music.close()
    t3 = time.perf_counter()
    score = generator.score(request)  # the same score (seeded) as the one just rendered, for its notes

    grid, duration = score.grid, score.duration
    lines = grid.times[grid.is_downbeat]  # every bar line, the one closing the last bar included
    keep = np.flatnonzero((lines[:-1] < duration) & (lines[1:] > 0))  # the bars the video overlaps
    bar_lines = lines[keep[0]: keep[-1] + 2]
    bar_beats = grid.bar_lengths[keep[0]: keep[-1] + 1]
    strong = grid.times[np.isin(grid.beat_in_bar, (0, 2))]

    row = {"name": video.name, "seconds": video.seconds, "key": score.info["key"], "bpm": score.info["bpm"],
           "style": score.info["style"], "bars": len(bar_lines) - 1}
    pitched = [n for n in score.notes if not score.parts[n.part].is_drum]
    acc = score.notes_of("harmony") + score.notes_of("bass")
    parts = {}
    for name in ("melody", "bass"):
        on, end, p = _arrays(score.notes_of(name))
        lengths = _beat_position(grid, end) - _beat_position(grid, on)
        parts[name] = line_stats(on, p, bar_lines, lengths)
    m_on, m_end, m_p = _arrays(score.notes_of("melody"))
    a_on, a_end, a_p = _arrays(acc)
    parts["melody"]["chord_tones"] = _safe(S.strong_beat_chord_tones, m_on, m_p, a_on, a_end, a_p, strong)
    parts["melody"]["clashes"] = _safe(S.semitone_clashes, m_on, m_end, m_p, a_on, a_end, a_p)
    row["parts"] = parts

    all_on, all_end, all_p = _arrays(pitched)
    row["tonic_end"] = S.tonic_at_end(all_on, all_end, all_p, score.key.tonic, duration)
    row["tempo_jump"] = S.largest_tempo_change(bar_lines, bar_beats)
    cuts = [c for c in video.cuts() if 0 < c < analysis.duration]
    row["cuts"] = S.cuts_in_audio(audio, sr, cuts, music.beats, music.downbeats)
    row["cuts_found"] = len(analysis.cut_times)
    row["mono_loss"] = S.mono_loss(audio, sr)
    row["true_peak"] = S.true_peak_dbtp(audio)
    row["time"] = {"analysis": t1 - t0, "compose": t2 - t1, "finish": t3 - t2, "total": t3 - t0}
    return row


# --- the corpus reference -----------------------------------------------------------------------


def _usable_tune(score) -> bool:
    """The test ``v2m.models.composer.train`` applies to a folk tune (a quarter-note beat, 8 notes)."""
    ts = score.recurse().getElementsByClass("TimeSignature")
    if not ts or ts[0].beatDuration.quarterLength != 1.0:
        return False
    return len([n for n in score.flatten().notes if n.isNote]) >= 8


def _notated_tonic(score) -> int:
    """The tonic's pitch class of the key a tune is written in (ABC's K: field), else music21's key
    analysis."""
    keys = list(score.recurse().getElementsByClass("Key"))
    return int((keys[0] if keys else score.analyze("key")).tonic.pitchClass)


def _line_record(stream) -> dict:
    from v2m.evaluate import symbolic as S

    on, end, p = S.music21_line(stream)
    return {"on": on.tolist(), "end": end.tolist(), "p": p.tolist()}


def read_reference(n: int, log) -> dict:
    """The held-out lines (see the module docstring) as plain lists, quarter notes."""
    from music21 import corpus

    from v2m.evaluate import symbolic as S
    from v2m.models.composer.train import FOLK_COLLECTIONS

    folk, used = [], 0
    paths = sorted((p for p in corpus.getPaths(fileExtensions=["abc"]) if any(c in str(p) for c in FOLK_COLLECTIONS)),
                   key=str)
    for path in paths:
        if len(folk) >= n:
            break
        try:
            parsed = corpus.parse(path)
        except Exception:  # as train.py: a file music21 cannot read is skipped
            continue
        for score in getattr(parsed, "scores", [parsed]):
            if len(folk) >= n:
                break
            if not _usable_tune(score):
                continue
            used += 1
            if used <= TRAIN_TUNES:
                continue
            rec = {"name": f"{os.path.basename(str(path))} {score.metadata.title if score.metadata else ''}".strip(),
                   "line": _line_record(score), "bars": S.music21_bar_lines(score).tolist(),
                   "tonic": _notated_tonic(score)}
            folk.append(rec)
    log(f"folk: {used} usable tunes read, the last {len(folk)} held out")
    chorales = []
    for path in sorted(corpus.getComposer("bach"), key=str)[TRAIN_CHORALES:]:
        if len(chorales) >= n:
            break
        try:
            score = corpus.parse(path)
        except Exception:
            continue
        if len(getattr(score, "parts", [])) != 4:
            continue
        parts = list(score.parts)
        try:
            voices = [_line_record(part) for part in parts]
            bars = S.music21_bar_lines(parts[0]).tolist()
        except ValueError:
            continue
        chorales.append({"name": os.path.basename(str(path)), "voices": voices, "bars": bars,
                         "tonic": int(score.analyze("key").tonic.pitchClass)})
    log(f"chorales: {len(chorales)} held out")
    return {"folk": folk, "chorales": chorales}


def reference(work: str, n: int, log) -> dict:
    import music21

    path = os.path.join(work, f"reference_{n}_music21-{music21.__version__}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    data = read_reference(n, log)
    with open(path + ".part", "w") as f:
        json.dump(data, f)
    os.replace(path + ".part", path)
    return data


def reference_rows(ref: dict) -> dict[str, list[dict]]:
    """Statistics of every reference line, times in seconds at 100 BPM."""
    from v2m.evaluate import symbolic as S

    def seconds(line):
        return (np.array(line["on"]) * SPQ, np.array(line["end"]) * SPQ, np.array(line["p"]))

    rows = {"folk": [], "soprano": [], "chorale bass": []}
    for tune in ref["folk"]:
        on, end, p = seconds(tune["line"])
        bars = np.array(tune["bars"]) * SPQ
        row = line_stats(on, p, bars, (end - on) / SPQ)
        row["tonic_end"] = S.tonic_at_end(on, end, p, tune["tonic"], float(end.max()))
        rows["folk"].append(row)
    for ch in ref["chorales"]:
        voices = [seconds(v) for v in ch["voices"]]
        bars = np.array(ch["bars"]) * SPQ
        strong = np.concatenate([[a, a + 2 * SPQ] if abs((z - a) - 4 * SPQ) < 1e-6 else [a]
                                 for a, z in zip(bars[:-1], bars[1:])])
        on = np.concatenate([v[0] for v in voices])
        end = np.concatenate([v[1] for v in voices])
        p = np.concatenate([v[2] for v in voices])
        last = float(end.max())
        for name, (v_on, v_end, v_p) in (("soprano", voices[0]), ("chorale bass", voices[3])):
            row = line_stats(v_on, v_p, bars, (v_end - v_on) / SPQ)
            row["tonic_end"] = S.tonic_at_end(on, end, p, ch["tonic"], last)
            rows[name].append(row)
        s_on, s_end, s_p = voices[0]
        a_on, a_end, a_p = (np.concatenate([v[k] for v in voices[1:]]) for k in range(3))
        rows["soprano"][-1]["chord_tones"] = _safe(S.strong_beat_chord_tones, s_on, s_p, a_on, a_end, a_p, strong)
        rows["soprano"][-1]["clashes"] = _safe(S.semitone_clashes, s_on, s_end, s_p, a_on, a_end, a_p)
    for name, pool in rows.items():
        add_overlaps(pool, pool, leave_one_out=True)
    return rows


# --- the report ---------------------------------------------------------------------------------


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "NO"
    return format(v, spec)


def _mean(values) -> float:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else float("nan")


LINE_COLUMNS = [("notes", "notes", "d"), ("rep", "repeated", ".3f"), ("run", "longest_run", "d"),
                ("H8 bits", "pc_entropy", ".2f"), ("step", "stepwise", ".2f"), ("ivOA", "iv_overlap", ".2f"),
                ("lenOA", "len_overlap", ".2f"), ("bar rep", "repeated_bars", ".2f"), ("2bar run", "two_bar_run", "d")]
MELODY_EXTRA = [("chord", "chord_tones", ".2f"), ("clash", "clashes", ".3f")]


def print_line_table(title: str, rows: list[tuple[str, dict]], columns, name_width: int = 28) -> None:
    print(f"\n{title}")
    heads = "".join(f"{h:>9}" for h, _, _ in columns)
    print(f"{'':<{name_width}}{heads}")
    for name, stats in rows:
        cells = []
        for _, key, spec in columns:
            v = stats.get(key)
            if spec == "d" and isinstance(v, float) and not math.isnan(v):
                spec = ".1f"
            cells.append(f"{_fmt(v, spec):>9}")
        print(f"{name:<{name_width}}{''.join(cells)}")


def mean_row(rows: list[dict], columns) -> dict:
    return {key: _mean(r.get(key) for r in rows) for _, key, _ in columns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the 30 s videos")
    ap.add_argument("--workdir", help="keep the videos and the corpus sample here (default: a temp folder)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-music-")
    os.makedirs(work, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from v2m.models import get_generator

    videos = [v for v in VIDEOS if v.seconds <= 30 or not args.quick]
    generator = get_generator("composer")
    print(f"machine: {os.cpu_count()} cores; soundfont {os.path.basename(generator.soundfont)}; work folder {work}")
    pieces = []
    for v in videos:
        path = os.path.join(work, v.name.replace(" ", "_") + f"_{v.size[0]}x{v.size[1]}.mp4")
        if not os.path.exists(path):
            log(f"writing {v.name} ({v.size[0]}x{v.size[1]}, {FPS} fps) ...")
            v.write(path + ".part.mp4")
            os.replace(path + ".part.mp4", path)
        log(f"composing for {v.name} ...")
        pieces.append(measure_piece(v, path, generator))

    log("reading the held-out corpus lines ...")
    ref = reference_rows(reference(work, REF_TUNES, log))
    for name, pool in (("melody", ref["folk"]), ("bass", ref["chorale bass"])):
        add_overlaps([p["parts"][name] for p in pieces], pool, leave_one_out=False)

    print("\nPieces (composer, seed 0):")
    print(f"{'':<30}{'size':>9}  {'key':<9}{'bpm':>7}  {'style':<18}{'bars':>5}{'cuts':>6}{'found':>6}")
    for v, p in zip(videos, pieces):
        size = f"{v.size[0]}x{v.size[1]}"
        print(f"{p['name']:<30}{size:>9}  {p['key']:<9}{p['bpm']:>7.1f}  {p['style']:<18}"
              f"{p['bars']:>5}{p['cuts']['cuts']:>6}{p['cuts_found']:>6}")
    print("cuts = hard cuts written into the video, found = cuts the analysis found")

    legend = ("rep = repeated-note ratio, run = longest run of equal notes, H8 = pitch-class entropy per 8 bars, "
              "step = stepwise share,\nivOA / lenOA = interval / note-length histogram overlap with the reference, "
              "bar rep = share of bars repeating an earlier bar,\n2bar run = longest run of identical 2-bar units, "
              "chord = strong-beat chord-tone share (chorale sopranos: against the three lower voices),\n"
              "clash = share of melody notes a semitone (or minor ninth) against the accompaniment")
    print("\n" + legend)
    mel_cols = LINE_COLUMNS + MELODY_EXTRA
    mel_rows = [(p["name"], p["parts"]["melody"]) for p in pieces]
    mel_rows.append(("composer average", mean_row([p["parts"]["melody"] for p in pieces], mel_cols)))
    mel_rows.append((f"ref: folk tunes ({len(ref['folk'])})", mean_row(ref["folk"], mel_cols)))
    mel_rows.append((f"ref: chorale sopranos ({len(ref['soprano'])})", mean_row(ref["soprano"], mel_cols)))
    print_line_table("Melody (reference: held-out folk tunes and chorale soprano lines; averages)", mel_rows, mel_cols,
                     name_width=30)
    bass_rows = [(p["name"], p["parts"]["bass"]) for p in pieces]
    bass_rows.append(("composer average", mean_row([p["parts"]["bass"] for p in pieces], LINE_COLUMNS)))
    bass_rows.append((f"ref: chorale basses ({len(ref['chorale bass'])})", mean_row(ref["chorale bass"], LINE_COLUMNS)))
    print_line_table("Bass (reference: held-out chorale bass lines; averages)", bass_rows, LINE_COLUMNS, name_width=30)

    print("\nPiece and audio (finished audio: -14 LUFS, limited, faded); tonic = tonic sounding at the last frame; "
          "tempo = largest bar-to-bar change;\nheard = hard cuts with an audio onset within 50 ms, "
          "beat / down = heard and on a beat / downbeat of the score;\n"
          "times in s: analysis, composer (score + render), finishing, total")
    print(f"{'':<30}{'tonic':>6}{'tempo':>7}{'heard':>7}{'beat':>7}{'down':>7}{'mono LU':>8}{'dBTP':>7}"
          f"{'analyse':>9}{'compose':>9}{'finish':>8}{'total':>8}")
    for p in pieces:
        c, t = p["cuts"], p["time"]
        print(f"{p['name']:<30}{_fmt(p['tonic_end'], ''):>6}{100 * p['tempo_jump']:>6.1f}%{_fmt(c['onset'], '.0%'):>7}"
              f"{_fmt(c['beat'], '.0%'):>7}"
              f"{_fmt(c['downbeat'], '.0%'):>7}{p['mono_loss']:>8.2f}{p['true_peak']:>7.2f}{t['analysis']:>9.2f}"
              f"{t['compose']:>9.2f}{t['finish']:>8.2f}{t['total']:>8.2f}")
    for name in ("folk", "soprano"):
        share = _mean(float(r["tonic_end"]) for r in ref[name])
        print(f"{'ref: ' + name + ' (tonic share)':<30}{share:>6.0%}")

    # --- targets
    mel = [p["parts"]["melody"] for p in pieces]
    bass = [p["parts"]["bass"] for p in pieces]
    all_cuts = sum(p["cuts"]["cuts"] for p in pieces)
    on_beat = sum(p["cuts"]["beat"] * p["cuts"]["cuts"] for p in pieces if p["cuts"]["cuts"])
    clips = [p for p in pieces if p["seconds"] <= 30]
    targets = [
        ("melody repeated notes, average", "<= 0.15", _mean(m["repeated"] for m in mel), lambda x: x <= 0.15, ".3f"),
        ("melody repeated notes, worst piece", "<= 0.25", max(m["repeated"] for m in mel), lambda x: x <= 0.25, ".3f"),
        ("melody longest run of equal notes", "<= 4", max(m["longest_run"] for m in mel), lambda x: x <= 4, "d"),
        ("melody pitch-class entropy / 8 bars, average", ">= 2.3", _mean(m["pc_entropy"] for m in mel),
         lambda x: x >= 2.3, ".2f"),
        ("bass stepwise share, average", ">= 0.3", _mean(b["stepwise"] for b in bass), lambda x: x >= 0.3, ".2f"),
        ("bass repeated notes, average", "<= 0.2", _mean(b["repeated"] for b in bass), lambda x: x <= 0.2, ".3f"),
        ("melody bars repeating an earlier bar, worst", "<= 0.5", max(m["repeated_bars"] for m in mel),
         lambda x: x <= 0.5, ".2f"),
        ("pieces with a tonic at the last frame", f"{len(pieces)} of {len(pieces)}",
         sum(bool(p["tonic_end"]) for p in pieces), lambda x: x == len(pieces), "d"),
        (f"hard cuts on a beat in the audio ({all_cuts})", ">= 90 %",
         on_beat / all_cuts if all_cuts else float("nan"), lambda x: x >= 0.9, ".1%"),
        ("largest bar-to-bar tempo change", "<= 4 %", max(p["tempo_jump"] for p in pieces), lambda x: x <= 0.04,
         ".1%"),
        ("mono fold-down loss, worst (LU)", "<= 3", max(p["mono_loss"] for p in pieces), lambda x: x <= 3.0, ".2f"),
        ("true peak, worst (dBTP)", "<= -1", max(p["true_peak"] for p in pieces), lambda x: x <= -1.0, ".2f"),
        ("30 s clip, slowest in-process total (s)", "<= 10", max(p["time"]["total"] for p in clips) if clips else float("nan"),
         lambda x: x <= 10.0, ".2f"),
    ]
    print(f"\nTargets (issue 15){'':<30}{'target':>10}{'measured':>10}")
    met = 0
    for label, target, value, ok, spec in targets:
        good = not (isinstance(value, float) and math.isnan(value)) and ok(value)
        met += good
        print(f"  {label:<46}{target:>10}{_fmt(value, spec):>10}  {'met' if good else 'NOT MET'}")
    print(f"  {met} of {len(targets)} targets met")


if __name__ == "__main__":
    main()
