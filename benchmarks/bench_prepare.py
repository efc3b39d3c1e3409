"""Benchmark `v2m prepare`: clips prepared per minute, without a codec and with the model's
full-size codec, and peak memory.

    python benchmarks/bench_prepare.py [--model diffv2m|stad] [--sources N] [--device cpu|cuda]

Prepares N (default 2) 2-minute 1280x720 30 fps music videos (synthetic picture, a Bach chorale
from the music21 corpus as soundtrack; 4 clips of 30 s each) twice in fresh processes: with
--no-codec, then with the model's codec at full size built from its published config with
random weights (EnCodec 32 kHz for stad, the Stable Audio Open Oobleck VAE for diffv2m; the
speed is that of the real weights) and saved to a temp folder. Prints clips per minute of wall
time for both, their ratio, and each run's peak memory. CLIP is off (bench_analyze.py has it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))  # synthetic.py

_CHILD = """
import sys
from v2m.cli import main
code = main(sys.argv[1:])
print("PEAK_KB", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")), file=sys.stderr)
sys.exit(code)
"""


def make_sources(folder: str, n: int = 4, seconds: float = 120.0) -> None:
    import numpy as np

    from v2m.media import write_wav
    from synthetic import corpus_music, write_video

    music = corpus_music("bach/bwv66.6", bpm=60, seconds=seconds)
    for i in range(n):
        cuts = [float(c) for c in np.arange(3.0 + i, seconds, 4.0)]
        write_video(os.path.join(folder, f"mv{i}.mp4"), duration=seconds, fps=30, size=(1280, 720),
                    cut_times=cuts, seed=i)
        write_wav(os.path.join(folder, f"mv{i}.wav"), music.audio, music.sample_rate)


def full_size_codec(model: str, folder: str, tiny: bool = False) -> str:
    """The model's codec at full size from its published config, random weights, saved to
    ``folder`` (``tiny``: the tests' few-channel codec with the same geometry)."""
    import torch

    torch.manual_seed(0)
    if model == "stad":  # facebook/encodec_32khz's config
        from transformers import EncodecConfig, EncodecModel

        size = dict(num_filters=4, hidden_size=8, codebook_dim=8, num_lstm_layers=1) if tiny else \
            dict(num_filters=64, hidden_size=128, codebook_dim=128, num_lstm_layers=2)
        config = EncodecConfig(sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4],
                               codebook_size=2048, target_bandwidths=[2.2], num_residual_layers=1,
                               use_causal_conv=False, use_conv_shortcut=False, normalize=False, **size)
        EncodecModel(config).save_pretrained(folder)
    else:  # stabilityai/stable-audio-open-1.0 vae/: diffusers' defaults are its config
        from diffusers import AutoencoderOobleck

        size = dict(encoder_hidden_size=16, channel_multiples=[1, 1, 1, 1, 1], decoder_channels=4,
                    decoder_input_channels=8) if tiny else {}
        AutoencoderOobleck(**size).save_pretrained(folder)
    return folder


def time_codec_encode(model: str, folder: str, device: str, seconds: float = 30.0) -> dict:
    """What ``v2m prepare`` costs per clip for the codec: load the codec saved in ``folder`` as
    prepare does and encode ``seconds`` of noise at its own rate and channels (after a 1 s
    warm-up). Wall time, real-time factor and peak GPU memory."""
    import numpy as np
    import torch

    from v2m.codecs import MODEL_CODEC, load_codec

    codec = load_codec(MODEL_CODEC[model], folder, device=device)
    rate, channels = codec.info.sample_rate, codec.info.channels
    audio = (0.1 * np.random.default_rng(0).standard_normal((channels, int(seconds * rate)))).astype(np.float32)
    cuda = str(codec.device).startswith("cuda")
    codec.encode(audio[:, :rate], rate)  # warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    arrays = codec.encode(audio, rate)  # returns numpy arrays: the work is done
    wall = time.perf_counter() - start
    return {"codec": codec.info.name, "audio_seconds": seconds, "sample_rate": rate, "channels": channels,
            "wall_s": wall, "rtf": seconds / wall, "output": {k: list(v.shape) for k, v in arrays.items()},
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def run(src: str, model: str, extra: list[str]) -> tuple[int, float, float]:
    out = tempfile.mkdtemp(prefix="v2m-ds-")
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, "prepare", src, "-o", out, "--model", model,
                          "--no-clip", "-q", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode:
        raise SystemExit(res.stderr)
    clips = json.load(open(os.path.join(out, "dataset.json")))["clips"]
    return clips, wall, float(re.search(r"PEAK_KB (\d+)", res.stderr).group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="diffv2m", choices=["diffv2m", "stad"])
    ap.add_argument("--sources", type=int, default=2, help="2-minute videos (4 clips each; 2)")
    ap.add_argument("--device", default="auto", help="torch device for the codec")
    ap.add_argument("--workdir", help="keep the sources here (default: a temp folder)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="v2m-bench-prep-")
    src = os.path.join(work, f"src{args.sources}")
    if not os.path.isdir(src):
        os.makedirs(src)
        print(f"writing {args.sources} 2-minute 720p music videos ...", file=sys.stderr)
        make_sources(src, n=args.sources)
    codec_dir = full_size_codec(args.model, tempfile.mkdtemp(prefix="v2m-codec-"))
    name = {"stad": "EnCodec 32 kHz", "diffv2m": "Oobleck VAE"}[args.model]
    plain = run(src, args.model, ["--no-codec"])
    coded = run(src, args.model, ["--codec", codec_dir, "--device", args.device])
    print(f"machine: {os.cpu_count()} cores; {args.model}, 30 s clips, no CLIP")
    for label, (clips, wall, peak) in (("no codec", plain), (f"full-size {name}", coded)):
        print(f"  {label:24s} {clips} clips in {wall:6.1f} s -> {60 * clips / wall:5.1f} clips/min; "
              f"peak memory {peak:.0f} MB")
    print(f"  with the codec, preparing takes {coded[1] / plain[1]:.1f}x as long")


if __name__ == "__main__":
    main()
