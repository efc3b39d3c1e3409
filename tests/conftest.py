"""Shared fixtures: videos with known events, written by PyAV in a session temp folder."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

# Tests never touch a model hub: an empty cache and offline mode make any attempt fail at once.
os.environ["HF_HUB_OFFLINE"] = "1"
_HF_HOME = tempfile.mkdtemp(prefix="v2m-test-hf-")
os.environ["HF_HOME"] = _HF_HOME
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["TORCH_HOME"] = os.path.join(_HF_HOME, "torch")  # no cached single-file checkpoints either
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from synthetic import write_video  # noqa: E402

FPS = 25.0
CUTS = [2.0, 4.2]
PULSES = [1.0, 3.0, 5.4]


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return folder


@pytest.fixture(scope="session")
def events_video(videos):
    """6 s, 25 fps, 160x96: hard cuts at 2.0 and 4.2 s, motion pulses at 1.0, 3.0, 5.4 s, audio."""
    return write_video(videos / "events.mp4", duration=6.0, fps=FPS, size=(160, 96),
                       cut_times=CUTS, pulse_times=PULSES, audio=True)


@pytest.fixture(scope="session")
def vfr_video(videos):
    """Variable frame rate: 40 ms frames, then 20 ms frames, then 66 ms frames; a cut at 2.5 s."""
    import numpy as np

    times = np.concatenate([np.arange(0, 1.0, 0.04), np.arange(1.0, 2.0, 0.02), np.arange(2.0, 4.0, 0.066)])
    cut = float(times[np.searchsorted(times, 2.5)])
    v = write_video(videos / "vfr.mp4", frame_times=times, size=(128, 96), cut_times=[cut], pulse_times=[])
    return v


# --- tiny models built from config and saved to a folder: the real loading code, no download ---


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=64, patch_size=16, projection_dim=24)
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encodec(tmp_path_factory):
    """EnCodec with MusicGen's 32 kHz geometry (hop 640 = 50 frames/s, 4 codebooks of 2048 at 2.2
    kbps) but a few channels."""
    import torch
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-encodec")
    config = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=8,
                           upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, codebook_dim=8,
                           target_bandwidths=[2.2], num_lstm_layers=1, use_causal_conv=False,
                           use_conv_shortcut=False, normalize=False)
    model = EncodecModel(config)
    for layer in model.quantizer.layers:  # from config the codebooks are all zeros: every token would be 0
        layer.codebook.embed.normal_(0, 0.05)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_oobleck_repo(tmp_path_factory):
    """A Stable-Audio-Open-like folder whose vae/ holds an Oobleck VAE with the real geometry
    (44.1 kHz stereo, hop 2048) but 8 latent channels."""
    import torch
    from diffusers import AutoencoderOobleck

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-sao")
    AutoencoderOobleck(encoder_hidden_size=16, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
                       decoder_channels=4, decoder_input_channels=8).save_pretrained(folder / "vae")
    return folder


@pytest.fixture(scope="session")
def tiny_sam(tmp_path_factory):
    """SAM with the real structure (ViT encoder, prompt encoder, mask decoder) at 64 px."""
    import torch
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamPromptEncoderConfig, SamVisionConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-sam")
    vision = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=8,
                             output_channels=32, mlp_dim=64, global_attn_indexes=[1], window_size=4, num_pos_feats=16)
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                   iou_head_hidden_dim=32)
    SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vggish(tmp_path_factory):
    """A VGGish with tiny layers, saved under the published file name as a plain torch state dict."""
    import torch

    from v2m.evaluate.vggish import VGGish

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-vggish")
    model = VGGish(widths=(4, 4, 8, 8), hidden=16).eval()
    with torch.no_grad():  # larger weights keep activations from fading through the eleven layers
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(2.5)
    torch.save(model.state_dict(), folder / "vggish-10086976.pth")
    return folder, model


@pytest.fixture(scope="session")
def tiny_panns(tmp_path_factory):
    """A CNN14 with tiny layers and 5 classes, saved like the authors' file: {"model": ..., "iteration": ...},
    with the STFT / mel tensors v2m rebuilds instead of loading."""
    import torch

    from v2m.evaluate.panns import Cnn14, Cnn14Config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-panns")
    model = Cnn14(Cnn14Config(widths=(4, 4, 8, 8, 8, 8), classes=5)).eval()
    with torch.no_grad():  # batch-norm statistics of real activations, as a trained model has them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # a plain average over the calibration batches
        model.train()
        t = torch.arange(32000) / 16000
        for hz in (110.0, 440.0, 1760.0, 5000.0):
            model(torch.sin(2 * torch.pi * hz * t)[None] * torch.rand(1) + 0.1 * torch.randn(1, 32000))
        model.eval()
    state = dict(model.state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(257, 1, 512)
    state["logmel_extractor.melW"] = torch.zeros(257, 64)
    torch.save({"model": state, "iteration": 10}, folder / "Cnn14_16k_mAP=0.438.pth")
    return folder, model



# --- speech, spoken by Debian's espeak-ng (./setup.sh installs it) ---

SPEECH_RATE = 44100
SENTENCE = "Good morning. Today we walk along the river to the old mill."
SHORT = "We stopped here for lunch."


def _espeak(tmp_path_factory, text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng, mono float32 at :data:`SPEECH_RATE`, trimmed to the voice."""
    problem = None if shutil.which("espeak-ng") else "espeak-ng is not installed (./setup.sh installs it)"
    if problem:
        if os.environ.get("V2M_REQUIRE_SPEECH"):
            pytest.fail(f"V2M_REQUIRE_SPEECH is set but {problem}")
        pytest.skip(problem)
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    from v2m.media import read_audio

    voice = read_audio(path, SPEECH_RATE, channels=1)[0]
    loud = np.flatnonzero(np.abs(voice) > 0.02 * np.abs(voice).max())
    return voice[loud[0]: loud[-1] + 1] / np.abs(voice).max() * 0.5


@pytest.fixture(scope="session")
def sentence(tmp_path_factory) -> np.ndarray:
    return _espeak(tmp_path_factory, SENTENCE)


@pytest.fixture(scope="session")
def short(tmp_path_factory) -> np.ndarray:
    return _espeak(tmp_path_factory, SHORT)
