"""The evaluation embedders' front ends, loading code and resampling, with tiny models built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from v2m.errors import WeightsUnavailable
from v2m.evaluate import readers
from v2m.evaluate.panns import Cnn14Config, PannsEmbedder, load_cnn14
from v2m.evaluate.vggish import VggishEmbedder, load_vggish, log_mel_examples, mel_matrix
from v2m.media import write_wav
from v2m.weights import checkpoint_file, read_state_dict


def tone(hz: float, seconds: float, sr: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _htk_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz) / 700.0)


# --- VGGish ---------------------------------------------------------------------------------------


def test_vggish_mel_matrix_and_examples():
    w = mel_matrix()
    assert w.shape == (257, 64) and not w[0].any() and w.max() <= 1.0 + 1e-12
    # a 1 kHz tone lands in the band whose HTK-mel centre is nearest 1 kHz
    centres = np.linspace(_htk_mel(125.0), _htk_mel(7500.0), 66)[1:-1]
    examples = log_mel_examples(tone(1000.0, 2.0, 16000))
    assert examples.shape == (2, 96, 64)  # 198 frames of 10 ms: two whole 0.96 s examples
    assert examples[0].mean(0).argmax() == np.abs(centres - _htk_mel(1000.0)).argmin()
    assert log_mel_examples(np.zeros(15000)).shape == (0, 96, 64)  # under 96 frames: no example
    assert np.allclose(log_mel_examples(np.zeros(16000)), np.log(0.01))  # silence sits at the log offset


def test_vggish_loads_published_layout_and_embeds(tiny_vggish):
    folder, model = tiny_vggish
    embedder = VggishEmbedder(str(folder))
    clips = [tone(440.0, 3.0, 16000), tone(880.0, 0.5, 16000)]
    frames = embedder.frames(clips)
    assert frames[0].shape == (3, 128) and frames[1].shape == (0, 128)  # too short for one example
    with torch.no_grad():
        expected = model(torch.from_numpy(log_mel_examples(clips[0]))[:, None]).numpy()
    np.testing.assert_allclose(frames[0], expected, atol=1e-6)
    # a state dict whose layers do not fit is one clear error, not a traceback
    state = torch.load(folder / "vggish-10086976.pth", weights_only=True)
    del state["embeddings.4.bias"]
    torch.save(state, folder.parent / "broken.pth")
    with pytest.raises(WeightsUnavailable, match="does not fit the model: missing"):
        load_vggish(str(folder.parent / "broken.pth"))


# --- PANNs CNN14 ---------------------------------------------------------------------------------


def test_cnn14_front_end_and_checkpoint(tiny_panns):
    folder, model = tiny_panns
    loaded = load_cnn14(str(folder), 16000)
    assert loaded.config.widths == (4, 4, 8, 8, 8, 8) and loaded.config.classes == 5
    wave = torch.from_numpy(tone(1000.0, 2.0, 16000))[None]
    with torch.no_grad():
        mel = loaded.log_mel(wave)
        (e1, l1), (e2, l2) = loaded(wave), model(wave)
    assert mel.shape == (1, 1, 201, 64)  # centred frames every 10 ms
    import librosa

    centres = librosa.mel_frequencies(66, fmin=50.0, fmax=8000.0)[1:-1]  # Slaney mel bands
    assert mel[0, 0, 100].argmax().item() == np.abs(centres - 1000.0).argmin()
    assert e1.shape == (1, 8) and l1.shape == (1, 5) and (e1 >= 0).all()  # relu(fc1)
    torch.testing.assert_close((e1, l1), (e2, l2))
    with pytest.raises(ValueError, match="16000 and 32000"):
        Cnn14Config.for_rate(22050)


def test_panns_embedder_runs_clips_of_any_length(tiny_panns):
    folder, _ = tiny_panns
    embedder = PannsEmbedder(str(folder), 16000)
    emb, logits = embedder.run([tone(300.0, 2.0, 16000), tone(300.0, 3.5, 16000), tone(2000.0, 2.0, 16000)])
    assert emb.shape == (3, 8) and logits.shape == (3, 5)
    assert not np.allclose(logits[0], logits[2])  # different sounds, different posteriors


# --- loading checkpoints -------------------------------------------------------------------------


def test_checkpoint_sources(tmp_path, monkeypatch):
    f = tmp_path / "w.pth"
    torch.save({"a": torch.ones(2)}, f)
    assert checkpoint_file(str(f), "x.pth", "M") == str(f)
    assert checkpoint_file(str(tmp_path), "w.pth", "M") == str(tmp_path / "w.pth")
    with pytest.raises(WeightsUnavailable, match="no x.pth in this directory"):
        checkpoint_file(str(tmp_path), "x.pth", "M")
    with pytest.raises(WeightsUnavailable, match="no such file or directory"):
        checkpoint_file(str(tmp_path / "nope" / "w.pth"), "w.pth", "M")
    url = "https://example.org/files/Model%3D1.pth"
    with pytest.raises(WeightsUnavailable, match="not cached"):  # offline (HF_HUB_OFFLINE=1): no attempt
        checkpoint_file(url, "Model=1.pth", "M")
    cache = torch.hub.get_dir() + "/checkpoints"
    import os
    import shutil

    os.makedirs(cache, exist_ok=True)
    shutil.copy(f, os.path.join(cache, "Model=1.pth"))  # downloaded once before: read from the cache
    assert checkpoint_file(url, "Model=1.pth", "M") == os.path.join(cache, "Model=1.pth")
    assert read_state_dict(str(f), "M")["a"].sum() == 2


class Payload:
    """An arbitrary class: unpickling it would run code chosen by whoever made the file."""


def test_checkpoint_with_code_is_refused(tmp_path):
    torch.save({"w": torch.ones(1), "odd": Payload()}, tmp_path / "odd.pth")
    with pytest.raises(WeightsUnavailable, match="cannot be read"):
        read_state_dict(str(tmp_path / "odd.pth"), "M")
    torch.save({"w": torch.ones(1), "steps": [1, 2]}, tmp_path / "mixed.pth")  # loads, but is no state dict
    with pytest.raises(WeightsUnavailable, match="not a dictionary of tensors"):
        read_state_dict(str(tmp_path / "mixed.pth"), "M")


# --- reading and resampling -----------------------------------------------------------------------


def test_sinc_resample_is_band_limited():
    x = tone(440.0, 1.0, 44100)
    y = readers.sinc_resample(x, 44100, 16000)
    assert len(y) == 16000
    np.testing.assert_allclose(y[200:-200], tone(440.0, 1.0, 16000)[200:-200], atol=2e-3)
    above = readers.sinc_resample(tone(10000.0, 1.0, 44100), 44100, 16000)  # above the new Nyquist
    assert np.abs(above[200:-200]).max() < 0.5 * 10 ** (-40 / 20)  # at least 40 dB down
    assert len(readers.sinc_resample(np.ones(1001), 48000, 16000)) == 334  # ceil(1001 / 3)


def test_readers_follow_their_protocols(tmp_path):
    left, right = tone(440.0, 1.0, 48000) + 0.2, tone(660.0, 1.0, 48000)
    write_wav(tmp_path / "s.wav", np.stack([left, right]), 48000)
    panns = readers.for_panns(tmp_path / "s.wav", 16000)
    assert len(panns) == 32000 and abs(panns[:16000].mean()) < 1e-3  # padded to 2 s, DC removed
    ib = readers.for_imagebind(tmp_path / "s.wav")
    assert ib.shape == (2, 16000) and ib[0, 2000:14000].mean() > 0.15  # both channels, DC kept
    vgg = readers.for_vggish(tmp_path / "s.wav")
    assert len(vgg) == 16000
    mix = readers.sinc_resample((left + right) / 2, 48000, 16000)
    assert np.abs(vgg[500:-500] - mix[500:-500]).max() < 5e-3  # the mean of the channels
