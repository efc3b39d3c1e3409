"""Learn the composer's statistics from the music21 corpus (shipped inside the music21 package).

    python -m v2m.models.composer.train                 # writes the shipped stats.json
    python -m v2m.models.composer.train -o my.json --chorales 400 --tunes 3000

What is learned (all counts, normalised to probabilities, with add-one smoothing):

- harmony, from Bach chorales: each chorale is chordified, every chord on a beat is read as a
  Roman numeral in the chorale's key, repeated chords are merged, and the transitions between
  scale degrees (I..vii) are counted, separately for major and minor keys; also the first
  chords and the final cadences;
- melody, from folk tunes in ABC (Ryan's Mammoth Collection, O'Neill's 1850): the diatonic step
  between consecutive notes, conditioned on the direction of the step before (down, same, up)
  and on where the new note falls in the bar (``strong``: the downbeat or the bar's middle;
  ``beat``: another beat; ``off``: between beats, by music21's beat strength); the scale degrees
  of notes that start a beat; whether a note belongs to its bar's chord, by metric position (the
  tunes carry no chords: each bar's chord is the diatonic triad its notes fit best, weighted by
  length and beat strength); and the degree each phrase ends on, in the tunes' 4th bars (a
  half cadence's goal) and 8th bars (a full cadence's), counted from the first full bar;
- rhythm, from the same tunes in a time signature with a quarter-note beat: the onset pattern
  inside each beat on a sixteenth-note grid (4 bits: onsets at 0, 1/4, 1/2 and 3/4 of a beat).

The output is a small JSON file; the file shipped with v2m is exactly what the default
arguments produce (the corpus files are read in sorted order; nothing is random).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

from ...fsutil import write_bytes_atomic

STATS_PATH = os.path.join(os.path.dirname(__file__), "stats.json")
FOLK_COLLECTIONS = ("ryansMammoth", "oneills1850")


def _chorale_degrees(score) -> tuple[str, list[int]] | None:
    from music21 import roman

    key = score.analyze("key")
    chords = score.chordify().flatten().getElementsByClass("Chord")
    degrees: list[int] = []
    for c in chords:
        if float(c.beat) != int(c.beat):  # chords on beats only: passing tones are not harmony
            continue
        try:
            degree = roman.romanNumeralFromChord(c, key).scaleDegree
        except Exception:  # music21 cannot name every sonority
            continue
        if degree and (not degrees or degrees[-1] != degree - 1):
            degrees.append(degree - 1)
    return (key.mode, degrees) if len(degrees) >= 4 and key.mode in ("major", "minor") else None


METRIC = ("strong", "beat", "off")


def _metric(beat_strength: float) -> str:
    """The metric class of an onset from music21's beat strength (1 downbeat, 0.5 the middle of
    a 4/4 bar, 0.25 other beats, less between beats)."""
    return "strong" if beat_strength >= 0.5 else "beat" if beat_strength >= 0.25 else "off"


def _bar_chord(notes, key) -> set[int]:
    """The scale degrees (0-based) of the diatonic triad that a bar's notes fit best, each note
    weighted by its length and beat strength."""
    weight = [0.0] * 7
    for n in notes:
        degree = key.getScaleDegreeFromPitch(n.pitch)
        if degree:
            weight[degree - 1] += float(n.duration.quarterLength) * (0.5 + float(n.beatStrength))
    best = max(range(7), key=lambda r: (weight[r] + weight[(r + 2) % 7] + weight[(r + 4) % 7], -r))
    return {best, (best + 2) % 7, (best + 4) % 7}


def _tune_events(score):
    """What one folk tune teaches (see the module docstring), or None when it is unusable."""
    ts = score.recurse().getElementsByClass("TimeSignature")
    if not ts or ts[0].beatDuration.quarterLength != 1.0:
        return None
    key = score.analyze("key")
    notes = [n for n in score.flatten().notes if n.isNote]
    if len(notes) < 8:
        return None
    steps, prev = [], 0
    for a, b in zip(notes, notes[1:]):
        step = max(-7, min(7, b.pitch.diatonicNoteNum - a.pitch.diatonicNoteNum))
        context = "down" if prev < 0 else "up" if prev > 0 else "same"
        steps.append((context, _metric(float(b.beatStrength)), step))
        prev = step
    strong = []
    patterns: Counter = Counter()
    by_beat: dict[int, int] = {}
    for n in notes:
        offset = float(n.offset)
        beat, frac = int(offset), offset - int(offset)
        slot = int(round(frac * 4))
        if slot < 4:
            by_beat[beat] = by_beat.get(beat, 0) | (1 << slot)
        if frac == 0:
            degree = key.getScaleDegreeFromPitch(n.pitch)
            if degree:
                strong.append(degree - 1)
    last_beat = int(float(notes[-1].offset))
    for beat in range(last_beat + 1):
        patterns[by_beat.get(beat, 0)] += 1

    chord_tones: Counter = Counter()  # (metric, in the chord) -> notes
    phrase_ends = {"half": Counter(), "full": Counter()}
    bars = [m for m in score.recurse().getElementsByClass("Measure") if m.notes]
    full = [m for m in bars if m.duration.quarterLength >= ts[0].barDuration.quarterLength - 1e-6]
    first = full[0].number if full else 0
    for m in bars:
        pitched = [n for n in m.notes if n.isNote]
        if not pitched:
            continue
        chord = _bar_chord(pitched, key)
        for n in pitched:
            degree = key.getScaleDegreeFromPitch(n.pitch)
            if degree:
                chord_tones[(_metric(float(n.beatStrength)), (degree - 1) in chord)] += 1
        position = m.number - first + 1
        if position > 0 and position % 4 == 0:
            degree = key.getScaleDegreeFromPitch(pitched[-1].pitch)
            if degree:
                phrase_ends["full" if position % 8 == 0 else "half"][degree - 1] += 1
    return steps, strong, patterns, chord_tones, phrase_ends


def _normalise(counts: dict, keys) -> list[float]:
    total = sum(counts.get(k, 0) + 1 for k in keys)
    return [round((counts.get(k, 0) + 1) / total, 6) for k in keys]


def learn(chorales: int = 120, tunes: int = 600, log=print) -> dict:
    """Read the corpus and return the statistics (see the module docstring)."""
    import music21
    from music21 import corpus

    transitions = {m: Counter() for m in ("major", "minor")}
    starts = {m: Counter() for m in ("major", "minor")}
    cadences = {m: Counter() for m in ("major", "minor")}
    steps = {c: Counter() for c in ("down", "same", "up")}
    steps_in_bar = {f"{c}/{m}": Counter() for c in ("down", "same", "up") for m in METRIC}
    chord_tones: Counter = Counter()
    phrase_ends = {"half": Counter(), "full": Counter()}
    strong: Counter = Counter()
    patterns: Counter = Counter()
    used = {"chorales": 0, "tunes": 0}

    for path in sorted(corpus.getComposer("bach"), key=str)[: max(0, chorales)]:
        try:
            found = _chorale_degrees(corpus.parse(path))
        except Exception as e:  # a corpus file music21 cannot read is skipped, not fatal
            log(f"skip {os.path.basename(str(path))}: {e}")
            continue
        if found is None:
            continue
        mode, degrees = found
        used["chorales"] += 1
        starts[mode][degrees[0]] += 1
        cadences[mode][(degrees[-2], degrees[-1])] += 1
        for a, b in zip(degrees, degrees[1:]):
            transitions[mode][(a, b)] += 1
        if used["chorales"] % 20 == 0:
            log(f"chorales: {used['chorales']}")

    folk = sorted((p for p in corpus.getPaths(fileExtensions=["abc"]) if any(c in str(p) for c in FOLK_COLLECTIONS)),
                  key=str)
    for path in folk:
        if used["tunes"] >= tunes:
            break
        try:
            parsed = corpus.parse(path)
        except Exception as e:
            log(f"skip {os.path.basename(str(path))}: {e}")
            continue
        for score in getattr(parsed, "scores", [parsed]):
            if used["tunes"] >= tunes:
                break
            events = _tune_events(score)
            if events is None:
                continue
            used["tunes"] += 1
            for context, metric, step in events[0]:
                steps[context][step] += 1
                steps_in_bar[f"{context}/{metric}"][step] += 1
            strong.update(events[1])
            patterns.update(events[2])
            chord_tones.update(events[3])
            for kind in phrase_ends:
                phrase_ends[kind].update(events[4][kind])
        log(f"tunes: {used['tunes']}")

    degrees7 = range(7)
    step_range = range(-7, 8)
    return {
        "format": "v2m-composer-stats",
        "version": 2,
        "source": {"music21": music21.__version__, "chorales": used["chorales"], "tunes": used["tunes"],
                   "folk_collections": list(FOLK_COLLECTIONS)},
        "harmony": {
            mode: {
                "start": _normalise(starts[mode], degrees7),
                "transition": [_normalise({b: transitions[mode][(a, b)] for b in degrees7}, degrees7) for a in degrees7],
                "cadence_counts": {f"{a}-{b}": n for (a, b), n in sorted(cadences[mode].items())},
            }
            for mode in ("major", "minor")
        },
        "melody": {
            "steps": list(step_range),
            "step_given_previous": {c: _normalise(steps[c], step_range) for c in ("down", "same", "up")},
            "strong_degree": _normalise(strong, degrees7),
            "step_given_previous_and_metric": {c: _normalise(steps_in_bar[c], step_range) for c in steps_in_bar},
            "chord_tone_given_metric": {
                m: round((chord_tones[(m, True)] + 1) / (chord_tones[(m, True)] + chord_tones[(m, False)] + 2), 6)
                for m in METRIC
            },
            "phrase_end_degree": {kind: _normalise(phrase_ends[kind], degrees7) for kind in phrase_ends},
        },
        "rhythm": {"beat_pattern": {str(p): n for p, n in sorted(patterns.items())}},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=STATS_PATH, help="where to write the JSON (default: the shipped file)")
    ap.add_argument("--chorales", type=int, default=120, help="Bach chorales to read (120)")
    ap.add_argument("--tunes", type=int, default=600, help="folk tunes to read (600)")
    args = ap.parse_args(argv)
    stats = learn(args.chorales, args.tunes, log=lambda m: print(m, file=sys.stderr))

    write_bytes_atomic(args.output, (json.dumps(stats, indent=1) + "\n").encode())
    print(f"wrote {args.output}: {stats['source']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
