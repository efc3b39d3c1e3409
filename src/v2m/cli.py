"""The ``v2m`` command line: a thin layer over the Python API.

Every user-facing failure is one line, ``v2m: error: FILE: PROBLEM``, and a non-zero exit;
no tracebacks. Heavy libraries (torch, transformers) load only inside the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import V2MError

EPILOG_ANALYZE = """\
examples:
  v2m analyze clip.mp4 -o analysis/                 one video -> analysis/clip.mp4.v2m.npz
  v2m analyze videos/ -o analysis/ --workers 2       a folder, recursively, two processes
  v2m analyze videos/ -o analysis/ --shard 3/8       the 4th of 8 parts (e.g. a cluster array job)
  v2m analyze clip.mp4 -o a/ --no-clip --json        without CLIP; print shots and beats as JSON
  v2m analyze clip.mp4 -o a/ --export-diffv2m feats/ also write the official Diff-V2M layout

Finished outputs (same file content, same settings) are skipped; --force recomputes them.
CLIP weights come from the Hugging Face cache or hub, or a local directory (--clip DIR).
Without them the analysis goes on without semantics, unless --clip was given explicitly.
What is measured and the file format: docs/analysis.md (and v2m.analysis.timeline).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _shard(text: str) -> tuple[int, int]:
    from .analysis.batch import parse_shard

    try:
        return parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v2m",
        description="v2m gives a video its soundtrack: music that follows its cuts, motion and mood.",
    )
    parser.add_argument("--version", action="version", version=f"v2m {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    a = sub.add_parser(
        "analyze",
        help="per-second video analysis: shots, visual beats, motion, colour, CLIP",
        description="Analyse videos on a per-second timeline (shots, visual beats, motion, colour, "
        "CLIP semantics) and write one .v2m.npz file per video.",
        epilog=EPILOG_ANALYZE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files and/or folders (recursive)")
    a.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the analysis files")
    a.add_argument("--json", action="store_true", help="print a JSON summary (duration, shots, beats) to stdout")
    g = a.add_argument_group("shots")
    g.add_argument("--shots", choices=["scenedetect", "transnetv2"], default="scenedetect",
                   help="shot detector: PySceneDetect hard cuts (default) or TransNetV2 (also dissolves)")
    g.add_argument("--shot-threshold", type=float, metavar="X",
                   help="detector threshold (default 27 for scenedetect, 0.5 for transnetv2)")
    g.add_argument("--min-shot", type=float, default=0.5, metavar="SEC", help="shortest shot in seconds (0.5)")
    g = a.add_argument_group("features")
    clip = g.add_mutually_exclusive_group()
    clip.add_argument("--clip", metavar="MODEL",
                      help="CLIP model: hub id, local directory, or 'diffv2m' (ViT-B/32, the default) / "
                      "'stad' (ViT-L/14-336); given explicitly, it must load")
    clip.add_argument("--no-clip", action="store_true", help="no CLIP semantics")
    g.add_argument("--color", choices=["rgbuv32", "hsv16x16x12"], default="rgbuv32",
                   help="colour-histogram recipe (3072 values; default rgbuv32, see docs)")
    g.add_argument("--size", type=int, default=256, metavar="PX", help="longest side of analysed frames (256)")
    g.add_argument("--device", default="auto", help="torch device for CLIP/TransNetV2: auto, cpu, cuda, cuda:1 ...")
    g = a.add_argument_group("runs")
    g.add_argument("--export-diffv2m", metavar="DIR", help="also write the official Diff-V2M layout to DIR")
    g.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="worker processes (1)")
    g.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="analyse only part i of n (0-based) of the sorted file list")
    g.add_argument("--force", action="store_true", help="recompute finished outputs")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)

    p = sub.add_parser("probe", help="what a video file is (duration, frame rate, size, rotation, audio)",
                       description="Check that a file is a usable video and print what it is.")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_probe)
    return parser


def cmd_probe(args) -> int:
    from .media import probe

    info = probe(args.video)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    w, h = info.display_size
    audio = f"{info.audio_codec} {info.audio_sample_rate} Hz {info.audio_channels} ch" if info.has_audio else "none"
    print(f"{info.path}\n  duration  {info.duration:.3f} s\n  video     {info.codec} {w}x{h} "
          f"at {info.fps:.3f} fps" + (f", rotated {info.rotation} deg" if info.rotation else "")
          + f"\n  audio     {audio}")
    return 0


def cmd_analyze(args) -> int:
    from .analysis import AnalysisSettings, export_diffv2m, run_analysis
    from .analysis.semantic import DEFAULT_MODEL
    from .analysis.timeline import Analysis

    settings = AnalysisSettings(
        size=args.size,
        shots=args.shots,
        shot_threshold=args.shot_threshold,
        min_shot=args.min_shot,
        color_recipe=args.color,
        clip=None if args.no_clip else (args.clip or DEFAULT_MODEL),
        device=args.device,
    )
    report = run_analysis(
        args.inputs,
        args.output,
        settings,
        clip_required=args.clip is not None,
        workers=args.workers,
        shard=args.shard,
        force=args.force,
        progress=not args.quiet,
    )
    analyses = []
    for out in report.outputs:
        try:
            analyses.append(Analysis.load(out))
        except V2MError as e:
            report.failed.append((out, e.message))
    if args.export_diffv2m and analyses:
        try:
            export_diffv2m(analyses, args.export_diffv2m, warn=lambda m: print(m, file=sys.stderr))
        except V2MError as e:
            report.failed.append((e.path or args.export_diffv2m, e.message))
    if args.json:
        print(json.dumps({"videos": [a.summary() for a in analyses],
                          "failed": [{"path": p, "error": m} for p, m in report.failed]}))
    elif not args.quiet:
        skipped = f", {len(report.skipped)} already done" if report.skipped else ""
        print(f"analysed {len(report.done)} video(s){skipped} -> {args.output}", file=sys.stderr)
    total = len(report.done) + len(report.skipped) + len(report.failed)
    if report.failed:
        if total > 1:
            print(f"v2m: {len(report.failed)} of {total} videos failed:", file=sys.stderr)
        for path, message in report.failed:
            print(f"v2m: error: {path}: {message}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except V2MError as e:
        print(f"v2m: error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # settings that argparse cannot check alone
        print(f"v2m: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("v2m: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
