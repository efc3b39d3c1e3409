"""ImageBind (IB score): the Kaldi filterbank, the clip sampling, the official parameter names, loading
from a file or folder, and embeddings of a real (synthetic) video with a tiny model built from config."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from v2m.errors import WeightsUnavailable
from v2m.evaluate.imagebind import (
    AUDIO_MEAN,
    AUDIO_STD,
    ImageBindConfig,
    ImageBindEmbedder,
    ImageBindModel,
    _read_frames,
    audio_views,
    clip_frame_indices,
    clip_starts,
    ib_scores,
    kaldi_fbank,
    video_views,
)
from synthetic import write_video

SR = 16000
TINY = ImageBindConfig(vision_width=32, vision_depth=1, vision_heads=2, audio_width=32, audio_depth=2, audio_heads=2,
                       out_dim=16, image_size=28)


def _tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * SR)) + _tone(330, seconds, 0.3)).astype(np.float32)


# --- the Kaldi filterbank ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [400, 559, 560, 16000, 32077])
def test_fbank_frames_fit_entirely(n):
    bank = kaldi_fbank(_noise(n / SR)[:n])
    assert bank.shape == (1 + (n - 400) // 160, 128)
    assert bank.dtype == torch.float32


def test_fbank_under_one_frame_is_empty():
    assert kaldi_fbank(np.zeros(399, np.float32)).shape == (0, 128)


def _mel_centres(bins: int = 128, low: float = 20.0, high: float = SR / 2) -> np.ndarray:
    mel = 1127.0 * np.log1p(np.array([low, high]) / 700.0)
    edges = np.linspace(mel[0], mel[1], bins + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)


@pytest.mark.parametrize("freq", [150.0, 437.0, 1000.0, 3000.0, 7500.0])
def test_fbank_sine_peaks_in_nearest_band(freq):
    bank = kaldi_fbank(_tone(freq)).mean(0).numpy()
    assert int(np.argmax(bank)) == int(np.argmin(np.abs(_mel_centres() - freq)))


def test_fbank_log_floor_on_silence():
    bank = kaldi_fbank(np.zeros(SR, np.float32))
    assert torch.allclose(bank, torch.full_like(bank, float(np.log(np.finfo(np.float32).eps))))


def test_fbank_removes_each_frames_dc_offset():
    x = _noise(1.0)
    assert torch.allclose(kaldi_fbank(x + 0.5), kaldi_fbank(x), atol=2e-3)
    assert not torch.allclose(kaldi_fbank(x * 2.0), kaldi_fbank(x), atol=0.5)  # the level does count


def test_fbank_reads_the_first_channel():
    x, y = _noise(0.5, seed=1), _noise(0.5, seed=2)
    assert torch.equal(kaldi_fbank(np.stack([x, y])), kaldi_fbank(x))


def test_fbank_matches_a_float64_reference():
    """Frame by frame, written independently with numpy: DC removal, pre-emphasis 0.97, symmetric
    Hann window, 512-point power spectrum, HTK-mel triangles from 20 Hz to Nyquist, natural log
    floored at float32's epsilon."""
    x = _noise(0.3, seed=3).astype(np.float64)

    def mel(f):
        return 1127.0 * np.log1p(f / 700.0)

    edges = np.linspace(mel(20.0), mel(SR / 2), 130)
    fft_mel = mel(np.arange(257) * SR / 512)
    weights = np.maximum(0, np.minimum((fft_mel - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                                       (edges[2:, None] - fft_mel) / (edges[2:, None] - edges[1:-1, None])))
    weights[:, 256] = 0.0
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)
    ours = kaldi_fbank(x.astype(np.float32)).numpy()
    for j in (0, 7, len(ours) - 1):
        seg = x[160 * j : 160 * j + 400] - x[160 * j : 160 * j + 400].mean()
        seg = seg - 0.97 * np.concatenate([seg[:1], seg[:-1]])
        power = np.abs(np.fft.rfft(seg * window, 512)) ** 2
        floored = np.maximum(weights @ power, np.finfo(np.float32).eps)  # the lowest bands can hold no FFT bin
        np.testing.assert_allclose(ours[j], np.log(floored), rtol=1e-4, atol=1e-4)


# --- clips and views ------------------------------------------------------------------------------


def test_clip_starts_follow_the_pinned_sampler():
    assert clip_starts(10.0, 3) == [0, 4, 8]
    assert clip_starts(5.0, 3) == [0, Fraction(3, 2), 3]
    assert clip_starts(7.0, 5) == [0, Fraction(5, 4), Fraction(5, 2), Fraction(15, 4), 5]
    assert clip_starts(1.0, 3) == [0, 0, 0]  # shorter than a clip: every clip starts at 0
    assert clip_starts(3.0, 1) == [0]
    assert all(isinstance(s, Fraction) for s in clip_starts(4.3, 3))


def test_audio_views_shape_and_normalisation():
    views = audio_views(_noise(5.0))
    assert views.shape == (3, 1, 128, 204)
    assert views.dtype == torch.float32
    assert -3.0 < float(views.mean()) < 3.0


def test_audio_views_cut_the_sampled_clips():
    x = np.concatenate([_noise(4.0, seed=s) for s in range(3)])[: 10 * SR]  # 10 s: clips at 0, 4 and 8 s
    views = audio_views(x)
    for i, start in enumerate((0, 4, 8)):
        alone = audio_views(x[start * SR : (start + 2) * SR], clips=1)[0]
        assert torch.equal(views[i], alone)
    assert not torch.allclose(views[0], views[1])


def test_short_audio_is_zero_padded_to_204_frames():
    views = audio_views(_noise(1.2))  # 19200 samples: 118 frames
    assert views.shape == (3, 1, 128, 204)
    pad = (0.0 - AUDIO_MEAN) / AUDIO_STD
    assert torch.allclose(views[:, :, :, 118:], torch.full_like(views[:, :, :, 118:], pad))
    assert not torch.allclose(views[:, :, :, :118], torch.full_like(views[:, :, :, :118], pad))
    assert torch.allclose(views[0], views[2], atol=1e-4)  # all three clips are the whole audio


def test_clip_frame_indices_follow_decord():
    # 30 frames at 10 fps: 3 s; clips start at 0, 0.25, 0.5, 0.75, 1 s; first and last frame of each
    assert clip_frame_indices(30, 10.0) == [[0, 19], [3, 22], [5, 24], [8, 27], [10, 29]]
    assert clip_frame_indices(12, 10.0) == [[0, 11]] * 5  # shorter than a clip


@pytest.fixture(scope="module")
def clip_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ib-videos")
    a = write_video(folder / "a.mp4", duration=3.0, fps=10, size=(64, 48), cut_times=[1.5], pulse_times=[], audio=False)
    b = write_video(folder / "b.mp4", duration=2.4, fps=10, size=(48, 64), cut_times=[], pulse_times=[], audio=False,
                    shot_colors=[(30, 200, 90)])
    return a.path, b.path


def test_video_views_shape_and_content(clip_videos):
    views = video_views(clip_videos[0], size=28)
    assert views.shape == (15, 3, 2, 28, 28)
    # clip 0 holds frames 0 and 19: both sides of the cut at 1.5 s
    assert not torch.allclose(views[1, :, 0], views[1, :, 1], atol=0.1)
    # left / centre / right crops of a 37 x 28 frame differ
    assert not torch.allclose(views[0], views[2])


def test_frames_come_in_display_orientation(tmp_path):
    v = write_video(tmp_path / "rot.mp4", duration=1.0, fps=10, size=(64, 48), rotation=90)
    frames = _read_frames(v.path, {0, 5, 99})
    assert {i: f.shape for i, f in frames.items()} == {0: (64, 48, 3), 5: (64, 48, 3), 99: (64, 48, 3)}


# --- the model: official names, loading, embeddings -------------------------------------------------


OFFICIAL_NAMES = [
    "modality_preprocessors.vision.cls_token",
    "modality_preprocessors.vision.rgbt_stem.proj.1.weight",
    "modality_preprocessors.vision.pos_embedding_helper.pos_embed",
    "modality_trunks.vision.pre_transformer_layer.0.weight",
    "modality_trunks.vision.blocks.0.attn.in_proj_weight",
    "modality_trunks.vision.blocks.0.attn.out_proj.bias",
    "modality_trunks.vision.blocks.0.norm_1.weight",
    "modality_trunks.vision.blocks.0.mlp.fc1.weight",
    "modality_heads.vision.0.weight",
    "modality_heads.vision.2.weight",
    "modality_preprocessors.audio.rgbt_stem.proj.weight",
    "modality_preprocessors.audio.rgbt_stem.norm_layer.bias",
    "modality_preprocessors.audio.pos_embedding_helper.pos_embed",
    "modality_trunks.audio.blocks.1.attn.bias_k",
    "modality_trunks.audio.blocks.1.attn.bias_v",
    "modality_trunks.audio.blocks.1.mlp.fc2.bias",
    "modality_heads.audio.2.weight",
    "modality_postprocessors.audio.1.log_logit_scale",
]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return ImageBindModel(TINY).eval()


def test_state_dict_uses_the_official_names(tiny_model):
    keys = set(tiny_model.state_dict())
    assert set(OFFICIAL_NAMES) <= keys
    assert not any(".pre_transformer_layer." in k for k in keys if k.startswith("modality_trunks.audio"))
    assert not any(k.startswith("modality_trunks.vision.") and "bias_k" in k for k in keys)


def test_huge_geometry_matches_the_published_checkpoint():
    with torch.device("meta"):
        state = ImageBindModel().state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert len(shapes) == 569  # the vision + audio entries of the official imagebind_huge() state dict
    assert shapes["modality_preprocessors.vision.rgbt_stem.proj.1.weight"] == (1280, 3, 2, 14, 14)
    assert shapes["modality_preprocessors.vision.pos_embedding_helper.pos_embed"] == (1, 257, 1280)
    assert shapes["modality_preprocessors.audio.rgbt_stem.proj.weight"] == (768, 1, 16, 16)
    assert shapes["modality_preprocessors.audio.pos_embedding_helper.pos_embed"] == (1, 229, 768)
    assert shapes["modality_trunks.vision.blocks.31.mlp.fc1.weight"] == (5120, 1280)
    assert shapes["modality_trunks.audio.blocks.11.attn.bias_k"] == (1, 1, 768)
    assert shapes["modality_heads.vision.2.weight"] == (1024, 1280)
    assert shapes["modality_heads.audio.2.weight"] == (1024, 768)


def test_model_outputs_are_means_of_normalised_views(tiny_model):
    torch.manual_seed(1)
    mels = torch.randn(2, 3, 1, 128, 204)
    with torch.inference_mode():
        both = tiny_model.embed_audio(mels)
        each = torch.stack([tiny_model.embed_audio(mels[:, s : s + 1]) for s in range(3)], 1)
    assert torch.allclose(each.norm(dim=-1), torch.full((2, 3), 20.0), atol=1e-4)  # unit vectors x logit scale
    assert torch.allclose(both, each.mean(1), atol=1e-6)


def _saved(model: ImageBindModel) -> dict:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # the published file holds the other modalities too: they must be skipped
    state["modality_trunks.text.blocks.0.attn.in_proj_weight"] = torch.zeros(6, 2)
    state["modality_preprocessors.imu.pos_embed"] = torch.zeros(1, 3, 2)
    return state


def test_loading_from_a_file_or_folder_gives_the_same_embeddings(tiny_model, tmp_path, clip_videos):
    from safetensors.torch import save_file

    file = tmp_path / "st" / "imagebind_huge.safetensors"
    file.parent.mkdir()
    save_file(_saved(tiny_model), str(file))
    folder = tmp_path / "pth"
    folder.mkdir()
    torch.save(_saved(tiny_model), folder / "imagebind_huge.pth")
    audio = [_noise(3.0, seed=4)]
    reference = ImageBindEmbedder(model=tiny_model)
    want_a, want_v = reference.embed_audio(audio), reference.embed_video([clip_videos[0]])
    for source in (str(file), str(file.parent), str(folder)):
        embedder = ImageBindEmbedder(source=source, config=TINY)
        assert embedder.source == source
        np.testing.assert_allclose(embedder.embed_audio(audio), want_a, atol=1e-6)
        np.testing.assert_allclose(embedder.embed_video([clip_videos[0]]), want_v, atol=1e-6)


def test_a_checkpoint_missing_a_tensor_is_refused(tiny_model, tmp_path):
    state = _saved(tiny_model)
    del state["modality_trunks.audio.blocks.0.attn.bias_k"]
    torch.save(state, tmp_path / "imagebind_huge.pth")
    embedder = ImageBindEmbedder(source=str(tmp_path), config=TINY)
    with pytest.raises(WeightsUnavailable, match=r"missing.*modality_trunks\.audio\.blocks\.0\.attn\.bias_k"):
        embedder.embed_audio([_noise(1.0)])


def test_a_checkpoint_of_another_size_is_refused(tiny_model, tmp_path):
    torch.save(_saved(tiny_model), tmp_path / "imagebind_huge.pth")
    other = ImageBindConfig(**{**TINY.__dict__, "out_dim": 8})
    with pytest.raises(WeightsUnavailable, match="misshapen"):
        ImageBindEmbedder(source=str(tmp_path), config=other).embed_audio([_noise(1.0)])


def test_a_missing_folder_is_reported_on_first_use(tmp_path):
    embedder = ImageBindEmbedder(source=str(tmp_path / "nowhere" / "imagebind"), config=TINY)  # lazy: no error yet
    with pytest.raises(WeightsUnavailable, match="no such file or directory"):
        embedder.embed_audio([_noise(1.0)])
    with pytest.raises(WeightsUnavailable, match="no imagebind_huge.pth in this directory"):
        ImageBindEmbedder(source=str(tmp_path), config=TINY).embed_audio([_noise(1.0)])


def test_video_and_audio_embeddings(tiny_model, clip_videos):
    embedder = ImageBindEmbedder(model=tiny_model)
    video = embedder.embed_video(list(clip_videos))
    assert video.shape == (2, 16) and video.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(video, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(video[0], video[1], atol=1e-3)
    np.testing.assert_allclose(embedder.embed_video([clip_videos[0]])[0], video[0], atol=1e-6)

    audio = embedder.embed_audio([_noise(3.0, seed=5), _tone(880, 2.5)])
    assert audio.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_audio([_tone(880, 2.5)])[0], audio[1], atol=1e-5)
    assert embedder.embed_audio([]).shape == (0, 16)


def test_ib_scores():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((4, 16))
    np.testing.assert_allclose(ib_scores(v, v), 1.0)
    np.testing.assert_allclose(ib_scores(v, -3.0 * v), -1.0)
    a = rng.standard_normal((4, 16))
    want = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(v, a)]
    np.testing.assert_allclose(ib_scores(v, a), want)
    with pytest.raises(ValueError):
        ib_scores(v, a[:3])
