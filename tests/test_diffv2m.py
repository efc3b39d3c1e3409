"""Diff-V2M: the official config and checkpoint layout, the golden outputs of the official code,
and the model's behaviour (FiLM_choose switch, guidance, the fixed defects)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from v2m.models.diffv2m import DiffV2M, DiffV2MConfig, convert_official
from v2m.models.diffv2m.convert import load_into
from v2m.models.diffv2m.sampling import v_ddim

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "diffv2m_official"
GOLDEN = OFFICIAL / "golden"


def _close(ours: torch.Tensor, golden: torch.Tensor, name: str) -> None:
    """The fixture's tolerance: max |diff| <= 1e-4 * max |golden|."""
    diff, scale = float((ours.float() - golden.float()).abs().max()), float(golden.abs().max())
    assert diff <= 1e-4 * max(scale, 1e-12), f"{name}: max |diff| {diff:.2e} vs max |golden| {scale:.2e}"


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    state = torch.load(GOLDEN / "golden_A.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    config = DiffV2MConfig.from_official(json.loads((GOLDEN / "model_config.json").read_text()), official=True)
    inputs, outputs = load_file(GOLDEN / "inputs.safetensors"), load_file(GOLDEN / "outputs.safetensors")

    def pad(name):
        xs = [inputs[f"{name}.{i}"] for i in range(2)]
        return torch.stack([torch.cat([x, x.new_zeros((30 - len(x),) + tuple(x.shape[1:]))]) for x in xs])

    lengths = [len(inputs[f"meta.semantic.{i}"]) for i in range(2)]
    batch = {"clip": pad("meta.semantic"), "color": pad("meta.color"), "scene_cut": pad("meta.scene_cut"),
             "pseudo_beat": pad("meta.pseudo_beat"), "odf": pad("meta.rhythm")[..., 0],
             "mask": torch.stack([torch.arange(30) < n for n in lengths]), "class_label": inputs["meta.class"],
             "seconds_start": inputs["meta.seconds_start"], "seconds_total": inputs["meta.seconds_total"]}
    return state, config, inputs, outputs, batch


def _model(state, config, weights="online"):
    model = DiffV2M(config).eval()
    load_into(model, convert_official(state, weights))
    return model


def test_golden_conditioner_and_dit(golden):
    state, config, inputs, out, batch = golden
    model = _model(state, config)
    with torch.no_grad():
        c = model.conditioner(batch)
        for name, ours in [("semantic.tokens", c.semantic), ("fake_rhythm_loss", c.predicted_rhythm),
                           ("fake_rhythm.tokens", c.predicted_tokens), ("real_rhythm_loss", c.true_rhythm),
                           ("rhythm.tokens", c.true_tokens), ("rhythm.mask", c.true_mask),
                           ("color.tokens", c.color), ("class.tokens", c.class_token),
                           ("seconds_start.tokens", c.seconds_start), ("seconds_total.tokens", c.seconds_total)]:
            _close(ours, out[f"cond.{name}"], name)
        ctx, g = model.contexts(c)
        _close(ctx.semantic, out["cond_inputs.cross_attn_cond.0"], "semantic context")
        _close(ctx.rhythm, out["cond_inputs.cross_attn_cond.2"], "predicted rhythm context")
        _close(g, out["cond_inputs.global_cond"], "global condition")
        x, t = inputs["dit.x"], inputs["dit.t"]  # t = 0.7 and 0.1: both sides of the switch
        _close(model(x, t, ctx, g, 1.0), out["dit.out_cfg1"], "DiT")
        _close(model(x, t, ctx, g, 3.0), out["dit.out_cfg3"], "DiT with CFG 3")
        ema = _model(state, config, "ema")
        _close(ema(x, t, ctx, g, 1.0), out["dit.out_cfg1_ema_weights"], "EMA DiT")
        assert (ema(x, t, ctx, g, 1.0) - out["dit.out_cfg1"]).abs().max() > 0.1  # the copies differ


def test_golden_sampling(golden):
    state, config, inputs, out, batch = golden
    model = _model(state, config)
    steps = {}
    with torch.no_grad():
        ctx, g = model.contexts(model.conditioner(batch))
        latents = v_ddim(lambda x, t: model(x, t, ctx, g, 3.0), inputs["sample.noise"], 5,
                         callback=lambda i, t, x0, x: steps.update({i: (t, x0, x)}))
    assert [round(s[0], 6) for s in steps.values()] == pytest.approx(out["sample.schedule_t"].tolist())
    for i, (_, x0, x) in steps.items():
        _close(x0, out[f"sample.step{i}.denoised"], f"step {i} denoised")
        _close(x, out[f"sample.step{i}.x_next"], f"step {i} next")
    _close(latents, out["sample.latents"], "latents")


def _official_keys(name: str) -> dict[str, tuple]:
    data = json.loads((OFFICIAL / name).read_text())
    return {k["name"]: tuple(k["shape"]) for k in data["keys"]}


def test_published_config_and_checkpoint_layout_map_completely():
    config = DiffV2MConfig.from_official(json.loads((OFFICIAL / "model_config_odf.json").read_text()), official=True)
    assert (config.dit.embed_dim, config.dit.depth, config.dit.num_heads, config.latent_length) == (1536, 24, 24, 645)
    with torch.device("meta"):
        model = DiffV2M(config)
        keys = _official_keys("diffv2m_odf_state_dict.json")
        fake = {k: torch.empty(shape) for k, shape in keys.items()}
        for weights in ("online", "ema"):
            converted = convert_official(fake, weights)
            load_into(model, converted)  # strict: every parameter filled, shapes equal
    n = sum(p.numel() for p in model.parameters())
    assert 1.2e9 < n < 1.6e9, n  # the 1.4 B published model (DiT + conditioners)
    with pytest.raises(Exception, match="no place in Diff-V2M"):
        convert_official({**fake, "diffusion.model.model.surprise.weight": torch.empty(1)})
    del fake["diffusion.model.model.transformer.layers.3.ff.ff.2.bias"]
    with pytest.raises(Exception, match="1 missing"):
        load_into(model, convert_official(fake))


def test_config_round_trip_and_validation(tmp_path):
    official = json.loads((OFFICIAL / "model_config_odf.json").read_text())
    config = DiffV2MConfig.from_official(official)
    assert DiffV2MConfig.from_official(config.to_official()) == config
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert DiffV2MConfig.load(path) == config
    assert DiffV2MConfig.load(OFFICIAL / "model_config_odf.json", official=True).official
    official["model"]["diffusion"]["config"]["attention_weight_type"] = "mystery"
    with pytest.raises(ValueError, match="attention_weight_type"):
        DiffV2MConfig.from_official(official)
