"""Model folders a user hands v2m that cannot be used: one line naming the file, exit 1, no traceback.

Every folder is made here: a tiny model saved from config, then one of its files damaged (a
truncated or overwritten ``model.safetensors``, a ``config.json`` that is not JSON, a torch file
whose pickle would run code)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch


class RunsCode:
    """Unpickling this calls print (harmless) instead of rebuilding an object: a pickle with code."""

    def __reduce__(self):
        return (print, ("the pickle ran code",))


def damage(path: Path, how: str) -> None:
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    elif how == "junk":
        path.write_bytes(b"\x00junk" * 64)
    elif how == "not json":
        path.write_text('{"hidden_size": 32,')
    else:  # a torch pickle that would run code, in place of the safetensors weights
        path.unlink()
        torch.save({"weight": RunsCode()}, path.parent / "pytorch_model.bin")


def copy_folder(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def one_line(capsys, code: int, *parts: str) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("v2m: error: ") and "Traceback" not in err, err
    assert all(p in err for p in parts), err
    assert "the pickle ran code" not in captured.out + err
    return err


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from synthetic import write_video

    return str(write_video(tmp_path_factory.mktemp("video") / "v.mp4", duration=2.0, fps=5, size=(64, 48),
                           audio=True).path)


@pytest.fixture(scope="module")
def diffv2m_folder(tmp_path_factory, tiny_oobleck_repo):
    from test_diffv2m import tiny_config
    from test_diffv2m_generate import TINY_VAE

    from v2m.models.diffv2m import DiffV2M
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline
    from v2m.models.diffv2m.vae import OfficialVAE

    config = tiny_config()
    config = replace(config, conditioning=replace(config.conditioning, semantic_dim=24, color_dim=3072),
                     dit=replace(config.dit, io_channels=8), vae=TINY_VAE)
    folder = tmp_path_factory.mktemp("diffv2m") / "model"
    DiffV2MPipeline(config, DiffV2M(config), OfficialVAE.from_pretrained(str(tiny_oobleck_repo))).save(folder)
    return folder


@pytest.fixture(scope="module")
def stad_folder(tmp_path_factory, tiny_encodec):
    from test_stad import tiny_config

    from v2m.codecs import EncodecCodec
    from v2m.models.stad import Stad
    from v2m.models.stad.pipeline import StadPipeline

    config = tiny_config(semantic_dim=24)
    folder = tmp_path_factory.mktemp("stad") / "model"
    StadPipeline(config, Stad(config).eval(), EncodecCodec.load(str(tiny_encodec), device="cpu")).save(folder)
    return folder


@pytest.mark.parametrize("model", ["diffv2m", "stad"])
@pytest.mark.parametrize("name, how", [("model.safetensors", "truncated"), ("model.safetensors", "junk"),
                                       ("config.json", "not json")])
def test_a_damaged_model_folder_is_one_line(model, name, how, request, video, tmp_path, capsys):
    from v2m.cli import main

    folder = copy_folder(request.getfixturevalue(f"{model}_folder"), tmp_path / "model")
    damage(folder / name, how)
    code = main(["generate", video, "--model", model, "--checkpoint", str(folder), "--device", "cpu",
                 "-o", str(tmp_path / "o.mp4")])
    one_line(capsys, code, str(folder / name))
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("model, part, name, how, says", [
    ("diffv2m", "vae", "diffusion_pytorch_model.safetensors", "junk", "the Oobleck VAE weights are not a readable"),
    ("diffv2m", "vae", "config.json", "not json", "config.json: the Oobleck VAE config is not JSON"),
    ("stad", "encodec", "model.safetensors", "truncated", "the EnCodec weights are not a readable"),
])
def test_a_damaged_codec_inside_our_model_folder(model, part, name, how, says, request, video, tmp_path, capsys):
    from v2m.cli import main

    folder = copy_folder(request.getfixturevalue(f"{model}_folder"), tmp_path / "model")
    damage(folder / part / name, how)
    code = main(["generate", video, "--model", model, "--checkpoint", str(folder), "--device", "cpu",
                 "-o", str(tmp_path / "o.mp4")])
    err = one_line(capsys, code, says, str(folder / part))
    assert "--no-codec" not in err  # generate has no such option


@pytest.mark.parametrize("how, says", [("pickle", "pytorch_model.bin: the CLIP weights are a pickle that would run code"),
                                       ("truncated", "model.safetensors: the CLIP weights are not a readable"),
                                       ("not json", "config.json: the CLIP config is not JSON"),
                                       ("processor", "preprocessor_config.json: the CLIP preprocessing config")])
def test_a_damaged_clip_folder_is_one_line_everywhere(tiny_clip, diffv2m_folder, how, says, video, tmp_path, capsys):
    from v2m.cli import main

    clip = copy_folder(tiny_clip, tmp_path / "clip")
    file = {"not json": "config.json", "processor": "preprocessor_config.json"}.get(how, "model.safetensors")
    damage(clip / file, "not json" if how == "processor" else how)  # a broken recipe is not replaced by CLIP's
    one_line(capsys, main(["analyze", video, "-o", str(tmp_path / "a"), "--clip", str(clip), "--device", "cpu", "-q"]),
             says)
    one_line(capsys, main(["prepare", video, "-o", str(tmp_path / "d"), "--clip", str(clip), "--no-codec",
                           "--device", "cpu", "-q"]), says)
    err = one_line(capsys, main(["generate", video, "--model", "diffv2m", "--checkpoint", str(diffv2m_folder),
                                 "--clip", str(clip), "--device", "cpu", "-o", str(tmp_path / "o.mp4")]), says)
    assert "--no-clip" not in err  # generate has no such option, so its errors do not suggest it


@pytest.mark.parametrize("how", ["pickle", "junk"])
def test_a_damaged_sam_or_codec_folder_is_one_line(tiny_sam, tiny_encodec, tiny_clip, how, video, tmp_path, capsys):
    from v2m.cli import main

    sam = copy_folder(tiny_sam, tmp_path / "sam")
    damage(sam / "model.safetensors", how)
    code = main(["analyze", video, "-o", str(tmp_path / "a"), "--no-clip", "--objects", "--sam", str(sam),
                 "--object-clip", str(tiny_clip), "--device", "cpu", "-q"])
    one_line(capsys, code, "SAM weights")
    codec = copy_folder(tiny_encodec, tmp_path / "encodec")
    damage(codec / "model.safetensors", how)
    code = main(["prepare", video, "-o", str(tmp_path / "d"), "--model", "stad", "--no-clip", "--no-objects",
                 "--codec", str(codec), "--device", "cpu", "-q"])
    one_line(capsys, code, "EnCodec weights", str(codec / ("pytorch_model.bin" if how == "pickle" else "model.safetensors")))
