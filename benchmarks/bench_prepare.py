"""Benchmark `v2m prepare` (without audio codecs): clips prepared per minute on this machine.

    python benchmarks/bench_prepare.py [--model diffv2m|stad]

Prepares four 2-minute 1280x720 30 fps music videos (synthetic picture, a Bach chorale from the
music21 corpus as soundtrack) into 30 s clips in a fresh process, and prints clips per minute
of wall time and the peak memory. CLIP is off (its cost is measured by bench_analyze.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

_CHILD = """
import sys
from v2m.cli import main
code = main(sys.argv[1:])
print("PEAK_KB", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")), file=sys.stderr)
sys.exit(code)
"""


def make_sources(folder: str, n: int = 4, seconds: float = 120.0) -> None:
    import numpy as np

    from v2m.media import write_wav
    from v2m.synthetic import corpus_music, write_video

    music = corpus_music("bach/bwv66.6", bpm=60, seconds=seconds)
    for i in range(n):
        cuts = [float(c) for c in np.arange(3.0 + i, seconds, 4.0)]
        write_video(os.path.join(folder, f"mv{i}.mp4"), duration=seconds, fps=30, size=(1280, 720),
                    cut_times=cuts, seed=i)
        write_wav(os.path.join(folder, f"mv{i}.wav"), music.audio, music.sample_rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="diffv2m", choices=["diffv2m", "stad"])
    ap.add_argument("--workdir", help="keep the sources here (default: a temp folder)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-prep-")
    src = os.path.join(work, "src")
    if not os.path.isdir(src):
        os.makedirs(src)
        print("writing four 2-minute 720p music videos ...", file=sys.stderr)
        make_sources(src)
    out = tempfile.mkdtemp(prefix="v2m-ds-")
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, "prepare", src, "-o", out, "--model", args.model,
                          "--no-clip", "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode:
        raise SystemExit(res.stderr)
    clips = json.load(open(os.path.join(out, "dataset.json")))["clips"]
    peak = float(re.search(r"PEAK_KB (\d+)", res.stderr).group(1)) / 1024
    print(f"machine: {os.cpu_count()} cores; {args.model}, no codec, no CLIP: {clips} clips of 30 s in {wall:.1f} s "
          f"-> {60 * clips / wall:.1f} clips per minute; peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
