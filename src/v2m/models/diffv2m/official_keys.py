"""The official Diff-V2M checkpoint (a Lightning ``state_dict``) -> v2m's module names.

The published ``model_odf.ckpt`` holds the training wrapper: the online DiT
(``diffusion.model.model.*``), its EMA copy (``diffusion_ema.ema_model.model.*``), the
conditioners (``diffusion.conditioner.conditioners.*``), the Oobleck VAE
(``diffusion.pretransform.model.*``, see :mod:`.vae`) and bookkeeping. The official inference
samples with ``module.diffusion_ema.model``, which (ema-pytorch 0.2.3, ``include_online_model``
False) is the online DiT, not the average: ``weights="online"`` (default) reproduces the
published outputs; ``weights="ema"`` loads the average instead.

Every key is accounted for: mapped, or dropped for a stated reason (unused projections the
official conditioners create but never call, LayerNorm ``beta`` buffers that must be zero,
rotary frequency tables that we compute, EMA bookkeeping, loss weights). Anything else is an
error, as is a key our model expects and the checkpoint lacks.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch

from ...errors import V2MError

DIT_PREFIX = {"online": "diffusion.model.model.", "ema": "diffusion_ema.ema_model.model."}
COND_PREFIX = "diffusion.conditioner.conditioners."
VAE_PREFIX = "diffusion.pretransform.model."

_BLOCK = [  # official name inside a transformer block -> ours
    (r"pre_norm\.gamma", "attn_norm.weight"), (r"cross_attend_norm\.gamma", "cross_norm.weight"),
    (r"color_norm\.gamma", "color_norm.weight"), (r"ff_norm\.gamma", "ff_norm.weight"),
    (r"self_attn\.to_qkv\.weight", "attn.qkv.weight"), (r"self_attn\.to_out\.weight", "attn.out.weight"),
    (r"cross_attn0\.to_(q|kv|out)\.weight", r"color_attn.\1.weight"),
    (r"cross_attn1\.to_(q|kv|out)\.weight", r"semantic_attn.\1.weight"),
    (r"cross_attn2\.to_(q|kv|out)\.weight", r"rhythm_attn.\1.weight"),
    (r"t_linear\.(weight|bias)", r"fusion.time_proj.\1"),
    (r"FiLM_gamma_sem\.([02])\.(weight|bias)", r"fusion.gamma_semantic.\1.\2"),
    (r"FiLM_beta_sem\.([02])\.(weight|bias)", r"fusion.beta_semantic.\1.\2"),
    (r"FiLM_gamma_rhy\.([02])\.(weight|bias)", r"fusion.gamma_rhythm.\1.\2"),
    (r"FiLM_beta_rhy\.([02])\.(weight|bias)", r"fusion.beta_rhythm.\1.\2"),
    (r"gate\.([02])\.(weight|bias)", r"fusion.gate.\1.\2"),
    (r"ff\.ff\.0\.proj\.(weight|bias)", r"ff.proj.\1"), (r"ff\.ff\.2\.(weight|bias)", r"ff.out.\1"),
]
_DIT = [
    (r"timestep_features\.weight", "time_features.weight"),
    (r"to_timestep_embed\.([02])\.(weight|bias)", r"time_embed.\1.\2"),
    (r"to_cond_embed\.([02])\.weight", r"cond_embed.\1.weight"),
    (r"to_global_embed\.([02])\.weight", r"global_embed.\1.weight"),
    (r"preprocess_conv\.weight", "pre_conv.weight"), (r"postprocess_conv\.weight", "post_conv.weight"),
    (r"transformer\.project_in\.weight", "proj_in.weight"), (r"transformer\.project_out\.weight", "proj_out.weight"),
]
_COND = [
    (r"semantic\.proj_out1\.(weight|bias)", r"semantic_in.\1"), (r"semantic\.proj_out2\.(weight|bias)", r"semantic_out.\1"),
    (r"semantic\.extractor\.class_embedding\.weight", "predictor.class_embed.weight"),
    (r"semantic\.extractor\.scene_embedding\.weight", "predictor.cut_embed.weight"),
    (r"semantic\.extractor\.pseudo_linear\.([02])\.(weight|bias)", r"predictor.beat_mlp.\1.\2"),
    (r"semantic\.extractor\.transformer\.project_in\.weight", "predictor.proj_in.weight"),
    (r"semantic\.extractor\.transformer\.project_out\.weight", "predictor.proj_out.weight"),
    (r"rhythm\.proj_out1\.(weight|bias)", r"rhythm_in.\1"), (r"rhythm\.proj_out2\.(weight|bias)", r"rhythm_out.\1"),
    (r"color\.proj_out1\.(weight|bias)", r"color_in.\1"), (r"color\.proj_out2\.(weight|bias)", r"color_out.\1"),
    (r"class\.int_embedder\.weight", "class_embed.weight"),
    (r"(seconds_start|seconds_total)\.embedder\.embedding\.0\.weights", r"\1.freqs"),
    (r"(seconds_start|seconds_total)\.embedder\.embedding\.1\.(weight|bias)", r"\1.proj.\2"),
]
_DROPPED = [  # (pattern, why)
    (r"(semantic|rhythm|color)\.proj_out\.(weight|bias)", "created by the official conditioner base class, never used"),
    (r".*\.beta", "LayerNorm bias buffer, zero in the official code (checked)"),
    (r".*rotary_pos_emb\.inv_freq", "rotary frequencies, computed (checked)"),
]


def _rename(name: str, rules) -> str | None:
    for pattern, target in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, target, name)
    return None


def _block_rename(name: str, layers_prefix: str) -> str | None:
    m = re.fullmatch(re.escape(layers_prefix) + r"(\d+)\.(.+)", name)
    if not m:
        return None
    inner = _rename(m.group(2), _BLOCK)
    return None if inner is None else f"blocks.{m.group(1)}.{inner}"


def _dropped(name: str, value: torch.Tensor) -> bool:
    for pattern, _ in _DROPPED:
        if re.fullmatch(pattern, name):
            if name.endswith(".beta") and value.device.type != "meta" and bool(value.abs().max() > 0):
                raise V2MError(f"LayerNorm beta {name} is not zero; this is not a Diff-V2M checkpoint")
            return True
    return False


def convert_official(state_dict: Mapping[str, torch.Tensor], weights: str = "online") -> dict[str, torch.Tensor]:
    """Our ``DiffV2M`` state dict (``conditioner.*``, ``dit.*``) from an official one; the VAE
    keys are left to :func:`v2m.models.diffv2m.vae.convert_official_vae`."""
    if weights not in DIT_PREFIX:
        raise ValueError("weights must be 'online' (as the official inference) or 'ema'")
    dit_prefix, other = DIT_PREFIX[weights], DIT_PREFIX["ema" if weights == "online" else "online"]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith((VAE_PREFIX, other, "losses.")) or key in ("diffusion_ema.initted", "diffusion_ema.step"):
            continue  # the VAE (converted separately), the other DiT copy, bookkeeping
        if key.startswith(dit_prefix):
            name = key[len(dit_prefix):]
            new = _rename(name, _DIT) or _block_rename(name, "transformer.layers.")
            prefix = "dit."
        elif key.startswith(COND_PREFIX):
            name = key[len(COND_PREFIX):]
            new = _rename(name, _COND) or _block_rename(name, "semantic.extractor.transformer.layers.")
            prefix = "conditioner." if new is None or not new.startswith("blocks.") else "conditioner.predictor."
        else:
            unknown.append(key)
            continue
        if new is not None:
            out[prefix + new] = value
        elif not _dropped(name, value):
            unknown.append(key)
    if unknown:
        raise V2MError(f"{len(unknown)} checkpoint keys have no place in Diff-V2M, e.g. {', '.join(unknown[:4])}")
    return out

