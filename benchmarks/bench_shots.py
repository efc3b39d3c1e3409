"""Shot detection on generated edits: v2m's detector against PySceneDetect's plain ContentDetector.

    python benchmarks/bench_shots.py            # 54 edits, 324 cuts (about a minute on 2 cores)

Each edit (tests/synthetic.py) has six hard cuts, a panning texture under film grain, sudden motion
(a square that jumps) and, from 8 % brightness up, two-frame flashes that are not cuts. Three
kinds: shots of one blue hue (`blue`, light and shade only), mixed night-time colours (`night`),
both at 5-15 % brightness, and bright shots of the default palette (`bright`); at 64x48, 128x72
and 256x144 px. A cut counts as found within one frame of its time; any other cut is false.
The baseline is ContentDetector (luma_only, threshold 27, min_scene_len 0.5 s) on the raw frames.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py

FPS = 25.0
CUTS = [0.8, 1.76, 2.6, 3.52, 4.4, 5.24]
PULSES = [1.24, 3.0, 4.8]
FLASHES = [2.04, 4.0]
LEVELS = [0.05, 0.07, 0.09, 0.11, 0.13, 0.15]
SIZES = [(64, 48), (128, 72), (256, 144)]


def write_edit(path: str, kind: str, level: float, size: tuple[int, int], seed: int):
    from synthetic import write_dark_edit, write_video

    flashes = FLASHES if kind == "bright" or level >= 0.08 else []
    common = dict(duration=6.0, fps=FPS, size=size, cut_times=CUTS, pulse_times=PULSES, flash_times=flashes,
                  seed=seed)
    if kind == "bright":
        return write_video(path, pan=0.3, grain=1.5, drift=0.5, **common)
    return write_dark_edit(path, palette=kind, level=level, pan=0.15, grain=2.0, **common)


def plain_contentdetector(path: str) -> list[float]:
    from scenedetect import detect
    from scenedetect.detectors import ContentDetector

    scenes = detect(path, ContentDetector(threshold=27.0, min_scene_len=0.5, luma_only=True))
    return [start.seconds for start, _ in scenes[1:]]


def v2m_detector(path: str) -> tuple[list[float], float, int]:
    from v2m.analysis import AnalysisSettings, analyze_video

    start = time.perf_counter()
    a = analyze_video(path, AnalysisSettings())
    return list(a.cut_times), time.perf_counter() - start, len(a.frame_times)


def score(found: list[float]) -> tuple[int, int]:
    hits = sum(any(abs(f - c) <= 1 / FPS + 1e-6 for f in found) for c in CUTS)
    false = sum(not any(abs(f - c) <= 1 / FPS + 1e-6 for c in CUTS) for f in found)
    return hits, false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="keep the generated edits here (default: a temp folder)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-shots-")
    os.makedirs(work, exist_ok=True)
    totals = {}
    for kind in ("blue", "night", "bright"):
        for size in SIZES:
            for seed, level in enumerate(LEVELS):
                path = os.path.join(work, f"{kind}_{size[0]}x{size[1]}_{seed}.mp4")
                if not os.path.exists(path):
                    write_edit(path, kind, level, size, seed)
                ours, _, _ = v2m_detector(path)
                for name, found in (("v2m", ours), ("plain", plain_contentdetector(path))):
                    hits, false = score(found)
                    t = totals.setdefault((name, kind), [0, 0, 0])
                    t[0] += hits
                    t[1] += len(CUTS)
                    t[2] += false
    for name in ("v2m", "plain"):
        found = sum(totals[name, k][0] for k in ("blue", "night", "bright"))
        cuts = sum(totals[name, k][1] for k in ("blue", "night", "bright"))
        false = sum(totals[name, k][2] for k in ("blue", "night", "bright"))
        per_kind = ", ".join(f"{k} {totals[name, k][0]}/{totals[name, k][1]} ({totals[name, k][2]} false)"
                             for k in ("blue", "night", "bright"))
        label = "v2m (normalised)" if name == "v2m" else "plain ContentDetector"
        print(f"{label:22s}: {found} of {cuts} cuts, {false} false; {per_kind}")


if __name__ == "__main__":
    main()
