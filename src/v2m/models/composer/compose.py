"""The offline composer: a score from a video analysis, on a CPU, in well under a second.

How the picture shapes the music (every step is seeded and deterministic):

- **Mood from colour.** Brightness, saturation and warmth (averaged over the video) give a
  valence: major or minor, and the key (warm and bright -> sharp keys, cool and dark -> flat
  ones). Motion and saturation give an arousal: the tempo range (about 75-105 BPM when calm up
  to 110-140 when busy) and, with valence, one of four instrument palettes.
- **Rhythm from the cuts.** :mod:`.grid` finds the tempo and phase that put cuts and strong
  visual beats on beats and bends it so cuts fall exactly on downbeats. Every cut gets a
  cymbal and a new chord on its downbeat; strong visual beats on a beat get an accent.
- **Sections from shots.** Each shot is a section: its own chord phrase (a Markov chain over
  scale degrees learned from Bach chorales, ending on the dominant so the next cut resolves to
  the tonic) and its own melodic motif (steps and beat rhythms learned from folk tunes), unless
  the semantic control asks to keep the previous motif.
- **Energy from motion.** Each bar's motion sets its density (rhythm patterns, drum pattern,
  bass figure) and its dynamics; the colour valence of each shot moves its register.

Controls: ``pitch`` transposes the pitched parts by ``12 * log2(weight)`` semitones (at most
two octaves); ``loudness`` scales the dynamic range around the mean velocity; ``chroma`` thins
(< 0.6: fifths) or enriches (> 1.4: sevenths, > 2.2: ninths) the harmony; ``spectral`` scales
cymbals and hats and adds a glockenspiel an octave above the melody (> 1.3) or darkens the
palette (< 0.7). Video controls per shot: ``move`` scales its motion, ``color`` its colour
(around neutral grey), ``semantic`` the chance of a new motif (0: the previous one repeats);
``area`` and ``position`` need objects, which the composer does not use.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import numpy as np

from ...analysis.timeline import Analysis
from ...controls import Controls
from .grid import fit_grid
from .score import DRUM_CHANNEL, Note, Part, Score
from .train import STATS_PATH
from ...theory import Key, parse_key

MOTION_REF = 0.6  # mean luma change per second of clearly busy footage
NEUTRAL = {"brightness": 0.5, "saturation": 0.3, "warmth": 0.0}
MAJOR_TONICS = (4, 9, 2, 7, 0, 5, 10, 3)  # E A D G C F Bb Eb: bright/warm -> dark/cool
MINOR_TONICS = (11, 4, 9, 2, 7, 0, 5)  # B E A D G C F

# (pad, melody, bass) General MIDI programs, 0-based, and whether a drum kit plays.
PALETTES = {
    "calm_dark": {"pad": 48, "melody": 42, "bass": 43, "kit": False},  # strings, cello, contrabass
    "calm_bright": {"pad": 0, "melody": 73, "bass": 32, "kit": False},  # piano, flute, acoustic bass
    "drive_dark": {"pad": 50, "melody": 81, "bass": 38, "kit": True},  # synth strings, saw lead, synth bass
    "drive_bright": {"pad": 4, "melody": 56, "bass": 33, "kit": True},  # e-piano, trumpet, finger bass
}
DARKER = {"pad": 89, "melody": 60}  # warm pad, French horn
KICK, SNARE, CLAP, HAT, OPEN_HAT, CRASH, RIDE, TRIANGLE, TOM = 36, 38, 39, 42, 46, 49, 51, 81, 45


@functools.lru_cache(maxsize=1)
def load_stats(path: str = STATS_PATH) -> dict:
    with open(path) as f:
        stats = json.load(f)
    if stats.get("format") != "v2m-composer-stats":
        raise ValueError(f"{path} is not a composer statistics file")
    return stats


@dataclass
class Mood:
    valence: float
    arousal: float
    key: Key
    tempo_range: tuple[float, float]
    palette: str


def _controlled_features(analysis: Analysis, controls: Controls) -> dict[str, np.ndarray]:
    """Per-second motion and colour with the video controls of each shot applied."""
    n = analysis.n_seconds
    shot_of_second = np.searchsorted(analysis.shots[:, 0], np.arange(n) + 0.5, side="right") - 1
    out = {"motion": analysis.motion.astype(np.float64).copy()}
    for name in ("brightness", "saturation", "warmth"):
        out[name] = getattr(analysis, name).astype(np.float64).copy()
    for s in range(len(analysis.shots)):
        sel = shot_of_second == s
        out["motion"][sel] *= controls.video_weight("move", s)
        w = controls.video_weight("color", s)
        for name, neutral in NEUTRAL.items():
            out[name][sel] = neutral + w * (out[name][sel] - neutral)
    out["shot_of_second"] = shot_of_second
    return out


def _valence(brightness: float, saturation: float, warmth: float) -> float:
    """Colour valence: bright, saturated and warm is positive; dark, grey and cool negative."""
    return 1.5 * (brightness - 0.45) + 0.8 * (saturation - 0.3) + 1.0 * warmth


def choose_mood(features: dict[str, np.ndarray], controls: Controls) -> Mood:
    b = float(np.mean(features["brightness"]))
    s = float(np.mean(features["saturation"]))
    w = float(np.mean(features["warmth"]))
    m = float(np.median(features["motion"]))
    valence = _valence(b, s, w)
    arousal = float(np.clip(0.7 * min(1.0, m / MOTION_REF) + 0.3 * min(1.0, s / 0.6), 0.0, 1.0))
    if controls.key:
        key = parse_key(controls.key)
    else:
        mode = "major" if valence >= -0.05 else "minor"
        tonics = MAJOR_TONICS if mode == "major" else MINOR_TONICS
        lightness = np.clip(0.5 + 0.8 * (b - 0.5) + 0.5 * w, 0.0, 0.999)
        key = Key(tonics[int((1.0 - lightness) * len(tonics))], mode)
    lo = 75.0 + 35.0 * arousal
    tempo_range = (lo, lo + 30.0)
    palette = ("drive" if arousal >= 0.45 else "calm") + ("_bright" if valence >= 0 else "_dark")
    return Mood(valence, arousal, key, tempo_range, palette)


def _sample(rng: np.random.Generator, probs) -> int:
    p = np.asarray(probs, np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))


class _Writer:
    """Collects notes for named parts."""

    def __init__(self, parts: list[Part]):
        self.parts = parts
        self.index = {p.name: i for i, p in enumerate(parts)}
        self.notes: list[Note] = []

    def add(self, part: str, start: float, end: float, pitch: int, velocity: float) -> None:
        if part in self.index and end > 0:
            self.notes.append(Note(start, end, int(np.clip(pitch, 0, 127)), int(np.clip(round(velocity), 1, 127)),
                                   self.index[part]))


def compose(analysis: Analysis, duration: float, controls: Controls = Controls(), seed: int = 0) -> Score:
    """The score for ``analysis`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    stats = load_stats()
    features = _controlled_features(analysis, controls)
    mood = choose_mood(features, controls)
    key = mood.key

    # Rhythm: the grid, with visual beats weighted by their shot's motion control.
    beat_shots = np.searchsorted(analysis.shots[:, 0], analysis.beat_times, side="right") - 1
    beat_weights = np.array([controls.video_weight("move", int(s)) for s in beat_shots]) if len(beat_shots) else []
    strengths = np.clip(analysis.beat_strengths * np.asarray(beat_weights, np.float64), 0, 1)
    grid = fit_grid(duration, analysis.cut_times, analysis.beat_times, strengths,
                    mood.tempo_range, tempo=controls.tempo)
    bars = grid.bars()

    # Controls on the music.
    shift = int(round(12 * math.log2(max(controls.music_weight("pitch"), 0.25))))
    shift = int(np.clip(shift, -24, 24))
    loud = controls.music_weight("loudness")
    chroma = controls.music_weight("chroma")
    bright = controls.music_weight("spectral")

    palette = dict(PALETTES[mood.palette])
    if bright < 0.7:
        palette.update(DARKER)
    parts = [Part("pad", palette["pad"], 0, pan=44, reverb=70), Part("melody", palette["melody"], 1, pan=80, reverb=50),
             Part("bass", palette["bass"], 2, pan=64, reverb=20), Part("drums", 0, DRUM_CHANNEL, pan=64, reverb=30,
                                                                     is_drum=True)]
    if bright >= 1.3:
        parts.append(Part("sparkle", 9, 3, pan=96, reverb=60))  # glockenspiel
    out = _Writer(parts)

    # Per-bar energy and section.
    motion = features["motion"]
    p90 = float(np.percentile(analysis.motion, 90)) + 1e-6
    shot_starts = analysis.shots[:, 0]

    def bar_info(beats: np.ndarray) -> tuple[float, int]:
        a, z = max(0.0, beats[0]), max(0.0, beats[-1])
        secs = np.arange(int(a), min(len(motion), int(z) + 1))
        m = float(np.mean(motion[secs])) if len(secs) else 0.0
        level = 0.5 * min(1.0, m / MOTION_REF) + 0.5 * min(1.0, m / p90)
        section = int(np.searchsorted(shot_starts, a + 1e-6, side="right") - 1)
        return float(np.clip(level, 0, 1)), max(0, section)

    infos = [bar_info(b) for b in bars]
    sections = sorted({s for _, s in infos})

    # Harmony: a chord (scale degree) per bar, phrases per section ending on the dominant.
    harmony = stats["harmony"][key.mode]
    chords: list[int] = []
    prev = None
    for i, (_, section) in enumerate(infos):
        new_section = i == 0 or infos[i - 1][1] != section
        last_of_section = i + 1 < len(infos) and infos[i + 1][1] != section
        if i + 1 == len(infos):
            degree = 0
        elif last_of_section and i > 0 and not new_section:
            degree = 4
        elif new_section and prev is not None:
            degree = 0 if prev == 4 else _sample(rng, harmony["transition"][prev])
        elif prev is None:
            degree = _sample(rng, harmony["start"])
        else:
            degree = _sample(rng, harmony["transition"][prev])
        chords.append(degree)
        prev = degree

    # Melody motifs per section: beat patterns and diatonic steps.
    patterns = {int(k): v for k, v in stats["rhythm"]["beat_pattern"].items()}
    steps = stats["melody"]["steps"]
    step_p = stats["melody"]["step_given_previous"]
    motifs: dict[int, list[tuple[float, int]]] = {}
    previous_motif = None
    for section in sections:
        keep = previous_motif is not None and rng.random() >= min(1.0, 0.7 * controls.video_weight("semantic", section))
        if keep:
            motifs[section] = previous_motif
            continue
        level = np.mean([lv for lv, s in infos if s == section]) if infos else 0.5
        max_onsets = 1 + int(level * 3.0)
        allowed = {p: n for p, n in patterns.items() if bin(p).count("1") <= max_onsets}
        keys_ = list(allowed)
        probs = np.array([allowed[k] for k in keys_], np.float64)
        motif, last_step = [], 0
        for beat in range(2 * grid.beats_per_bar):
            pattern = keys_[_sample(rng, probs)]
            for slot in range(4):
                if pattern & (1 << slot):
                    context = "down" if last_step < 0 else "up" if last_step > 0 else "same"
                    last_step = steps[_sample(rng, step_p[context])]
                    motif.append((beat + slot / 4.0, last_step))
        motifs[section] = motif or [(0.0, 0)]
        previous_motif = motifs[section]

    # Notes, bar by bar.
    section_colour = {}
    for section in sections:  # a section's colour valence moves its register (up to 9 semitones)
        sel = features["shot_of_second"] == section
        v = _valence(*(float(np.mean(features[k][sel])) if sel.any() else NEUTRAL[k] for k in NEUTRAL))
        section_colour[section] = int(np.clip(round(8 * v), -9, 9))
    kit = palette["kit"]
    degree = 2  # the melody's current scale degree (relative to the tonic, may leave the octave)
    cut_set = np.asarray(analysis.cut_times)
    for i, (beats, (level, section)) in enumerate(zip(bars, infos)):
        bar_end = bars[i + 1][0] if i + 1 < len(bars) else beats[-1] + (beats[-1] - beats[-2])
        edges = np.append(beats, bar_end)

        def at(pos: float) -> float:  # time of a position in beats, on this bar's (bent) beats
            return float(np.interp(pos, np.arange(len(edges)), edges))

        register = section_colour.get(section, 0) + shift
        base_vel = 52 + 50 * level
        chord_pcs = key.chord(chords[i], seventh=chroma > 1.4, ninth=chroma > 2.2)
        if chroma < 0.6:
            chord_pcs = [chord_pcs[0], key.chord(chords[i])[2]]  # open fifth: no third
        root = chord_pcs[0]

        # pad: the chord voiced near middle C, held (or struck on each beat when busy)
        centre = 60 + register
        voicing = sorted(centre - 5 + ((pc - (centre - 5)) % 12) for pc in chord_pcs)
        if level > 0.7 and not kit:
            hits = [(at(j), at(j + 0.9)) for j in range(len(beats))]
        else:
            hits = [(beats[0], bar_end)]
        for a, z in hits:
            for p in voicing:
                out.add("pad", a, z, p, base_vel - 12)

        # bass: root, whole / half / quarter notes by energy
        bass_pitch = 36 + ((root - 36) % 12) + min(shift, 12) // 12 * 12
        per_bar = 1 if level < 0.35 else 2 if level < 0.65 else 4
        step = grid.beats_per_bar / per_bar
        for j in range(per_bar):
            out.add("bass", at(j * step), at(j * step + 0.95 * step), bass_pitch, base_vel)

        # melody: the section's motif over two bars, snapped to chord tones on beats
        motif = motifs[section]
        half = (i - next(k for k, inf in enumerate(infos) if inf[1] == section)) % 2
        chord_degrees = [d for d in range(7) if key.scale[d] in chord_pcs] or [0]
        notes_here = [(pos - half * grid.beats_per_bar, st) for pos, st in motif
                      if half * grid.beats_per_bar <= pos < (half + 1) * grid.beats_per_bar]
        for j, (pos, st) in enumerate(notes_here):
            degree += st
            if pos == int(pos):  # on a beat: the nearest chord tone
                degree = min((d + 7 * o for d in chord_degrees for o in range(-2, 3)), key=lambda x: abs(x - degree))
            degree = int(np.clip(degree, -3, 11))
            nxt = notes_here[j + 1][0] if j + 1 < len(notes_here) else grid.beats_per_bar
            a, z = at(pos), at(min(nxt, pos + 2.0))
            pitch = key.degree_pitch(degree, 72 + register)
            accent = 10 if pos == 0 else 0
            out.add("melody", a, z - 0.02, pitch, base_vel + 6 + accent)
            out.add("sparkle", a, z - 0.02, pitch + 12, base_vel - 10)

        # drums: pattern by energy; hats and cymbals scale with the spectral control
        hat_vel = min(127, (base_vel - 15) * bright)
        if kit and level >= 0.2:
            for j, t in enumerate(beats):
                if j % 2 == 0:
                    out.add("drums", t, t + 0.1, KICK, base_vel + 5)
                else:
                    out.add("drums", t, t + 0.1, SNARE, base_vel)
                sub = 4 if level > 0.7 else 2
                for k in range(sub):
                    if bright >= 0.7:
                        out.add("drums", at(j + k / sub), at(j + k / sub) + 0.05, HAT, hat_vel - (10 if k % 2 else 0))
        elif not kit and level >= 0.45 and bright >= 0.7:
            for t in beats:
                out.add("drums", t, t + 0.2, RIDE, hat_vel - 10)

    # Cuts: a cymbal on the (down)beat each cut landed on; visual beats: an accent.
    for c in cut_set:
        near = grid.times[np.argmin(np.abs(grid.times - c))]
        if abs(near - c) < 0.06:
            out.add("drums", near, near + 1.0, CRASH, min(127, 100 * max(bright, 0.6)))
            out.add("drums", near, near + 0.2, KICK, 100)
    for t, s in zip(analysis.beat_times, strengths):
        near = grid.times[np.argmin(np.abs(grid.times - t))]
        if s >= 0.4 and abs(near - t) < 0.07 and not (len(cut_set) and np.min(np.abs(cut_set - near)) < 0.1):
            out.add("drums", near, near + 0.3, (OPEN_HAT if bright >= 0.7 else TOM) if kit else
                    (TRIANGLE if mood.valence >= 0 else TOM), 60 + 50 * s)

    # Dynamics: the loudness control scales the spread of velocities around their mean.
    notes = [n for n in out.notes if n.start < duration]
    if notes:
        mean_v = float(np.mean([n.velocity for n in notes]))
        for n in notes:
            n.velocity = int(np.clip(round(mean_v + loud * (n.velocity - mean_v)), 1, 127))
            n.end = min(n.end, duration + 2.0)
    spans: list[tuple[int, float, float]] = []  # (section, first bar start, next section's start)
    for beats, (_, section) in zip(bars, infos):
        if not spans or spans[-1][0] != section:
            spans.append((section, float(beats[0]), float(beats[0])))
        spans[-1] = (section, spans[-1][1], float(beats[-1] + (beats[-1] - beats[-2])))
    return Score(parts=parts, notes=notes, grid=grid, key=key, duration=duration, sections=spans,
                 info={"key": key.name, "bpm": round(grid.bpm, 2), "palette": mood.palette,
                       "valence": round(mood.valence, 3), "arousal": round(mood.arousal, 3),
                       "bars": len(bars), "sections": len(sections), "seed": seed})
