"""Benchmark and cross-check the evaluation embedders.

    python benchmarks/bench_evaluate.py                  # speed: seconds per 10 s clip, full-size models
    python benchmarks/bench_evaluate.py --crosscheck     # agreement with the reference packages

Speed: VGGish, PANNs CNN14 (16 kHz) and, with ``--imagebind``, ImageBind-huge (audio and 15 video
views) at their published sizes with random weights (speed does not depend on them); the figure
is the ratio of audio seconds to compute seconds, measured in this run.

Cross-check: v2m's VGGish and CNN14 against torchvggish and panns_inference (with torchlibrosa),
which must be installed for it (``pip install --no-deps torchvggish panns-inference torchlibrosa``;
not v2m dependencies). Both models get the same random weights; the script prints the largest
differences of the front ends (log-mel) and of the outputs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def embedder_jobs(device: str, seconds: float = 10.0, which=("vggish", "panns", "imagebind"),
                  tiny: bool = False) -> dict:
    """``{name: (label, job)}``: a call that embeds one clip of ``seconds`` with each model of
    ``which`` at its published size (``tiny``: a few channels, for a quick CPU run), random weights."""
    from v2m.evaluate.panns import Cnn14, Cnn14Config
    from v2m.evaluate.vggish import VGGish, log_mel_examples

    torch.manual_seed(0)
    wave = np.random.default_rng(0).normal(size=int(16000 * seconds)).astype(np.float32) * 0.1
    jobs = {}
    if "vggish" in which:
        vggish = (VGGish(widths=(4, 4, 8, 8), hidden=16) if tiny else VGGish()).to(device).eval()

        def run_vggish():
            with torch.inference_mode():
                vggish(torch.from_numpy(log_mel_examples(wave))[:, None].to(device))

        jobs["vggish"] = ("VGGish", run_vggish)
    if "panns" in which:
        cnn14 = Cnn14(Cnn14Config(widths=(4, 4, 8, 8, 8, 8), classes=5) if tiny else Cnn14Config()).to(device).eval()

        def run_cnn14():
            with torch.inference_mode():
                cnn14(torch.from_numpy(wave)[None].to(device))

        jobs["panns"] = ("PANNs CNN14 16 kHz", run_cnn14)
    if "imagebind" in which:
        from v2m.evaluate.imagebind import ImageBindConfig, ImageBindModel

        config = ImageBindConfig(vision_width=32, vision_depth=1, vision_heads=2, audio_width=32, audio_depth=2,
                                 audio_heads=2, out_dim=16, image_size=28) if tiny else ImageBindConfig()
        with torch.device(device):
            model = ImageBindModel(config).to(device).eval()
        mels = torch.randn(1, 3, 1, config.num_mel_bins, config.target_length, device=device)
        views = torch.randn(1, 15, 3, config.video_frames, config.image_size, config.image_size, device=device)

        def run_imagebind():
            with torch.inference_mode():
                model.embed_audio(mels)
                model.embed_vision(views)

        jobs["imagebind"] = ("ImageBind-huge (3 audio + 15 video views)", run_imagebind)
    return jobs


def time_job(job, device: str, repeats: int = 3) -> float:
    """Seconds per call of ``job`` (after a warm-up call), averaged over ``repeats``."""
    job()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        job()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def speed(device: str, seconds: float, imagebind: bool) -> None:
    which = ("vggish", "panns", "imagebind") if imagebind else ("vggish", "panns")
    for label, job in embedder_jobs(device, seconds, which).values():
        took = time_job(job, device)
        print(f"{label}: {took:.3f} s per {seconds:g} s clip = {seconds / took:.1f}x real time ({device})")


def crosscheck() -> None:
    from panns_inference.models import Cnn14 as TheirCnn14
    from torchvggish import torchvggish, vggish_input

    from v2m.evaluate.panns import Cnn14, Cnn14Config
    from v2m.evaluate.vggish import VGGish, log_mel_examples

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x16 = rng.normal(size=16000 * 4) * 0.1
    ours_mel = log_mel_examples(x16)
    print("VGGish log-mel, max |difference|:", np.abs(ours_mel - vggish_input.waveform_to_examples(x16, 16000, False)).max())
    ours, theirs = VGGish().eval(), torchvggish._vgg(False).eval()
    theirs.load_state_dict(ours.state_dict())
    theirs.embeddings = torch.nn.Sequential(*list(theirs.embeddings.children())[:-1])  # no final ReLU (no PCA)
    ex = torch.from_numpy(ours_mel)[:, None]
    with torch.no_grad():
        print("VGGish embedding, max |difference|:", (ours(ex) - theirs(ex)).abs().max().item())
    for rate, settings in ((16000, dict(window_size=512, hop_size=160, fmax=8000)),
                           (32000, dict(window_size=1024, hop_size=320, fmax=14000))):
        ours = Cnn14(Cnn14Config.for_rate(rate)).eval()
        theirs = TheirCnn14(sample_rate=rate, mel_bins=64, fmin=50, classes_num=527, **settings).eval()
        theirs.load_state_dict(ours.state_dict(), strict=False)  # their STFT / mel tensors stay theirs
        wave = torch.randn(1, rate * 3) * 0.1
        with torch.no_grad():
            mel = (ours.log_mel(wave) - theirs.logmel_extractor(theirs.spectrogram_extractor(wave))).abs().max()
            (e, logits), out = ours(wave), theirs(wave)
        print(f"CNN14 {rate} Hz: log-mel (dB) {mel.item():.2g}, embedding "
              f"{(e - out['embedding']).abs().max().item():.2g}, posteriors "
              f"{(torch.sigmoid(logits) - out['clipwise_output']).abs().max().item():.2g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--imagebind", action="store_true", help="also time ImageBind-huge (needs ~5 GB of memory)")
    ap.add_argument("--crosscheck", action="store_true", help="compare with torchvggish and panns_inference")
    args = ap.parse_args()
    if args.crosscheck:
        return crosscheck()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    speed(device, args.seconds, args.imagebind)


if __name__ == "__main__":
    main()
