"""The GPU benchmark suite's dry run: every part runs on the CPU with tiny configs and the report
has every part, its figures and the targets, so that the script run on a lent GPU cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_suite  # noqa: E402

# the figures each part must report (beside its summary)
FIELDS = {
    "diffv2m_fp16": ("ddim_s", "dpm_s", "ddim_rtf", "dpm_rtf", "ddim_over_dpm", "vae_decode_s", "dit_step_s",
                     "audio_seconds", "peak_gib"),
    "diffv2m_bf16": ("ddim_s", "dpm_s", "ddim_rtf", "dpm_rtf", "ddim_over_dpm", "vae_decode_s", "peak_gib"),
    "stad_generate": ("wall_s", "tokens_per_s", "rtf", "steps_per_s", "peak_gib"),
    "oobleck_encode": ("wall_s", "rtf", "output"),
    "encodec_encode": ("wall_s", "rtf", "output"),
    "sam_vit_b": ("wall_s", "rtf", "shots", "objects", "tracked_seconds", "peak_gib"),
    "sam_vit_h": ("wall_s", "rtf", "shots", "objects", "tracked_seconds", "peak_gib"),
    "clip_b32": ("wall_s", "s_per_video_second", "frames_per_s", "dim"),
    "clip_l14_336": ("wall_s", "s_per_video_second", "frames_per_s", "dim"),
    "vggish": ("s_per_clip", "rtf"),
    "panns_cnn14": ("s_per_clip", "rtf"),
    "imagebind_huge": ("s_per_clip", "rtf"),
    "train_diffv2m": ("step_s", "first_step_s", "batch_size", "peak_gib", "finite_loss"),
    "train_stad": ("step_s", "first_step_s", "batch_size", "peak_gib", "finite_loss"),
}


def run_suite(out: Path, *args: str) -> tuple[dict, str]:
    """The suite through its shell wrapper, as the device runs it (with this interpreter)."""
    env = {**os.environ, "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--out", str(out), *args],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "gpu_suite.json").read_text()), (out / "gpu_suite.md").read_text()


def test_dry_run_runs_every_part_and_reports_it(tmp_path):
    report, md = run_suite(tmp_path / "gpu", "--dry-run")
    assert report["dry_run"] is True and report["environment"]["device"] == "cpu"
    assert report["environment"]["torch"] and "device_name" in report["environment"]
    assert list(report["parts"]) == [p.name for p in gpu_suite.PARTS] == list(FIELDS)
    for name, part in report["parts"].items():
        assert part["status"] == "ok", (name, part["note"])  # a dry run skips nothing: a skip is a broken part
        missing = [k for k in FIELDS[name] if k not in part["figures"]]
        assert not missing, (name, missing)
        assert part["summary"] and part["wall_s"] >= 0 and part["budget_s"] > 0
        assert part["peak_gib"] is None and part["figures"].get("peak_gib") is None  # no GPU memory on a CPU
        assert f"| {name}: " in md
    for name in ("diffv2m_fp16", "diffv2m_bf16"):
        f = report["parts"][name]["figures"]
        assert f["ddim_steps"] > f["dpm_steps"] and not f["ddim_estimated"] and not f["skipped"]
        assert f["ddim_over_dpm"] == pytest.approx(f["ddim_s"] / f["dpm_s"])
    for name in ("train_diffv2m", "train_stad"):
        assert report["parts"][name]["figures"]["batch_size"] == 8 and report["parts"][name]["figures"]["finite_loss"]
    targets = report["targets"]
    assert [(t["part"], t["figure"]) for t in targets] == [(p, k) for p, k, *_ in gpu_suite.TARGETS]
    for t in targets:  # evaluated on the (meaningless) dry-run figures
        value = report["parts"][t["part"]]["figures"][t["figure"]]
        assert t["value"] == value and t["met"] == (value >= t["threshold"])
        assert t["status"] == ("met" if t["met"] else "not met") and t["target"] in md


def test_a_sampler_that_would_overrun_is_skipped_from_its_estimate():
    import torch

    import bench_diffv2m

    config, model, vae = bench_diffv2m.build("tiny", "cpu", torch.float32)
    f = bench_diffv2m.time_sampling(config, model, vae, "cpu", torch.float32, 6, 2, seconds_left=lambda: 0.0)
    assert set(f["skipped"]) == {"ddim", "dpm"} and "estimated" in f["skipped"]["ddim"]
    assert "ddim_s" not in f and "ddim_over_dpm" not in f and f["dit_step_s"] > 0
    assert "DDIM skipped: estimated" in gpu_suite._sampling_summary(f)
    parts = {name: {"figures": f if name.startswith("diffv2m") else None} for name in ("diffv2m_fp16", "diffv2m_bf16",
                                                                                    "stad_generate")}
    assert all(t["status"] == "not measured" for t in gpu_suite.evaluate_targets(parts))


def test_parts_without_time_are_skipped_with_a_note_and_the_report_is_still_written(tmp_path):
    assert gpu_suite.main(["--dry-run", "--budget", "0", "--out", str(tmp_path)]) == 0  # in process: no part runs
    report, md = json.loads((tmp_path / "gpu_suite.json").read_text()), (tmp_path / "gpu_suite.md").read_text()
    for name, part in report["parts"].items():
        assert part["status"] == "skipped" and part["note"].startswith("not started") and part["figures"] is None
        assert f"| {name}: " in md and "skipped" in md
    assert all(t["met"] is None and t["status"] == "not measured" for t in report["targets"])


def test_a_failing_or_overrunning_part_is_recorded_not_raised():
    run = gpu_suite.Run("cpu", dry_run=True)

    def broken(r):
        raise RuntimeError("no such kernel")

    def endless(r):
        while True:
            pass

    def over(r):  # a measurement that checks its estimate against the time left
        return {"fits": r.left() > 1000}

    part = gpu_suite.Part("x", "x", 5, broken, str)
    record = gpu_suite.run_part(part, run, total_left=100)
    assert record["status"] == "skipped" and "RuntimeError: no such kernel" in record["note"]
    record = gpu_suite.run_part(gpu_suite.Part("y", "y", 0.3, endless, str), run, total_left=100)
    assert record["status"] == "skipped" and record["note"].startswith("stopped")
    record = gpu_suite.run_part(gpu_suite.Part("z", "z", 60, over, str), run, total_left=30)
    assert record["status"] == "ok" and record["figures"] == {"fits": False}  # given min(budget, total left)
