"""Benchmark `v2m generate` (the offline composer) end to end.

    python benchmarks/bench_generate.py            # 30 s and 5 min of 1280x720 30 fps H.264
    python benchmarks/bench_generate.py --hour     # and 1 hour of 64x36 5 fps H.264 (some minutes)

Each run is a fresh `v2m generate` process, timed from start to exit (imports included: what a
user waits for), with its peak memory. Targets (issues 3 and 17): a 30 s clip in at most 10 s,
5 minutes in at most 60 s and 500 MB, an hour in at most 5 minutes and 1.5 GB, on 2 cores: the
render goes a block at a time, so memory must not grow with the length. Also prints the share of
cuts that landed within 50 ms of a beat.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py


def make_video(path: str, seconds: float, fps: float = 30, size: tuple[int, int] = (1280, 720),
               shot: tuple[float, float] = (1.5, 6.0)) -> None:
    import numpy as np

    from synthetic import write_video

    rng = np.random.default_rng(1)
    cuts = np.cumsum(rng.uniform(*shot, size=int(seconds)))  # irregular cuts, as edited footage
    cuts = [float(c) for c in cuts if c < seconds - 0.5]
    pulses = [float(p) for p in np.sort(rng.uniform(0.5, seconds - 0.5, size=int(seconds / 3)))]
    write_video(path, duration=seconds, fps=fps, size=size, cut_times=cuts, pulse_times=pulses, audio=True)


_CHILD = """
import sys
from v2m.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print(f"PEAK_KB {peak}", file=sys.stderr)
sys.exit(code)
"""


def run(video: str, out: str) -> tuple[float, float, str]:
    """Wall time of a fresh `v2m generate` process and its own peak memory (VmHWM)."""
    cmd = [sys.executable, "-c", _CHILD, "generate", video, "-o", out]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return seconds, float(re.search(r"PEAK_KB (\d+)", res.stderr).group(1)) / 1024, res.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="keep the generated videos here (default: a temp folder)")
    ap.add_argument("--hour", action="store_true", help="also score an hour of video (64x36, 5 fps, ~300 cuts)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-gen-")
    os.makedirs(work, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores")
    cases = [(30, "720p30", 10.0, None, {}), (300, "720p30", 60.0, 500, {})]
    if args.hour:
        cases.append((3600, "36p5", 300.0, 1536, dict(fps=5, size=(64, 36), shot=(6.0, 18.0))))
    for seconds, name, target, memory, kind in cases:
        video = os.path.join(work, f"gen_{seconds}s_{name}.mp4")
        if not os.path.exists(video):
            print(f"writing a {seconds} s {name} video ...", file=sys.stderr)
            make_video(video, seconds, **kind)
        wall, rss, log = run(video, os.path.join(work, f"gen_{seconds}s_scored.mp4"))
        share = re.search(r"(\d+)% of cuts on a beat", log)
        print(f"{seconds:>4} s {name}: {wall:.1f} s end to end = {wall / seconds:.3f} x real time "
              f"(target <= {target:.0f} s); peak memory {rss:.0f} MB"
              f"{f' (target <= {memory} MB)' if memory else ''}; "
              f"cuts on a beat: {share.group(1) + '%' if share else 'n/a'}", flush=True)


if __name__ == "__main__":
    main()
