"""Diff-V2M's conditioners: the video features and timing as condition tokens.

Per second of a clip padded to ``max_seconds`` (T): CLIP embeddings -> semantic tokens (two
Linears, 512 wide in between); the rhythm predictor (a 12-layer transformer over z-scored CLIP
features plus scene-cut and visual-beat embeddings, with a class token) -> the predicted
rhythm [T, 1] (ODF) and its tokens; the true rhythm -> rhythm tokens (the same Linears);
colour histograms -> colour tokens (1024 wide in between); class label, seconds_start and
seconds_total -> one token each. Every token is ``cond_dim`` wide.

Padded seconds keep the projection of a zero row (the Linears' biases) as in the official
code; the masks hide them from the DiT. In ``official`` mode the rhythm predictor normalises
over the padded seconds too and attends to them, the true rhythm is z-scored with its padding,
and the predicted-rhythm tokens carry no gradient (as the published code); the fixed model
normalises over real seconds only, masks padding in the predictor, and trains the whole path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import DiffV2MConfig
from .layers import NumberEmbedder, Rotary, SelfBlock, rotary_dim

RHYTHM_KEYS = {"odf": "odf", "mel": "mel", "tempo": "tempogram"}


def zscore(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Per item over all axes but the first, unbiased std; over ``mask``ed [B, T] rows only when given."""
    if mask is None:
        dims = tuple(range(1, x.ndim))
        return (x - x.mean(dims, keepdim=True)) / (x.std(dims, keepdim=True) + eps)
    m = mask.to(x.dtype).view(*mask.shape, *([1] * (x.ndim - 2)))
    n = (m.sum(tuple(range(1, x.ndim))) * (x[0, 0].numel())).clamp(min=2)
    shape = (-1,) + (1,) * (x.ndim - 1)
    mean = (x * m).sum(tuple(range(1, x.ndim))) / n
    var = (((x - mean.view(shape)) * m) ** 2).sum(tuple(range(1, x.ndim))) / (n - 1)
    return (x - mean.view(shape)) / (var.sqrt().view(shape) + eps) * m


class RhythmPredictor(nn.Module):
    """Video -> rhythm curve, one value (ODF) or ``out_dim`` values per second."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 512, depth: int = 12, heads: int = 8,
                 num_classes: int = 3, official: bool = False):
        super().__init__()
        self.official = official
        self.class_embed = nn.Embedding(num_classes, in_dim)
        self.cut_embed = nn.Embedding(2, in_dim)
        self.beat_mlp = nn.Sequential(nn.Linear(1, 128), nn.ReLU(), nn.Linear(128, in_dim))
        self.proj_in = nn.Linear(in_dim, width, bias=False)
        self.blocks = nn.ModuleList(SelfBlock(width, width // heads) for _ in range(depth))
        self.proj_out = nn.Linear(width, out_dim, bias=False)
        self.rotary = Rotary(rotary_dim(width // heads))

    def forward(self, semantic, class_label, scene_cut, pseudo_beat, mask) -> torch.Tensor:
        x = zscore(semantic) if self.official else zscore(semantic, mask)
        x = x + self.cut_embed(scene_cut.long().clamp(0, 1)) + self.beat_mlp(pseudo_beat[..., None].to(x.dtype))
        x = torch.cat([self.class_embed(class_label.long())[:, None], x], 1)
        x = self.proj_in(x)
        attn_mask = None if self.official else torch.cat([mask.new_ones(mask.shape[0], 1), mask], 1)
        for block in self.blocks:
            x = block(x, self.rotary, attn_mask)
        return self.proj_out(x)[:, 1:]


@dataclass
class Conditions:
    """Every condition of a batch; tokens [B, n, cond_dim], masks [B, n] bool."""

    semantic: torch.Tensor
    semantic_mask: torch.Tensor
    predicted_rhythm: torch.Tensor  # [B, T, rhythm_dim], the predictor's raw output
    predicted_tokens: torch.Tensor
    color: torch.Tensor
    color_mask: torch.Tensor
    class_token: torch.Tensor  # [B, 1, C]
    seconds_start: torch.Tensor  # [B, 1, C]
    seconds_total: torch.Tensor  # [B, 1, C]
    true_rhythm: torch.Tensor | None = None  # [B, T, rhythm_dim], normalised (the predictor's target)
    true_tokens: torch.Tensor | None = None
    true_mask: torch.Tensor | None = None

    @property
    def global_cond(self) -> torch.Tensor:
        """[B, 3C]: seconds_start, seconds_total, class."""
        return torch.cat([self.seconds_start, self.seconds_total, self.class_token], -1)[:, 0]


def _pad_to(x: torch.Tensor, T: int) -> torch.Tensor:
    """[B, n, ...] cut or zero-padded to [B, T, ...]."""
    if x.shape[1] >= T:
        return x[:, :T]
    return torch.cat([x, x.new_zeros(x.shape[0], T - x.shape[1], *x.shape[2:])], 1)


class Conditioner(nn.Module):
    """A batch of per-second video features -> every condition the DiT reads (:class:`Conditions`):
    semantic tokens from CLIP, colour tokens, the rhythm curve the predictor makes from the video
    (and, in training, the true one), class and timing embeddings; all padded or cut to
    ``max_seconds``."""

    def __init__(self, config: DiffV2MConfig):
        super().__init__()
        c = config.conditioning
        self.config, self.official = c, config.official
        C, mid = c.cond_dim, 512
        self.semantic_in = nn.Linear(c.semantic_dim, mid) if c.semantic_dim != mid else nn.Identity()
        self.semantic_out = nn.Linear(mid, C)
        self.predictor = RhythmPredictor(c.semantic_dim, c.rhythm_dim, c.predictor_width, c.predictor_depth,
                                         c.predictor_heads, c.num_classes, official=config.official)
        self.rhythm_in, self.rhythm_out = nn.Linear(c.rhythm_dim, mid), nn.Linear(mid, C)
        self.color_in, self.color_out = nn.Linear(c.color_dim, 1024), nn.Linear(1024, C)
        self.class_embed = nn.Embedding(c.num_classes, C)
        self.seconds_start = NumberEmbedder(C, 0, c.seconds_max)
        self.seconds_total = NumberEmbedder(C, 0, c.seconds_max)

    def rhythm_tokens(self, rhythm: torch.Tensor) -> torch.Tensor:
        return self.rhythm_out(self.rhythm_in(rhythm))

    def forward(self, batch: dict) -> Conditions:
        """``batch``: ``clip`` [B, T, D], ``color`` [B, T, 3072], ``scene_cut`` and ``pseudo_beat``
        [B, T], ``mask`` [B, T] (True on real seconds), ``class_label`` [B] (2 when absent),
        ``seconds_start`` and ``seconds_total`` [B]; the true rhythm (``odf`` [B, T], ``mel`` or
        ``tempogram`` [B, T, 16]) when training."""
        T = self.config.max_seconds
        dtype = self.semantic_out.weight.dtype  # inputs follow the weights (float32, bf16, fp16)
        semantic = _pad_to(batch["clip"].to(dtype), T)
        B = semantic.shape[0]
        mask = _pad_to(batch["mask"].bool(), T)
        class_label = batch.get("class_label")
        class_label = torch.full((B,), 2, device=semantic.device) if class_label is None else class_label.long()
        class_label = class_label.clamp(0, self.config.num_classes - 1)
        scene_cut, pseudo_beat = _pad_to(batch["scene_cut"], T), _pad_to(batch["pseudo_beat"].to(dtype), T)

        predicted = self.predictor(semantic, class_label, scene_cut, pseudo_beat, mask)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.official):
            predicted_tokens = self.rhythm_tokens(predicted)
        color = _pad_to(batch["color"].to(dtype), T)
        cond = Conditions(
            semantic=self.semantic_out(self.semantic_in(semantic)), semantic_mask=mask,
            predicted_rhythm=predicted, predicted_tokens=predicted_tokens,
            color=self.color_out(self.color_in(color)), color_mask=mask,
            class_token=self.class_embed(class_label)[:, None],
            seconds_start=self.seconds_start(torch.as_tensor(batch["seconds_start"], device=semantic.device)),
            seconds_total=self.seconds_total(torch.as_tensor(batch["seconds_total"], device=semantic.device)))
        key = RHYTHM_KEYS[self.config.rhythm_type]
        if batch.get(key) is not None:
            true = _pad_to(batch[key].to(dtype), T)
            true = true[..., None] if true.ndim == 2 else true
            true_mask = _pad_to(batch.get("rhythm_mask", batch["mask"]).bool(), T)
            cond.true_rhythm = zscore(true) if self.official else zscore(true, true_mask)
            cond.true_tokens, cond.true_mask = self.rhythm_tokens(cond.true_rhythm), true_mask
        return cond
