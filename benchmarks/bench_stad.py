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


def build_stad(size: str, device, max_seconds: int | None = None) -> tuple[StadConfig, Stad]:
    """The model at ``size`` ("small": musicgen-small's LM, "tiny": the tests' config), random
    weights, built on ``device``; ``max_seconds``: a shorter clip than the published 35 s."""
    clip = {} if max_seconds is None else {"max_seconds": max_seconds}
    config = StadConfig(video=VideoConfig(**clip)) if size == "small" else StadConfig(
        video=VideoConfig(width=32, layers=2, heads=2, **clip),
        lm=LMConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64))
    with torch.device(device):
        model = Stad(config).to(device)
    return config, model


def stad_batch(config: StadConfig, device, batch_size: int = 1, training: bool = False) -> dict:
    """Random object streams for ``batch_size`` clips of ``max_seconds``; ``training``: with the
    targets (curves, EnCodec codes and masks) that the loss reads."""
    B, T, v = batch_size, config.video.max_seconds, config.video
    S, N = v.max_shots, v.n_objects
    batch = {"semantic": torch.randn(B, S, N, v.semantic_dim), "hist": torch.rand(B, S, N, 3, 256),
             "area": torch.rand(B, S, N, 1), "start": torch.rand(B, S, N, 2) * 2 - 1, "move": torch.randn(B, T, S, N, 2),
             "time_mask": torch.ones(B, T, dtype=torch.bool)}
    if training:
        frames = config.lm.frame_rate * T
        batch.update(mask=torch.ones(B, T, dtype=torch.bool), pitch=torch.randn(B, T, 1025), chroma=torch.randn(B, T, 12),
                     loudness=torch.randn(B, T), spectral_centroid=torch.randn(B, T),
                     codes=torch.randint(0, config.lm.card, (B, config.lm.num_codebooks, frames)),
                     codes_mask=torch.ones(B, frames, dtype=torch.bool))
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_generate(config: StadConfig, model: Stad, seconds: float, device, cfg_scale: float = 3.0) -> dict:
    """Generate ``seconds`` of tokens for one clip with guidance and the KV cache (top-k 250):
    wall time, decoding steps/s, tokens/s, real-time factor and peak GPU memory."""
    model.eval()
    frames = int(seconds * config.lm.frame_rate)
    with torch.inference_mode():
        cond, mask, _ = model.conditions_for(stad_batch(config, device))
        model.generate(cond, mask, 10, cfg_scale=cfg_scale)  # warm-up
        _sync(device)
        if torch.device(device).type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model.generate(cond, mask, frames, cfg_scale=cfg_scale,
                       generator=torch.Generator(device=device).manual_seed(0))
        _sync(device)
        wall = time.perf_counter() - t0
    steps = frames + config.lm.num_codebooks - 1
    return {"audio_seconds": seconds, "cfg_scale": cfg_scale, "wall_s": wall, "steps_per_s": steps / wall,
            "tokens_per_s": config.lm.num_codebooks * frames / wall, "rtf": seconds / wall,
            "lm_parameters_m": sum(p.numel() for p in model.lm.parameters()) / 1e6,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else None}


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
    torch.manual_seed(0)
    config, model = build_stad(args.size, device)
    r = time_generate(config, model, args.seconds, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{name}; {args.size} LM ({r['lm_parameters_m']:.1f} M parameters), CFG 3, KV cache: {args.seconds} s of "
          f"tokens in {r['wall_s']:.2f} s")
    print(f"  {r['steps_per_s']:.1f} decoding steps/s ({r['tokens_per_s']:.0f} tokens/s) -> {r['rtf']:.2f}x real time")
    if r["peak_gib"] is not None:
        print(f"  peak GPU memory {r['peak_gib']:.1f} GiB")


def sam_model(kind: str):
    """SAM from config, random weights: "vit-b" / "vit-h" (the published sizes) or "tiny" (64 px)."""
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamPromptEncoderConfig, SamVisionConfig

    if kind == "vit-b":
        return SamModel(SamConfig())
    if kind == "vit-h":
        return SamModel(SamConfig(vision_config=SamVisionConfig(hidden_size=1280, num_hidden_layers=32,
                                                                num_attention_heads=16,
                                                                global_attn_indexes=[7, 15, 23, 31]).to_dict()))
    vision = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=8,
                             output_channels=32, mlp_dim=64, global_attn_indexes=[1], window_size=4, num_pos_feats=16)
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                   iou_head_hidden_dim=32)
    return SamModel(SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                              mask_decoder_config=decoder.to_dict()))


def clip_model(kind: str):
    """A CLIP vision tower from config, random weights: "b32", "l14-336" (the published sizes) or "tiny"."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    geometry = {"b32": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=32, projection_dim=512),
                "l14-336": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                                image_size=336, patch_size=14, projection_dim=768),
                "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=16, projection_dim=24)}[kind]
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**geometry))


def time_clip(embedder, device: str, seconds: int = 30, size=(640, 360)) -> dict:
    """CLIP throughput: embed one frame per second of a ``seconds`` clip of ``size`` frames (the
    analysis' rate), after a warm-up batch. Seconds of compute per second of video, frames/s."""
    import numpy as np

    frames = list(np.random.default_rng(0).integers(0, 256, (seconds, size[1], size[0], 3), dtype=np.uint8))
    embedder(frames[:2])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    out = embedder(frames)
    _sync(device)
    wall = time.perf_counter() - t0
    return {"video_seconds": seconds, "frames": len(frames), "frame": f"{size[0]}x{size[1]}", "dim": int(out.shape[1]),
            "wall_s": wall, "s_per_video_second": wall / seconds, "frames_per_s": len(frames) / wall}


def decomposers(sam: str, clip: str, device: str):
    """``(segmenter, embedder)`` for :func:`time_decompose`: SAM ``sam`` with its mask filters
    opened (random masks pass, so every object is tracked and embedded: the work of a real clip)
    and CLIP ``clip``."""
    from v2m.analysis.objects import MaskSettings, SamSegmenter
    from v2m.analysis.semantic import ClipEmbedder

    grid = dict(points_per_side=4, points_per_batch=8) if sam == "tiny" else {}
    segmenter = SamSegmenter(f"random-{sam}", device=device, model=sam_model(sam),
                             settings=MaskSettings(pred_iou_thresh=-1e9, stability_score_thresh=0.0, **grid))
    return segmenter, ClipEmbedder(f"random-{clip}", device=device, model=clip_model(clip))


def time_decompose(segmenter, embedder, device: str, seconds: float = 30.0, size=(640, 360), fps: int = 25,
                   shot_seconds: float = 6.0) -> dict:
    """The object decomposition of a synthetic clip of ``seconds`` (a cut every ``shot_seconds``):
    automatic masks on each shot's first frame, 1 Hz tracking and the objects' CLIP embeddings.
    Wall time, real-time factor, objects and peak GPU memory (after a one-second warm-up)."""
    import tempfile

    import numpy as np

    from v2m.analysis.objects import decompose
    from synthetic import write_video

    cuts = [float(c) for c in np.arange(shot_seconds, seconds - 1e-6, shot_seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(f"{tmp}/clip.mp4", duration=seconds, fps=fps, size=size, cut_times=cuts).path
        shots = np.array([[a, b] for a, b in zip([0.0, *cuts], [*cuts, seconds])])
        decompose(video, shots[:1], 1.0, segmenter=segmenter, embedder=embedder)  # warm-up
        _sync(device)
        if torch.device(device).type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = decompose(video, shots, seconds, segmenter=segmenter, embedder=embedder)
        _sync(device)
        wall = time.perf_counter() - t0
    return {"video_seconds": seconds, "frame": f"{size[0]}x{size[1]}", "shots": len(result),
            "objects": sum(int((s.area[:, 0] > 0).sum()) for s in result),
            "tracked_seconds": float(sum(s.seconds for s in result)), "wall_s": wall, "rtf": seconds / wall,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else None}


def bench_decompose(device: str) -> None:
    device = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    torch.manual_seed(0)
    sam, clip = decomposers("vit-b", "l14-336", device)
    r = time_decompose(sam, clip, device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{name}; SAM ViT-B + CLIP ViT-L/14-336: 30 s clip, {r['shots']} shots, {r['objects']} objects, "
          f"{r['tracked_seconds']:g} tracked seconds in {r['wall_s']:.1f} s ({r['rtf']:.2f}x real time)")
    if r["peak_gib"] is not None:
        print(f"  peak GPU memory {r['peak_gib']:.1f} GiB")


if __name__ == "__main__":
    main()
