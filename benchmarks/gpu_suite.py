"""The GPU benchmark suite (issue 18): every model at full size with random weights (the speed is
that of the real weights), in one run of at most 8 minutes on one GPU, written to one JSON file
and one Markdown table.

    python benchmarks/gpu_suite.py --out DIR             # full size, on the GPU (~8 min on an H200)
    python benchmarks/gpu_suite.py --dry-run --out DIR   # every part on the CPU with tiny configs (< 1 min)

Parts (the building and timing come from the other benchmarks, which keep their own commands):

* ``diffv2m_fp16`` / ``diffv2m_bf16``: Diff-V2M, one 30 s window with guidance 3: DPM-Solver++
  (50 steps) vs the official 250-step DDIM, each + the VAE decode; the decode alone; peak memory.
* ``stad_generate``: ControllableV2M, the musicgen-small-size LM, 30 s of tokens with the KV
  cache and guidance 3: tokens/s and real-time factor.
* ``oobleck_encode`` / ``encodec_encode``: the codecs' encode of 30 s (what ``v2m prepare``
  costs per clip).
* ``sam_vit_b`` / ``sam_vit_h``: the object decomposition of a 30 s 640x360 clip (5 shots):
  SAM's automatic masks, 1 Hz tracking and the objects' CLIP ViT-L/14-336 embeddings.
* ``clip_b32`` / ``clip_l14_336``: CLIP embedding per second of video (one frame a second).
* ``vggish`` / ``panns_cnn14`` / ``imagebind_huge``: the evaluation embedders per 10 s clip.
* ``train_diffv2m`` / ``train_stad``: one optimiser step of each model's loss at batch 8 in
  bf16 autocast (the training modules' optimisers): time and peak memory.

Every part records its wall time and, on a GPU, its peak memory (``torch.cuda.max_memory_allocated``
since the part's start or its last warm-up, weights included); timed figures follow a warm-up call. Each part
has a budget (seconds): it starts only with at least a third of it left in the total
budget, it is stopped when it runs past it (or past the total), and a measurement whose estimate
(from a first step) exceeds what is left is skipped; a part that is stopped or fails (out of
memory, a missing dependency) is recorded as skipped with the reason. The JSON and the Markdown
are always written. Targets: Diff-V2M >= 10x real time with DPM-Solver++ and >= 5x faster than
DDIM; ControllableV2M >= 4x real time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model is built from its config: never ask the hub

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the other benchmarks
sys.path.insert(0, str(HERE.parent / "tests"))  # synthetic.py

import bench_diffv2m  # noqa: E402
import bench_evaluate  # noqa: E402
import bench_prepare  # noqa: E402
import bench_stad  # noqa: E402

TOTAL_BUDGET_S = 450.0  # of the 8 minutes: the rest is the process start, the imports and the report


@dataclass
class Run:
    """What every part is given: the device, the scale and the time it may still take."""

    device: str
    dry_run: bool
    deadline: float = 0.0  # perf_counter() by which the running part must be done

    @property
    def seconds(self) -> float:
        """The clip length of the audio and video parts (30 s; 1 s in a dry run)."""
        return 1.0 if self.dry_run else 30.0

    def left(self) -> float:
        return self.deadline - time.perf_counter()


@dataclass
class Part:
    """One measurement: ``run`` returns its figures, ``summary`` says them in a line of the table;
    ``budget_s``: the most seconds it may take on the GPU; ``dtype``: what it computes in."""

    name: str
    title: str
    budget_s: float
    run: Callable[[Run], dict]
    summary: Callable[[dict], str]
    dtype: str = "fp32"


class OverBudget(BaseException):
    """A part ran past its budget (a BaseException: no ``except Exception`` in a library swallows it)."""


# --- the parts ------------------------------------------------------------------------------


def _diffv2m(dtype: torch.dtype) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        torch.manual_seed(0)
        config, model, vae = bench_diffv2m.build("tiny" if r.dry_run else "full", r.device, dtype)
        steps = (6, 2) if r.dry_run else (250, 50)
        out = bench_diffv2m.time_sampling(config, model, vae, r.device, dtype, *steps, cfg_scale=3.0,
                                          seconds_left=r.left)
        out["parameters_b"] = sum(p.numel() for p in model.parameters()) / 1e9
        return out
    return run


def _sampling_summary(f: dict) -> str:
    parts = [f"{k.upper()} {f[f'{k}_steps']} steps {f[f'{k}_s']:.2f} s = {f[f'{k}_rtf']:.1f}x real time"
             for k in ("dpm", "ddim") if f"{k}_s" in f]
    if "ddim_over_dpm" in f:
        parts.append(f"DDIM/DPM {f['ddim_over_dpm']:.1f}")
    parts.append(f"decode {f['vae_decode_s']:.2f} s")
    parts += [f"{k.upper()} skipped: {why}" for k, why in f["skipped"].items()]
    return "; ".join(parts)


def _stad_generate(r: Run) -> dict:
    torch.manual_seed(0)
    config, model = bench_stad.build_stad("tiny" if r.dry_run else "small", r.device)
    return bench_stad.time_generate(config, model, r.seconds, r.device, cfg_scale=3.0)


def _codec(model: str) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        with tempfile.TemporaryDirectory() as folder:
            bench_prepare.full_size_codec(model, folder, tiny=r.dry_run)
            return bench_prepare.time_codec_encode(model, folder, r.device, r.seconds)
    return run


def _sam(kind: str) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        torch.manual_seed(0)
        sam, clip = bench_stad.decomposers("tiny" if r.dry_run else kind, "tiny" if r.dry_run else "l14-336", r.device)
        seconds, size, shot = (2.0, (128, 72), 1.0) if r.dry_run else (30.0, (640, 360), 6.0)  # 1 s shots at least
        return bench_stad.time_decompose(sam, clip, r.device, seconds, size=size, shot_seconds=shot)
    return run


def _clip(kind: str) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        from v2m.analysis.semantic import ClipEmbedder

        torch.manual_seed(0)
        model = bench_stad.clip_model("tiny" if r.dry_run else kind)
        embedder = ClipEmbedder(f"random-{kind}", device=r.device, model=model)
        return bench_stad.time_clip(embedder, r.device, int(r.seconds), size=(128, 72) if r.dry_run else (640, 360))
    return run


def _embedder(which: str) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        seconds = 1.0 if r.dry_run else 10.0
        label, job = bench_evaluate.embedder_jobs(r.device, seconds, (which,), tiny=r.dry_run)[which]
        took = bench_evaluate.time_job(job, r.device, repeats=1 if r.dry_run else 3)
        return {"model": label, "audio_seconds": seconds, "s_per_clip": took, "rtf": seconds / took}
    return run


def time_training_step(loss_fn: Callable[[], torch.Tensor], optimizer, device: str, seconds_left: Callable[[], float],
                       steps: int = 3) -> dict:
    """One optimiser step = ``loss_fn()`` under bf16 autocast, backward, ``optimizer.step()``:
    a warm-up step, then up to ``steps`` timed ones (fewer when the first would not fit in
    ``seconds_left``). Seconds per step and peak memory (weights, gradients, optimiser state and
    activations)."""
    def step() -> float:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    losses = [step()]  # warm-up (also allocates the optimiser state)
    bench_diffv2m.sync(device)
    first = time.perf_counter() - t0
    steps = max(0, min(steps, int(seconds_left() / max(first, 1e-6)) - 1))
    t0 = time.perf_counter()
    for _ in range(steps):
        losses.append(step())
    bench_diffv2m.sync(device)
    timed = (time.perf_counter() - t0) / steps if steps else None
    return {"dtype": "bf16 autocast", "first_step_s": first, "step_s": timed or first, "timed_steps": steps,
            "losses": losses, "finite_loss": bool(torch.isfinite(torch.tensor(losses)).all()),
            "peak_gib": bench_diffv2m.peak_gib(device)}


def _train_diffv2m(r: Run) -> dict:
    from v2m.train.diffv2m import DiffV2MModule

    torch.manual_seed(0)
    config, model, _ = bench_diffv2m.build("tiny" if r.dry_run else "full", r.device, torch.float32)
    module = DiffV2MModule(config, model=model.train())
    optimizer = module.configure_optimizers()["optimizer"]
    B = 8
    batch = bench_diffv2m.batch_for(config, r.device, B, rhythm=True)
    latents = torch.randn(B, config.dit.io_channels, config.latent_length, device=r.device)
    out = time_training_step(lambda: module.model.training_loss(batch, latents)["loss"], optimizer, r.device, r.left,
                             steps=1 if r.dry_run else 3)
    out.update(batch_size=B, audio_seconds=config.sample_size / config.sample_rate,
               parameters_m=sum(p.numel() for p in module.model.parameters() if p.requires_grad) / 1e6)
    return out


def _train_stad(r: Run) -> dict:
    from v2m.train.stad import StadModule

    torch.manual_seed(0)
    config, model = bench_stad.build_stad("tiny" if r.dry_run else "small", r.device,
                                          max_seconds=4 if r.dry_run else None)
    module = StadModule(config, model=model.train())
    optimizer = module.configure_optimizers()
    optimizer.train()  # schedule-free AdamW has a train and an eval mode
    B = 8
    batch = bench_stad.stad_batch(config, r.device, B, training=True)
    out = time_training_step(lambda: module.model.training_loss(batch, seed=0)["loss"], optimizer, r.device, r.left,
                             steps=1 if r.dry_run else 3)
    out.update(batch_size=B, video_seconds=config.video.max_seconds,
               parameters_m=sum(p.numel() for p in module.model.parameters() if p.requires_grad) / 1e6)
    return out


def _train_summary(f: dict) -> str:
    return (f"batch {f['batch_size']}, {f['step_s']:.3f} s/step ({f['timed_steps']} timed), "
            f"{f['parameters_m']:.0f} M trained parameters")


def _rtf(key: str = "wall_s", what: str = "") -> Callable[[dict], str]:
    return lambda f: f"{f[key]:.2f} s{what} = {f['rtf']:.1f}x real time"


PARTS = [
    Part("diffv2m_fp16", "Diff-V2M sampling, fp16 (30 s, CFG 3)", 90, _diffv2m(torch.float16), _sampling_summary, "fp16"),
    Part("diffv2m_bf16", "Diff-V2M sampling, bf16 (30 s, CFG 3)", 90, _diffv2m(torch.bfloat16), _sampling_summary, "bf16"),
    Part("stad_generate", "ControllableV2M generation (musicgen-small LM, 30 s, CFG 3)", 75, _stad_generate,
         lambda f: f"{f['wall_s']:.2f} s, {f['tokens_per_s']:.0f} tokens/s = {f['rtf']:.1f}x real time"),
    Part("oobleck_encode", "Oobleck VAE encode (30 s, prepare)", 20, _codec("diffv2m"), _rtf()),
    Part("encodec_encode", "EnCodec 32 kHz encode (30 s, prepare)", 20, _codec("stad"), _rtf()),
    Part("sam_vit_b", "Object decomposition, SAM ViT-B + CLIP ViT-L/14-336 (30 s clip)", 45, _sam("vit-b"),
         lambda f: f"{f['wall_s']:.1f} s = {f['rtf']:.2f}x real time; {f['shots']} shots, {f['objects']} objects"),
    Part("sam_vit_h", "Object decomposition, SAM ViT-H + CLIP ViT-L/14-336 (30 s clip)", 60, _sam("vit-h"),
         lambda f: f"{f['wall_s']:.1f} s = {f['rtf']:.2f}x real time; {f['shots']} shots, {f['objects']} objects"),
    Part("clip_b32", "CLIP ViT-B/32 embedding (1 frame/s)", 15, _clip("b32"),
         lambda f: f"{1000 * f['s_per_video_second']:.1f} ms per second of video ({f['frames_per_s']:.0f} frames/s)"),
    Part("clip_l14_336", "CLIP ViT-L/14-336 embedding (1 frame/s)", 20, _clip("l14-336"),
         lambda f: f"{1000 * f['s_per_video_second']:.1f} ms per second of video ({f['frames_per_s']:.0f} frames/s)"),
    Part("vggish", "VGGish (10 s clip)", 10, _embedder("vggish"), _rtf("s_per_clip", " per clip")),
    Part("panns_cnn14", "PANNs CNN14 16 kHz (10 s clip)", 10, _embedder("panns"), _rtf("s_per_clip", " per clip")),
    Part("imagebind_huge", "ImageBind-huge, 3 audio + 15 video views (10 s clip)", 30, _embedder("imagebind"),
         _rtf("s_per_clip", " per clip")),
    Part("train_diffv2m", "Diff-V2M training step (batch 8, bf16 autocast, AdamW)", 60, _train_diffv2m,
         _train_summary, "bf16"),
    Part("train_stad", "ControllableV2M training step (batch 8, bf16 autocast, schedule-free AdamW)", 50, _train_stad,
         _train_summary, "bf16"),
]

# (part, figure, comparison, threshold, description)
TARGETS = [
    ("diffv2m_fp16", "dpm_rtf", ">=", 10.0, "Diff-V2M fp16, DPM-Solver++ 50 steps: >= 10x real time"),
    ("diffv2m_fp16", "ddim_over_dpm", ">=", 5.0, "Diff-V2M fp16, DPM-Solver++ >= 5x faster than DDIM 250"),
    ("diffv2m_bf16", "dpm_rtf", ">=", 10.0, "Diff-V2M bf16, DPM-Solver++ 50 steps: >= 10x real time"),
    ("diffv2m_bf16", "ddim_over_dpm", ">=", 5.0, "Diff-V2M bf16, DPM-Solver++ >= 5x faster than DDIM 250"),
    ("stad_generate", "rtf", ">=", 4.0, "ControllableV2M: >= 4x real time"),
]


# --- running ---------------------------------------------------------------------------------


@contextlib.contextmanager
def alarm(seconds: float):
    """Raise :class:`OverBudget` in this (main) thread after ``seconds``."""
    def ring(signum, frame):
        raise OverBudget()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _free(device: str) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def run_part(part: Part, run: Run, total_left: float, budget_s: float | None = None) -> dict:
    """One part's record: ``status`` "ok" with its ``figures`` and ``summary``, or "skipped" with
    a ``note`` saying why (too little time left, over its budget, out of memory, a missing
    dependency, an error)."""
    budget = part.budget_s if budget_s is None else budget_s
    record = {"title": part.title, "dtype": part.dtype, "budget_s": budget, "status": "skipped", "note": None,
              "wall_s": None, "peak_gib": None, "figures": None, "summary": None}
    allowed = min(budget, total_left)
    if allowed < budget / 3:
        record["note"] = f"not started: {max(total_left, 0):.0f} s left of the total budget, the part needs up to " \
                         f"{budget:.0f} s"
        return record
    bench_diffv2m.reset_peak(run.device)
    start = time.perf_counter()
    run.deadline = start + allowed
    try:
        with alarm(allowed):
            figures = part.run(run)
        record.update(status="ok", figures=figures, summary=part.summary(figures))
    except OverBudget:
        record["note"] = f"stopped: ran past the {allowed:.0f} s it was given"
    except torch.cuda.OutOfMemoryError as e:
        record["note"] = f"out of GPU memory: {str(e).splitlines()[0][:200]}"
    except ImportError as e:
        record["note"] = f"missing dependency: {e}"
    except Exception as e:  # the suite always finishes: the reason goes in the report
        record["note"] = f"failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
    record["wall_s"] = time.perf_counter() - start
    record["peak_gib"] = bench_diffv2m.peak_gib(run.device)  # the whole part's, weights included
    _free(run.device)
    return record


def evaluate_targets(parts: dict) -> list[dict]:
    out = []
    for part, key, op, threshold, text in TARGETS:
        figures = parts[part]["figures"] or {}
        value = figures.get(key)
        met = None if value is None else bool(value >= threshold)
        out.append({"target": text, "part": part, "figure": key, "op": op, "threshold": threshold, "value": value,
                    "met": met, "status": "not measured" if met is None else "met" if met else "not met"})
    return out


def environment(device: str) -> dict:
    import diffusers
    import transformers

    cuda = torch.device(device).type == "cuda"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"device": device, "device_name": bench_diffv2m.device_name(device),
            "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
            "transformers": transformers.__version__, "diffusers": diffusers.__version__,
            "python": platform.python_version(), "cpu_threads": torch.get_num_threads(), "commit": commit}


def _number(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as Markdown: the environment, one row per part, one per target."""
    env = report["environment"]
    lines = [f"# v2m GPU suite{' (dry run: tiny models on the CPU, figures meaningless)' if report['dry_run'] else ''}",
             "",
             f"{env['device_name']}; torch {env['torch']}, CUDA {env['cuda']}, transformers {env['transformers']}, "
             f"diffusers {env['diffusers']}; commit {env['commit']}; {report['finished']}. "
             + ("Tiny configs, random weights" if report["dry_run"] else
                "Random weights at full size (the speed of the real weights)")
             + f"; total {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget.", "",
             "| Part | Dtype | Status | Figures | Peak GiB | Wall s | Budget s |",
             "|---|---|---|---|---|---|---|"]
    for name, p in report["parts"].items():
        text = (p["summary"] if p["status"] == "ok" else p["note"]).replace("|", "/")
        peak, wall = _number(p["peak_gib"], 1), _number(p["wall_s"], 1)
        lines.append(f"| {name}: {p['title']} | {p['dtype']} | {p['status']} | {text} | {peak} | {wall} | "
                     f"{p['budget_s']:.0f} |")
    lines += ["", "| Target | Measured | Result |", "|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {_number(t['value'], 2)} | {t['status']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for gpu_suite.json and gpu_suite.md")
    ap.add_argument("--dry-run", action="store_true", help="every part on the CPU with tiny configs (< 1 min)")
    ap.add_argument("--device", default="auto", help="torch device (default: cuda if there is one; cpu in a dry run)")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"total seconds for the parts (default {TOTAL_BUDGET_S:.0f}; 240 in a dry run)")
    ap.add_argument("--only", nargs="*", choices=[p.name for p in PARTS], help="run these parts only")
    args = ap.parse_args(argv)
    device = "cpu" if args.dry_run and args.device == "auto" else \
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    budget = args.budget if args.budget is not None else 240.0 if args.dry_run else TOTAL_BUDGET_S
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(device, args.dry_run)
    start = time.perf_counter()
    parts = {}
    for part in PARTS:
        if args.only is not None and part.name not in args.only:
            parts[part.name] = {"title": part.title, "dtype": part.dtype, "budget_s": part.budget_s,
                                "status": "skipped", "note": "not selected (--only)", "wall_s": None,
                                "peak_gib": None, "figures": None, "summary": None}
            continue
        parts[part.name] = run_part(part, run, budget - (time.perf_counter() - start))
        p = parts[part.name]
        print(f"{part.name}: {p['summary'] if p['status'] == 'ok' else 'skipped: ' + p['note']}", file=sys.stderr)
    report = {"suite": "v2m gpu_suite", "issue": 18, "dry_run": args.dry_run, "budget_s": budget,
              "environment": environment(device),
              "wall_s": time.perf_counter() - start, "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "parts": parts, "targets": evaluate_targets(parts)}
    (out / "gpu_suite.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "gpu_suite.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
