"""`v2m evaluate` end to end on files the test makes, with tiny embedders built from config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from v2m.cli import main
from v2m.media import mux_music, write_wav
from synthetic import write_video

SR = 44100
CUTS = [1.0, 2.0, 3.0]


def clicks(times, seconds=4.0, pitch=0.3) -> np.ndarray:
    """Decaying tone bursts at ``times``; ``pitch`` in radians per sample (0.3: about 2.1 kHz)."""
    y = np.zeros((1, int(seconds * SR)), np.float32)
    for t in times:
        a = int(t * SR)
        y[0, a : a + 400] = np.hanning(800)[400:] * np.sin(np.arange(400) * pitch)
    return np.repeat(y, 2, 0)


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory):
    import torch
    from transformers import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-clap")
    audio = ClapAudioConfig(hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                            window_size=4, spec_size=256, num_mel_bins=64, projection_dim=16,
                            projection_hidden_size=32, enable_fusion=False)
    text = ClapTextConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          projection_dim=16, projection_hidden_size=32, vocab_size=100)
    ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    gen, ref, vid = root / "generated", root / "reference", root / "videos"
    for d in (gen, ref, vid):
        d.mkdir()
    for i in range(6):  # music whose onsets are the video's cuts, generated = reference
        write_video(vid / f"c{i}.mp4", duration=4.0, fps=5, size=(64, 48), cut_times=CUTS)
        write_wav(ref / f"c{i}.wav", clicks(CUTS), SR)
        if i < 5:
            write_wav(gen / f"c{i}.wav", clicks(CUTS), SR)
        else:  # generated music may come muxed into the video, as v2m writes it (x_scored.mp4 pairs as x)
            mux_music(vid / f"c{i}.mp4", gen / f"c{i}_scored.mp4", clicks(CUTS), SR)
    write_wav(ref / "half.wav", clicks([0.5, 1.5, 2.5, 3.5]), SR)  # a known partial match
    write_wav(gen / "half.wav", clicks([0.6, 1.5, 2.6], pitch=1.2), SR)  # and another timbre
    write_video(vid / "half.mp4", duration=4.0, fps=5, size=(64, 48), cut_times=CUTS)
    write_wav(gen / "quiet.wav", np.zeros((2, 4 * SR), np.float32), SR)  # problems: silent,
    write_wav(ref / "quiet.wav", clicks(CUTS), SR)
    write_wav(gen / "short.wav", clicks([0.5], seconds=2.0), SR)  # lengths differ by 2 s,
    write_wav(ref / "short.wav", clicks(CUTS), SR)
    write_wav(gen / "alone.wav", clicks(CUTS), SR)  # and no reference
    return gen, ref, vid


def embedder_args(tiny_vggish, tiny_panns, tiny_clap) -> list[str]:
    return ["--vggish", str(tiny_vggish[0]), "--panns", str(tiny_panns[0]), "--clap", str(tiny_clap),
            "--imagebind", "off", "--device", "cpu"]


FAD, FD, KL, IS = ("FAD (VGGish, 16 kHz, no PCA)", "FD (PANNs CNN14, 16 kHz)", "KL (PANNs CNN14, 16 kHz, softmax)",
                   "IS (PANNs CNN14, 16 kHz)")


def test_evaluate_end_to_end(folders, tiny_vggish, tiny_panns, tiny_clap, tmp_path, capsys):
    gen, ref, vid = folders
    out = tmp_path / "report"
    code = main(["evaluate", "--generated", str(gen), "--reference", str(ref), "--videos", str(vid), "-o", str(out),
                 *embedder_args(tiny_vggish, tiny_panns, tiny_clap), "-q"])
    err = capsys.readouterr().err
    assert code == 1  # problems are listed, one line each, and the rest is evaluated
    assert "quiet.wav: is silent" in err and "lengths differ by 2.00 s" in err and "no reference file" in err
    report = json.loads((out / "report.json").read_text())
    clips = {c["name"]: c for c in report["clips"]}
    assert set(clips) == {f"c{i}" for i in range(6)} | {"half"}
    same = clips["c0"]
    assert same["bcs_bhs"]["d2m-gan"]["bcs"] == 1.0 and same["bcs_bhs"]["d2m-gan"]["bhs"] == 1.0
    muxed = clips["c5"]  # read from the AAC track of c5_scored.mp4
    assert muxed["generated"].endswith("c5_scored.mp4") and muxed["bcs_bhs"]["d2m-gan"]["bhs"] == 1.0
    assert muxed["learned"][KL] >= 0  # (not 0: AAC noise fills the reference's digital silence)
    assert same["video_rhythm"]["onset_f_cuts"] == 1.0 and same["video_rhythm"]["cuts"] == 3
    # reference seconds 0-3, generated seconds 0, 1, 2: G = 3, R = 4, H = 3
    half = clips["half"]["bcs_bhs"]
    assert half["d2m-gan"]["bcs"] == 0.75 and half["d2m-gan"]["bhs"] == 0.75 and half["loris"]["bcs"] == 1.0
    agg = report["aggregate"]
    assert agg["clips"] == 7 and agg["bhs (d2m-gan)"] == pytest.approx((6 + 0.75) / 7, abs=1e-4)
    # learned metrics: identical pairs have KL 0 (up to eps), the differing pair does not
    assert clips["c0"]["learned"][KL] == pytest.approx(0, abs=1e-3) and clips["half"]["learned"][KL] > 1e-3
    assert agg[KL] == pytest.approx(np.mean([c["learned"][KL] for c in clips.values()]), abs=1e-3)
    assert agg[FAD] > 0 and agg[FD] > 0 and agg[IS] >= 1.0 and agg[IS + " splits"] == 1
    assert agg["FD (CLAP, 48 kHz)"] >= 0 and 0 <= agg["coverage (CLAP, prdc k=5)"] <= 1
    assert report["not_computed"]["IB (ImageBind-huge, video-audio cosine)"].startswith("skipped")
    assert report["settings"]["embedders"] == {"vggish": str(tiny_vggish[0]), "panns": str(tiny_panns[0]),
                                               "clap": str(tiny_clap)}
    md = (out / "report.md").read_text()
    assert "| bcs (d2m-gan) | 0.9643 |" in md and "| c0 | 4.0000 | 1.0000 |" in md and "## Problems" in md and "is silent" in md
    assert f"| {FAD} |" in md and f" {KL} |" in md.split("## Per clip")[1]  # KL per clip in the clip table


def test_identical_sets_score_zero_distance(folders, tiny_vggish, tiny_panns, tiny_clap, tmp_path):
    _, ref, _ = folders
    main(["evaluate", "--generated", str(ref), "--reference", str(ref), "-o", str(tmp_path / "r"),
          *embedder_args(tiny_vggish, tiny_panns, tiny_clap), "-q"])
    agg = json.loads((tmp_path / "r" / "report.json").read_text())["aggregate"]
    assert agg[FAD] == pytest.approx(0, abs=1e-3) and agg[FD] == pytest.approx(0, abs=1e-3)
    assert agg[KL] == pytest.approx(0, abs=1e-3) and agg["FD (CLAP, 48 kHz)"] == pytest.approx(0, abs=1e-3)
    # (no coverage check: six of the reference files are copies, and a ball of radius 0 holds nothing)


def test_evaluate_without_embedders_or_clap_weights(folders, tmp_path, capsys):
    gen, ref, _ = folders
    assert main(["evaluate", "--generated", str(gen), "--reference", str(ref), "-o", str(tmp_path / "a"),
                 "--no-embedders", "-q"]) == 1
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert "video_rhythm" not in report["clips"][0] and report["not_computed"][FAD].startswith("skipped")
    assert len(report["not_computed"]) == 8  # every learned metric, with its reason
    main(["evaluate", "--generated", str(gen), "--reference", str(ref), "-o", str(tmp_path / "b"),
          "--clap", str(tmp_path / "no-clap"), "--vggish", str(tmp_path / "no-vggish"),
          "--panns", str(tmp_path), "-q"])
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    reasons = report["not_computed"]
    assert "no such directory for the CLAP weights" in reasons["FD (CLAP, 48 kHz)"]
    assert "no such file or directory for the VGGish weights" in reasons[FAD]
    assert "no Cnn14_16k_mAP=0.438.pth in this directory" in reasons[KL]
    # the default ImageBind lives at a URL: offline and not cached, it is reported, not fetched
    assert "not cached" in reasons["IB (ImageBind-huge, video-audio cosine)"] or \
        "videos" in reasons["IB (ImageBind-huge, video-audio cosine)"]
    assert report["aggregate"]["clips"] == 7  # the rhythm metrics still ran


def test_missing_folder_is_one_line(tmp_path, capsys):
    code = main(["evaluate", "--generated", str(tmp_path / "nope"), "--reference", str(tmp_path), "-o",
                 str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "is not a folder" in err and not (tmp_path / "r").exists()


def test_imagebind_score_per_clip(folders, tmp_path):
    """The IB score through run_evaluation, with a tiny ImageBind built from config (injected)."""
    import torch

    from v2m.evaluate.imagebind import ImageBindConfig, ImageBindEmbedder, ImageBindModel
    from v2m.evaluate.run import run_evaluation

    torch.manual_seed(0)
    tiny = ImageBindModel(ImageBindConfig(vision_width=32, vision_depth=1, vision_heads=2, audio_width=32,
                                          audio_depth=1, audio_heads=2, out_dim=16, image_size=28)).eval()
    gen, ref, vid = folders
    off = {"vggish": False, "panns": False, "clap": False}
    report = run_evaluation(str(gen), str(ref), str(vid), str(tmp_path / "r"), progress=False,
                            embedders={**off, "imagebind": ImageBindEmbedder(model=tiny)})
    ib = "IB (ImageBind-huge, video-audio cosine)"
    per_clip = {c["name"]: c["learned"][ib] for c in report.clips}
    assert set(per_clip) == {f"c{i}" for i in range(6)} | {"half"}
    assert all(-1 <= v <= 1 for v in per_clip.values())
    assert per_clip["c0"] == per_clip["c1"]  # the same video and the same music give the same score
    # each clip's score is the cosine of its own video and its own generated music
    from v2m.evaluate import readers
    from v2m.evaluate.imagebind import ib_scores

    embedder = ImageBindEmbedder(model=tiny)
    expected = ib_scores(embedder.embed_video([str(vid / "half.mp4")]),
                         embedder.embed_audio([readers.for_imagebind(gen / "half.wav")]))[0]
    assert per_clip["half"] == pytest.approx(expected, abs=1e-4)
    assert report.aggregate[ib] == pytest.approx(np.mean(list(per_clip.values())), abs=1e-4)
    assert ib not in report.not_computed and report.settings["embedders"] == {"imagebind": "custom"}
