"""Benchmark Diff-V2M sampling: seconds of audio per second of compute, and peak memory.

    python benchmarks/bench_diffv2m.py                  # full size on the GPU (random weights)
    python benchmarks/bench_diffv2m.py --size tiny      # the tests' tiny config, 1 s window (CPU)

Full size = the published architecture (DiT 24 x 1536, 1.4 B parameters with the conditioners)
and the Stable Audio Open VAE, built from config with random weights (speed does not depend on
the weights). One 30 s window (645 latent frames) with classifier-free guidance (the DiT runs on a
batch of 2), sampled with the official 250-step DDIM and with DPM-Solver++ (50 steps), then
decoded. Prints each sampler's wall time, the real-time factor (seconds of audio per second of
compute), their ratio, the cost of one DiT step and the peak GPU memory. Targets (issue 5): the
fast sampler >= 10x real time and >= 5x faster than the 250-step DDIM.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from v2m.models.diffv2m import DiffV2M, DiffV2MConfig
from v2m.models.diffv2m.sampling import dpm_solver, v_ddim

OFFICIAL_CONFIG = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "diffv2m_official" / "model_config_odf.json"


def build(size: str, device: torch.device, dtype: torch.dtype):
    """``(config, model, vae)``: Diff-V2M and its VAE decoder at ``size`` ("full": the published
    architecture; "tiny": the tests' geometry), random weights, built directly on ``device``."""
    from diffusers import AutoencoderOobleck

    from v2m.models.diffv2m.vae import OfficialVAE, oobleck_kwargs

    if size == "full":
        config = DiffV2MConfig.from_official(json.loads(OFFICIAL_CONFIG.read_text())) if OFFICIAL_CONFIG.exists() \
            else DiffV2MConfig()
    else:
        from v2m.models.diffv2m import ConditioningConfig, DiTConfig

        config = DiffV2MConfig(conditioning=ConditioningConfig(cond_dim=64, semantic_dim=16, color_dim=24,
                                                               predictor_width=64, predictor_depth=1, predictor_heads=2),
                               dit=DiTConfig(io_channels=64, embed_dim=64, depth=2, num_heads=2),
                               sample_size=44100)  # a 1 s window: the per-step cost on a CPU, quickly
    with torch.device(device):  # initialise on the device: 1.4 B parameters are slow to draw on a CPU
        model = DiffV2M(config).to(device, dtype).eval()
        vae_kwargs = oobleck_kwargs(config.vae) if size == "full" else dict(
            encoder_hidden_size=16, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
            decoder_channels=4, decoder_input_channels=64)
        vae = OfficialVAE(AutoencoderOobleck(**vae_kwargs)).to(device, dtype)
    if size != "full":
        config = replace(config, dit=replace(config.dit, io_channels=64))
    return config, model, vae


def batch_for(config: DiffV2MConfig, device, batch_size: int = 1, rhythm: bool = False) -> dict:
    """Random conditions for ``batch_size`` full windows; ``rhythm``: with the true rhythm (what
    training reads)."""
    from v2m.models.diffv2m.conditioning import RHYTHM_KEYS

    T, c, B = config.conditioning.max_seconds, config.conditioning, batch_size
    batch = {"clip": torch.randn(B, T, c.semantic_dim, device=device), "color": torch.rand(B, T, c.color_dim, device=device),
            "scene_cut": torch.zeros(B, T, device=device), "pseudo_beat": torch.rand(B, T, device=device),
            "mask": torch.ones(B, T, dtype=torch.bool, device=device), "seconds_start": torch.zeros(B, device=device),
            "seconds_total": torch.full((B,), float(T), device=device)}
    if rhythm:
        shape = (B, T) if c.rhythm_dim == 1 else (B, T, c.rhythm_dim)
        batch[RHYTHM_KEYS[c.rhythm_type]] = torch.rand(shape, device=device)
    return batch


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device) -> float | None:
    """Peak GPU memory since the last :func:`reset_peak` in GiB (None on a CPU)."""
    return torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else None


def device_name(device) -> str:
    return torch.cuda.get_device_name() if torch.device(device).type == "cuda" else \
        f"CPU ({torch.get_num_threads()} threads)"


def time_sampling(config: DiffV2MConfig, model: DiffV2M, vae, device, dtype: torch.dtype, ddim_steps: int = 250,
                  dpm_steps: int = 50, cfg_scale: float = 3.0, estimate_only: bool = False,
                  seconds_left=None) -> dict:
    """Time one window, after a warm-up step and decode: a DiT step (batch of 2 with guidance),
    the decode alone and each sampler + decode. ``estimate_only``: the samplers' times are the
    step time x steps (a full-size run on a CPU takes hours). ``seconds_left``: a callable giving
    the seconds this measurement may still take; a sampler whose estimate (step time x steps +
    decode) exceeds it is skipped and listed under ``"skipped"``. Returns the figures (seconds,
    real-time factors, peak GiB on a GPU)."""
    seconds = config.sample_size / config.sample_rate
    out = {"audio_seconds": seconds, "cfg_scale": cfg_scale, "dtype": str(dtype)[6:], "skipped": {}}
    with torch.inference_mode():
        ctx, g = model.contexts(model.conditioner(batch_for(config, device)))
        denoise = lambda x, t: model(x, t, ctx, g, cfg_scale)  # noqa: E731
        noise = torch.randn(1, config.dit.io_channels, config.latent_length, device=device, dtype=dtype)
        denoise(noise, torch.full((1,), 0.5, device=device))  # warm-ups (kernel choice, allocations)
        vae.decode(noise)
        reset_peak(device)
        t0 = time.perf_counter()
        for _ in range(3):
            denoise(noise, torch.full((1,), 0.5, device=device))
        sync(device)
        step = (time.perf_counter() - t0) / 3
        out["dit_step_s"] = step
        t0 = time.perf_counter()
        vae.decode(noise)
        sync(device)
        out["vae_decode_s"] = time.perf_counter() - t0
        for name, fn, steps in (("ddim", v_ddim, ddim_steps), ("dpm", dpm_solver, dpm_steps)):
            out[f"{name}_steps"] = steps
            estimate = step * steps + out["vae_decode_s"]
            if estimate_only:
                out[f"{name}_s"], out[f"{name}_estimated"] = estimate, True
            elif seconds_left is not None and estimate > seconds_left():
                out["skipped"][name] = f"estimated {estimate:.0f} s > {seconds_left():.0f} s left in the budget"
                continue
            else:
                t0 = time.perf_counter()
                vae.decode(fn(denoise, noise, steps))
                sync(device)
                out[f"{name}_s"], out[f"{name}_estimated"] = time.perf_counter() - t0, False
            out[f"{name}_rtf"] = seconds / out[f"{name}_s"]
    if "ddim_s" in out and "dpm_s" in out:
        out["ddim_over_dpm"] = out["ddim_s"] / out["dpm_s"]
    out["peak_gib"] = peak_gib(device)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["full", "tiny"], default="full")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None,
                    help="weights and compute (default: fp16 on GPU as the official inference, fp32 on CPU)")
    ap.add_argument("--ddim-steps", type=int, default=250)
    ap.add_argument("--dpm-steps", type=int, default=50)
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    torch.manual_seed(0)
    config, model, vae = build(args.size, device, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    size = f"{n_params / 1e9:.2f} B" if n_params > 1e8 else f"{n_params / 1e6:.1f} M"
    r = time_sampling(config, model, vae, device, dtype, args.ddim_steps, args.dpm_steps,
                      estimate_only=args.size == "full" and device.type == "cpu")
    print(f"{device_name(device)}; {args.size} Diff-V2M ({size} parameters), {r['dtype']}; one "
          f"{r['audio_seconds']:.1f} s window, CFG 3")
    print(f"  one DiT step (batch of 2 with CFG): {1000 * r['dit_step_s']:.1f} ms; VAE decode: "
          f"{1000 * r['vae_decode_s']:.0f} ms")
    for key in ("ddim", "dpm"):
        est = " (estimated from the step time)" if r[f"{key}_estimated"] else ""
        print(f"  {key:4s} {r[f'{key}_steps']:3d} steps + decode: {r[f'{key}_s']:7.2f} s -> "
              f"{r[f'{key}_rtf']:6.1f}x real time{est}")
    print(f"  DPM-Solver++ is {r['ddim_over_dpm']:.1f}x faster than the official DDIM")
    if r["peak_gib"] is not None:
        print(f"  peak GPU memory {r['peak_gib']:.1f} GiB")


if __name__ == "__main__":
    main()
