"""VGGish at 16 kHz without PCA: the embedder of the "FAD" in video-to-music papers.

The protocol is the one of audioldm_eval and frechet-audio-distance, which V2M papers run: each
file is decoded to samples in [-1, 1], averaged to mono, resampled to 16 kHz with resampy's
``kaiser_best`` filter, cut into non-overlapping 0.96 s examples of a 64-band log-mel spectrogram
(25 ms periodic-Hann windows every 10 ms, 512-point FFT magnitude, HTK mel bands 125-7500 Hz,
``log(mel + 0.01)``), and every example becomes one 128-d embedding. The PCA/quantisation step is
off and so is the ReLU after the last layer (audioldm_eval's ``use_pca=False,
use_activation=False``). FAD is the Frechet distance between the Gaussians fitted to all examples
of the generated set and all examples of the reference set (not per-file means).

The network is VGGish as released by Google and converted to PyTorch by torchvggish
(``vggish-10086976.pth``): six 3x3 convolutions with four max-pools, then three fully connected
layers; the parameter names here match that file, so it loads as published.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import WeightsUnavailable
from ..weights import checkpoint_file, load_matching, read_state_dict

VGGISH_DEFAULT = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
SAMPLE_RATE = 16000
EXAMPLE_FRAMES, MEL_BANDS = 96, 64  # one example: 0.96 s of 10 ms frames, 64 mel bands
WINDOW, HOP, FFT = 400, 160, 512  # 25 ms and 10 ms at 16 kHz; the next power of two
LOWEST_HZ, HIGHEST_HZ, LOG_OFFSET = 125.0, 7500.0, 0.01


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_matrix(bins: int = FFT // 2 + 1, bands: int = MEL_BANDS, sample_rate: int = SAMPLE_RATE,
               low: float = LOWEST_HZ, high: float = HIGHEST_HZ) -> np.ndarray:
    """[bins, bands] triangular weights on the HTK mel scale, peaks 1, as VGGish was trained with.

    The triangles are laid out evenly in mel between ``low`` and ``high`` and evaluated at each FFT
    bin's mel position; the DC bin gets no weight."""
    bin_mel = _hz_to_mel(np.linspace(0.0, sample_rate / 2, bins))
    edges = np.linspace(_hz_to_mel(low), _hz_to_mel(high), bands + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - left) / (centre - left)
    falling = (right - bin_mel[:, None]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights


def log_mel_examples(wave: np.ndarray) -> np.ndarray:
    """[examples, 96, 64] log-mel examples of a mono 16 kHz waveform (none when under ~0.975 s)."""
    wave = np.asarray(wave, np.float64).reshape(-1)
    n_frames = 1 + (len(wave) - WINDOW) // HOP if len(wave) >= WINDOW else 0
    if n_frames < EXAMPLE_FRAMES:
        return np.zeros((0, EXAMPLE_FRAMES, MEL_BANDS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wave, WINDOW)[::HOP][:n_frames]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, FFT))
    log_mel = np.log(magnitude @ mel_matrix() + LOG_OFFSET)
    n_examples = n_frames // EXAMPLE_FRAMES
    return log_mel[: n_examples * EXAMPLE_FRAMES].reshape(n_examples, EXAMPLE_FRAMES, MEL_BANDS).astype(np.float32)


class VGGish(nn.Module):
    """VGGish up to its 128-d embedding, without the final ReLU. Input [N, 1, 96, 64] log-mel.

    ``widths`` and ``hidden`` are the published sizes; smaller ones make test models."""

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 512), hidden: int = 4096):
        super().__init__()
        layers, width = [], 1
        a, b, c, d = widths
        for spec in (a, "pool", b, "pool", c, c, "pool", d, d, "pool"):
            if spec == "pool":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(width, spec, 3, padding=1), nn.ReLU(inplace=True)]
                width = spec
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(d * 6 * 4, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, 128))

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        x = self.features(examples)  # [N, 512, 6, 4]
        # flattened as (time, frequency, channel): the order of the TensorFlow original's weights
        return self.embeddings(x.permute(0, 2, 3, 1).flatten(1))


def load_vggish(source: str = VGGISH_DEFAULT) -> VGGish:
    """VGGish with the published weights from a file, a directory holding
    ``vggish-10086976.pth`` (or ``vggish.safetensors``), a URL or a hub id. The layer sizes are
    read from the checkpoint (the published one has the published sizes)."""
    path = checkpoint_file(source, "vggish-10086976.pth", "VGGish", flag="--vggish off", converted="vggish.safetensors")
    state = read_state_dict(path, "VGGish")
    try:
        widths = tuple(int(state[f"features.{i}.weight"].shape[0]) for i in (0, 3, 6, 11))
        hidden = int(state["embeddings.0.weight"].shape[0])
    except KeyError as e:
        raise WeightsUnavailable(f"the VGGish checkpoint has no {e.args[0]}", path) from None
    model = VGGish(widths, hidden)
    load_matching(model, state, "VGGish", path, ignore=("pproc.",))
    return model.eval()


class VggishEmbedder:
    """VGGish embeddings of 16 kHz clips: ``frames`` (one row per 0.96 s example, for FAD) and
    ``embed`` (their mean per clip)."""

    name = "vggish"
    sample_rate = SAMPLE_RATE

    def __init__(self, source: str | None = None, device: str = "cpu", batch_size: int = 64,
                 model: VGGish | None = None):
        self.source = source or ("custom" if model is not None else VGGISH_DEFAULT)
        self.device, self.batch_size = device, batch_size
        self.model = (model if model is not None else load_vggish(self.source)).to(device).eval()

    def frames(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """[examples_i, 128] per clip; clips under ~0.975 s have no example and give [0, 128]."""
        out = []
        for clip in clips:
            examples = torch.from_numpy(log_mel_examples(clip))[:, None]
            rows = [np.zeros((0, 128), np.float32)]
            for i in range(0, len(examples), self.batch_size):
                with torch.inference_mode():
                    rows.append(self.model(examples[i : i + self.batch_size].to(self.device)).float().cpu().numpy())
            out.append(np.concatenate(rows))
        return out

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        return np.stack([f.mean(0) if len(f) else np.full(128, np.nan, np.float32) for f in self.frames(clips)])
