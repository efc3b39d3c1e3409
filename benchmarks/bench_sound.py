"""Measure the composer's sound: soundfont load times, per-part rendering speed, the loudness each
part loses in mono before and after the mono guard, and the finished soundtrack's true peak.

    python benchmarks/bench_sound.py            # 30 s and 5 min scores
    python benchmarks/bench_sound.py --quick    # the 30 s score only

The scores are the composer's (seed 0) for synthetic 96x64 videos with irregular cuts. The mono
losses are measured on the 30 s score with its sustained chords (the harmony part) played by each
of a few programs (String Ensemble 48, Warm Pad 89, the style's own), each part's stem rendered without the guard
(``max_mono_loss=None``) and with it. Finishing is ``finish_audio`` as ``v2m generate`` calls it
(-14 LUFS). Times are wall seconds in this process, on this machine as it is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py

import numpy as np  # noqa: E402

SR = 44100


def installed_soundfonts() -> dict[str, str]:
    from v2m.models.composer import sound

    found = {}
    for name, paths in (("MuseScore General", sound.MUSESCORE_GENERAL), ("FluidR3 GM", sound.FLUIDR3),
                        ("TimGM6mb", sound.TIMGM6MB)):
        path = next((p for p in paths if os.path.isfile(p)), None)
        if path:
            found[name] = path
    return found


def load_times(path: str) -> dict:
    """Seconds to make a synth and load ``path`` with dynamic sample loading off and on, and, on,
    to select the piano (0) and the strings (48) (their samples are read then)."""
    import fluidsynth

    row = {}
    for dynamic in (0, 1):
        t = time.perf_counter()
        synth = fluidsynth.Synth(samplerate=float(SR), **{"synth.dynamic-sample-loading": dynamic})
        sfid = synth.sfload(path)
        row[f"load, dynamic {'on' if dynamic else 'off'}"] = time.perf_counter() - t
        if dynamic:
            for ch, program in enumerate((0, 48)):
                t = time.perf_counter()
                synth.program_select(ch, sfid, 0, program)
                row[f"select {program}"] = time.perf_counter() - t
        synth.delete()
    return row


def composed(seconds: float, folder: str):
    from synthetic import write_video
    from v2m.analysis import analyze_video
    from v2m.models.composer import compose

    rng = np.random.default_rng(1)
    cuts = [float(c) for c in np.cumsum(rng.uniform(1.5, 6.0, size=int(seconds))) if c < seconds - 0.5]
    pulses = [float(p) for p in np.sort(rng.uniform(0.5, seconds - 0.5, size=int(seconds / 3)))]
    video = write_video(os.path.join(folder, f"v{seconds:g}.mp4"), duration=seconds, fps=25, size=(96, 64),
                        cut_times=cuts, pulse_times=pulses)
    analysis = analyze_video(video.path)
    return compose(analysis, analysis.duration, seed=0)


def _lu(stem: np.ndarray) -> str:
    """The stem's mono loss in LU, or ``silent`` for a part that does not play."""
    from v2m.loudness import mono_loss

    loss = mono_loss(stem, SR)
    return "silent" if loss != loss else f"{loss:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the 30 s score")
    args = ap.parse_args()

    from v2m.loudness import integrated_loudness, mono_loss, true_peak_dbtp
    from v2m.render import finish_audio

    soundfonts = installed_soundfonts()
    print("soundfont load (s):")
    for name, path in soundfonts.items():
        row = load_times(path)
        print(f"  {name:18} " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()) + f"  ({os.path.basename(path)})")

    with tempfile.TemporaryDirectory() as folder:
        scores = {s: composed(s, folder) for s in ((30.0,) if args.quick else (30.0, 300.0))}

    print("\nrender_parts (s), with the mono guard; the finished mix (-14 LUFS):")
    for name, path in soundfonts.items():
        for seconds, score in scores.items():
            t = time.perf_counter()
            mix = score.render(path, SR)
            rendered = time.perf_counter() - t
            t = time.perf_counter()
            out = finish_audio(mix, SR, mix.shape[1])
            finished = time.perf_counter() - t
            print(f"  {name:18} {seconds:5.0f} s: render {rendered:6.2f} ({len(score.parts)} parts), finish "
                  f"{finished:5.2f}; true peak {true_peak_dbtp(out):6.2f} dBTP, {integrated_loudness(out, SR):6.2f} "
                  f"LUFS, mix loses {mono_loss(out, SR):.2f} LU in mono")

    print("\nloudness lost in mono (LU) by part, 30 s, without -> with the guard:")
    score = scores[30.0]
    held = next(i for i, p in enumerate(score.parts) if p.name in ("harmony", "pad"))  # the sustained chords
    for name, path in soundfonts.items():
        for program in (48, 89, score.parts[held].program):
            parts = list(score.parts)
            parts[held] = dataclasses.replace(parts[held], program=program)
            variant = dataclasses.replace(score, parts=parts, info={})
            raw = variant.render_parts(path, SR, max_mono_loss=None)
            guarded = variant.render_parts(path, SR)
            losses = ", ".join(f"{p} {_lu(raw[p])} -> {_lu(guarded[p])}" for p in raw)
            print(f"  {name:18} {parts[held].name} program {program:3}: {losses}; mix {_lu(sum(raw.values()))} -> "
                  f"{_lu(sum(guarded.values()))}; narrowed {variant.info['narrowed']}")


if __name__ == "__main__":
    main()
