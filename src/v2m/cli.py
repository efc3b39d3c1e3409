"""The ``v2m`` command line: a thin layer over the Python API.

Every user-facing failure is one line, ``v2m: error: FILE: PROBLEM``, and a non-zero exit;
no tracebacks. Heavy libraries (torch, transformers) load only inside the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .version import __version__
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


EPILOG_GENERATE = """\
examples:
  v2m generate clip.mp4 -o clip_scored.mp4           the composer, offline, in seconds
  v2m generate clip.mp4 --plot                       + clip_scored.png: cuts, visual beats, music beats
  v2m generate clip.mp4 --music-control pitch,2      an octave higher
  v2m generate clip.mp4 --video-control 2,-1,move,0.5   calm shot 2 (0-based)
  v2m generate clip.mp4 --mix 0.3 --key "D minor"    keep the original sound underneath, in D minor
  v2m generate clip.mp4 --stems                      + clip_scored.stems/<part>.wav, one per part
  v2m generate clip.mp4 --start 0:12 --end 0:40      score 12-40 s only; the original sound elsewhere
  v2m generate vlog.mp4 --keep-speech                keep the voices; the music dips under them
  v2m generate videos/ -o scored/                    a folder, recursively

Beside the video: <name>.wav (the soundtrack), <name>.mid (the score, with the tempo map, for
any DAW) and <name>.json (what made the music: model, weights, seed, controls, soundfont and the
licence terms of the weights; also in the video's metadata). Music controls: pitch moves the register, loudness the dynamics, chroma the harmonic
colour, spectral the brightness. Video controls: move (motion), color, semantic (new melodic
material per shot); area and position need objects (ControllableV2M).
"""


EPILOG_TRAIN = """\
examples:
  v2m train diffv2m --data data/diffv2m -o runs/dv2m                    the published architecture
  v2m train diffv2m --data data/diffv2m -o runs/dv2m --devices 2 --strategy ddp --accumulate 4
  v2m train diffv2m --data data/mine -o runs/ft --init TaylorJi/Diff-V2M   fine-tune the published model
  v2m train stad --data data/stad -o runs/stad --init facebook/musicgen-small --precision bf16-mixed

A run killed at any moment resumes from OUT/checkpoints/last.ckpt when started again.
TensorBoard: tensorboard --logdir OUT/logs
"""


EPILOG_CONVERT = """\
examples:
  v2m convert data/diffv2m -o official/            export: official/dataset_train.json ...
  v2m convert official/dataset_train.json -o data/imported --no-codec     import

Export writes <split>/wav_N/, clip_N/, color_N/, visualRhythm_N.json and dataset_<split>.json
with paths relative to OUT (run the official training from OUT); it needs CLIP features.
Import computes the rhythm targets from the wav files as `v2m prepare` does.
"""


EPILOG_PREPARE = """\
examples:
  v2m prepare music_videos/ -o data/diffv2m --model diffv2m     30 s clips, rhythm targets
  v2m prepare music_videos/ -o data/stad --model stad --shard 0/4  a quarter of the sources

  v2m prepare clips/ -o data/quick --no-clip --no-codec               features and targets only

Each video's own soundtrack is its target; an audio file with the same stem beside it
(.wav .flac .mp3 .m4a .ogg .aac) replaces it. A killed run resumes where it stopped; the manifest
(manifest.jsonl) is rebuilt from all finished sources at the end of every run.

Codec targets are encoded once here: EnCodec 32 kHz tokens (stad) or Stable Audio Open VAE
latents (diffv2m). Use a GPU for them: on 2 CPU cores the full VAE takes about 1.5 minutes and
6 GB per 30 s clip. When the default weights cannot be loaded the dataset is made without
codec targets (with a warning) and a later run adds them.
"""


def _whole(text: str, low: int, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high`` (no limit when None), or argparse's one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise argparse.ArgumentTypeError(f"must be {limits}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _seed(text: str) -> int:
    return _whole(text, 0, 2**32 - 1)


def _finite(text: str) -> float:
    """A float type for argparse that refuses nan and infinities (they would fail deep inside)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


LUFS_RANGE = (-60.0, -5.0)  # quieter is inaudible on most players; louder only clips into the limiter


def _time(text: str) -> float:
    """A time for --start / --end: seconds, m:ss or h:mm:ss."""
    from .soundtrack import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _lufs(text: str) -> float:
    value = _finite(text)
    low, high = LUFS_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} LUFS (streaming services use -14, "
                                         f"broadcast -23), got {text!r}")
    return value


# Options whose values may start with "-" (``--video-control -1,-1,move,0.5`` selects every shot):
# argparse would take such a value for an option, so it is joined to its option first.
_DASH_VALUES = ("--video-control", "--music-control")


def _join_dash_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _DASH_VALUES and i + 1 < len(argv) and argv[i + 1].startswith("-") and "," in argv[i + 1]:
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


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
    for add in (_analyze_parser, _generate_parser, _prepare_parser, _convert_parser, _train_parser,
                _evaluate_parser, _probe_parser, _app_parser):
        add(sub)
    return parser


def _generate_parser(sub) -> None:
    """``v2m generate``'s options."""
    from .models.cards import MODELS, SAMPLER_NAMES

    gen = sub.add_parser(
        "generate",
        help="score a video: the same video with fitting music",
        description="Give videos a soundtrack that follows their cuts, motion and mood. The default model, "
        "the offline composer, needs no network and no GPU.",
        epilog=EPILOG_GENERATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("inputs", nargs="*", metavar="VIDEO_OR_DIR", help="video files and/or folders (recursive)")
    gen.add_argument("-o", "--output", metavar="PATH",
                     help="output video (one input) or folder (several); default: <name>_scored.<ext> beside it")
    gen.add_argument("--model", default="composer", choices=list(MODELS),
                     help="music generator: " + "; ".join(f"{m.name}: {m.title}" for m in MODELS.values())
                     + " (a GPU is advised for the neural models)")
    gen.add_argument("--checkpoint", metavar="PATH",
                     help="model weights: diffv2m: our folder, the official .ckpt, or a hub id (default "
                     "TaylorJi/Diff-V2M); stad: a folder from `v2m train stad` (no weights were published)")
    gen.add_argument("--config", metavar="JSON",
                     help="diffv2m: the config of an official .ckpt (model_config_odf.json) when it is not beside "
                     "it (the other models' folders hold their config)")
    g = gen.add_argument_group("neural models")
    g.add_argument("--sampler", choices=SAMPLER_NAMES, help="diffv2m: DPM-Solver++ (default, 50 steps) or the "
                   "official DDIM (250 steps)")
    g.add_argument("--steps", type=_positive_int, metavar="N", help="diffv2m: sampling steps")
    g.add_argument("--cfg", type=_finite, metavar="SCALE", help="classifier-free guidance scale (3); stad: guidance "
                   "on the video conditions, 1 = none")
    g.add_argument("--clip", metavar="MODEL", help="the CLIP the model was trained with (diffv2m default ViT-B/32, "
                   "stad default ViT-L/14-336); a hub id or folder")
    g.add_argument("--sam", metavar="MODEL", help="stad: SAM for the objects, a hub id or folder (default "
                   "facebook/sam-vit-base; the paper used facebook/sam-vit-huge)")
    g = gen.add_argument_group("controls (ControllableV2M's vocabulary)")
    g.add_argument("--music-control", action="append", default=[], metavar="FEATURE,WEIGHT",
                   help="scale a music feature: pitch | chroma | loudness | spectral | all (repeatable)")
    g.add_argument("--video-control", action="append", default=[], metavar="SHOT,OBJ,FEATURE,WEIGHT",
                   help="scale a video feature of a shot/object (-1 = all): semantic | color | move | area | "
                   "position | all (repeatable)")
    g.add_argument("--tempo", type=_finite, metavar="BPM", help="base tempo (default: chosen from the video)")
    g.add_argument("--key", metavar="KEY", help="key, e.g. 'D minor', 'F# major' (default: from the colours)")
    g.add_argument("--seed", type=_seed, default=0, help="random seed (0); the same seed gives the same music")
    g = gen.add_argument_group("output")
    g.add_argument("--mix", type=_finite, default=None, metavar="LEVEL",
                   help="keep the original soundtrack underneath at this gain relative to the music (default 0: "
                        "replace it; 1 with --keep-speech)")
    g.add_argument("--keep-speech", action="store_true",
                   help="keep the original soundtrack and duck the music wherever someone speaks in it (Silero "
                        "VAD); the composer also writes thinner there")
    g.add_argument("--duck", type=_finite, default=-12.0, metavar="DB",
                   help="with --keep-speech: how far the music dips under speech (-12 dB)")
    g.add_argument("--lufs", type=_lufs, default=-14.0, help="integrated loudness target (-14 LUFS; "
                   f"{LUFS_RANGE[0]:g} to {LUFS_RANGE[1]:g})")
    g.add_argument("--plot", action="store_true", help="also write <name>.png: shots, visual beats, music beats")
    g.add_argument("--start", type=_time, metavar="TIME", help="score from this time on (seconds or m:ss; the "
                                                              "original sound plays before it)")
    g.add_argument("--end", type=_time, metavar="TIME", help="score up to this time (the original sound plays "
                                                            "after it)")
    g.add_argument("--fade", type=_finite, default=1.0, metavar="SEC",
                   help="with --start/--end: the music fades in and out over this long, crossfading with the "
                        "original sound (1.0)")
    g.add_argument("--soundfont", metavar="FILE", help="General MIDI soundfont, .sf2 or .sf3 (default: MuseScore "
                   "General, else FluidR3 GM, else TimGM6mb: the first installed)")
    g.add_argument("--style", metavar="NAME", help="the composer's style (default: chosen from the picture); "
                   "'--style list' lists them")
    g.add_argument("--no-wav", action="store_true", help="do not write <name>.wav beside the video")
    g.add_argument("--no-midi", action="store_true", help="do not write the score as <name>.mid")
    g.add_argument("--stems", action="store_true", help="also write <name>.stems/<part>.wav, each part of the "
                   "composer's score alone (32-bit float, aligned with the video; they add up to the mix before "
                   "its loudness and limiting)")
    g.add_argument("--device", default="auto", help="torch device for neural models")
    g.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="score only part i of n (0-based) of the sorted video list (e.g. a cluster array job)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from tqdm.auto import tqdm

    from .controls import Controls, ControlError
    from .soundtrack import find_videos, generate, load_generator, output_path, summary_line
    from .models.cards import CONTROL_FLAGS, MODELS, card

    if args.style == "list":
        from .models.composer.styles import style_list

        print(style_list())
        return 0
    if not args.inputs:
        print("v2m generate: error: give at least one VIDEO_OR_DIR (or --style list)", file=sys.stderr)
        return 2
    try:
        controls = Controls.parse(args.music_control, args.video_control, args.tempo, args.key)
    except (ControlError, ValueError) as e:
        print(f"v2m: error: {e}", file=sys.stderr)
        return 2
    videos = find_videos(args.inputs)
    multiple = len(videos) > 1 or any(os.path.isdir(i) for i in args.inputs)
    i, n = args.shard
    videos = sorted(videos)[i::n]
    if not videos:
        print(f"v2m: shard {i}/{n} has no video to score", file=sys.stderr)
        return 0
    if multiple and args.output and os.path.isfile(args.output):
        print(f"v2m: error: {args.output}: several videos need an output folder", file=sys.stderr)
        return 2
    model = card(args.model)
    ignored = model.ignored_controls(controls)
    if ignored:
        print(f"v2m: warning: --model {model.name} does not use {', '.join(CONTROL_FLAGS[k] for k in ignored)}; "
              f"ignored", file=sys.stderr)
    if args.stems and not model.stems:
        raise V2MError(f"--stems: --model {model.name} makes one mixed signal, not parts; stems come from the "
                       "composer (--model composer)")
    options = {name: getattr(args, flag.lstrip("-").replace("-", "_"))
               for m in MODELS.values() for name, flag in m.flags.items()}
    generator = load_generator(args.model, device=args.device, **options)  # its warnings printed once
    failed, done = [], []
    bar = tqdm(videos, unit="video", desc="generate", disable=True if args.quiet or len(videos) < 2 else None,
               file=sys.stderr)
    for video, relative in bar:
        try:
            done.append(generate(video, output_path(video, args.output, multiple, relative), model=args.model,
                                 controls=controls, seed=args.seed, mix=args.mix, lufs=args.lufs, plot=args.plot,
                                 wav=not args.no_wav, midi=not args.no_midi, stems=args.stems,
                                 device=args.device, generator=generator, start=args.start, end=args.end,
                                 fade=args.fade, keep_speech=args.keep_speech, duck_db=args.duck))
        except V2MError as e:
            failed.append((e.path or video, e.message))
    if not args.quiet:
        for r in done:
            print(summary_line(r, model), file=sys.stderr)
    if failed:
        if len(videos) > 1:
            print(f"v2m: {len(failed)} of {len(videos)} videos failed:", file=sys.stderr)
        for path, message in failed:
            print(f"v2m: error: {path}: {message}", file=sys.stderr)
        return 1
    return 0


def _prepare_parser(sub) -> None:
    """``v2m prepare``'s options."""
    pr = sub.add_parser(
        "prepare",
        help="music videos -> a training dataset for diffv2m or stad",
        description="Cut music videos (their own soundtrack is the target) into clips with video features "
        "and music targets, a manifest with splits by source video, resumable.",
        epilog=EPILOG_PREPARE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("inputs", nargs="+", metavar="SRC", help="video files and/or folders (recursive)")
    pr.add_argument("-o", "--output", required=True, metavar="DATASET", help="dataset folder")
    pr.add_argument("--model", choices=["diffv2m", "stad"], default="diffv2m", help="whose targets (diffv2m)")
    pr.add_argument("--clip-seconds", type=_finite, default=30.0, metavar="SEC", help="clip length (30)")
    pr.add_argument("--min-seconds", type=_finite, default=10.0, metavar="SEC",
                    help="shortest tail kept as a clip (10); shorter tails are dropped")
    pr.add_argument("--splits", default="80/10/10", metavar="TRAIN/VAL/TEST", help="split proportions (80/10/10)")
    clip = pr.add_mutually_exclusive_group()
    clip.add_argument("--clip", metavar="MODEL", help="CLIP model (default: the model's own; must load if given)")
    clip.add_argument("--no-clip", action="store_true", help="no CLIP semantics")
    codec = pr.add_mutually_exclusive_group()
    codec.add_argument("--codec", metavar="WEIGHTS",
                       help="codec weights, hub id or local directory (default: facebook/encodec_32khz for stad, "
                       "stabilityai/stable-audio-open-1.0 for diffv2m); given explicitly, they must load")
    codec.add_argument("--no-codec", action="store_true", help="no codec targets (tokens / VAE latents)")
    objects = pr.add_mutually_exclusive_group()
    objects.add_argument("--sam", metavar="WEIGHTS", help="stad: SAM for the objects, hub id or local directory "
                         "(default facebook/sam-vit-base; the paper used facebook/sam-vit-huge); given "
                         "explicitly, it must load")
    objects.add_argument("--no-objects", action="store_true", help="stad: no object decomposition")
    pr.add_argument("--device", default="auto", help="torch device for CLIP, SAM and the codec (auto, cpu, cuda ...)")
    pr.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="worker processes (1)")
    pr.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n", help="part i of n (0-based)")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_prepare)


def cmd_prepare(args) -> int:
    from .data.prepare import DEFAULT, PrepareSettings, parse_splits, run_prepare

    if args.sam and args.model != "stad":
        print("v2m: warning: --sam is for --model stad; ignored", file=sys.stderr)
    settings = PrepareSettings.for_model(
        args.model, clip=None if args.no_clip else (args.clip or DEFAULT),
        codec=None if args.no_codec else (args.codec or DEFAULT), sam=None if args.no_objects else (args.sam or DEFAULT),
        device=args.device, clip_seconds=args.clip_seconds, min_seconds=args.min_seconds,
        splits=parse_splits(args.splits))
    summary, failed = run_prepare(args.inputs, args.output, settings, workers=args.workers, shard=args.shard,
                                  progress=not args.quiet, clip_required=bool(args.clip),
                                  codec_required=bool(args.codec),
                                  objects_required=bool(args.sam) and args.model == "stad")
    if not args.quiet:
        print(f"{args.output}: {summary['clips']} clips from {summary['sources']} videos "
              f"({summary['hours']:.2f} h; train/val/test {summary['splits']['train']}/"
              f"{summary['splits']['val']}/{summary['splits']['test']})", file=sys.stderr)
    if failed:
        print(f"v2m: {len(failed)} source(s) failed:", file=sys.stderr)
        for path, message in failed:
            print(f"v2m: error: {path}: {message}", file=sys.stderr)
        return 1
    return 0


def _convert_parser(sub) -> None:
    """``v2m convert``'s options."""
    cv = sub.add_parser(
        "convert",
        help="a Diff-V2M dataset to or from the official Diff-V2M layout",
        description="Convert between a v2m Diff-V2M dataset folder and the official Diff-V2M layout "
        "(wav_N/, clip_N/, color_N/, visualRhythm_N.json and a dataset config JSON).",
        epilog=EPILOG_CONVERT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cv.add_argument("source", nargs="+", metavar="SRC",
                    help="a prepared dataset folder (export), or official dataset config JSON file(s) (import)")
    cv.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    cv.add_argument("--class-label", type=int, default=2, choices=[0, 1, 2],
                    help="export: class_label of the dataset (2, as every published config)")
    cv.add_argument("--name", help="export: the dataset id in the configs (default: the dataset folder's name)")
    cv.add_argument("--split", choices=["train", "val", "test"],
                    help="import: the split of every clip (default: from the dataset paths, else train)")
    codec = cv.add_mutually_exclusive_group()
    codec.add_argument("--codec", metavar="WEIGHTS", help="import: Oobleck VAE weights for latent targets "
                       "(default: stabilityai/stable-audio-open-1.0 when it loads)")
    codec.add_argument("--no-codec", action="store_true", help="import: no VAE latents")
    cv.add_argument("--device", default="auto", help="import: torch device for the VAE")
    cv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cv.set_defaults(func=cmd_convert)


def cmd_convert(args) -> int:
    from pathlib import Path

    from .analysis import AnalysisSettings
    from .codecs import OOBLECK_DEFAULT
    from .data import convert
    from .data.prepare import PrepareSettings, open_codec

    first = Path(args.source[0])
    if first.is_dir():
        if len(args.source) > 1:
            print("v2m: error: export takes one dataset folder", file=sys.stderr)
            return 2
        configs = convert.export_official(first, args.output, class_label=args.class_label, name=args.name)
        if not args.quiet:
            print(f"{args.output}: official Diff-V2M layout; configs: {', '.join(str(c) for c in configs)}",
                  file=sys.stderr)
        return 0
    if not first.is_file():
        print(f"v2m: error: {first}: no such dataset folder or config file", file=sys.stderr)
        return 1
    codec = None
    if not args.no_codec:
        settings = PrepareSettings(model="diffv2m", codec=args.codec or OOBLECK_DEFAULT,
                                   analysis=AnalysisSettings(device=args.device))
        codec = open_codec(settings, required=bool(args.codec), warn=lambda m: print(m, file=sys.stderr))
    summary, failed = convert.import_official(args.source, args.output, split=args.split, codec=codec,
                                              progress=not args.quiet)
    if not args.quiet:
        print(f"{args.output}: {summary['clips']} clips imported (train/val/test {summary['splits']['train']}/"
              f"{summary['splits']['val']}/{summary['splits']['test']})", file=sys.stderr)
    for path, message in failed:
        print(f"v2m: error: {path}: {message}", file=sys.stderr)
    return 1 if failed else 0


def _train_parser(sub) -> None:
    """``v2m train``'s options."""
    from .train.settings import STRATEGIES, TrainSettings, published

    tr = sub.add_parser(
        "train",
        help="train a model on a prepared dataset (diffv2m, stad)",
        description="Train Diff-V2M or ControllableV2M with PyTorch Lightning on a dataset made by `v2m prepare "
        "--model diffv2m|stad`: checkpoints (resumed automatically), TensorBoard logs, audio samples, and the final "
        "model as a folder that `v2m generate --model MODEL --checkpoint OUT/final` uses.",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("model", choices=["diffv2m", "stad"], help="which model")
    tr.add_argument("--data", required=True, metavar="DATASET", help="prepared dataset folder")
    tr.add_argument("-o", "--output", required=True, metavar="OUT", help="run folder (checkpoints, logs, final)")
    tr.add_argument("--config", metavar="JSON", help="diffv2m: ours or the official model_config_odf.json (default: "
                    "the published architecture); stad: small (default), medium, or a JSON config of ours")
    tr.add_argument("--init", metavar="WEIGHTS", help="diffv2m: fine-tune from our folder or the official checkpoint "
                    "(e.g. TaylorJi/Diff-V2M); stad: a MusicGen (facebook/musicgen-small, -medium, a folder) whose "
                    "decoder starts the LM, or our folder to fine-tune")
    g = tr.add_argument_group("schedule")
    g.add_argument("--epochs", type=_positive_int, help=f"epochs (as published: {published('max_epochs')})")
    g.add_argument("--max-steps", type=int, default=TrainSettings.max_steps, metavar="N",
                   help="stop after N optimiser steps")
    g.add_argument("--batch-size", type=_positive_int, metavar="N", help="clips per device (as published: "
                   f"{published('batch_size')})")
    g.add_argument("--accumulate", type=_positive_int, default=TrainSettings.accumulate, metavar="N",
                   help=f"gradient accumulation ({TrainSettings.accumulate}; the published run used 4 on 2 GPUs)")
    g.add_argument("--crop-seconds", type=_positive_int, metavar="SEC", help="train on random crops this long")
    g.add_argument("--seed", type=_seed, default=TrainSettings.seed, help=f"random seed ({TrainSettings.seed})")
    g = tr.add_argument_group("hardware")
    g.add_argument("--precision", help="Lightning precision: bf16-mixed (default on GPUs that have it), 16-mixed, "
                   "32-true")
    g.add_argument("--devices", default=TrainSettings.devices, help="GPUs per node: a number, a list like 0,1, or auto")
    g.add_argument("--nodes", type=_positive_int, default=TrainSettings.num_nodes,
                   help=f"nodes ({TrainSettings.num_nodes})")
    g.add_argument("--strategy", choices=list(STRATEGIES), default=TrainSettings.strategy,
                   help="multi-GPU strategy (deepspeed needs the deepspeed package)")
    g.add_argument("--workers", type=int, default=TrainSettings.num_workers, metavar="N",
                   help=f"data loader workers per device ({TrainSettings.num_workers})")
    g = tr.add_argument_group("monitoring")
    g.add_argument("--val-every", type=_positive_int, metavar="STEPS", help="validate every N steps (default: "
                   "each epoch)")
    g.add_argument("--sample-every", type=int, default=TrainSettings.sample_every, metavar="STEPS",
                   help="write audio samples every N steps (0 = never)")
    g.add_argument("--checkpoint-every", type=_positive_int, default=TrainSettings.checkpoint_every, metavar="STEPS",
                   help=f"write last.ckpt every N steps ({TrainSettings.checkpoint_every})")
    g.add_argument("--vae", metavar="WEIGHTS", help="the VAE for audio without pre-encoded latents and for samples "
                   "(default: the dataset's codec, or the --init model's)")
    g.add_argument("--codec", metavar="WEIGHTS", help="stad: the EnCodec for samples and the exported model "
                   "(default: the dataset's)")
    g.add_argument("--fresh", action="store_true", help="do not resume from OUT/checkpoints/last.ckpt")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    devices = args.devices
    if devices != "auto":
        devices = [int(d) for d in devices.split(",")] if "," in devices else int(devices)
    # the run's settings (v2m.train.settings); epochs and batch size not given: the model's published ones
    common = dict(init=args.init, max_steps=args.max_steps, num_workers=args.workers, accumulate=args.accumulate,
                  precision=args.precision, devices=devices, num_nodes=args.nodes, strategy=args.strategy,
                  val_every=args.val_every, sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                  crop_seconds=args.crop_seconds, seed=args.seed, resume=not args.fresh, progress=not args.quiet)
    common.update({name: value for name, value in (("max_epochs", args.epochs), ("batch_size", args.batch_size))
                   if value})
    if args.model == "diffv2m":
        from .models.diffv2m import DiffV2MConfig
        from .train.diffv2m import fit

        if args.codec:
            print("v2m: warning: --codec is for stad (diffv2m takes --vae); ignored", file=sys.stderr)
        config = args.config if args.config else (None if args.init else DiffV2MConfig())
        result = fit(config, args.data, args.output, vae=args.vae, **common)
    else:
        from .train.stad import fit

        if args.vae:
            print("v2m: warning: --vae is for diffv2m (stad takes --codec); ignored", file=sys.stderr)
        result = fit(args.config, args.data, args.output, codec=args.codec, **common)
    if not args.quiet:
        final = f"; model: {result.final}" if result.final else ""
        print(f"{args.output}: checkpoint {result.checkpoint}{final}", file=sys.stderr)
    return 0


def _evaluate_parser(sub) -> None:
    """``v2m evaluate``'s options."""
    ev = sub.add_parser(
        "evaluate",
        help="the field's metrics for generated music, in one report",
        description="Compare generated music (audio files or muxed videos) with the reference music and the "
        "videos, paired by file name (x.wav, x.mp4 and v2m's x_scored.mp4 pair as x; the files `v2m generate` "
        "wrote for one clip count once, as its WAV). Writes report.md and "
        "report.json: one row per clip and the means, each metric named with its embedder, sample rate and "
        "variant; metrics that cannot be computed are listed with the reason.",
    )
    ev.add_argument("--generated", required=True, metavar="DIR", help="generated audio files or muxed videos")
    ev.add_argument("--reference", required=True, metavar="DIR", help="the reference music (audio or videos)")
    ev.add_argument("--videos", metavar="DIR", help="the videos (cuts and visual beats for the video rhythm "
                    "metrics; the picture for the ImageBind score)")
    ev.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="folder for report.md and report.json")
    w = ev.add_argument_group("embedders (each: a file, a folder, a URL or a hub id; 'off' skips its metrics; "
                              "weights are downloaded once where there is network and cached)")
    w.add_argument("--vggish", metavar="SRC", help="VGGish for FAD (default: torchvggish's "
                   "vggish-10086976.pth from GitHub)")
    w.add_argument("--panns", metavar="SRC", help="PANNs CNN14 for FD, KL and IS (default: the authors' Zenodo "
                   "checkpoint for --panns-rate)")
    w.add_argument("--panns-rate", type=int, choices=(16000, 32000), default=16000,
                   help="the CNN14 to use: 16 kHz (Cnn14_16k, default) or 32 kHz (Cnn14)")
    w.add_argument("--clap", metavar="SRC", help="LAION-CLAP for FD and density/coverage (default "
                   "laion/clap-htsat-unfused)")
    w.add_argument("--imagebind", metavar="SRC", help="ImageBind-huge for the IB score, needs --videos (default: "
                   "imagebind_huge.pth from Meta, ~4.5 GB)")
    w.add_argument("--no-embedders", action="store_true", help="rhythm metrics only (no learned embedders)")
    w.add_argument("--device", default="auto", help="torch device for the embedders (auto, cpu, cuda ...)")
    ev.add_argument("--max-length-diff", type=_finite, default=1.0, metavar="SEC",
                    help="pairs whose lengths differ by more are left out (1 s)")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    ev.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .evaluate.embedders import FAMILIES
    from .weights import resolve_device
    from .evaluate.run import run_evaluation

    def spec(value):
        return False if args.no_embedders or value == "off" else value  # None: the default weights

    embedders = {family: spec(getattr(args, family)) for family in FAMILIES}
    report = run_evaluation(args.generated, args.reference, args.videos, args.output, embedders=embedders,
                            max_length_diff=args.max_length_diff, panns_rate=args.panns_rate,
                            device=str(resolve_device(args.device)), progress=not args.quiet)
    if not args.quiet:
        print(f"evaluated {len(report.clips)} clip(s) -> {os.path.join(args.output, 'report.md')}", file=sys.stderr)
        for name, reason in report.not_computed.items():
            print(f"v2m: not computed: {name}: {reason}", file=sys.stderr)
    for p in report.problems:
        print(f"v2m: error: {p['path']}: {p['problem']}", file=sys.stderr)
    return 1 if report.problems else 0


def _probe_parser(sub) -> None:
    """``v2m probe``'s options."""
    p = sub.add_parser("probe", help="what a video file is (duration, frame rate, size, rotation, audio)",
                       description="Check that a file is a usable video and print what it is.")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_probe)


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


EPILOG_APP = """\
examples:
  v2m app                                            the composer, at http://127.0.0.1:7860
  v2m app --port 8080 --max-seconds 120              another port; videos up to 2 minutes
  v2m app --checkpoint-diffv2m runs/dv2m/final       also offer Diff-V2M
  v2m app --config models.json                       the neural models' options from a file

models.json holds each neural model's options by the names of `v2m generate`'s flags, e.g.
  {"diffv2m": {"checkpoint": "TaylorJi/Diff-V2M", "sampler": "dpm", "steps": 50},
   "stad": {"checkpoint": "runs/stad/final", "cfg_scale": 3}}
Jobs run one at a time; other users wait in a queue. Uploads and results are removed when a
browser tab closes, after --keep-minutes unused, and when the app stops. Nothing is fetched from
the internet by the page; --share alone opens a public link (through Gradio's share servers).
"""


def _app_parser(sub) -> None:
    """``v2m app``'s options."""
    ap = sub.add_parser("app", help="score videos in the browser (a local web app)",
                        description="Start v2m's web app: upload videos, pick a style, key, tempo, seed and controls, "
                                    "and get the scored video, its WAV, MIDI and alignment picture.",
                        epilog=EPILOG_APP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only; "
                                                        "0.0.0.0: every network interface)")
    ap.add_argument("--port", type=lambda t: _whole(t, 1, 65535), default=7860, help="port (7860)")
    ap.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs the internet)")
    g = ap.add_argument_group("models (the composer is always offered)")
    g.add_argument("--checkpoint-diffv2m", metavar="PATH", help="offer Diff-V2M with these weights (our folder, the "
                                                               "official .ckpt or a hub id)")
    g.add_argument("--checkpoint-stad", metavar="PATH", help="offer ControllableV2M with these weights "
                                                            "(a folder from v2m train stad)")
    g.add_argument("--config", metavar="JSON", help="the neural models' options (see below); the --checkpoint "
                                                   "flags override it")
    g.add_argument("--device", default="auto", help="torch device for the neural models (auto, cpu, cuda ...)")
    g = ap.add_argument_group("limits")
    g.add_argument("--max-seconds", type=_finite, default=600.0, metavar="SEC",
                   help="the longest video the app scores (600; v2m generate takes any length)")
    g.add_argument("--max-megabytes", type=_finite, default=2048.0, metavar="MB", help="the largest upload (2048)")
    g.add_argument("--keep-minutes", type=_finite, default=60.0, metavar="MIN",
                   help="remove a session's files this long after its last use (60)")
    ap.set_defaults(func=cmd_app)


def _app_models(args) -> dict[str, dict]:
    """The neural models' options from --config and the --checkpoint flags."""
    models: dict[str, dict] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as f:
                models = json.load(f)
        except OSError as e:
            raise V2MError(f"cannot be read ({e.strerror or e})", args.config) from None
        except json.JSONDecodeError as e:
            raise V2MError(f"is not valid JSON ({e.msg} at line {e.lineno})", args.config) from None
        if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
            raise V2MError('must be a JSON object of model options, e.g. {"diffv2m": {"checkpoint": "PATH"}}',
                           args.config)
    for name in ("diffv2m", "stad"):
        path = getattr(args, f"checkpoint_{name}")
        if path:
            models.setdefault(name, {})["checkpoint"] = path
    return models


def cmd_app(args) -> int:
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="v2m-app-")  # every upload and result, removed when the app stops
    os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(root, "uploads"))  # read when gradio loads
    try:
        return _serve_app(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve_app(args, root: str) -> int:
    from .app.jobs import Limits
    from .app.page import Studio, launch

    studio = Studio(_app_models(args), Limits(args.max_seconds, args.max_megabytes, args.keep_minutes),
                    root=os.path.join(root, "sessions"), device=args.device)
    try:
        for name in studio.neural:
            print(f"v2m app: loading {name} ...", file=sys.stderr)
            studio.generator(name)  # a checkpoint that does not load is one line now, not at the first job
        page, local, public = launch(studio, args.host, args.port, args.share)
        print(f"v2m app: open {local} in a browser" + (f" (public: {public})" if public else "")
              + "; Ctrl+C stops it", flush=True)
        try:
            page.block_thread()
        finally:
            page.close()
    finally:
        studio.workspace.close()
    return 0


def _analyze_parser(sub) -> None:
    """``v2m analyze``'s options."""
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
    g.add_argument("--shot-threshold", type=_finite, metavar="X",
                   help="detector threshold: for scenedetect the mean brightness change between "
                   "contrast-normalised frames, 0-255 (default 27); for transnetv2 a probability (0.5)")
    g.add_argument("--min-shot", type=_finite, default=0.5, metavar="SEC", help="shortest shot in seconds (0.5)")
    g = a.add_argument_group("features")
    clip = g.add_mutually_exclusive_group()
    clip.add_argument("--clip", metavar="MODEL",
                      help="CLIP model: hub id, local directory, or 'diffv2m' (ViT-B/32, the default) / "
                      "'stad' (ViT-L/14-336); given explicitly, it must load")
    clip.add_argument("--no-clip", action="store_true", help="no CLIP semantics")
    g.add_argument("--color", choices=["rgbuv32", "hsv16x16x12"], default="rgbuv32",
                   help="colour-histogram recipe (3072 values; default rgbuv32, see docs)")
    g.add_argument("--size", type=_positive_int, default=256, metavar="PX", help="longest side of analysed frames (256)")
    g.add_argument("--device", default="auto", help="torch device for CLIP/TransNetV2: auto, cpu, cuda, cuda:1 ...")
    g = a.add_argument_group("objects (ControllableV2M)")
    g.add_argument("--objects", action="store_true", help="also decompose each video into shots x objects (SAM "
                   "masks tracked at 1 Hz, per-object CLIP, colour, area, position, trajectory): <name>.objects/ "
                   "with the official per-shot .npz/.pt files, objects.png and objects.json")
    g.add_argument("--sam", metavar="MODEL", help="SAM for --objects: a hub id or folder (default "
                   "facebook/sam-vit-base; the paper used facebook/sam-vit-huge)")
    g.add_argument("--object-clip", metavar="MODEL", default="stad",
                   help="CLIP for --objects (default stad = openai/clip-vit-large-patch14-336)")
    g = a.add_argument_group("runs")
    g.add_argument("--export-diffv2m", metavar="DIR", help="also write the official Diff-V2M layout to DIR")
    g.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="worker processes (1)")
    g.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="analyse only part i of n (0-based) of the sorted file list")
    g.add_argument("--force", action="store_true", help="recompute finished outputs")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)


def cmd_analyze(args) -> int:
    from .analysis import AnalysisSettings, export_diffv2m, run_analysis
    from .analysis.objects import DEFAULT_SAM, ObjectDecomposer
    from .analysis.semantic import DEFAULT_MODEL
    from .analysis.timeline import Analysis
    from .data.official import write_analyses_objects

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
    analyses, outputs = [], []
    for out in report.outputs:
        try:
            analyses.append(Analysis.load(out))
            outputs.append(out)
        except V2MError as e:
            report.failed.append((out, e.message))
    if args.export_diffv2m and analyses:
        try:
            export_diffv2m(analyses, args.export_diffv2m, warn=lambda m: print(m, file=sys.stderr))
        except V2MError as e:
            report.failed.append((e.path or args.export_diffv2m, e.message))
    if args.objects and analyses:  # SAM and CLIP load once, failing for every video at once when they cannot
        decomposer = ObjectDecomposer(args.sam or DEFAULT_SAM, args.object_clip, device=args.device)
        report.failed += write_analyses_objects(analyses, outputs, decomposer, progress=not args.quiet)
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
    args = build_parser().parse_args(_join_dash_values(sys.argv[1:] if argv is None else list(argv)))
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
