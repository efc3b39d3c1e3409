"""Diff-V2M's Oobleck VAE on diffusers' AutoencoderOobleck: the official config and key layout,
and the official golden outputs (fixture set A, item e)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from v2m.errors import V2MError
from v2m.models.diffv2m.vae import PREFIX, OfficialVAE, convert_official_vae, oobleck_kwargs, vae_bottleneck

from fixture_paths import GOLDEN, OFFICIAL, golden_checkpoint


def _pretransform(path: Path) -> dict:
    return json.loads(path.read_text())["model"]["pretransform"]["config"]


def _close(ours: torch.Tensor, golden: torch.Tensor, name: str) -> None:
    """The fixture's tolerance: max |diff| <= 1e-4 * max |golden|."""
    assert ours.shape == golden.shape, f"{name}: shape {tuple(ours.shape)} vs {tuple(golden.shape)}"
    diff, scale = float((ours.float() - golden.float()).abs().max()), float(golden.abs().max())
    assert diff <= 1e-4 * max(scale, 1e-12), f"{name}: max |diff| {diff:.2e} vs max |golden| {scale:.2e}"


@pytest.fixture(scope="module")
def golden_outputs():
    """The official code's golden outputs (in the repository)."""
    from safetensors.torch import load_file

    return load_file(GOLDEN / "outputs.safetensors")


@pytest.fixture(scope="module")
def golden(golden_outputs):
    """The golden checkpoint's VAE weights, config, inputs and outputs (needs V2M_GOLDEN_CKPT)."""
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    state = torch.load(golden_checkpoint(), map_location="cpu", weights_only=True)["state_dict"]
    vae_state = {k: v for k, v in state.items() if k.startswith(PREFIX)}
    del state
    config = _pretransform(GOLDEN / "model_config.json")
    return vae_state, config, load_file(GOLDEN / "inputs.safetensors"), golden_outputs


def test_golden_encode_decode(golden):
    state, config, inputs, out = golden
    vae = OfficialVAE.from_official(config, state)
    assert (vae.latent_dim, vae.hop_length) == (4, 8)
    audio = inputs["vae.audio_in"]
    with torch.no_grad():
        latents, info = vae.encode(audio, eps=out["vae.eps"])
        _close(info["pre_bottleneck"], out["vae.pre_bottleneck"], "pre_bottleneck")
        for name, key in [("mean", "mean"), ("scale_raw", "scale"), ("stdev", "stdev")]:
            _close(info[key], out[f"vae.{name}"], name)
        _close(latents, out["vae.latents_sampled"], "latents_sampled")
        _close(info["kl"].reshape(1), out["vae.kl"], "kl")
        # the official noise is one randn_like for the whole batch after manual_seed(1234 + 7)
        torch.manual_seed(1234 + 7)
        latents_seeded, info_seeded = vae.encode(audio)
        assert torch.equal(info_seeded["eps"], out["vae.eps"])
        _close(latents_seeded, out["vae.latents_sampled"], "latents_sampled (seeded)")
        _close(vae.decode(inputs["vae.decode_latents"]), out["vae.decode_out"], "decode_out")


def test_golden_bottleneck_is_bit_exact(golden_outputs):
    """On the official encoder output, the bottleneck gives the official numbers bit for bit."""
    out = golden_outputs
    latents, info = vae_bottleneck(out["vae.pre_bottleneck"], eps=out["vae.eps"])
    assert torch.equal(latents, out["vae.latents_sampled"])
    for name, key in [("mean", "mean"), ("scale_raw", "scale"), ("stdev", "stdev")]:
        assert torch.equal(info[key], out[f"vae.{name}"]), name
    assert torch.equal(info["kl"].reshape(1), out["vae.kl"])
    # another noise gives other latents with the same posterior
    other, _ = vae_bottleneck(out["vae.pre_bottleneck"], generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(other, latents)


def test_weight_g_is_used(golden):
    """weight_g is not just ||weight_v|| in the fixture: converting it matters."""
    state, config, inputs, out = golden
    flat = dict(state)
    for k in flat:
        if k.endswith("weight_g"):
            v = flat[k.replace("weight_g", "weight_v")]
            flat[k] = v.flatten(1).norm(dim=1).reshape(flat[k].shape)
    with torch.no_grad():
        decoded = OfficialVAE.from_official(config, flat).decode(inputs["vae.decode_latents"])
    with pytest.raises(AssertionError):
        _close(decoded, out["vae.decode_out"], "decode_out")


def test_converter_maps_the_full_official_key_list():
    from diffusers import AutoencoderOobleck

    listing = json.loads((OFFICIAL / "diffv2m_odf_pretransform_state_dict.json").read_text())
    assert listing["prefix_in_lightning_checkpoint"] == PREFIX and listing["totals"]["num_keys"] == 365
    official = {k["name"]: torch.empty(k["shape"], device="meta") for k in listing["keys"]}
    official["diffusion.model.model.other"] = torch.empty(3, device="meta")  # not VAE: ignored
    converted = convert_official_vae(official)
    with torch.device("meta"):
        model = AutoencoderOobleck(**oobleck_kwargs(_pretransform(OFFICIAL / "model_config_odf.json")))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert len(converted) == 365
    # the transposed convolutions keep one weight-norm gain per input channel
    assert expected["decoder.block.0.conv_t1.weight_g"] == (2048, 1, 1)
    assert expected["decoder.block.0.conv_t1.weight_v"] == (2048, 1024, 16)


def test_converter_names_missing_and_unexpected_keys(golden):
    state = dict(golden[0])
    del state[PREFIX + "decoder.layers.1.layers.1.weight_g"]
    state[PREFIX + "decoder.layers.1.layers.9.weight"] = torch.zeros(1)
    with pytest.raises(V2MError) as err:
        convert_official_vae(state)
    message = str(err.value)
    assert "1 missing: " + PREFIX + "decoder.layers.1.layers.1.weight_g" in message
    assert "1 unexpected: " + PREFIX + "decoder.layers.1.layers.9.weight" in message
    with pytest.raises(V2MError, match="no VAE weights"):
        convert_official_vae({"diffusion.model.x": torch.zeros(1)})


def test_oobleck_kwargs_official_geometry():
    wrapped = json.loads((OFFICIAL / "model_config_odf.json").read_text())["model"]["pretransform"]
    kwargs = oobleck_kwargs(wrapped["config"])
    assert oobleck_kwargs(wrapped) == kwargs
    assert kwargs == {"encoder_hidden_size": 128, "downsampling_ratios": [2, 4, 4, 8, 8],
                      "channel_multiples": [1, 2, 4, 8, 16], "decoder_channels": 128,
                      "decoder_input_channels": 64, "audio_channels": 2, "sampling_rate": 44100}
    with torch.device("meta"):
        from diffusers import AutoencoderOobleck

        model = AutoencoderOobleck(**kwargs)
    assert model.hop_length == 2048 and model.decoder.conv1.in_channels == 64
    assert model.encoder.conv2.out_channels == 128  # mean and scale halves


@pytest.mark.parametrize("change, message", [
    (("decoder", "final_tanh", True), "final_tanh"),
    (("decoder", "final_tanh", None), "final_tanh"),  # the official default is True
    (("encoder", "use_snake", False), "use_snake"),
    (("decoder", "antialias_activation", True), "antialias"),
    (("decoder", "latent_dim", 32), "twice"),
    (("encoder", "strides", [2, 4, 4, 8, 4]), "strides"),
])
def test_oobleck_kwargs_refuses_what_diffusers_cannot_build(change, message):
    config = copy.deepcopy(_pretransform(OFFICIAL / "model_config_odf.json"))
    part, key, value = change
    if value is None:
        del config[part]["config"][key]
    else:
        config[part]["config"][key] = value
    with pytest.raises(ValueError, match=message):
        oobleck_kwargs(config)


def test_from_pretrained_local_dir(tiny_oobleck_repo):
    vae = OfficialVAE.from_pretrained(str(tiny_oobleck_repo))
    assert (vae.hop_length, vae.latent_dim, vae.sample_rate) == (2048, 8, 44100)
    audio = torch.randn(2, 2, 4096, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latents, info = vae.encode(audio, generator=torch.Generator().manual_seed(1))
        posterior = vae.model.encode(audio).latent_dist  # diffusers' own (whole-batch) encode
        torch.testing.assert_close(info["mean"], posterior.mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(info["stdev"], posterior.std, rtol=1e-5, atol=1e-6)
        assert latents.shape == (2, 8, 2) and vae.decode(latents).shape == (2, 2, 4096)


# --- a checkpoint whose encoder diffusers cannot build: decoder only --------------------------

DECODER_ONLY_VAE = {  # a tiny official pretransform whose encoder's latent_dim (8) is not its channels (4)
    "encoder": {"type": "oobleck", "config": {"in_channels": 2, "channels": 4, "c_mults": [1, 2], "strides": [2, 4],
                                              "latent_dim": 8, "use_snake": True}},
    "decoder": {"type": "oobleck", "config": {"out_channels": 2, "channels": 4, "c_mults": [1, 2], "strides": [2, 4],
                                              "latent_dim": 4, "use_snake": True, "final_tanh": False}},
    "bottleneck": {"type": "vae"}, "latent_dim": 4, "downsampling_ratio": 8, "io_channels": 2}


def official_vae_state(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random official-layout VAE weights (Lightning key names) for the pretransform ``config``:
    diffusers' modules of the same geometry renamed back; the encoder's last convolution shaped as
    the official one (channels x c_mults[-1] -> latent_dim)."""
    from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDecoder, OobleckEncoder

    from v2m.models.diffv2m.vae import _official_names

    torch.manual_seed(seed)
    enc, dec = config["encoder"]["config"], config["decoder"]["config"]
    blocks = len(enc["strides"])
    ours = {f"encoder.{k}": v for k, v in OobleckEncoder(enc["channels"], enc["in_channels"], enc["strides"],
                                                          enc["c_mults"]).state_dict().items()}
    decoder = OobleckDecoder(dec["channels"], dec["latent_dim"], dec["out_channels"], dec["strides"][::-1], dec["c_mults"])
    ours.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    width = enc["channels"] * enc["c_mults"][-1]
    ours.update({"encoder.conv2.weight_v": torch.randn(enc["latent_dim"], width, 3) * 0.1,
                 "encoder.conv2.weight_g": torch.rand(enc["latent_dim"], 1, 1) + 0.5,
                 "encoder.conv2.bias": torch.zeros(enc["latent_dim"])})
    for k, v in ours.items():  # the SnakeBeta parameters away from their zero (log-scale) init
        if k.endswith(("alpha", "beta")):
            ours[k] = 0.1 * torch.randn(v.shape)
    official = {}
    for part in ("encoder", "decoder"):
        for theirs, mine in _official_names(part, blocks).items():
            v = ours[mine]
            official[PREFIX + theirs] = v.reshape(-1) if theirs.rsplit(".", 1)[1] in ("alpha", "beta") else v
    return official


def test_an_encoder_diffusers_cannot_build_leaves_a_decoder_only_vae(tmp_path):
    from diffusers import AutoencoderOobleck

    from v2m.models.diffv2m.vae import OobleckDecoderOnly

    with pytest.raises(ValueError, match="latent_dim must equal its channels"):
        oobleck_kwargs(DECODER_ONLY_VAE)
    assert "encoder_hidden_size" not in oobleck_kwargs(DECODER_ONLY_VAE, encoder=False)
    broken = copy.deepcopy(DECODER_ONLY_VAE)
    broken["decoder"]["config"]["final_tanh"] = True
    with pytest.raises(ValueError, match="even without its encoder.*final_tanh"):
        oobleck_kwargs(broken, encoder=False)

    state = official_vae_state(DECODER_ONLY_VAE)
    vae = OfficialVAE.from_official(DECODER_ONLY_VAE, state, source="tiny.ckpt")
    assert isinstance(vae.model, OobleckDecoderOnly)
    assert (vae.latent_dim, vae.hop_length, vae.sample_rate) == (4, 8, 44100)
    latents = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        audio = vae.decode(latents)
    # the same decoder weights in a whole diffusers VAE (an encoder it can build) decode the same
    whole = copy.deepcopy(DECODER_ONLY_VAE)
    whole["encoder"]["config"]["channels"] = 8
    full = AutoencoderOobleck(**oobleck_kwargs(whole))
    full.decoder.load_state_dict({k[len("decoder."):]: v for k, v in vae.model.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(audio, torch.cat([full.decode(z).sample for z in latents.split(1)]))
    assert audio.shape == (2, 2, 40) and audio.abs().max() > 0

    with pytest.raises(V2MError) as err:  # encoding (prepare, training on audio) refuses with one line
        vae.encode(torch.randn(1, 2, 64))
    assert err.value.path == "tiny.ckpt" and "cannot encode audio" in err.value.message
    assert "latent_dim must equal its channels" in err.value.message and "\n" not in str(err.value)

    vae.model.save_pretrained(tmp_path / "vae")  # our folders keep it decoder-only
    again = OfficialVAE.from_pretrained(str(tmp_path / "vae"))
    assert isinstance(again.model, OobleckDecoderOnly) and again.model.no_encoder == vae.model.no_encoder
    with torch.no_grad():
        torch.testing.assert_close(again.decode(latents), audio)
