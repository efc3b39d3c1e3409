"""Benchmark `v2m generate` (the offline composer) end to end.

    python benchmarks/bench_generate.py            # 30 s and 5 min of 1280x720 30 fps H.264

Each run is a fresh `v2m generate` process, timed from start to exit (imports included: what a
user waits for), with its peak memory. Targets (issue 3): a 30 s clip in at most 10 s, 5 minutes
in at most 60 s, on 2 cores. Also prints the share of cuts that landed within 50 ms of a beat.
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


def make_video(path: str, seconds: float) -> None:
    import numpy as np

    from synthetic import write_video

    rng = np.random.default_rng(1)
    cuts = np.cumsum(rng.uniform(1.5, 6.0, size=int(seconds)))  # irregular cuts, as edited footage
    cuts = [float(c) for c in cuts if c < seconds - 0.5]
    pulses = [float(p) for p in np.sort(rng.uniform(0.5, seconds - 0.5, size=int(seconds / 3)))]
    write_video(path, duration=seconds, fps=30, size=(1280, 720), cut_times=cuts, pulse_times=pulses, audio=True)


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
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-gen-")
    os.makedirs(work, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores")
    for seconds, target in ((30, 10.0), (300, 60.0)):
        video = os.path.join(work, f"gen_{seconds}s_720p.mp4")
        if not os.path.exists(video):
            print(f"writing a {seconds} s 1280x720 30 fps video ...", file=sys.stderr)
            make_video(video, seconds)
        wall, rss, log = run(video, os.path.join(work, f"gen_{seconds}s_scored.mp4"))
        share = re.search(r"(\d+)% of cuts on a beat", log)
        print(f"{seconds:>4} s 720p30: {wall:.1f} s end to end = {wall / seconds:.3f} x real time "
              f"(target <= {target:.0f} s); peak memory {rss:.0f} MB; "
              f"cuts on a beat: {share.group(1) + '%' if share else 'n/a'}")


if __name__ == "__main__":
    main()
