"""Benchmark Diff-V2M sampling: seconds of audio per second of compute, and peak memory.

    python benchmarks/bench_diffv2m.py                  # full size on the GPU (random weights)
    python benchmarks/bench_diffv2m.py --size tiny      # the tests' tiny config, per-step cost (CPU)

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
    from diffusers import AutoencoderOobleck

    from v2m.models.diffv2m.vae import OfficialVAE, oobleck_kwargs

    if size == "full":
        config = DiffV2MConfig.from_official(json.loads(OFFICIAL_CONFIG.read_text())) if OFFICIAL_CONFIG.exists() \
            else DiffV2MConfig()
    else:
        from v2m.models.diffv2m import ConditioningConfig, DiTConfig

        config = DiffV2MConfig(conditioning=ConditioningConfig(cond_dim=64, semantic_dim=16, color_dim=24,
                                                               predictor_width=64, predictor_depth=1, predictor_heads=2),
                               dit=DiTConfig(io_channels=64, embed_dim=64, depth=2, num_heads=2))
    model = DiffV2M(config).to(device, dtype).eval()
    vae_kwargs = oobleck_kwargs(config.vae) if size == "full" else dict(
        encoder_hidden_size=16, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
        decoder_channels=4, decoder_input_channels=64)
    if size != "full":
        config = replace(config, dit=replace(config.dit, io_channels=64))
    vae = OfficialVAE(AutoencoderOobleck(**vae_kwargs)).to(device, dtype)
    return config, model, vae


def batch_for(config: DiffV2MConfig, device) -> dict:
    T, c = config.conditioning.max_seconds, config.conditioning
    return {"clip": torch.randn(1, T, c.semantic_dim, device=device), "color": torch.rand(1, T, c.color_dim, device=device),
            "scene_cut": torch.zeros(1, T, device=device), "pseudo_beat": torch.rand(1, T, device=device),
            "mask": torch.ones(1, T, dtype=torch.bool, device=device), "seconds_start": torch.zeros(1, device=device),
            "seconds_total": torch.full((1,), float(T), device=device)}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    seconds = config.sample_size / config.sample_rate
    n_params = sum(p.numel() for p in model.parameters())
    size = f"{n_params / 1e9:.2f} B" if n_params > 1e8 else f"{n_params / 1e6:.1f} M"
    with torch.inference_mode():
        ctx, g = model.contexts(model.conditioner(batch_for(config, device)))
        denoise = lambda x, t: model(x, t, ctx, g, 3.0)  # noqa: E731
        noise = torch.randn(1, config.dit.io_channels, config.latent_length, device=device, dtype=dtype)
        denoise(noise, torch.full((1,), 0.5, device=device))  # warm-up
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(3):
            denoise(noise, torch.full((1,), 0.5, device=device))
        sync(device)
        step = (time.perf_counter() - t0) / 3
        timings = {}
        for name, fn, steps in (("ddim", v_ddim, args.ddim_steps), ("dpm", dpm_solver, args.dpm_steps)):
            if args.size == "full" and device.type == "cpu":
                timings[name] = step * steps  # estimated: a full-size run on CPU takes hours
                continue
            t0 = time.perf_counter()
            latents = fn(denoise, noise, steps)
            vae.decode(latents)
            sync(device)
            timings[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        vae.decode(noise)
        sync(device)
        decode = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{name}; {args.size} Diff-V2M ({size} parameters), {str(dtype)[6:]}; one {seconds:.1f} s window, "
          f"CFG 3")
    print(f"  one DiT step (batch of 2 with CFG): {1000 * step:.1f} ms; VAE decode: {1000 * decode:.0f} ms")
    for key, steps in (("ddim", args.ddim_steps), ("dpm", args.dpm_steps)):
        est = " (estimated from the step time)" if args.size == "full" and device.type == "cpu" else ""
        print(f"  {key:4s} {steps:3d} steps + decode: {timings[key]:7.2f} s -> {seconds / timings[key]:6.1f}x real time{est}")
    print(f"  DPM-Solver++ is {timings['ddim'] / timings['dpm']:.1f}x faster than the official DDIM")
    if peak is not None:
        print(f"  peak GPU memory {peak:.1f} GiB")


if __name__ == "__main__":
    main()
