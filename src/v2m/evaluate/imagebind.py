"""ImageBind-huge, vision and audio only: the embedder of the "IB score" of video-to-music papers.

A plain-PyTorch reimplementation of Meta's ``imagebind`` model and data transforms:
:class:`ImageBindModel` (the two towers, with the official module and parameter names, so that
:func:`load_imagebind` loads the published ``imagebind_huge.pth`` strictly with no key map),
:func:`audio_views` (with :func:`kaldi_fbank`) and :func:`video_views` (the official transforms),
:class:`ImageBindEmbedder` (unit vectors) and :func:`ib_scores` (the per-clip cosines).

The transforms keep quirks of the official code on purpose, because they change the numbers:
e.g. each audio clip's mean is subtracted in place on the shared waveform, so where clips
overlap a later clip sees an earlier one's subtraction. The recipe step by step:
docs/evaluation.md ("The ImageBind score").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MediaError
from ..media import VideoReader, probe
from ..weights import checkpoint_file, load_matching, read_state_dict

IMAGEBIND_DEFAULT = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"
CHECKPOINT_NAME = "imagebind_huge.pth"
WHAT = "ImageBind"

SAMPLE_RATE = 16000
CLIP_SECONDS = 2  # an int, as in data.py: clip ends stay exact fractions
AUDIO_CLIPS, VIDEO_CLIPS = 3, 5
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Parts of the published checkpoint v2m does not use.
_GROUPS = ("modality_preprocessors", "modality_trunks", "modality_heads", "modality_postprocessors")
OTHER_MODALITIES = ("text", "depth", "thermal", "imu")
IGNORED_PREFIXES = tuple(f"{group}.{m}." for group in _GROUPS for m in OTHER_MODALITIES)


@dataclass
class ImageBindConfig:
    """The geometry of the vision and audio towers; the defaults are ImageBind-huge."""

    vision_width: int = 1280
    vision_depth: int = 32
    vision_heads: int = 16
    audio_width: int = 768
    audio_depth: int = 12
    audio_heads: int = 12
    out_dim: int = 1024
    image_size: int = 224  # the crop side; the short side is resized to it
    patch_size: int = 14
    video_frames: int = 2  # frames per view; the patch kernel spans 2 of them
    num_mel_bins: int = 128
    target_length: int = 204  # filterbank frames per audio view
    audio_patch: int = 16
    audio_stride: int = 10
    audio_logit_scale: float = 20.0
    mlp_ratio: int = 4

    @property
    def vision_patches(self) -> int:
        return (self.video_frames // 2) * (self.image_size // self.patch_size) ** 2

    @property
    def audio_patches(self) -> int:
        rows = (self.num_mel_bins - self.audio_patch) // self.audio_stride + 1
        cols = (self.target_length - self.audio_patch) // self.audio_stride + 1
        return rows * cols


# --- the network ---------------------------------------------------------------------------


class _RepeatToVideo(nn.Module):
    """ImageBind's ``PadIm2Video(pad_type="repeat", ntimes=2)``: an image, or a one-frame clip,
    is repeated to two frames; longer clips pass unchanged. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(2)
        return x.repeat(1, 1, 2, 1, 1) if x.shape[2] == 1 else x


class _PatchStem(nn.Module):
    """Patches to tokens ``[B, N, D]`` (row-major over (time,) height, width), then ``norm_layer``."""

    def __init__(self, proj: nn.Module, norm_layer: nn.Module | None = None):
        super().__init__()
        self.proj = proj
        self.norm_layer = norm_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm_layer(x) if self.norm_layer is not None else x


class _PosEmbedding(nn.Module):
    def __init__(self, tokens: int, width: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, width) * width**-0.5)


class _Tokenizer(nn.Module):
    """The official ``RGBDTPreprocessor`` (also behind ``AudioPreprocessor``): patch tokens after
    a class token, plus a learned position embedding. The stem keeps its official name."""

    def __init__(self, stem: _PatchStem, patches: int, width: int):
        super().__init__()
        self.rgbt_stem = stem
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pos_embedding_helper = _PosEmbedding(patches + 1, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.rgbt_stem(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        pos = self.pos_embedding_helper.pos_embed
        if tokens.shape[1] != pos.shape[1]:  # the official code would interpolate; v2m feeds the trained size
            raise ValueError(f"ImageBind input gives {tokens.shape[1] - 1} patches, the model has {pos.shape[1] - 1}")
        return tokens + pos


class _Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-LN transformer block (``BlockWithMasking``: no layer scale; drop path is off in eval).
    Works on ``[L, B, D]``, the layout the official trunk hands ``nn.MultiheadAttention``."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, add_bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, bias=True, add_bias_kv=add_bias_kv)
        self.norm_1 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = _Mlp(width, mlp_ratio * width)
        self.norm_2 = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=None)[0]
        return x + self.mlp(self.norm_2(x))


class _Trunk(nn.Module):
    """The official ``SimpleTransformer``: ``pre_transformer_layer`` (a LayerNorm for vision,
    nothing for audio; index 0 as in the official Sequential, whose index 1 is a parameter-free
    rearrange) and the blocks, run sequence-first."""

    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: int, pre_ln: bool, add_bias_kv: bool):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(width, eps=1e-6) if pre_ln else nn.Identity())
        self.blocks = nn.Sequential(*[_Block(width, heads, mlp_ratio, add_bias_kv) for _ in range(depth)])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.pre_transformer_layer(tokens).transpose(0, 1)  # b l d -> l b d
        for block in self.blocks:
            x = block(x)
        return x.transpose(0, 1)


class _SelectToken(nn.Module):
    def __init__(self, index: int = 0):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index, ...]


class _Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1, p=2)


class _LogitScale(nn.Module):
    """The official ``LearnableLogitScaling(learnable=False)``: a fixed ``log_logit_scale`` buffer
    (it is in the checkpoint), applied as ``min(exp(s), 100) * x``."""

    def __init__(self, scale: float):
        super().__init__()
        self.register_buffer("log_logit_scale", torch.ones([]) * math.log(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clip(self.log_logit_scale.exp(), max=100) * x


def _head(width: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width, eps=1e-6), _SelectToken(0), nn.Linear(width, out_dim, bias=False))


class ImageBindModel(nn.Module):
    """ImageBind's vision and audio towers, with the official module names (state-dict keys).

    :meth:`embed_vision` and :meth:`embed_audio` return exactly what the official ``forward``
    returns for those modalities: each view's embedding L2-normalised (audio: then times 20),
    averaged over the views ``S``."""

    def __init__(self, config: ImageBindConfig | None = None):
        super().__init__()
        c = self.config = config or ImageBindConfig()
        kernel = (2, c.patch_size, c.patch_size)
        vision_stem = _PatchStem(nn.Sequential(
            _RepeatToVideo(),
            nn.Conv3d(3, c.vision_width, kernel_size=kernel, stride=kernel, bias=False)))
        audio_stem = _PatchStem(
            nn.Conv2d(1, c.audio_width, kernel_size=c.audio_patch, stride=c.audio_stride, bias=False),
            nn.LayerNorm(c.audio_width))  # eps 1e-5 here: the official stem uses LayerNorm's default
        self.modality_preprocessors = nn.ModuleDict({
            "vision": _Tokenizer(vision_stem, c.vision_patches, c.vision_width),
            "audio": _Tokenizer(audio_stem, c.audio_patches, c.audio_width),
        })
        self.modality_trunks = nn.ModuleDict({
            "vision": _Trunk(c.vision_width, c.vision_depth, c.vision_heads, c.mlp_ratio, pre_ln=True,
                             add_bias_kv=False),
            "audio": _Trunk(c.audio_width, c.audio_depth, c.audio_heads, c.mlp_ratio, pre_ln=False,
                            add_bias_kv=True),
        })
        self.modality_heads = nn.ModuleDict({
            "vision": _head(c.vision_width, c.out_dim),
            "audio": _head(c.audio_width, c.out_dim),
        })
        self.modality_postprocessors = nn.ModuleDict({
            "vision": _Normalize(),
            "audio": nn.Sequential(_Normalize(), _LogitScale(c.audio_logit_scale)),
        })

    def _embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        b, s = x.shape[:2]
        x = x.reshape(b * s, *x.shape[2:])
        x = self.modality_preprocessors[modality](x)
        x = self.modality_trunks[modality](x)
        x = self.modality_heads[modality](x)
        x = self.modality_postprocessors[modality](x)
        return x.reshape(b, s, -1).mean(dim=1)  # the mean over views comes after the normalisation

    def embed_vision(self, views: torch.Tensor) -> torch.Tensor:
        """``[B, S, 3, frames, H, W]`` normalised views -> ``[B, out_dim]``."""
        if views.ndim != 6:
            raise ValueError(f"vision views must be [B, S, 3, frames, H, W], got {tuple(views.shape)}")
        return self._embed("vision", views)

    def embed_audio(self, mels: torch.Tensor) -> torch.Tensor:
        """``[B, S, 1, mel bins, frames]`` normalised filterbanks -> ``[B, out_dim]``."""
        if mels.ndim != 5:
            raise ValueError(f"audio views must be [B, S, 1, mel bins, frames], got {tuple(mels.shape)}")
        return self._embed("audio", mels)


# --- loading the published checkpoint ------------------------------------------------------


def load_imagebind(source: str = IMAGEBIND_DEFAULT, config: ImageBindConfig | None = None,
                   device: str = "cpu") -> ImageBindModel:
    """:class:`ImageBindModel` with the vision and audio weights of ``source``, in eval mode, or
    :class:`~v2m.errors.WeightsUnavailable` saying what is wrong. No key mapping is needed: the
    names match the published file; its other modalities are skipped."""
    path = checkpoint_file(source, CHECKPOINT_NAME, WHAT, flag="--imagebind off", converted="imagebind_huge.safetensors")
    state = read_state_dict(path, WHAT)
    with torch.device("meta"):  # no random init of ~700M parameters that the checkpoint replaces
        model = ImageBindModel(config)
    model = model.to_empty(device=device)
    load_matching(model, state, WHAT, path, ignore=IGNORED_PREFIXES)  # strict: every tensor is set
    return model.eval()


# --- audio: the Kaldi filterbank and the clips ------------------------------------------------


def clip_starts(duration: float, clips: int, clip_duration: int | Fraction = CLIP_SECONDS) -> list[Fraction]:
    """Start times (exact fractions, seconds) of pytorchvideo's ``ConstantClipsPerVideoSampler``
    at ImageBind's pinned commit: ``i * max(duration - clip_duration, 0) / max(clips - 1, 1)``."""
    longest = Fraction(max(duration - Fraction(clip_duration), 0))  # float arithmetic first, as there
    step = Fraction(longest, max(clips - 1, 1))
    return [step * i for i in range(clips)]


def _mel_banks(num_mel_bins: int, n_fft: int, sample_rate: float, low_freq: float, high_freq: float) -> torch.Tensor:
    """``[num_mel_bins, n_fft // 2]`` triangular weights (peak 1) on the mel scale
    ``1127 ln(1 + f / 700)``: band ``k`` rises from edge ``k`` to ``k + 1`` and falls to ``k + 2``
    of ``num_mel_bins + 2`` edges spaced evenly in mel from ``low_freq`` to ``high_freq``. Computed
    in float32 like torchaudio, so the weights are bit for bit the same."""
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    band = torch.arange(num_mel_bins, dtype=torch.float32).unsqueeze(1)
    left = mel_low + band * delta
    centre = mel_low + (band + 1.0) * delta
    right = mel_low + (band + 2.0) * delta
    freqs = (sample_rate / n_fft) * torch.arange(n_fft // 2, dtype=torch.float32)
    mel = (1127.0 * (1.0 + freqs / 700.0).log()).unsqueeze(0)
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    return torch.max(torch.zeros(1), torch.min(rising, falling))


def kaldi_fbank(waveform: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = 128,
                frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, low_freq: float = 20.0,
                high_freq: float = 0.0, preemphasis: float = 0.97) -> torch.Tensor:
    """Kaldi's log-mel filterbank ``[frames, num_mel_bins]`` (float32), as torchaudio's
    ``compliance.kaldi.fbank`` computes it with ImageBind's arguments (Hann window, no dither, no
    energy column) and Kaldi's defaults for the rest.

    ``waveform``: ``[samples]`` or ``[channels, samples]`` (then, like torchaudio, only the first
    channel is used). Frames of ``frame_length_ms`` every ``frame_shift_ms`` that fit entirely
    (``1 + (n - 400) // 160`` at 16 kHz; none below one frame). Each frame: its mean removed,
    pre-emphasis ``x[j] - 0.97 x[j - 1]`` (``x[-1] = x[0]``), a symmetric Hann window, zero
    padding to the next power of two, the power spectrum, the mel bands (the Nyquist bin has no
    weight; ``high_freq <= 0`` counts from Nyquist) and ``log(max(energy, float32 eps))``."""
    x = torch.as_tensor(waveform, dtype=torch.float32)
    if x.ndim == 2:
        x = x[0]
    shift = int(sample_rate * frame_shift_ms * 0.001)
    size = int(sample_rate * frame_length_ms * 0.001)
    n_fft = 1 << (size - 1).bit_length()
    if x.numel() < size:
        return torch.zeros((0, num_mel_bins), dtype=torch.float32)
    frames = x.unfold(0, size, shift)  # [frames, size], the same strides as torchaudio's as_strided
    frames = frames - frames.mean(dim=1).unsqueeze(1)
    previous = F.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)[:, :-1]
    frames = frames - preemphasis * previous
    frames = frames * torch.hann_window(size, periodic=False, dtype=torch.float32).unsqueeze(0)
    frames = F.pad(frames.unsqueeze(0), (0, n_fft - size), mode="constant", value=0).squeeze(0)
    power = torch.fft.rfft(frames).abs().pow(2.0)
    nyquist = 0.5 * sample_rate
    banks = _mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, high_freq + nyquist if high_freq <= 0 else high_freq)
    banks = F.pad(banks, (0, 1), mode="constant", value=0)  # the Nyquist bin
    energies = torch.mm(power, banks.T)
    return torch.max(energies, torch.tensor(torch.finfo(torch.float32).eps)).log()


def audio_views(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, clips: int = AUDIO_CLIPS,
                clip_duration: int = CLIP_SECONDS, num_mel_bins: int = 128, target_length: int = 204,
                mean: float = AUDIO_MEAN, std: float = AUDIO_STD) -> torch.Tensor:
    """ImageBind's audio input for one waveform: ``[clips, 1, num_mel_bins, target_length]``.

    ``waveform``: float samples at ``sample_rate`` (16 kHz for ImageBind), ``[samples]`` or
    ``[channels, samples]`` (as data.py treats a multichannel file: each clip's mean is taken
    over all channels and the filterbank reads the first). Audio shorter than a clip gives
    zero-padded filterbanks; under one 25 ms frame (where the official code fails) they are all
    padding."""
    wave = torch.tensor(np.asarray(waveform, dtype=np.float32))  # a copy: clips are centred in place
    if wave.ndim == 1:
        wave = wave.unsqueeze(0)
    rate = int(sample_rate)
    mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    views = []
    for start in clip_starts(wave.shape[1] / rate, clips, clip_duration):
        end = start + clip_duration
        clip = wave[:, int(start * rate) : int(end * rate)]  # a view into the shared waveform
        if clip.numel():
            clip -= clip.mean()  # in place, like data.py: overlapping clips see earlier subtractions
        bank = kaldi_fbank(clip, rate, num_mel_bins).transpose(0, 1)  # [mel, frames]
        gap = target_length - bank.shape[1]
        bank = F.pad(bank, (0, gap), mode="constant", value=0) if gap > 0 else bank[:, :target_length]
        views.append(bank.unsqueeze(0).sub(mean_t).div(std_t))  # padding first, then normalising
    return torch.stack(views)


# --- video: the frames and the crops -------------------------------------------------------


def clip_frame_indices(frame_count: int, fps: float, clips: int = VIDEO_CLIPS, clip_duration: int = CLIP_SECONDS,
                       frames: int = 2) -> list[list[int]]:
    """The frame indices of each video clip, as pytorchvideo's decord backend picks them: the
    clip ``[start, start + clip_duration)`` covers frames ``ceil(fps * start)`` up to (not
    including) ``min(ceil(fps * end), frame_count)``, with ``duration = frame_count / fps``, and
    ``UniformTemporalSubsample`` keeps ``frames`` of them (``linspace(0, n - 1)``, truncated)."""
    duration = float(frame_count) / float(fps)
    out = []
    for start in clip_starts(duration, clips, clip_duration):
        first = math.ceil(fps * float(start))
        stop = min(math.ceil(fps * float(start + clip_duration)), frame_count)
        n = max(stop - first, 1)
        picks = torch.clamp(torch.linspace(0, n - 1, frames), 0, n - 1).long()
        out.append([first + int(p) for p in picks])
    return out


def _frame_count(path: str) -> int:

    with VideoReader(path) as reader:
        return sum(1 for _ in reader.frames())


def _read_frames(path: str, wanted: set[int]) -> dict[int, np.ndarray]:
    """RGB uint8 frames in display orientation at the frame indices ``wanted`` (0 = the first
    frame in presentation order). Indices past the end get the last frame."""
    out: dict[int, np.ndarray] = {}
    highest, frame = max(wanted), None
    with VideoReader(path) as reader:
        turn = reader.info.rotation // 90  # decord, like a player, applies the display rotation

        def rgb(f) -> np.ndarray:
            img = f.to_ndarray(format="rgb24")  # FFmpeg's conversion (the frame's colour matrix), as in decord
            return np.ascontiguousarray(np.rot90(img, k=turn)) if turn else img

        for index, (_, frame) in enumerate(reader.frames()):
            if index in wanted:
                out[index] = rgb(frame)
            if index >= highest:
                break
        missing = wanted - set(out)
        if missing and frame is not None:  # the container promised more frames than decode
            last = rgb(frame)
            out.update({i: last for i in missing})
    if not out:
        raise MediaError("no frames could be read for ImageBind", path)
    return out


def _short_side_scale(clip: torch.Tensor, size: int) -> torch.Tensor:
    """pytorchvideo's ``ShortSideScale`` on ``[C, T, H, W]``: bilinear, the long side floored."""
    _, _, h, w = clip.shape
    if w < h:
        new_h, new_w = math.floor((float(h) / w) * size), size
    else:
        new_h, new_w = size, math.floor((float(w) / h) * size)
    return F.interpolate(clip, size=(new_h, new_w), mode="bilinear", align_corners=False)


def _uniform_crop(clip: torch.Tensor, size: int, index: int) -> torch.Tensor:
    """data.py's ``uniform_crop``: crop 0 / 1 / 2 = left / centre / right along the long side
    (top / centre / bottom when the frame is taller than wide)."""
    h, w = clip.shape[2], clip.shape[3]
    y = math.ceil((h - size) / 2)
    x = math.ceil((w - size) / 2)
    if h > w:
        y = {0: 0, 1: y, 2: h - size}[index]
    else:
        x = {0: 0, 1: x, 2: w - size}[index]
    return clip[:, :, y : y + size, x : x + size]


def video_views(path: str, clips: int = VIDEO_CLIPS, clip_duration: int = CLIP_SECONDS, frames: int = 2,
                size: int = 224, crops: int = 3) -> torch.Tensor:
    """ImageBind's vision input for one video file: ``[clips * crops, 3, frames, size, size]``,
    clip-major (each clip's crops together), as data.py stacks them."""
    info = probe(path)
    if not info.fps or info.fps <= 0:
        raise MediaError("no frame rate: ImageBind's clips cannot be placed", path)
    count = info.frame_count or _frame_count(path)  # decord counts the stream's packets
    picks = clip_frame_indices(count, info.fps, clips, clip_duration, frames)
    images = _read_frames(path, {i for clip in picks for i in clip})
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32)[:, None, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32)[:, None, None, None]
    indices = {3: (0, 1, 2), 1: (1,)}[crops]
    views = []
    for clip in picks:
        x = torch.from_numpy(np.stack([images[i] for i in clip])).to(torch.float32)  # [T, H, W, C]
        x = x.permute(3, 0, 1, 2) / 255.0  # [C, T, H, W] in [0, 1]
        x = _short_side_scale(x, size).sub(mean).div(std)
        views.extend(_uniform_crop(x, size, i) for i in indices)
    return torch.stack(views)


# --- the embedder --------------------------------------------------------------------------


def _unit(x: torch.Tensor) -> np.ndarray:
    return F.normalize(x.float(), dim=-1).cpu().numpy()


class ImageBindEmbedder:
    """ImageBind-huge embeddings of videos and of audio clips (unit vectors), for the IB score.

    The weights are resolved and loaded on first use (``source``: the published file, a folder
    holding it, its URL or a hub id); ``model`` injects a ready :class:`ImageBindModel`."""

    name = "imagebind"
    sample_rate = SAMPLE_RATE

    def __init__(self, source: str | None = None, device: str = "cpu", config: ImageBindConfig | None = None,
                 model: ImageBindModel | None = None, batch_size: int = 8):
        self.source = source or ("custom" if model is not None else IMAGEBIND_DEFAULT)
        self.device, self.batch_size = device, batch_size
        self.config = config or (model.config if model is not None else ImageBindConfig())
        self._model = model.to(device).eval() if model is not None else None

    @property
    def model(self) -> ImageBindModel:
        if self._model is None:
            self._model = load_imagebind(self.source, self.config, self.device)
        return self._model

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        """``[N, out_dim]`` for mono float32 clips at 16 kHz (3 views of 2 s each)."""
        c = self.config
        out = [np.zeros((0, c.out_dim), np.float32)]
        for i in range(0, len(clips), self.batch_size):
            views = torch.stack([audio_views(clip, self.sample_rate, num_mel_bins=c.num_mel_bins,
                                             target_length=c.target_length) for clip in clips[i : i + self.batch_size]])
            with torch.inference_mode():
                out.append(_unit(self.model.embed_audio(views.to(self.device))))
        return np.concatenate(out)

    embed = embed_audio  # the interface of v2m's audio embedders

    def embed_video(self, paths: list[str]) -> np.ndarray:
        """``[N, out_dim]`` for video files (5 clips x 3 crops each)."""
        c = self.config
        out = [np.zeros((0, c.out_dim), np.float32)]
        for path in paths:
            views = video_views(str(path), frames=c.video_frames, size=c.image_size)
            with torch.inference_mode():
                out.append(_unit(self.model.embed_vision(views.unsqueeze(0).to(self.device))))
        return np.concatenate(out)


def ib_scores(video_emb: np.ndarray, audio_emb: np.ndarray) -> np.ndarray:
    """Per-clip cosine similarity of matching rows ``[N]``; the IB score is their mean."""
    v = np.asarray(video_emb, np.float64)
    a = np.asarray(audio_emb, np.float64)
    if v.shape != a.shape or v.ndim != 2:
        raise ValueError(f"IB scores need two [N, D] arrays of one shape, got {v.shape} and {a.shape}")
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return np.sum(v * a, axis=1)
