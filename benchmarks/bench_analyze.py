"""Benchmark `v2m analyze` against decoding alone, in one run.

    python benchmarks/bench_analyze.py                 # 60 s 1280x720 30 fps H.264
    python benchmarks/bench_analyze.py --clip          # ... also with a full-size CLIP ViT-B/32
    python benchmarks/bench_analyze.py --long          # ... and 10 min of 1080p (ratio, peak memory)

Each measurement runs in a fresh child process, which reports the seconds spent on the work
(imports excluded) and its own peak resident memory. Targets (issue 2): analysis without CLIP
at most 1.5x the decode time; peak memory under 1 GB for a 10-minute 1080p video. CLIP weights
are random (built from the default config): the speed is the same as the real model's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py


def peak_rss_mb() -> float:
    """This process's own peak resident memory. (ru_maxrss is not used: Linux carries the
    parent's high-water mark into it across fork and exec.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(task: str, video: str, clip_dir: str | None) -> None:
    import av

    from v2m.analysis import AnalysisSettings, ClipEmbedder, analyze_video

    embedder = ClipEmbedder(clip_dir, device="cpu") if clip_dir else None
    start = time.perf_counter()
    if task == "decode":
        with av.open(video) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            frames = sum(1 for _ in c.decode(s))
    else:
        a = analyze_video(video, AnalysisSettings(clip=clip_dir, device="cpu"), embedder=embedder)
        frames = len(a.frame_times)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "frames": frames, "peak_mb": peak_mb}))


def measure_once(task: str, video: str, clip_dir: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", task, video] + (["--clip-dir", clip_dir] if clip_dir else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_pair(video: str, repeats: int, clip_dir: str | None = None) -> tuple[dict, dict]:
    """Decode alone and analysis, interleaved ``repeats`` times; the fastest run of each (a
    shared machine only ever adds time), with the largest peak memory."""
    runs = {"decode": [], "analyze": []}
    for _ in range(repeats):
        runs["decode"].append(measure_once("decode", video))
        runs["analyze"].append(measure_once("analyze", video, clip_dir))
    best = {}
    for task, rs in runs.items():
        best[task] = min(rs, key=lambda r: r["seconds"]) | {"peak_mb": max(r["peak_mb"] for r in rs)}
    return best["decode"], best["analyze"]


def make_video(path: str, seconds: float, size: tuple[int, int]) -> None:
    from synthetic import write_video

    cuts = [float(t) for t in range(4, int(seconds), 4)]
    pulses = [t + 1.5 for t in range(0, int(seconds), 2)]
    write_video(path, duration=seconds, fps=30, size=size, cut_times=cuts, pulse_times=pulses,
                preset="ultrafast" if size[0] > 1280 else "veryfast")


def make_clip(folder: str) -> str:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(projection_dim=512)  # the defaults are ViT-B/32
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("TASK", "VIDEO"), help=argparse.SUPPRESS)
    ap.add_argument("--clip-dir", help=argparse.SUPPRESS)
    ap.add_argument("--clip", action="store_true", help="also time the analysis with full-size CLIP")
    ap.add_argument("--long", action="store_true", help="also the ratio and peak memory on a 10-minute 1080p video")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs of each measurement (3)")
    ap.add_argument("--workdir", help="keep the generated videos here (default: a temp folder)")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.clip_dir)
        return

    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-")
    os.makedirs(work, exist_ok=True)
    video = os.path.join(work, "bench_60s_720p.mp4")
    if not os.path.exists(video):
        print("writing a 60 s 1280x720 30 fps H.264 video ...", file=sys.stderr)
        make_video(video, 60, (1280, 720))
    print(f"machine: {os.cpu_count()} cores; best of {args.repeats} interleaved runs")
    decode, analyze = measure_pair(video, args.repeats)
    print(f"60 s 720p30: decode alone {decode['seconds']:.2f} s ({decode['frames']} frames), "
          f"analyze without CLIP {analyze['seconds']:.2f} s -> ratio {analyze['seconds'] / decode['seconds']:.2f}x "
          f"(target <= 1.5x); peak memory {analyze['peak_mb']:.0f} MB")
    if args.clip:
        clip_dir = make_clip(os.path.join(work, "clip-b32"))
        _, with_clip = measure_pair(video, 1, clip_dir)
        print(f"60 s 720p30 with CLIP ViT-B/32 (CPU): {with_clip['seconds']:.2f} s -> "
              f"{with_clip['seconds'] / decode['seconds']:.2f}x decode; peak memory {with_clip['peak_mb']:.0f} MB")
    if args.long:
        long_video = os.path.join(work, "bench_10min_1080p.mp4")
        if not os.path.exists(long_video):
            print("writing a 10-minute 1920x1080 30 fps H.264 video (takes minutes) ...", file=sys.stderr)
            make_video(long_video, 600, (1920, 1080))
        d, a = measure_pair(long_video, args.repeats)
        print(f"10 min 1080p30: decode {d['seconds']:.1f} s, analyze without CLIP {a['seconds']:.1f} s -> "
              f"{a['seconds'] / d['seconds']:.2f}x; peak memory {a['peak_mb']:.0f} MB (target < 1024 MB)")


if __name__ == "__main__":
    main()
