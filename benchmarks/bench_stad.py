"""Benchmark ControllableV2M: generation (tokens per second and real-time factor with the KV cache)
and the object decomposition (seconds per 30 s clip).

    python benchmarks/bench_stad.py                 # musicgen-small-size LM (1024 x 24 x 16) on the GPU
    python benchmarks/bench_stad.py --size tiny     # the tests' tiny config (CPU)
    python benchmarks/bench_stad.py --decompose     # SAM ViT-B + CLIP ViT-L/14-336 on a 30 s 640x360 clip

The decomposition uses full-size SAM ViT-B and CLIP ViT-L/14-336 built from their configs with
random weights; SAM's mask filters are opened so that random masks pass and every object is
tracked and embedded (the work of a real clip; the 32 x 32 point grid is decoded either way).

Random weights (speed does not depend on them). One clip of ``--seconds`` (10) with classifier-free
guidance (the LM runs on a batch of 2), top-k 250. A token frame is 4 codebook tokens = 1/50 s
of audio; real time = seconds of audio per second of compute (target: >= 4x on a GPU).
"""

from __future__ import annotations

import argparse
import time

import torch

from v2m.models.stad import LMConfig, Stad, StadConfig, VideoConfig
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["small", "tiny"], default="small")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--decompose", action="store_true", help="time the object decomposition instead")
    args = ap.parse_args()
    if args.decompose:
        return bench_decompose(args.device)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    config = StadConfig() if args.size == "small" else StadConfig(
        video=VideoConfig(width=32, layers=2, heads=2), lm=LMConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64))
    torch.manual_seed(0)
    model = Stad(config).to(device).eval()
    T = config.video.max_seconds
    batch = {"semantic": torch.randn(1, 10, 5, 768), "hist": torch.rand(1, 10, 5, 3, 256), "area": torch.rand(1, 10, 5, 1),
             "start": torch.rand(1, 10, 5, 2) * 2 - 1, "move": torch.randn(1, T, 10, 5, 2),
             "time_mask": torch.ones(1, T, dtype=torch.bool)}
    batch = {k: v.to(device) for k, v in batch.items()}
    frames = args.seconds * config.lm.frame_rate
    with torch.inference_mode():
        cond, mask, _ = model.conditions_for(batch)
        model.generate(cond, mask, 10)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model.generate(cond, mask, frames, generator=torch.Generator(device=device).manual_seed(0))
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    steps = frames + config.lm.num_codebooks - 1
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    n = sum(p.numel() for p in model.lm.parameters()) / 1e6
    print(f"{name}; {args.size} LM ({n:.1f} M parameters), CFG 3, KV cache: {args.seconds} s of tokens in {wall:.2f} s")
    print(f"  {steps / wall:.1f} decoding steps/s ({4 * frames / wall:.0f} tokens/s) -> {args.seconds / wall:.2f}x real time")
    if device.type == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def bench_decompose(device: str) -> None:
    import tempfile

    import numpy as np
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, SamConfig, SamModel

    from v2m.analysis.objects import MaskSettings, SamSegmenter, decompose
    from v2m.analysis.semantic import ClipEmbedder
    from synthetic import write_video

    device = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    torch.manual_seed(0)
    sam = SamSegmenter("random-vit-b", device=device, model=SamModel(SamConfig()),
                       settings=MaskSettings(pred_iou_thresh=-1e9, stability_score_thresh=0.0))
    clip = ClipEmbedder("random-vit-l-336", device=device, model=CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=336,
        patch_size=14, projection_dim=768)))
    cuts = [6.0, 12.0, 18.0, 24.0]
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(f"{tmp}/clip.mp4", duration=30.0, fps=25, size=(640, 360), cut_times=cuts).path
        shots = np.array([[a, b] for a, b in zip([0.0, *cuts], [*cuts, 30.0])])
        decompose(video, shots[:1], 1.0, segmenter=sam, embedder=clip)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = decompose(video, shots, 30.0, segmenter=sam, embedder=clip)
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    objects = sum(int((s.area[:, 0] > 0).sum()) for s in result)
    print(f"{name}; SAM ViT-B + CLIP ViT-L/14-336: 30 s clip, {len(result)} shots, {objects} objects, "
          f"{sum(s.seconds for s in result)} tracked seconds in {wall:.1f} s ({30 / wall:.2f}x real time)")
    if device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
