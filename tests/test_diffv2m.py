"""Diff-V2M: the official config and checkpoint layout, the golden outputs of the official code,
and the model's behaviour (FiLM_choose switch, guidance, the fixed defects)."""

from __future__ import annotations

import json

import pytest
import torch

from v2m.models.diffv2m import DiffV2M, DiffV2MConfig, convert_official
from v2m.models.diffv2m.sampling import v_ddim
from v2m.weights import load_matching

from fixture_paths import GOLDEN, OFFICIAL, golden_checkpoint


def _close(ours: torch.Tensor, golden: torch.Tensor, name: str) -> None:
    """The fixture's tolerance: max |diff| <= 1e-4 * max |golden|."""
    diff, scale = float((ours.float() - golden.float()).abs().max()), float(golden.abs().max())
    assert diff <= 1e-4 * max(scale, 1e-12), f"{name}: max |diff| {diff:.2e} vs max |golden| {scale:.2e}"


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    state = torch.load(golden_checkpoint(), map_location="cpu", weights_only=True)["state_dict"]
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
    load_matching(model, convert_official(state, weights), "Diff-V2M")
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
            load_matching(model, converted, "Diff-V2M")  # strict: every parameter filled, shapes equal
    n = sum(p.numel() for p in model.parameters())
    assert 1.2e9 < n < 1.6e9, n  # the 1.4 B published model (DiT + conditioners)
    with pytest.raises(Exception, match="no place in Diff-V2M"):
        convert_official({**fake, "diffusion.model.model.surprise.weight": torch.empty(1)})
    del fake["diffusion.model.model.transformer.layers.3.ff.ff.2.bias"]
    with pytest.raises(Exception, match="1 missing"):
        load_matching(model, convert_official(fake), "Diff-V2M")



def test_one_strict_loader_names_what_differs():
    from v2m.errors import WeightsUnavailable

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_matching(model, {**state, "unused.w": torch.zeros(1)}, "Test", ignore=("unused.",))  # a counter may be absent
    with torch.device("meta"):
        empty = torch.nn.Linear(2, 3)
    load_matching(empty, {k[2:]: v for k, v in state.items() if k.startswith("0.")}, "Test")
    assert torch.equal(empty.weight, model[0].weight)  # a module built on meta takes the tensors as they are
    bad = {**state, "extra": torch.zeros(1), "0.weight": torch.zeros(4, 2)}
    del bad["0.bias"]
    with pytest.raises(WeightsUnavailable) as err:
        load_matching(model, bad, "Test", "w.safetensors")
    assert str(err.value) == ("w.safetensors: the Test checkpoint does not fit the model: missing 0.bias; unexpected "
                              "extra; misshapen 0.weight (1 missing, 1 unexpected, 1 misshapen)")

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


# --- behaviour, on tiny models of the same code -----------------------------------------------

def tiny_config(**changes) -> DiffV2MConfig:
    from v2m.models.diffv2m import ConditioningConfig, DiTConfig

    cond = ConditioningConfig(cond_dim=64, semantic_dim=16, color_dim=24, predictor_width=64, predictor_depth=1,
                              predictor_heads=2)
    return DiffV2MConfig(conditioning=cond, dit=DiTConfig(io_channels=4, embed_dim=64, depth=2, num_heads=2),
                         **changes)


def randomised(model: DiffV2M, seed: int = 0) -> DiffV2M:
    """Weights that make every path matter (the published init zeroes the branch outputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
            else:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def tiny_batch(B: int = 2, T: int = 30, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = [T, T - 7][:B] + [T] * max(0, B - 2)
    return {"clip": torch.randn(B, T, 16, generator=g), "color": torch.rand(B, T, 24, generator=g),
            "scene_cut": (torch.rand(B, T, generator=g) > 0.8).long(), "pseudo_beat": torch.rand(B, T, generator=g),
            "odf": torch.randn(B, T, generator=g), "mask": torch.stack([torch.arange(T) < n for n in lengths]),
            "seconds_start": torch.zeros(B), "seconds_total": torch.tensor([float(n) for n in lengths])}


def _dit_inputs(model, batch, L=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    ctx, glob = model.contexts(model.conditioner(batch))
    return torch.randn(len(glob), 4, L, generator=g), ctx, glob


def _replace(ctx, **streams):
    from dataclasses import replace

    return replace(ctx, **{k: torch.randn_like(getattr(ctx, k)) for k in streams})


def test_film_choose_switches_at_t_0_2():
    model = randomised(DiffV2M(tiny_config()))
    with torch.no_grad():
        x, ctx, g = _dit_inputs(model, tiny_batch())
        t = torch.tensor([0.2001, 0.2])  # float32(0.2) is not > 0.2: the rhythmic branch
        base = model(x, t, ctx, g)
        other_rhythm = model(x, t, _replace(ctx, rhythm=1), g)
        other_semantic = model(x, t, _replace(ctx, semantic=1), g)
    assert torch.equal(base[0], other_rhythm[0]) and not torch.allclose(base[1], other_rhythm[1], atol=1e-4)
    assert torch.equal(base[1], other_semantic[1]) and not torch.allclose(base[0], other_semantic[0], atol=1e-4)


def test_guidance_scale_one_is_the_conditional_output():
    model = randomised(DiffV2M(tiny_config()))
    with torch.no_grad():
        x, ctx, g = _dit_inputs(model, tiny_batch())
        t = torch.tensor([0.7, 0.1])
        both = model.dit._forward(torch.cat([x, x]), torch.cat([t, t]), ctx.doubled(), torch.cat([g, g]))
        cond, uncond = both.chunk(2)
        torch.testing.assert_close(model(x, t, ctx, g, 1.0), cond, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(x, t, ctx, g, 2.5), uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
        # the unconditional half does not see the contexts at all
        other = model.dit._forward(torch.cat([x, x]), torch.cat([t, t]),
                                   _replace(ctx, semantic=1, rhythm=1, color=1).doubled(), torch.cat([g, g]))
        torch.testing.assert_close(other.chunk(2)[1], uncond)


def test_colour_reaches_the_dit_in_the_fixed_model_only():
    batch, brighter = tiny_batch(), tiny_batch()
    brighter["color"] = brighter["color"] * 3
    for official, changes in ((False, True), (True, False)):
        model = randomised(DiffV2M(tiny_config(official=official)))
        with torch.no_grad():
            x, ctx, g = _dit_inputs(model, batch)
            _, ctx2, _ = _dit_inputs(model, brighter)
            t = torch.tensor([0.5, 0.1])
            differs = not torch.allclose(model(x, t, ctx, g), model(x, t, ctx2, g), atol=1e-5)
        assert differs == changes, f"official={official}"


def test_rhythm_loss_counts_every_clip_and_only_real_seconds():
    model = randomised(DiffV2M(tiny_config()))
    batch = tiny_batch(B=3)
    batch["mask"][2, 20:] = False  # the third clip: 20 real seconds
    cond = model.conditioner(batch)
    losses = model.training_loss(batch, torch.randn(3, 4, 20), generator=torch.Generator().manual_seed(0))
    m = batch["mask"]
    err = ((cond.predicted_rhythm[..., 0] - cond.true_rhythm[..., 0]) ** 2)[m]
    torch.testing.assert_close(losses["rhythm"], err.mean())
    # padded seconds of the true rhythm are zero after the masked z-score, real ones have mean 0
    assert float(cond.true_rhythm[2, 20:].abs().max()) == 0 and abs(float(cond.true_rhythm[2, :20].mean())) < 1e-5


def test_loss_falls_when_overfitting_two_clips():
    torch.manual_seed(0)
    model = DiffV2M(tiny_config())
    batch, latents = tiny_batch(), torch.randn(2, 4, 20)

    def loss_at(seed):
        with torch.no_grad():
            return model.training_loss(batch, latents, generator=torch.Generator().manual_seed(seed))

    before = [loss_at(s) for s in range(8)]
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(300):
        loss = model.training_loss(batch, latents, epoch=40, generator=torch.Generator().manual_seed(100 + step))
        optim.zero_grad()
        loss["loss"].backward()
        optim.step()
    model.eval()
    after = [loss_at(s) for s in range(8)]
    for key, factor in (("diffusion", 0.8), ("rhythm", 0.5)):  # the same t and noise before and after
        b, a = sum(float(x[key]) for x in before), sum(float(x[key]) for x in after)
        assert a < factor * b, (key, b, a)


def test_samplers_are_seeded_and_agree(golden):
    from v2m.models.diffv2m.sampling import dpm_solver

    state, config, inputs, _, batch = golden
    model = _model(state, config)
    with torch.no_grad():
        ctx, g = model.contexts(model.conditioner(batch))
        f = lambda x, t: model(x, t, ctx, g, 3.0)  # noqa: E731
        noise = inputs["sample.noise"]
        ddim = v_ddim(f, noise, 250)
        assert torch.equal(ddim, v_ddim(f, noise.clone(), 250))
        fast = dpm_solver(f, noise, 50)
        assert torch.equal(fast, dpm_solver(f, noise.clone(), 50))
        close = dpm_solver(f, noise, 150)
    rel = lambda a: float((a - ddim).norm() / ddim.norm())  # noqa: E731
    assert rel(close) < 0.05 and rel(close) < rel(fast), (rel(close), rel(fast))  # the same ODE, solved
