"""PANNs CNN14: the embedder and classifier behind "FD", "KL" and "IS" in video-to-music tables.

The protocol is audioldm_eval's, which V2M papers run. Each file is read, its first channel kept,
its mean removed, resampled to 16 kHz (or 32 kHz) with torchaudio's windowed-sinc resampler
(rebuilt as :func:`v2m.evaluate.readers.sinc_resample`) and zero-padded to at least 32000
samples (:func:`v2m.evaluate.readers.for_panns`); CNN14 then gives a 2048-d embedding (``relu(fc1)``, the "2048" layer) and 527 AudioSet logits.

- FD: Frechet distance between the embeddings of the generated and the reference set.
- KL: KL(reference || generated) between the softmax of the logits of each generated clip and
  of its reference, averaged over the pairs (audioldm_eval's "KL", not its "KL_Sigmoid").
- IS: Inception score of the softmax of the generated clips' logits, rows shuffled with seed 2020,
  10 splits.

CNN14 (Kong et al. 2020): a log-mel front end (periodic Hann STFT, centred with reflection,
power, Slaney mel filters from librosa, ``10 log10(max(x, 1e-10))``), batch norm over the mel
bands, six blocks of two 3x3 convolutions with batch norm and ReLU (2x2 average pooling after the
first five), a mean over frequency, max + mean over time, and two linear layers. Parameter names
match the published checkpoints (``Cnn14_16k_mAP=0.438.pth``, ``Cnn14_mAP=0.431.pth``); their
STFT and mel tensors are rebuilt here rather than loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsUnavailable
from ..weights import checkpoint_file, load_matching, read_state_dict

PANNS_DEFAULTS = {
    16000: "https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth",
    32000: "https://zenodo.org/record/3576403/files/Cnn14_mAP%3D0.431.pth",
}
PANNS_FILES = {16000: "Cnn14_16k_mAP=0.438.pth", 32000: "Cnn14_mAP=0.431.pth"}


@dataclass(frozen=True)
class Cnn14Config:
    sample_rate: int = 16000
    n_fft: int = 512
    hop: int = 160
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    classes: int = 527
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)

    @classmethod
    def for_rate(cls, sample_rate: int) -> "Cnn14Config":
        """The published models: 16 kHz (512-point FFT, 160 hop, up to 8 kHz) or 32 kHz (1024, 320, 14 kHz)."""
        if sample_rate == 16000:
            return cls()
        if sample_rate == 32000:
            return cls(sample_rate=32000, n_fft=1024, hop=320, fmax=14000.0)
        raise ValueError(f"PANNs CNN14 was published for 16000 and 32000 Hz, not {sample_rate}")


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, pool) if pool > 1 else x


class Cnn14(nn.Module):
    """CNN14 in inference mode: waveform [B, samples] -> (embedding [B, 2048], logits [B, 527])."""

    def __init__(self, config: Cnn14Config = Cnn14Config()):
        super().__init__()
        import librosa

        self.config = c = config
        self.register_buffer("window", torch.hann_window(c.n_fft, periodic=True), persistent=False)
        mel = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.mel_bins, fmin=c.fmin, fmax=c.fmax)
        self.register_buffer("mel", torch.from_numpy(mel.T.astype(np.float32)), persistent=False)
        self.bn0 = nn.BatchNorm2d(c.mel_bins)
        widths = (1, *c.widths)
        for i in range(len(c.widths)):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(c.widths[-1], c.widths[-1])
        self.fc_audioset = nn.Linear(c.widths[-1], c.classes)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, 1, frames, mel_bins] in dB."""
        spec = torch.stft(wave, self.config.n_fft, self.config.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs() ** 2  # [B, bins, frames]
        return 10.0 * torch.log10((spec.transpose(1, 2) @ self.mel).clamp(min=1e-10))[:, None]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bn0(self.log_mel(wave).transpose(1, 3)).transpose(1, 3)  # normalised per mel band
        blocks = len(self.config.widths)
        for i in range(blocks):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < blocks - 1 else 1)
        x = x.mean(dim=3)  # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


def load_cnn14(source: str | None = None, sample_rate: int = 16000) -> Cnn14:
    """CNN14 with published weights from a file, a directory holding the published file name, a URL
    or a hub id; ``None``: the authors' Zenodo file for ``sample_rate``. Layer sizes and the number
    of classes are read from the checkpoint."""
    config = Cnn14Config.for_rate(sample_rate)
    path = checkpoint_file(source or PANNS_DEFAULTS[sample_rate], PANNS_FILES[sample_rate], "PANNs CNN14",
                           flag="--panns off")
    state = read_state_dict(path, "PANNs CNN14")
    widths = []
    while f"conv_block{len(widths) + 1}.conv1.weight" in state:
        widths.append(int(state[f"conv_block{len(widths) + 1}.conv1.weight"].shape[0]))
    if not widths or "fc_audioset.weight" not in state:
        raise WeightsUnavailable("the PANNs CNN14 checkpoint has no convolution blocks or no classifier", path)
    config = replace(config, widths=tuple(widths), classes=int(state["fc_audioset.weight"].shape[0]))
    model = Cnn14(config)
    load_matching(model, state, "PANNs CNN14", path, ignore=("spectrogram_extractor.", "logmel_extractor."))
    return model.eval()


class PannsEmbedder:
    """CNN14 embeddings and logits of clips at ``sample_rate`` (16 or 32 kHz)."""

    name = "panns"

    def __init__(self, source: str | None = None, sample_rate: int = 16000, device: str = "cpu",
                 model: Cnn14 | None = None):
        self.model = (model if model is not None else load_cnn14(source, sample_rate)).to(device).eval()
        self.sample_rate = self.model.config.sample_rate
        self.source = source or ("custom" if model is not None else PANNS_DEFAULTS[self.sample_rate])
        self.device = device

    def run(self, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [N, 2048], logits [N, 527]); one clip at a time, as their lengths differ."""
        embeddings, logits = [], []
        for clip in clips:
            with torch.inference_mode():
                e, l = self.model(torch.as_tensor(np.asarray(clip, np.float32))[None].to(self.device))
            embeddings.append(e[0].float().cpu().numpy())
            logits.append(l[0].float().cpu().numpy())
        return np.stack(embeddings), np.stack(logits)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.run(clips)[0]
