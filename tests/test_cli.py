"""`v2m analyze` and `v2m probe` end to end: bad inputs, folders, skipping, shards, CLIP, export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from v2m.analysis import Analysis
from v2m.analysis.batch import parse_shard, plan_jobs
from v2m.cli import main
from synthetic import write_audio_only, write_image, write_video


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_in(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    good = write_video(d / "good.mp4", duration=3.0, fps=25, cut_times=[1.5])
    data = open(good.path, "rb").read()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video " * 20)
    write_audio_only(d / "audio_only.m4a")
    write_image(d / "still.png")
    write_video(d / "one_frame.mp4", duration=0.04, fps=25)
    return d


@pytest.mark.parametrize(
    "name, problem",
    [
        ("missing.mp4", "file not found"),
        ("empty.mp4", "empty file (0 bytes)"),
        ("truncated.mp4", "truncated or corrupt"),
        ("text.mp4", "not a readable media file"),
        ("audio_only.m4a", "has no video stream (audio only)"),
        ("still.png", "is a still image"),
        ("one_frame.mp4", "has only 1 frame"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(bad_inputs, tmp_path, capsys, name, problem):
    path = bad_inputs / name
    code, out, err = run(capsys, "analyze", path, "-o", tmp_path / "out", "--no-clip", "-q")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"v2m: error: {path}: ") and problem in lines[0]
    assert "Traceback" not in err and out == ""
    assert files_in(tmp_path / "out") == []


def test_truncated_file_with_index_first_is_caught(bad_inputs, tmp_path, capsys):
    import av

    src = av.open(str(bad_inputs / "good.mp4"))
    fast = tmp_path / "faststart.mp4"
    dst = av.open(str(fast), "w", options={"movflags": "faststart"})
    stream = dst.add_stream_from_template(src.streams.video[0])
    for packet in src.demux(src.streams.video[0]):
        if packet.dts is not None:
            packet.stream = stream
            dst.mux(packet)
    dst.close()
    src.close()
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code, _, err = run(capsys, "analyze", cut, "-o", tmp_path / "out", "--no-clip", "-q")
    assert code == 1 and "truncated" in err and len(err.strip().splitlines()) == 1
    assert files_in(tmp_path / "out") == []


def test_unreadable_file(bad_inputs, tmp_path, capsys, monkeypatch):
    path = tmp_path / "locked.mp4"
    shutil.copy(bad_inputs / "good.mp4", path)
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads everything: make the open fail as it would for a user
        real_open = open

        def guarded(file, *a, **k):
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied")
            return real_open(file, *a, **k)

        monkeypatch.setattr("builtins.open", guarded)
    code, _, err = run(capsys, "analyze", path, "-o", tmp_path / "out", "--no-clip", "-q")
    assert code == 1 and err.strip() == f"v2m: error: {path}: permission denied (the file is not readable)"


def test_folder_run_finishes_the_rest_and_lists_failures(bad_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", bad_inputs, "-o", out, "--no-clip", "-q")
    assert code == 1
    # .png and .m4a are not video extensions: a folder scan leaves them out
    assert files_in(out) == ["good.mp4.v2m.npz"]
    assert "4 of 5 videos failed:" in err
    for name in ("truncated.mp4", "empty.mp4", "text.mp4", "one_frame.mp4"):
        assert f"v2m: error: {bad_inputs / name}: " in err
    assert "Traceback" not in err


def test_rerun_skips_finished_work(events_video, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", events_video.path, "-o", out, "--no-clip")
    assert code == 0 and "analysed 1 video(s)" in err
    target = out / "events.mp4.v2m.npz"
    stamp = target.stat().st_mtime_ns
    code, _, err = run(capsys, "analyze", events_video.path, "-o", out, "--no-clip")
    assert code == 0 and "analysed 0 video(s), 1 already done" in err
    assert target.stat().st_mtime_ns == stamp
    # other settings, --force, or other bytes under the same name: computed again
    code, _, err = run(capsys, "analyze", events_video.path, "-o", out, "--no-clip", "--color", "hsv16x16x12")
    assert "analysed 1 video(s)" in err
    assert Analysis.read_meta(target)["settings"]["color_recipe"] == "hsv16x16x12"
    code, _, err = run(capsys, "analyze", events_video.path, "-o", out, "--no-clip", "--color", "hsv16x16x12",
                       "--force")
    assert "analysed 1 video(s)" in err
    moved = tmp_path / "events.mp4"
    write_video(moved, duration=2.0, fps=25)
    code, _, err = run(capsys, "analyze", moved, "-o", out, "--no-clip", "--color", "hsv16x16x12")
    assert "analysed 1 video(s)" in err and Analysis.load(target).duration == pytest.approx(2.0)


def test_json_summary(events_video, tmp_path, capsys):
    code, out, _ = run(capsys, "analyze", events_video.path, "-o", tmp_path, "--no-clip", "--json", "-q")
    assert code == 0
    summary = json.loads(out)
    assert summary["failed"] == []
    (video,) = summary["videos"]
    assert video["duration"] == pytest.approx(6.0)
    np.testing.assert_allclose(video["cuts"], events_video.cut_times, atol=0.041)
    np.testing.assert_allclose([t for t, _ in video["visual_beats"]], events_video.pulse_times, atol=0.041)
    assert len(video["shots"]) == 3 and video["semantics"] is None


def test_shards_split_the_sorted_list(tmp_path):
    names = [f"v{i}.mp4" for i in range(7)]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    parts = [plan_jobs([str(tmp_path)], "out", (i, 3))[0] for i in range(3)]
    sources = [os.path.basename(j.source) for part in parts for j in part]
    assert sorted(sources) == names and len(set(sources)) == 7
    assert [os.path.basename(j.source) for j in parts[1]] == ["v1.mp4", "v4.mp4"]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_bad_shard_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(tmp_path), "-o", str(tmp_path), "--shard", "3/2"])
    assert e.value.code == 2 and "0 <= i < n" in capsys.readouterr().err


def test_workers_give_the_same_result(events_video, vfr_video, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(events_video.path, folder / "a.mp4")
    shutil.copy(vfr_video.path, folder / "b.mp4")
    assert run(capsys, "analyze", folder, "-o", tmp_path / "one", "--no-clip", "-q")[0] == 0
    assert run(capsys, "analyze", folder, "-o", tmp_path / "two", "--no-clip", "-q", "--workers", "2")[0] == 0
    for name in ("a.mp4.v2m.npz", "b.mp4.v2m.npz"):
        a, b = Analysis.load(tmp_path / "one" / name), Analysis.load(tmp_path / "two" / name)
        np.testing.assert_array_equal(a.transitions, b.transitions)
        np.testing.assert_array_equal(a.color_hist, b.color_hist)
        np.testing.assert_array_equal(a.beat_times, b.beat_times)


def test_export_to_the_official_diffv2m_layout(events_video, tmp_path, capsys):
    from v2m.analysis import read_diffv2m

    code, _, err = run(capsys, "analyze", events_video.path, "-o", tmp_path / "a", "--no-clip", "-q",
                       "--export-diffv2m", tmp_path / "official")
    assert code == 0
    assert "no CLIP features" in err
    official = tmp_path / "official"
    assert files_in(official) == ["color/events.npy", "video_info.json"]
    info = json.loads((official / "video_info.json").read_text())
    assert list(info) == ["events.mp4"]
    assert info["events.mp4"]["scene_cut"] == [0, 0, 1, 0, 1, 0]
    assert len(info["events.mp4"]["pseudo_beats"]) == 6
    back = read_diffv2m(official, "events")
    a = Analysis.load(tmp_path / "a" / "events.mp4.v2m.npz")
    np.testing.assert_array_equal(back["color"], a.color_hist)
    assert back["color"].dtype == np.float32 and back["color"].shape == (6, 3072)
    np.testing.assert_allclose(back["pseudo_beat"], a.pseudo_beat, atol=1e-6)


# --- CLIP semantics, with a tiny model built from config (conftest; the real loading code, no download) ---


def test_clip_semantics_from_a_local_directory(events_video, tiny_clip, tmp_path, capsys):
    from v2m.analysis import ClipEmbedder
    from v2m.analysis.video import _clip_input
    from v2m.media import VideoReader

    code, _, err = run(capsys, "analyze", events_video.path, "-o", tmp_path, "--clip", tiny_clip, "-q",
                       "--device", "cpu")
    assert code == 0, err
    a = Analysis.load(tmp_path / "events.mp4.v2m.npz")
    assert a.meta["semantics"] == str(tiny_clip) and a.clip.shape == (6, 24) and a.clip.dtype == np.float32
    # the stored rows are CLIP of each second's sample frame, in order
    embedder = ClipEmbedder(str(tiny_clip), device="cpu")
    with VideoReader(events_video.path) as reader:
        frames = [_clip_input(f, 0, 128) for t, f in reader.frames() if np.isclose(a.sample_times, t).any()]
    np.testing.assert_allclose(a.clip, embedder(frames), rtol=1e-4, atol=1e-5)
    assert not np.allclose(a.clip[0], a.clip[3])


def test_explicit_clip_that_cannot_load_is_an_error(events_video, tmp_path, capsys):
    code, out, err = run(capsys, "analyze", events_video.path, "-o", tmp_path / "out", "--clip",
                         tmp_path / "no-such-model", "-q")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "CLIP" in err and "no-such-model" in err and "Traceback" not in err
    assert files_in(tmp_path / "out") == []


def test_default_clip_unavailable_goes_on_without_semantics(events_video, tiny_clip, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", events_video.path, "-o", out, "-q")  # hub offline, empty cache
    assert code == 0
    assert "warning" in err and "openai/clip-vit-base-patch32" in err and "analysing without semantics" in err
    meta = Analysis.read_meta(out / "events.mp4.v2m.npz")
    assert meta["semantics"] is None and "could not be loaded" in meta["semantics_note"]
    # the same settings once the weights are there: the missing semantics are added, then skipped
    from v2m.analysis import AnalysisSettings, run_analysis

    later = tmp_path / "clip-arrives-later"
    settings = AnalysisSettings(clip=str(later), device="cpu")
    warnings = []
    report = run_analysis([events_video.path], str(out), settings, progress=False, warn=warnings.append)
    assert len(report.done) == 1 and len(warnings) == 1
    shutil.copytree(tiny_clip, later)
    report = run_analysis([events_video.path], str(out), settings, progress=False)
    assert len(report.done) == 1 and Analysis.read_meta(out / "events.mp4.v2m.npz")["semantics"] == str(later)
    report = run_analysis([events_video.path], str(out), settings, progress=False)
    assert len(report.skipped) == 1 and not report.done


def test_probe_command(events_video, capsys):
    code, out, _ = run(capsys, "probe", events_video.path, "--json")
    assert code == 0 and json.loads(out)["frame_count"] == 150
    code, out, _ = run(capsys, "probe", events_video.path)
    assert "160x96 at 25.000 fps" in out and "aac 44100 Hz 2 ch" in out


def test_module_entry_point_and_help():
    res = subprocess.run([sys.executable, "-m", "v2m", "analyze", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for option in ("--shots", "--clip", "--no-clip", "--export-diffv2m", "--workers", "--shard", "--json"):
        assert option in res.stdout
    res = subprocess.run([sys.executable, "-m", "v2m", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("v2m ")
