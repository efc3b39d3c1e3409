"""The offline composer: a score from a video analysis, on a CPU, in well under a second.

:func:`compose` works as a composer scoring to picture does, one stage after another (each is a
function below, in this order; every choice is drawn from one seeded generator):

1. **Mood and style** (:func:`choose_mood`): the colour of the picture gives a valence (major or
   minor, and the key, around the whole circle of fifths: warm and bright pictures in sharp keys,
   cool and dark ones in flat keys), its motion an arousal; together they choose the style
   (:mod:`.styles`) unless ``--style`` names one, and the tempo range inside the style's.
2. **Grid** (:mod:`.grid`): a steady tempo whose beats take the cuts; the cuts that matter (they
   open a long shot, or change the picture most) on downbeats.
3. **Plan** (:mod:`.plan`): bars, their energy, sections (A B A' ...) that follow the shots, 4-bar
   phrases with their cadences, layers that follow the energy, the final bar.
4. **Harmony** (:mod:`.harmony`): progressions per phrase, harmonic rhythm, pedal points, bass
   notes and inversions.
5. **Melody** (:mod:`.melody`): motifs per section, developed through the phrases, ending on the
   tonic.
6. **Accompaniment** (:mod:`.parts`): the harmony part voiced below the melody, the bass line, the
   counter line, the drums with fills and risers.
7. **Hits**: every cut on a beat gets an onset in the sustaining parts; a cut that matters gets
   the style's accent (a cymbal and kick, a timpani stroke).
8. **Performance** (:func:`perform`): swing, micro-timing (the bass a little behind), velocity
   curves over each phrase, legato for winds and strings, the sustain pedal, expression swells.
9. **Under speech** (:mod:`.dialogue`, only when ``speech`` spans are given): wherever someone
   speaks, no melody, held chords, a long bass, no counter line, only soft downbeat kicks; the
   music away from speech is unchanged.

Controls: ``pitch`` transposes the pitched parts by ``12 * log2(weight)`` semitones (at most two
octaves); ``loudness`` scales the dynamic range around the mean velocity; ``chroma`` thins (< 0.6:
open fifths) or enriches (> 1.4: sevenths, > 2.2: ninths) the harmony; ``spectral`` scales the
cymbals and hats and adds a glockenspiel an octave above the melody (> 1.3) or darkens the
ensemble (< 0.7: a warm pad and a horn). Video controls per shot: ``move`` scales its motion,
``color`` its colour (around neutral grey, which also moves its register), ``semantic`` the chance
of a new motif (0: the previous one returns); ``area`` and ``position`` need objects, which the
composer does not use.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ...analysis.timeline import Analysis
from ...controls import Controls
from ...errors import V2MError
from ...theory import Key, parse_key
from . import parts as P
from .dialogue import under_speech
from .grid import BeatGrid, fit_grid
from .harmony import Chord, bar_chords, choose_basses, phrase_degrees
from .melody import Line, MelodyNote, make_motif, vary_rhythm, write_phrase
from .plan import MOTION_REF, Bar, bar_energies, grid_bars, plan_form, plan_keys
from .score import DRUM_CHANNEL, Control, Note, Part, Score  # noqa: F401 (DRUM_CHANNEL re-exported)
from .sound import ROOMS
from .styles import STYLES, Instrument, Style, choose_style
from .train import STATS_PATH

NEUTRAL = {"brightness": 0.5, "saturation": 0.3, "warmth": 0.0}
# Tonics from the brightest to the darkest key: the circle of fifths from B (five sharps) to Gb.
MAJOR_TONICS = (11, 4, 9, 2, 7, 0, 5, 10, 3, 8, 1, 6)
MINOR_TONICS = (8, 1, 6, 11, 4, 9, 2, 7, 0, 5, 10, 3)  # G#m ... Ebm, the same signatures
# The colour lightness of the brightest key's pictures and the span down to the darkest key's, per
# mode: major pictures are lighter than minor ones (lightness 0.44-0.98 against 0.05-0.42 for 95 %
# of the colours a sweep of brightness, saturation and warmth gives).
KEY_LIGHTNESS = {"major": (0.95, 0.5), "minor": (0.45, 0.4)}
DARKER = {"harmony": Instrument(89, 48, 72, legato=0.08, swell=True, name="warm pad"),
          "melody": Instrument(60, 55, 77, legato=0.05, swell=True, name="French horn")}
SPARKLE = Instrument(9, 72, 105, name="glockenspiel")
TIMPANI = Instrument(47, 40, 55, name="timpani")
CHANNELS = {"harmony": 0, "melody": 1, "bass": 2, "counter": 3, "sparkle": 4, "timpani": 5}
TIMING_MS = {"melody": 8.0, "harmony": 5.0, "bass": 4.0, "counter": 6.0, "sparkle": 6.0, "timpani": 2.0, "drums": 3.0}
BASS_BEHIND_MS = 10.0


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
    style: str
    tempo_range: tuple[float, float]  # the style's
    tempo: float  # the tempo the grid leans to: higher the busier the picture


# --- 1. mood and style ------------------------------------------------------------------------


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


def choose_mood(features: dict[str, np.ndarray], controls: Controls, style: str | None = None) -> Mood:
    b = float(np.mean(features["brightness"]))
    s = float(np.mean(features["saturation"]))
    w = float(np.mean(features["warmth"]))
    # Motion is measured as luma change, which a dark picture shows less of: up to 3x for it.
    m = float(np.median(features["motion"])) * float(np.clip(0.5 / max(b, 1e-3), 1.0, 3.0))
    valence = _valence(b, s, w)
    arousal = float(np.clip(0.7 * min(1.0, m / MOTION_REF) + 0.3 * min(1.0, s / 0.6), 0.0, 1.0))
    if controls.key:
        key = parse_key(controls.key)
    else:
        mode = "major" if valence >= -0.05 else "minor"
        tonics = MAJOR_TONICS if mode == "major" else MINOR_TONICS
        lightness = 0.5 + 0.8 * (b - 0.5) + 0.5 * w + 0.3 * (s - 0.3)
        brightest, span = KEY_LIGHTNESS[mode]  # each mode's pictures span the whole circle
        position = float(np.clip((brightest - lightness) / span, 0.0, 0.999))
        key = Key(tonics[int(position * len(tonics))], mode)
    name = style or choose_style(arousal, valence)
    lo, hi = STYLES[name].tempo
    return Mood(valence, arousal, key, name, (lo, hi), lo + (hi - lo) * (0.2 + 0.6 * arousal))


def ensemble(style: Style, spectral: float) -> tuple[Style, list[Part]]:
    """The style's instruments as score parts (the spectral control darkens or adds a
    glockenspiel), and the style as played (with the darker instruments when asked)."""
    if spectral < 0.7:  # darker: a warm pad and a horn, no bright counter line
        style = replace(style, harmony=DARKER["harmony"], melody=DARKER["melody"], counter=None)
    pan = style.pans
    reverb = {"hall": 80, "plate": 60, "room": 45, "studio": 25}.get(style.room, 45)
    parts = [Part("melody", style.melody.program, CHANNELS["melody"], pan=pan.get("melody", 70), reverb=reverb),
             Part("harmony", style.harmony.program, CHANNELS["harmony"], pan=pan.get("harmony", 54), reverb=reverb + 10),
             Part("bass", style.bass.program, CHANNELS["bass"], pan=pan.get("bass", 64), reverb=reverb // 3)]
    if style.counter is not None:
        parts.append(Part("counter", style.counter.program, CHANNELS["counter"], pan=pan.get("counter", 40),
                          reverb=reverb))
    if style.groove == "orchestral":
        parts.append(Part("timpani", TIMPANI.program, CHANNELS["timpani"], pan=64, reverb=reverb))
    if style.groove is not None:
        parts.append(Part("drums", 0, DRUM_CHANNEL, pan=64, reverb=reverb // 2, is_drum=True))
    if spectral >= 1.3:
        parts.append(Part("sparkle", SPARKLE.program, CHANNELS["sparkle"], pan=96, reverb=reverb))
    return style, parts


# --- 2. grid ----------------------------------------------------------------------------------


def cut_importance(analysis: Analysis, features: dict[str, np.ndarray], duration: float) -> np.ndarray:
    """Per cut, 0..1: how much it matters to the music. A cut matters when it opens or closes a
    long shot, or when the picture's colour changes most across it; cuts closer than 6 s to a
    more important one matter less."""
    cuts = np.asarray(analysis.cut_times, np.float64)
    if not len(cuts):
        return np.zeros(0)
    bounds = np.concatenate([[0.0], cuts, [duration]])
    before, after = np.diff(bounds)[:-1], np.diff(bounds)[1:]
    length = np.clip(np.maximum(before, after) / 8.0, 0.0, 1.0)
    colour = np.zeros(len(cuts))
    for i, c in enumerate(cuts):
        a, z = max(0, int(c) - 2), min(analysis.n_seconds, int(c) + 2)
        if z - a >= 2:
            left = [float(np.mean(features[k][a: int(c)] if int(c) > a else features[k][a])) for k in NEUTRAL]
            right = [float(np.mean(features[k][int(c) + 1: z] if z > int(c) + 1 else features[k][z - 1]))
                     for k in NEUTRAL]
            colour[i] = min(1.0, 3.0 * float(np.abs(np.subtract(left, right)).sum()))
    score = np.clip(0.7 * length + 0.5 * colour, 0.0, 1.0)
    order = np.argsort(-score, kind="stable")
    kept: list[float] = []
    for i in order:  # a cut within 6 s of a more important one is demoted
        if score[i] >= 0.5 and any(abs(cuts[i] - k) < 6.0 for k in kept):
            score[i] = 0.4
        elif score[i] >= 0.5:
            kept.append(float(cuts[i]))
    return score


def make_grid(analysis: Analysis, duration: float, controls: Controls, mood: Mood, importance: np.ndarray) -> BeatGrid:
    """The beat grid, with the visual beats weighted by their shot's motion control."""
    beat_shots = np.searchsorted(analysis.shots[:, 0], analysis.beat_times, side="right") - 1
    weights = np.array([controls.video_weight("move", int(s)) for s in beat_shots], np.float64)
    strengths = np.clip(analysis.beat_strengths * weights, 0, 1) if len(weights) else np.zeros(0)
    return fit_grid(duration, analysis.cut_times, analysis.beat_times, strengths, mood.tempo_range,
                    tempo=controls.tempo, cut_importance=importance, preferred=mood.tempo)


# --- 4. harmony -------------------------------------------------------------------------------


def phrases_of(bars: list[Bar]) -> list[list[Bar]]:
    out: list[list[Bar]] = []
    for bar in bars:
        if not out or bar.phrase_bar == 0 or (out[-1][-1].section, out[-1][-1].phrase) != (bar.section, bar.phrase):
            out.append([])
        out[-1].append(bar)
    return out


def write_harmony(bars: list[Bar], style: Style, stats: dict, rng: np.random.Generator,
                  chroma: float) -> list[list[Chord]]:
    """Each bar's chords: a progression per phrase, a pedal under calm openings, bass notes, and
    the new key's dominant before a modulation."""
    out: list[list[Chord]] = [[] for _ in bars]
    prev = None
    for phrase in phrases_of(bars):
        first = phrase[0]
        key = first.key
        harmony = stats["harmony"][key.mode]
        start = 0 if first.phrase == 0 and first.label.startswith("A") else None
        if first.label.startswith(("B", "C")) and first.phrase == 0:
            start = int(rng.choice([3, 5] if key.mode == "major" else [3, 5, 6]))
        cadence = phrase[-1].cadence
        degrees = phrase_degrees(rng, harmony, len(phrase), cadence, start, prev)
        pedal = first.section == 0 and first.phrase == 0 and np.mean([b.energy for b in phrase]) < 0.3 \
            and cadence != "final"
        chords = bar_chords(key, degrees, [b.n_beats for b in phrase], [b.energy for b in phrase],
                            [b.cadence for b in phrase], rng, style.sevenths, chroma, pedal)
        if pedal:  # the last chord of a pedal phrase leaves the pedal so the cadence is heard
            chords[-1][-1].pedal = False
            chords[-1][-1].bass_pc = chords[-1][-1].tones[0]
        flat = [c for bar in chords for c in bar]
        choose_basses(flat, key, cadence_goal={len(flat) - 1})
        for bar, c in zip(phrase, chords):
            out[bar.index] = c
        prev = degrees[-1]
    for bar in bars[:-1]:  # the pivot: the bar before a new key is its dominant
        after = bars[bar.index + 1].key
        if bar.key == after and bars[max(0, bar.index - 1)].key != after and bar.index > 0:
            out[bar.index] = [Chord(0.0, 4, after.chord(4, seventh=True), after.chord(4)[0])]
    return out


# --- 5. melody --------------------------------------------------------------------------------


def write_melody(bars: list[Bar], chords: list[list[Chord]], style: Style, stats: dict,
                 rng: np.random.Generator, controls: Controls) -> list[MelodyNote]:
    """The melody, phrase by phrase, from one motif per section label (see :mod:`.melody`)."""
    line = Line(bars[0].key, style.melody, stats, rng)
    motifs: dict[str, object] = {}
    previous = None
    notes: list[MelodyNote] = []
    opening = None
    developments = ("sequence", "inversion", "rhythm")
    for phrase in phrases_of(bars):
        first = phrase[0]
        if first.final and first.cadence is None:
            continue
        energy = float(np.mean([b.energy for b in phrase]))
        base = first.label.rstrip("'")
        if first.phrase == 0 and first.label not in motifs:
            keep_previous = previous is not None and \
                rng.random() >= min(1.0, 0.7 * controls.video_weight("semantic", first.shot))
            if keep_previous:
                motif = previous
            elif base in motifs and first.label != base:  # A': A's motif with a new rhythm in places
                motif = vary_rhythm(rng, motifs[base], stats, energy, style.density)
            else:
                motif = make_motif(rng, stats, energy, style.density)
            motifs[first.label] = motif
            opening = None
        motif = motifs.get(first.label, previous) or make_motif(rng, stats, energy, style.density)
        previous = motif
        consequent = first.phrase % 2 == 1
        development = developments[int(rng.integers(len(developments)))]
        phrase_chords = [chords[b.index] for b in phrase]
        written, made = write_phrase(line, phrase, phrase_chords, motif, stats, rng, development,
                                     opening if consequent else None, energy, style.density)
        if not consequent:
            opening = made
        if len(bars) >= 16 and first.section == 0 and first.phrase == 0:
            written = [n for n in written if n.bar >= 2]  # the melody enters in the third bar
        notes += written
    return notes


# --- 6. accompaniment -------------------------------------------------------------------------


def write_accompaniment(bars: list[Bar], chords: list[list[Chord]], melody: list[MelodyNote],
                        style: Style, rng: np.random.Generator, spectral: float,
                        part_names: list[str]) -> dict[str, list[tuple[Bar, P.Event]]]:
    # in the parts' order: the performance draws its timing from the generator part by part
    out: dict[str, list[tuple[Bar, P.Event]]] = {name: [] for name in part_names}
    by_bar: dict[int, list[MelodyNote]] = {}
    for n in melody:
        by_bar.setdefault(n.bar, []).append(n)
    voicing, bass_prev = None, None
    groove = P.choose_groove(rng)
    for bar in bars:
        base = 50 + 45 * bar.energy
        bar_melody = by_bar.get(bar.index, [])
        floor = min((n.pitch for n in bar_melody), default=style.melody.low)
        top = min(style.harmony.high, floor - 1)
        if bar.index and bar.section != bars[bar.index - 1].section:
            voicing = None  # a new section may open in a new voicing (the seed's choice)
        events, voicing = P.harmony_bar(style, bar, chords[bar.index], voicing, top, base, rng)
        out["harmony"] += [(bar, e) for e in events]
        nxt = chords[bar.index + 1][0].bass_pc if bar.index + 1 < len(bars) else None
        events, bass_prev = P.bass_bar(style, bar, chords[bar.index], nxt, bar.key, bass_prev, base + 4)
        out["bass"] += [(bar, e) for e in events]
        if "counter" in out and bar.layers >= 3:
            events = P.counter_bar(style, bar, chords[bar.index], [n.pitch for n in bar_melody], base, rng)
            out["counter"] += [(bar, e) for e in events]
        if "drums" in out:
            following = bars[bar.index + 1] if bar.index + 1 < len(bars) else None
            fill = following is not None and following.section != bar.section
            riser = following is not None and following.hit and following.section != bar.section
            if bar.section != (bars[bar.index - 1].section if bar.index else -1):
                groove = P.choose_groove(rng)  # a new section, perhaps a new groove
            out["drums"] += [(bar, e) for e in P.drum_bar(style.groove, groove, bar, base, fill, riser,
                                                          min(spectral, 1.6) ** 2)]
        if "sparkle" in out:
            out["sparkle"] += [(bar, P.Event(n.pos, n.length, n.pitch + 12, base - 10)) for n in bar_melody]
    return out


# --- 7. hits ----------------------------------------------------------------------------------


def hit_cuts(notes: list[Note], parts: list[Part], grid_times: np.ndarray, cuts: np.ndarray,
             importance: np.ndarray, style: Style, key: Key, energy_at) -> list[Note]:
    """Every cut on a beat gets an onset: sustained harmony and bass notes are struck again there;
    a cut that matters gets the style's accent (a crash and kick, a timpani stroke, a low note)."""
    index = {p.name: i for i, p in enumerate(parts)}
    sustaining = {index[n] for n in ("harmony", "bass") if n in index}
    held = [n for n in notes if n.part in sustaining]  # the notes a cut may strike again, in order
    starts = np.array([n.start for n in held])
    ends = np.array([n.end for n in held])
    extra: list[Note] = []
    for c, weight in zip(cuts, importance):
        if not len(grid_times):
            break
        beat = float(grid_times[np.argmin(np.abs(grid_times - c))])
        if abs(beat - c) > 0.05:
            continue
        for i in np.flatnonzero((starts < beat - 0.08) & (ends > beat + 0.08)):
            n = held[i]
            extra.append(Note(beat, n.end, n.pitch, min(127, n.velocity + 8), n.part))
            n.end = ends[i] = beat
        strong = weight >= 0.5
        if "drums" in index and strong:
            extra.append(Note(beat, beat + 1.5, P.CRASH, int(70 + 40 * energy_at(beat)), index["drums"]))
            extra.append(Note(beat, beat + 0.2, P.KICK, int(80 + 30 * energy_at(beat)), index["drums"]))
        elif "drums" in index:
            extra.append(Note(beat, beat + 0.2, P.KICK, int(60 + 30 * energy_at(beat)), index["drums"]))
        if "timpani" in index:
            pitch = TIMPANI.low + (key.tonic - TIMPANI.low) % 12
            extra.append(Note(beat, beat + 1.0, pitch, int((80 if strong else 55) + 30 * energy_at(beat)),
                              index["timpani"]))
    return notes + extra


# --- 8. performance ---------------------------------------------------------------------------


def _clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def _swung(pos: float, swing: float) -> float:
    """An eighth note off the beat moved to ``swing`` of the beat."""
    beat, frac = divmod(pos, 1.0)
    if swing > 0.5 and abs(frac - 0.5) < 1e-6:
        return beat + swing
    return pos


def perform(placed: dict[str, list[tuple[Bar, P.Event]]], melody: list[MelodyNote], bars: list[Bar], style: Style,
            parts: list[Part], rng: np.random.Generator) -> tuple[list[Note], list[Control]]:
    """Notes in seconds from the events: swing, micro-timing, phrase dynamics, articulation."""
    index = {p.name: i for i, p in enumerate(parts)}
    instruments = {"melody": style.melody, "harmony": style.harmony, "bass": style.bass, "counter": style.counter,
                   "sparkle": SPARKLE, "timpani": TIMPANI}
    notes: list[Note] = []
    controls: list[Control] = []
    lines = dict(placed)
    lines["melody"] = [(bars[m.bar], P.Event(m.pos, m.length, m.pitch, 58 + 40 * bars[m.bar].energy + 10 * m.accent))
                       for m in melody]
    for name, events in lines.items():
        if name not in index:
            continue
        sigma = TIMING_MS.get(name, 5.0) / 1000
        behind = BASS_BEHIND_MS / 1000 if name == "bass" else 0.0
        inst = instruments.get(name)
        part_notes = []
        timing: dict[tuple[int, float], float] = {}  # the notes of one chord (or strum) move together
        for bar, e in events:
            start_pos = _swung(e.pos, style.swing)
            end_pos = _swung(e.pos + e.length, style.swing)
            start, end = bar.at(start_pos), bar.at(min(end_pos, bar.n_beats + 4))
            if end_pos > bar.n_beats:  # past the bar line: at this bar's beat length
                end = bar.end + (end_pos - bar.n_beats) * bar.beat_length
            moment = (bar.index, round(e.pos * 4) / 4)
            if moment not in timing:
                timing[moment] = _clamp(float(rng.normal(0.0, sigma)), -2.5 * sigma, 2.5 * sigma)
            jitter = 0.0 if e.hit else timing[moment]
            arc = math.sin(math.pi * (bar.phrase_bar + e.pos / bar.n_beats) / max(1, bar.phrase_length))
            velocity = e.velocity * (0.92 + 0.14 * arc) + float(rng.normal(0.0, 3.0))
            if name == "drums" and abs(e.pos - round(e.pos)) > 1e-6:
                velocity -= 6  # off-beat strokes lighter
            part_notes.append(Note(start + jitter + behind, end + behind, int(e.pitch),
                                   int(_clamp(round(velocity), 1, 127)), index[name]))
        if inst is not None and name in ("melody", "counter"):
            _articulate(part_notes, inst)
        notes += part_notes
        if inst is not None and inst.pedal:
            controls += _pedal(bars, index[name])
        if inst is not None and inst.swell:
            controls += _swells(bars, index[name])
    return notes, controls


def _articulate(notes: list[Note], inst: Instrument) -> None:
    """Legato instruments overlap the next note slightly; others leave a small gap."""
    notes.sort(key=lambda n: n.start)
    for a, b in zip(notes, notes[1:]):
        gap = b.start - a.end
        if inst.legato > 0 and gap < 0.12:
            a.end = b.start + inst.legato
        elif gap < 0.05:
            a.end = max(a.start + 0.05, b.start - 0.03)


def _pedal(bars: list[Bar], part: int) -> list[Control]:
    """Sustain pedal: down just after each bar line, lifted just before the next (a change per bar)."""
    out = []
    for bar in bars:
        out.append(Control(bar.beats[0] + 0.04, part, 64, 127))
        out.append(Control(bar.end - 0.03, part, 64, 0))
    return out


def _swells(bars: list[Bar], part: int) -> list[Control]:
    """Expression (CC 11) rising through each phrase and easing at its cadence."""
    out = []
    for bar in bars:
        rise = bar.phrase_bar / max(1, bar.phrase_length - 1)
        level = 84 + 30 * math.sin(math.pi * min(1.0, 0.25 + 0.75 * rise)) * (0.5 + 0.5 * bar.energy)
        out.append(Control(bar.beats[0], part, 11, int(np.clip(level, 40, 127))))
        out.append(Control(bar.at(bar.n_beats / 2), part, 11, int(np.clip(level + 8, 40, 127))))
    return out


# --- the composer -----------------------------------------------------------------------------


def shot_registers(analysis: Analysis, features: dict[str, np.ndarray]) -> list[int]:
    """Per shot, the scale steps its colour valence moves the register by (at most 3)."""
    out = []
    for shot in range(len(analysis.shots)):
        sel = features["shot_of_second"] == shot
        v = _valence(*(float(np.mean(features[k][sel])) if sel.any() else NEUTRAL[k] for k in NEUTRAL))
        out.append(int(np.clip(round(5 * v), -3, 3)))
    return out


def shift_registers(notes: list[Note], parts: list[Part], bars: list[Bar], shot_starts: np.ndarray,
                    registers: list[int]) -> None:
    """Move the melody, harmony and counter notes of each shot by its register, in scale steps (the
    key is kept; a note outside the scale moves with the step below it). The melody was written
    inside its range less the room this takes (:data:`.melody.REGISTER_SLACK`); the bass stays."""
    moving = {i for i, p in enumerate(parts) if p.name in ("melody", "harmony", "counter", "sparkle")}
    starts = np.array([b.beats[0] for b in bars])
    for n in notes:
        if n.part not in moving:
            continue
        shot = max(0, int(np.searchsorted(shot_starts, n.start + 0.045, side="right")) - 1)
        if registers[shot]:
            bar = bars[max(0, int(np.searchsorted(starts, n.start + 0.045, side="right")) - 1)]
            n.pitch = _diatonic_shift(n.pitch, registers[shot], bar.key)


@functools.lru_cache(maxsize=32)
def _degrees(key: Key) -> dict[int, int]:
    """MIDI pitch -> scale degree (counted from the tonic below middle C) of the key's tones."""
    return {key.degree_pitch(d, 60): d for d in range(-42, 56)}


def _diatonic_shift(pitch: int, steps: int, key: Key) -> int:
    below = next(p for p in range(pitch, pitch - 12, -1) if p % 12 in key.scale)  # the scale tone at or below
    return key.degree_pitch(_degrees(key)[below] + steps, 60) + (pitch - below)


def compose(analysis: Analysis, duration: float, controls: Controls = Controls(), seed: int = 0,
            style: str | None = None, speech: Sequence[tuple[float, float]] = ()) -> Score:
    """The score for ``analysis`` (see the module docstring); ``style`` names one of
    :data:`.styles.STYLES` (default: chosen from the picture); ``speech`` is the ``(start, end)``
    seconds where someone speaks (:func:`v2m.analysis.speech.speech_spans`), which the
    arrangement thins under (:func:`.dialogue.under_speech`)."""
    if style is not None and style not in STYLES:
        raise V2MError(f"unknown style {style!r}; choose one of {', '.join(STYLES)} (--style list)")
    rng = np.random.default_rng(seed)
    stats = load_stats()
    features = _controlled_features(analysis, controls)
    mood = choose_mood(features, controls, style)
    key = mood.key
    shift = int(np.clip(round(12 * math.log2(max(controls.music_weight("pitch"), 0.25))), -24, 24))
    loud, chroma = controls.music_weight("loudness"), controls.music_weight("chroma")
    spectral = controls.music_weight("spectral")
    played, parts = ensemble(STYLES[mood.style], spectral)

    importance = cut_importance(analysis, features, duration)
    grid = make_grid(analysis, duration, controls, mood, importance)
    bars = grid_bars(grid, duration)
    bar_energies(bars, features["motion"])
    cuts = np.asarray(analysis.cut_times, np.float64)
    labels = plan_form(bars, [float(c) for c, w in zip(cuts, importance) if w >= 0.5], analysis.shots[:, 0], duration)
    bars = bars[: next(b.index for b in bars if b.final) + 1]  # the final bar's chord rings to the end
    plan_keys(bars, key)

    chords = write_harmony(bars, played, stats, rng, chroma)
    melody = write_melody(bars, chords, played, stats, rng, controls)
    placed = write_accompaniment(bars, chords, melody, played, rng, spectral,
                                 [p.name for p in parts if p.name != "melody"])
    notes, ccs = perform(placed, melody, bars, played, parts, rng)

    energy_of_bar = np.array([b.energy for b in bars])
    starts = np.array([b.beats[0] for b in bars])

    def energy_at(t: float) -> float:
        return float(energy_of_bar[max(0, int(np.searchsorted(starts, t, side="right")) - 1)])

    notes = hit_cuts(notes, parts, grid.times, cuts, importance, played, bars[-1].key, energy_at)
    shift_registers(notes, parts, bars, analysis.shots[:, 0], shot_registers(analysis, features))
    notes = _finish(notes, parts, bars, duration, shift, loud)
    notes = under_speech(notes, parts, bars, chords, speech, duration)
    sections: list[tuple[int, float, float]] = []  # (shot, first bar line, next section's first bar line)
    for bar in bars:
        if not sections or sections[-1][0] != bar.section:
            sections.append((bar.section, bar.beats[0], bar.end))
        sections[-1] = (bar.section, sections[-1][1], bar.end)
    final = next(b for b in bars if b.final)
    changes = [(b.beats[0], b.key) for i, b in enumerate(bars) if i == 0 or b.key != bars[i - 1].key]
    return Score(parts=parts, notes=notes, grid=grid, key=final.key, duration=duration, key_changes=changes,
                 room=ROOMS[played.room],
                 sections=[(int(s), a, z) for s, a, z in sections], controls=sorted(ccs, key=lambda c: c.time),
                 info={"key": key.name, **({"final_key": final.key.name} if final.key != key else {}), "bpm": round(grid.bpm, 2), "style": mood.style,
                       "valence": round(mood.valence, 3), "arousal": round(mood.arousal, 3), "bars": final.index + 1,
                       "sections": len(labels), "form": " ".join(labels), "seed": seed})


def _finish(notes: list[Note], parts: list[Part], bars: list[Bar], duration: float, shift: int,
            loud: float) -> list[Note]:
    """The ending held through the last frame, the pitch and loudness controls, notes clipped."""
    final = next(b for b in bars if b.final)
    tail = max(duration, final.end) + 1.5
    for n in notes:  # whatever sounds in the final bar rings through the end (played a little early too)
        if n.start >= final.beats[0] - 0.05 and not parts[n.part].is_drum:
            n.end = max(n.end, tail)
    notes = [n for n in notes if n.start < duration - 0.05]
    for n in notes:
        if not parts[n.part].is_drum:
            n.pitch = int(_clamp(n.pitch + shift, 0, 127))
        n.end = min(max(n.end, n.start + 0.03), duration + 2.0)
    if notes:
        mean_v = float(np.mean([n.velocity for n in notes]))
        for n in notes:
            n.velocity = int(_clamp(round(mean_v + loud * (n.velocity - mean_v)), 1, 127))
    notes.sort(key=lambda n: (n.start, n.part, n.pitch))
    return notes
