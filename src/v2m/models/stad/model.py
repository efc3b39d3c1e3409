"""ControllableV2M: video encoder -> music-feature curves -> condition tokens -> MusicGen LM.

:class:`Stad` holds the video encoder (:mod:`.encoder`), four per-second heads that predict the
pitch, chroma, loudness and spectral-centroid curves, the Linear that turns the concatenated
curves into one condition token per second, MusicGen's language model (transformers
``MusicgenForCausalLM``, from scratch or from a published decoder: :func:`musicgen_decoder`)
over EnCodec tokens in the delay pattern (:func:`delay_pattern`, :func:`undelay`), and the
alignment transformer of the training loss. :meth:`Stad.training_loss` computes every term of
the loss, with padded seconds and token frames masked out of each; :meth:`Stad.conditions_for`
and :meth:`Stad.generate` sample with classifier-free guidance and a KV cache. The parts, the
loss and the defects of the official code fixed here: docs/stad.md.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import MUSIC_FEATURES, StadConfig
from .encoder import VideoEncoder, apply_video_controls, normalise_hist

TARGET_KEYS = {"pitch": "pitch", "chroma": "chroma", "loudness": "loudness", "spectral": "spectral_centroid"}
VIDEO_KEYS = ("semantic", "hist", "area", "start", "move")


def delay_pattern(codes: torch.Tensor, special: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes [B, K, F] -> the delayed sequence [B, K, F + K - 1] (codebook k shifted right by k,
    ``special`` elsewhere) and its validity mask."""
    B, K, n = codes.shape
    out = codes.new_full((B, K, n + K - 1), special)
    valid = torch.zeros(B, K, n + K - 1, dtype=torch.bool, device=codes.device)
    for k in range(K):
        out[:, k, k : k + n] = codes[:, k]
        valid[:, k, k : k + n] = True
    return out, valid


def undelay(sequence: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`delay_pattern`: [B, K, >= n + K - 1] -> [B, K, n]."""
    return torch.stack([sequence[:, k, k : k + n] for k in range(sequence.shape[1])], 1)


def musicgen_decoder(source: str):
    """The language model (decoder) of a published MusicGen (``facebook/musicgen-small``,
    ``-medium``, a hub id or a local folder); its text encoder and EnCodec are dropped."""
    from transformers import MusicgenForConditionalGeneration

    from ...weights import load_pretrained

    return load_pretrained(MusicgenForConditionalGeneration, source, "MusicGen").decoder


class Stad(nn.Module):
    """ControllableV2M: the video encoder, the four music-feature heads, the
    condition-token projection, MusicGen's language model over EnCodec tokens, and the
    cross-modal alignment transformer used by the training loss. Controls act on the video
    streams (:meth:`video_features`) and on the curves (:meth:`condition_tokens`)."""

    def __init__(self, config: StadConfig, lm: nn.Module | None = None):
        super().__init__()
        from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

        self.config = config
        v, c = config.video, config.lm
        self.encoder = VideoEncoder(v)
        self.heads = nn.ModuleDict({name: nn.Linear(v.width, ch) for name, ch in MUSIC_FEATURES.items()})
        self.condition = nn.Linear(sum(MUSIC_FEATURES.values()), c.hidden_size)
        self._init_condition()
        if lm is None and c.init_from:
            lm = musicgen_decoder(c.init_from)
            got = lm.config
            if (got.hidden_size, got.num_hidden_layers, got.num_attention_heads, got.num_codebooks, got.vocab_size) != \
                    (c.hidden_size, c.num_layers, c.num_heads, c.num_codebooks, c.card):
                raise ValueError(f"{c.init_from} has a {got.hidden_size}-wide, {got.num_hidden_layers}-layer decoder; "
                                 "the config asks for another (use StadConfig() for small, StadConfig.medium())")
        if lm is None:
            lm = MusicgenForCausalLM(MusicgenDecoderConfig(
                vocab_size=c.card, num_codebooks=c.num_codebooks, hidden_size=c.hidden_size,
                num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads, ffn_dim=c.ffn_dim,
                dropout=c.dropout, max_position_embeddings=max(2048, c.frame_rate * v.max_seconds + 8),
                pad_token_id=c.card, bos_token_id=c.card))
        self.lm = lm
        self.video_proj = nn.Linear(v.width, c.hidden_size)
        layer = nn.TransformerDecoderLayer(c.hidden_size, 4, dim_feedforward=c.hidden_size, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.align = nn.TransformerDecoder(layer, 2)

    @torch.no_grad()
    def _init_condition(self) -> None:
        """Start every curve with an equal share of the condition token.

        The token is one Linear over the concatenated curves (as the official code), whose
        default initialisation gives each input channel the same weight: the 1025 pitch channels
        then outweigh loudness and spectral centroid (one channel each) about thirty to one
        (sqrt(1025)), and a loudness control barely moves the token. Here the weights of a curve
        with ``n`` channels are drawn with variance 1 / (4 n), so for curves of unit variance each
        of the four contributes the same variance; the function class (and the checkpoint
        layout) is unchanged."""
        start = 0
        for channels in MUSIC_FEATURES.values():
            nn.init.normal_(self.condition.weight[:, start : start + channels], std=(len(MUSIC_FEATURES) * channels) ** -0.5)
            start += channels
        nn.init.zeros_(self.condition.bias)

    # --- video -> curves -> condition tokens ---------------------------------------------------

    def video_features(self, batch: dict, video_controls=(), generator=None) -> torch.Tensor:
        """[B, T, width] from the batch's object streams (``semantic``, ``hist`` raw counts,
        ``area``, ``start``, ``move``, ``time_mask``), after the video controls."""
        streams = {k: batch[k].float() for k in VIDEO_KEYS}
        streams["hist"] = normalise_hist(streams["hist"])
        if video_controls:
            streams = apply_video_controls(streams, video_controls)
        return self.encoder(*(streams[k] for k in VIDEO_KEYS), time_mask=batch.get("time_mask"), generator=generator)

    def curves(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """The predicted music-feature curves, [B, T, channels] each."""
        return {name: head(video) for name, head in self.heads.items()}

    def condition_tokens(self, curves: dict[str, torch.Tensor], music_controls=()) -> torch.Tensor:
        """[B, T, hidden]: the curves (scaled by the music controls) as one token per second."""
        scaled = dict(curves)
        for c in music_controls:
            for name in scaled:
                if c.applies_to(name):
                    scaled[name] = scaled[name] * c.weight
        return self.condition(torch.cat([scaled[name] for name in MUSIC_FEATURES], -1))

    # --- the LM ----------------------------------------------------------------------------------

    def _input_embeddings(self, inputs: torch.Tensor) -> torch.Tensor:
        """The sum of the codebooks' embeddings of ``inputs`` [B, K, S] -> [B, S, hidden]."""
        embed = self.lm.model.decoder.embed_tokens
        return sum(embed[k](inputs[:, k]) for k in range(inputs.shape[1]))

    def lm_logits(self, inputs: torch.Tensor, conditions: torch.Tensor, condition_mask: torch.Tensor | None = None,
                  **kwargs):
        """Logits [B, K, S, card] for ``inputs`` [B, K, S] (teacher forcing), and the outputs."""
        B, K, S = inputs.shape
        out = self.lm(input_ids=inputs.reshape(B * K, S), encoder_hidden_states=conditions,
                      encoder_attention_mask=None if condition_mask is None else condition_mask.long(),
                      output_hidden_states=True, **kwargs)
        return out.logits.reshape(B, K, S, -1), out

    def alignment_loss(self, music: torch.Tensor, video: torch.Tensor, seconds: int, rng: random.Random) -> torch.Tensor:
        """The cross-modal alignment loss: L1 between the change of the mean music embedding from
        second s to second e and its prediction from the video of [s, e)."""
        fr = self.config.lm.frame_rate
        s = rng.randint(0, seconds - 2)
        e = rng.randint(s + 1, seconds - 1)
        start = music[:, s * fr : (s + 1) * fr].mean(1, keepdim=True)
        end = music[:, e * fr : (e + 1) * fr].mean(1, keepdim=True)
        predicted = self.align(self.video_proj(video[:, s:e]), start).sum(1, keepdim=True)
        return F.l1_loss(predicted, end - start)

    def training_loss(self, batch: dict, generator: torch.Generator | None = None, seed: int | None = None):
        """All terms of the loss in docs/stad.md for one batch. ``batch``: the
        object streams, the true curves (``pitch`` [B, T, 1025], ``chroma`` [B, T, 12],
        ``loudness`` and ``spectral_centroid`` [B, T]), ``mask`` [B, T] (real seconds), ``codes``
        [B, 4, 50 T] and ``codes_mask`` [B, 50 T]."""
        rng = random.Random(seed if seed is not None else int(torch.randint(0, 2**31, (1,), generator=generator)))
        card = self.config.lm.card
        video = self.video_features(batch, generator=generator)
        T = video.shape[1]
        mask = batch["mask"].bool()[:, :T]
        curves = self.curves(video)
        losses = {}
        m = mask.float()[..., None]
        for name, key in TARGET_KEYS.items():
            target = batch[key].float()
            target = target[..., None] if target.ndim == 2 else target
            err = (curves[name] - target[:, :T]).abs() * m
            losses[name] = err.sum() / (m.sum() * err.shape[-1]).clamp(min=1)
        fed = curves
        if self.training and rng.random() < self.config.dirichlet_p:
            weights = 4 * np.random.default_rng(rng.getrandbits(32)).dirichlet([1, 1, 1, 1])
            fed = {name: curves[name] * float(w) for name, w in zip(MUSIC_FEATURES, weights)}
        conditions = self.condition_tokens(fed)

        codes = batch["codes"].long()
        codes_mask = batch.get("codes_mask")
        delayed, valid = delay_pattern(codes, card)
        if codes_mask is not None:
            valid = valid & delay_pattern(codes_mask.long()[:, None].expand_as(codes), 0)[0].bool()
        inputs = torch.cat([torch.full_like(delayed[..., :1], card), delayed[..., :-1]], -1)  # BOS, shifted right
        logits, out = self.lm_logits(inputs, conditions, mask)
        targets = delayed.masked_fill(~valid, 0)  # the special token is never a target
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        losses["ce"] = (ce * valid.reshape(-1)).sum() / valid.sum().clamp(min=1)
        seconds = int(mask.sum(1).min())
        if seconds >= 2:
            losses["align_input"] = self.alignment_loss(self._input_embeddings(inputs), video, seconds, rng)
            losses["align_output"] = self.alignment_loss(out.hidden_states[-1], video, seconds, rng)
        losses["loss"] = sum(losses.values())
        return losses

    # --- generation ------------------------------------------------------------------------------

    def conditions_for(self, batch: dict, video_controls=(), music_controls=(), guidance: bool = True):
        """Condition tokens for ``batch`` and, with ``guidance``, the unconditional ones (every
        video stream dropped, as feature-free guidance trains the model to expect): [2B, T, H]
        (conditional first), the seconds mask, and the predicted curves."""
        video = self.video_features(batch, video_controls)
        curves = self.curves(video)
        cond = self.condition_tokens(curves, music_controls)
        mask = batch.get("mask", batch.get("time_mask"))
        mask = torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device) if mask is None else mask.bool()
        if guidance:
            empty = {**batch, **{k: torch.zeros_like(batch[k]) for k in VIDEO_KEYS}}
            uncond = self.condition_tokens(self.curves(self.video_features(empty)))
            cond, mask = torch.cat([cond, uncond]), torch.cat([mask, mask])
        return cond, mask, curves

    @torch.no_grad()
    def generate(self, conditions: torch.Tensor, mask: torch.Tensor, frames: int, cfg_scale: float = 3.0,
                 prompt: torch.Tensor | None = None, temperature: float = 1.0, top_k: int = 250,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample EnCodec tokens [B, K, frames] in the delay pattern with a KV cache.

        ``conditions`` / ``mask``: from :meth:`conditions_for` ([2B, ...] with guidance when
        ``cfg_scale`` != 1, the unconditional half second: logits = uncond + scale (cond - uncond)).
        ``prompt`` [B, K, P]: tokens the result must start with (continuing a previous window);
        they are kept as they are and the model continues after them."""
        K, card = self.config.lm.num_codebooks, self.config.lm.card
        guided = cfg_scale != 1.0
        B = conditions.shape[0] // 2 if guided else conditions.shape[0]
        device = conditions.device
        steps = frames + K - 1
        seq = torch.full((B, K, steps + 1), card, dtype=torch.long, device=device)  # position 0: BOS
        forced = torch.zeros(B, K, steps + 1, dtype=torch.bool, device=device)
        if prompt is not None:
            P = min(prompt.shape[-1], frames)
            for k in range(K):
                seq[:, k, 1 + k : 1 + k + P] = prompt[:, k, :P]
                forced[:, k, 1 + k : 1 + k + P] = True
        past = None
        for s in range(steps):
            step_in = seq[:, :, s : s + 1]
            step_in = torch.cat([step_in, step_in]) if guided else step_in
            logits, out = self.lm_logits(step_in, conditions, mask, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = logits[:, :, -1].float()  # [B(x2), K, card]
            if guided:
                c, u = logits.chunk(2)
                logits = u + (c - u) * cfg_scale
            logits = logits / max(temperature, 1e-5)
            if top_k:
                kth = logits.topk(min(top_k, logits.shape[-1]), -1).values[..., -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = logits.softmax(-1).reshape(B * K, -1)
            token = torch.multinomial(probs, 1, generator=generator).reshape(B, K)
            position = s + 1
            for k in range(K):  # the delay pattern: codebook k is special before step k and after its end
                special = position - 1 - k < 0 or position - 1 - k >= frames
                if special:
                    token[:, k] = card
            keep = forced[:, :, position]
            seq[:, :, position] = torch.where(keep, seq[:, :, position], token)
        return undelay(seq[:, :, 1:], frames)
