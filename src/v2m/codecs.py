"""Audio codecs: the music targets the two models learn in, behind one small interface.

- :class:`EncodecCodec`: MusicGen's EnCodec 32 kHz (transformers ``EncodecModel``), mono, 50
  frames/s, 4 codebooks of 2048 tokens. ControllableV2M predicts these tokens.
- :class:`OobleckCodec`: the Stable Audio Open 1.0 "Oobleck" VAE (diffusers
  ``AutoencoderOobleck``), 44.1 kHz stereo, 64 latent channels, one frame per 2048 samples
  (30 s -> 645 frames). Diff-V2M diffuses in this latent space.

Both encode a clip ``[channels, samples]`` (numpy, any sample rate: resampled when it is not the
codec's) to a dict of arrays stored beside the clip's features, and decode stored arrays back to
audio. EnCodec stores ``codes`` (int16 ``[4, frames]``). The VAE stores its posterior,
``latent_mean`` and ``latent_std`` (float16 ``[64, frames]``), not one sample of it: the
official training encodes on the fly and so draws a fresh latent every time it sees a clip;
:meth:`OobleckCodec.sample` does the same from the stored posterior.

Weights come from a hub id or a local directory (:func:`v2m.weights.load_pretrained`); a
Stable Audio Open checkpoint keeps the VAE in its ``vae/`` subfolder, which is found for the
hub ids below and for a local copy of the whole repository.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import WeightsUnavailable
from .weights import load_pretrained, resolve_device

ENCODEC_DEFAULT = "facebook/encodec_32khz"
OOBLECK_DEFAULT = "stabilityai/stable-audio-open-1.0"
_VAE_SUBFOLDER_REPOS = {"stabilityai/stable-audio-open-1.0", "stabilityai/stable-audio-open-small"}


def _conform(audio: np.ndarray, sr: int, target_sr: int, channels: int) -> np.ndarray:
    """``audio`` [C, N] at ``sr`` -> [channels, M] float32 at ``target_sr``."""
    audio = np.atleast_2d(np.asarray(audio, np.float32))
    if audio.shape[0] != channels:
        audio = audio.mean(0, keepdims=True) if channels == 1 else np.repeat(audio.mean(0, keepdims=True), channels, 0)
    if sr != target_sr:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=target_sr, res_type="soxr_hq", axis=-1)
    return np.ascontiguousarray(audio, np.float32)


@dataclass
class CodecInfo:
    """What a dataset records about the codec its targets were made with."""

    name: str
    source: str
    sample_rate: int
    channels: int
    hop_length: int
    kind: str  # "tokens" or "latents"

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames(self, seconds: float) -> int:
        """Frames the codec's decoder is asked for to cover ``seconds`` (floor, as the official
        Diff-V2M latent length 1323000 // 2048 = 645)."""
        return int(round(seconds * self.sample_rate)) // self.hop_length


class AudioCodec:
    """The interface: ``info``, ``encode(audio, sr) -> dict`` and ``decode(arrays) -> audio``."""

    info: CodecInfo

    def __init__(self, model, info: CodecInfo, device):
        self.model = model.to(device).eval()
        self.info = info
        self.device = device

    def encode(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def decode(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _input(self, audio: np.ndarray, sr: int):
        import torch

        x = _conform(audio, sr, self.info.sample_rate, self.info.channels)
        return torch.from_numpy(x)[None].to(self.device)


class EncodecCodec(AudioCodec):
    kind = "tokens"

    @classmethod
    def load(cls, source: str = ENCODEC_DEFAULT, device: str = "auto", flag: str = "") -> "EncodecCodec":
        """``flag``: the option that turns the codec off, named when the weights cannot be loaded
        ("" where the command has none)."""
        from transformers import EncodecModel

        model = load_pretrained(EncodecModel, source, "EnCodec", flag=flag)
        cfg = model.config
        info = CodecInfo("encodec", source, int(cfg.sampling_rate), int(cfg.audio_channels),
                         int(np.prod(cfg.upsampling_ratios)), cls.kind)
        return cls(model, info, resolve_device(device))

    @property
    def bandwidth(self) -> float:
        return float(max(self.model.config.target_bandwidths))  # 2.2 kbps = 4 codebooks for MusicGen

    def encode(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model.encode(self._input(audio, sr), bandwidth=self.bandwidth)
        codes = out.audio_codes[0, 0]  # [chunks=1, batch=1, codebooks, frames]
        return {"codes": codes.cpu().numpy().astype(np.int16)}

    def decode(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        codes = torch.as_tensor(np.asarray(arrays["codes"], np.int64), device=self.device)[None, None]
        with torch.inference_mode():
            audio = self.model.decode(codes, [None]).audio_values
        return audio[0].float().cpu().numpy()


class OobleckCodec(AudioCodec):
    kind = "latents"

    @classmethod
    def load(cls, source: str = OOBLECK_DEFAULT, device: str = "auto", flag: str = "") -> "OobleckCodec":
        """``flag``: as for :meth:`EncodecCodec.load`."""
        from diffusers import AutoencoderOobleck

        from .models.diffv2m.vae import OobleckDecoderOnly

        expanded = os.path.expanduser(source)
        whole_repo = os.path.isfile(os.path.join(expanded, "vae", "config.json"))
        kwargs = {"subfolder": "vae"} if whole_repo or source in _VAE_SUBFOLDER_REPOS else {}
        if OobleckDecoderOnly.is_folder(os.path.join(expanded, kwargs.get("subfolder", ""))):
            raise WeightsUnavailable("this Oobleck VAE has only its decoder, so it cannot encode audio into latents "
                                     "(the Diff-V2M checkpoint it came from generates, but its encoder cannot be "
                                     "built); pass a complete VAE, e.g. stabilityai/stable-audio-open-1.0", source)
        with warnings.catch_warnings():
            # for a hub id, diffusers' load_config passes huggingface_hub its own default
            # local_dir_use_symlinks="auto", which huggingface_hub >= 1.0 calls deprecated on every
            # load; passing None does not help (from_pretrained drops the argument before load_config)
            warnings.filterwarnings("ignore", message=".*`local_dir_use_symlinks`", category=UserWarning)
            model = load_pretrained(AutoencoderOobleck, source, "Oobleck VAE", flag=flag, **kwargs)
        cfg = model.config
        info = CodecInfo("oobleck", source, int(cfg.sampling_rate), int(cfg.audio_channels),
                         int(np.prod(cfg.downsampling_ratios)), cls.kind)
        return cls(model, info, resolve_device(device))

    def encode(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            posterior = self.model.encode(self._input(audio, sr)).latent_dist
        return {"latent_mean": posterior.mean[0].float().cpu().numpy().astype(np.float16),
                "latent_std": posterior.std[0].float().cpu().numpy().astype(np.float16)}

    @staticmethod
    def sample(mean, std, generator=None):
        """One latent from a stored posterior (torch tensors, any leading shape)."""
        import torch

        mean, std = torch.as_tensor(mean).float(), torch.as_tensor(std).float()
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + std * noise

    def decode(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        latents = arrays["latents"] if "latents" in arrays else arrays["latent_mean"]
        z = torch.as_tensor(np.asarray(latents, np.float32), device=self.device)[None]
        with torch.inference_mode():
            audio = self.model.decode(z).sample
        return audio[0].float().cpu().numpy()


CODECS = {"encodec": EncodecCodec, "oobleck": OobleckCodec}
MODEL_CODEC = {"stad": "encodec", "diffv2m": "oobleck"}
DEFAULT_SOURCE = {"encodec": ENCODEC_DEFAULT, "oobleck": OOBLECK_DEFAULT}


def load_codec(name: str, source: str | None = None, device: str = "auto", flag: str = "") -> AudioCodec:
    """Codec ``name`` ("encodec" or "oobleck") from ``source`` (its default weights when None);
    raises :class:`v2m.errors.WeightsUnavailable` with one line when they cannot be loaded
    (naming ``flag``, the command's option that turns the codec off, if it has one)."""
    return CODECS[name].load(source or DEFAULT_SOURCE[name], device=device, flag=flag)
