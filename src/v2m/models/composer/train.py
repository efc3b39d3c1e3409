"""Learn the composer's statistics from the music21 corpus (shipped inside the music21 package).

    python -m v2m.models.composer.train                 # writes the shipped stats.json
    python -m v2m.models.composer.train -o my.json --chorales 400 --tunes 3000

What is learned (all counts, normalised to probabilities, with add-one smoothing):

- harmony, from Bach chorales: each chorale is chordified, every chord on a beat is read as a
  Roman numeral in the chorale's key, repeated chords are merged, and the transitions between
  scale degrees (I..vii) are counted, separately for major and minor keys; also the first
  chords and the final cadences;
- melody, from folk tunes in ABC (Ryan's Mammoth Collection, O'Neill's 1850): the diatonic step
  between consecutive notes, conditioned on the direction of the step before (down, same, up);
  the scale degrees of notes that start a beat;
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


def _tune_events(score):
    """(steps, strong degrees, beat patterns) of one folk tune, or None when unusable."""
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
        steps.append((context, step))
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
    return steps, strong, patterns


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
            for context, step in events[0]:
                steps[context][step] += 1
            strong.update(events[1])
            patterns.update(events[2])
        log(f"tunes: {used['tunes']}")

    degrees7 = range(7)
    step_range = range(-7, 8)
    return {
        "format": "v2m-composer-stats",
        "version": 1,
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
