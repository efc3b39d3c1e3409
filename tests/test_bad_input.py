"""Bad input and output problems get one line, a non-zero exit and no partial output; empty runs
are not success; values are checked; killed runs leave nothing a later run mistakes for work."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from v2m.cli import build_parser, main
from v2m.fsutil import _HOST, atomic_set, remove_stale_parts
from v2m.media import read_comment
from synthetic import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s, 64x48, one cut at 1 s, with a soundtrack: the smallest video worth scoring."""
    folder = tmp_path_factory.mktemp("clip")
    return write_video(folder / "clip.mp4", duration=2.0, fps=10, size=(64, 48), cut_times=[1.0], audio=True).path


def _one_error_line(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("v2m: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


# --- values -------------------------------------------------------------------------------------------


def test_minus_one_can_come_first_in_a_video_control():
    args = build_parser().parse_args(["generate", "x.mp4"])  # no argv rewriting needed for the plain case
    assert args.video_control == []
    from v2m.cli import _join_dash_values

    argv = _join_dash_values(["generate", "x.mp4", "--video-control", "-1,-1,move,0.5", "--music-control", "pitch,2",
                              "--video-control", "2,-1,color,1"])
    args = build_parser().parse_args(argv)
    assert args.video_control == ["-1,-1,move,0.5", "2,-1,color,1"] and args.music_control == ["pitch,2"]


@pytest.mark.parametrize("argv, option", [
    (["--lufs", "nan"], "--lufs"), (["--lufs", "inf"], "--lufs"), (["--lufs", "+20"], "--lufs"),
    (["--lufs", "-90"], "--lufs"), (["--seed", "-1"], "--seed"), (["--seed", "x"], "--seed"),
    (["--mix", "nan"], "--mix"), (["--tempo", "inf"], "--tempo"), (["--cfg", "nan"], "--cfg"),
])
def test_values_are_checked_and_the_option_named(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "clip.mp4", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}:" in err and "Traceback" not in err


def test_a_control_on_a_shot_the_video_lacks_warns(clip, tmp_path, capsys):
    code = main(["generate", clip, "-o", str(tmp_path / "o.mp4"), "--video-control", "-1,-1,move,0.5",
                 "--video-control", "99,0,color,1", "-q"])
    err = capsys.readouterr().err
    assert code == 0 and "shot 99 do nothing" in err and "numbered 0-1" in err
    assert _files(tmp_path) == ["o.json", "o.mid", "o.mp4", "o.wav"]


def test_a_file_that_is_not_a_soundfont_is_refused_in_one_line(clip, tmp_path, capfd):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"this is no soundfont" * 10)
    code = main(["generate", clip, "-o", str(tmp_path / "o.mp4"), "--soundfont", str(junk)])
    err = capfd.readouterr().err  # capfd: FluidSynth would write to the file descriptor itself
    assert code == 1
    _one_error_line(err, str(junk), "not a SoundFont")
    assert _files(tmp_path) == ["junk.sf2"]


# --- nothing to do ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["generate"], ["analyze", "-o", "OUT"], ["prepare", "-o", "OUT", "--no-clip"]])
def test_an_empty_folder_is_not_success(command, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "clip.mp4").mkdir(parents=True)  # a folder named like a video is not one
    argv = [c.replace("OUT", str(tmp_path / "out")) for c in command] + [str(empty)]
    code = main(argv[:1] + argv[-1:] + argv[1:-1])
    err = capsys.readouterr().err
    assert code == 1
    _one_error_line(err, "nothing to do", str(empty))
    assert not (tmp_path / "out").exists()


def test_evaluate_on_empty_folders_is_not_success(tmp_path, capsys):
    for name in ("gen", "ref"):
        (tmp_path / name).mkdir()
    code = main(["evaluate", "--generated", str(tmp_path / "gen"), "--reference", str(tmp_path / "ref"),
                 "-o", str(tmp_path / "report"), "--no-embedders"])
    assert code == 1
    _one_error_line(capsys.readouterr().err, str(tmp_path / "gen"), "nothing to do")
    assert not (tmp_path / "report").exists()


# --- outputs that cannot be written -------------------------------------------------------------------


def _unwritable_outputs(tmp_path):
    (tmp_path / "afile").write_text("x")
    return {"a virtual file system": "/proc/v2m-test/out.mp4",
            "a parent that is a file": str(tmp_path / "afile" / "out.mp4"),
            "a name over 255 bytes": str(tmp_path / ("n" * 252 + ".mp4"))}


def test_generate_names_an_output_it_cannot_write(clip, tmp_path, capsys):
    for why, out in _unwritable_outputs(tmp_path).items():
        code = main(["generate", clip, "-o", out])
        assert code == 1, why
        _one_error_line(capsys.readouterr().err, out, "cannot write")
    assert _files(tmp_path) == ["afile"]


@pytest.mark.parametrize("command", ["analyze", "prepare", "evaluate"])
def test_other_commands_name_the_output_they_cannot_write(command, clip, tmp_path, capsys):
    for why, out in _unwritable_outputs(tmp_path).items():
        argv = {"analyze": ["analyze", clip, "-o", out, "--no-clip"],
                "prepare": ["prepare", clip, "-o", out, "--no-clip", "--no-codec", "-q"],
                "evaluate": ["evaluate", "--generated", os.path.dirname(clip), "--reference", os.path.dirname(clip),
                             "-o", out, "--no-embedders", "-q"]}[command]
        code = main(argv)
        assert code == 1, why
        _one_error_line(capsys.readouterr().err, out, "cannot write")
        assert clip not in capsys.readouterr().err


def test_a_long_name_that_fits_is_written(clip, tmp_path):
    out = tmp_path / ("n" * 248 + ".mp4")  # 252 bytes: the hidden temporary names must still fit
    assert main(["generate", clip, "-o", str(out), "-q"]) == 0
    assert out.exists() and out.with_suffix(".wav").exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(clip, tmp_path):
    """The system refuses the write (a file-size limit here; a full disk gives the same path)."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "from v2m.cli import main\n"
        f"sys.exit(main(['generate', {clip!r}, '-o', {str(tmp_path / 'o.mp4')!r}, '-q']))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    _one_error_line(run.stderr, str(tmp_path / "o."), "cannot write", "File too large")
    assert _files(tmp_path) == []


# --- overwrites and killed runs -----------------------------------------------------------------------


def test_a_wav_v2m_did_not_write_is_never_overwritten(clip, tmp_path, capsys):
    music = tmp_path / "clip.wav"  # the video's own music, as `v2m prepare` would use it
    music.write_bytes(b"RIFF....WAVE")
    code = main(["generate", clip, "-o", str(tmp_path / "clip.mkv")])
    assert code == 1
    _one_error_line(capsys.readouterr().err, str(music), "not written by v2m")
    assert music.read_bytes() == b"RIFF....WAVE" and _files(tmp_path) == ["clip.wav"]
    # v2m's own set is replaced by a new run, and carries its mark
    assert main(["generate", clip, "-o", str(tmp_path / "mine.mkv"), "-q", "--plot"]) == 0
    assert main(["generate", clip, "-o", str(tmp_path / "mine.mkv"), "-q", "--plot", "--seed", "2"]) == 0
    assert read_comment(tmp_path / "mine.wav").startswith("v2m")


def test_a_set_is_renamed_into_place_together_or_not_at_all(tmp_path):
    old = {name: f"old {name}" for name in ("a.wav", "a.mid", "a.mp4")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    paths = [str(tmp_path / n) for n in old]
    with pytest.raises(RuntimeError):
        with atomic_set(paths) as temp:
            for p in paths[:2]:
                with open(temp[p], "w") as f:
                    f.write("new")
            raise RuntimeError("killed while writing the video")
    assert {n: (tmp_path / n).read_text() for n in old} == old and _files(tmp_path) == sorted(old)
    with atomic_set(paths) as temp:
        assert all(t.endswith(os.path.splitext(p)[1]) for p, t in temp.items())
        for p in paths:
            with open(temp[p], "w") as f:
                f.write("new")
    assert all((tmp_path / n).read_text() == "new" for n in old) and _files(tmp_path) == sorted(old)


def test_litter_of_killed_runs_is_removed_and_live_work_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    names = {
        "killed": f".clip.wav.v2m-{_HOST}-{dead_pid}-abcd1234.part.wav",  # this machine, process gone
        "live": f".clip.mid.v2m-{_HOST}-{os.getpid()}-abcd1234.part.mid",  # this machine, still writing
        "remote_old": ".x.npz.v2m-ffffff-12-abcd1234.part.npz",  # another node, two days old
        "remote_new": ".y.npz.v2m-ffffff-12-abcd1234.part.npz",  # another node, may still be writing
        "user": ".clip.wav.part",  # not ours
    }
    nested = tmp_path / "clips" / "src"
    nested.mkdir(parents=True)
    for key, name in names.items():
        (nested / name).write_text(key)
    (nested / f".folder.v2m-{_HOST}-{dead_pid}-abcd1234.part").mkdir()  # a staging folder of atomic_dir
    two_days_ago = time.time() - 2 * 86400
    os.utime(nested / names["remote_old"], (two_days_ago, two_days_ago))
    assert remove_stale_parts(tmp_path) == 0  # not recursive: nothing at the top
    assert remove_stale_parts(tmp_path, recursive=True) == 3
    assert sorted(os.listdir(nested)) == sorted([names["live"], names["remote_new"], names["user"]])


def test_generate_cleans_litter_beside_its_output(clip, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    litter = tmp_path / f".o.mp4.v2m-{_HOST}-{int(dead.stdout)}-zz.part.mp4"
    litter.write_bytes(b"half a video")
    assert main(["generate", clip, "-o", str(tmp_path / "o.mp4"), "-q"]) == 0
    assert _files(tmp_path) == ["o.json", "o.mid", "o.mp4", "o.wav"]


# --- folders, shards and the chain generate -> evaluate ------------------------------------------------


def test_generate_a_folder_by_shards_then_evaluate_it(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i, cut in enumerate((0.8, 1.1, 1.4)):
        write_video(videos / f"v{i}.mp4", duration=2.0, fps=10, size=(64, 48), cut_times=[cut], audio=True)
    scored = tmp_path / "scored"
    for shard in ("0/2", "1/2"):
        assert main(["generate", str(videos), "-o", str(scored), "--shard", shard, "-q"]) == 0
    assert _files(scored) == sorted(f"v{i}.{ext}" for i in range(3) for ext in ("json", "mid", "mp4", "wav"))
    code = main(["evaluate", "--generated", str(scored), "--reference", str(videos), "--videos", str(videos),
                 "-o", str(tmp_path / "report"), "--no-embedders", "-q"])
    assert code == 0, capsys.readouterr().err
    import json

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert sorted(c["name"] for c in report["clips"]) == ["v0", "v1", "v2"]
    assert all(c["generated"].endswith(".wav") for c in report["clips"])  # the WAV of each set


def test_genuinely_different_files_of_one_name_still_stop_evaluate(tmp_path, capsys):
    from v2m.media import write_wav

    gen = tmp_path / "gen"
    gen.mkdir()
    tone = (0.1 * np.sin(np.linspace(0, 2000, 32000))).astype(np.float32)[None].repeat(2, 0)
    write_wav(gen / "x.wav", tone, 16000)  # no v2m mark
    write_video(gen / "x.mp4", duration=2.0, fps=10, size=(64, 48), audio=True)
    code = main(["evaluate", "--generated", str(gen), "--reference", str(gen), "-o", str(tmp_path / "r"),
                 "--no-embedders", "-q"])
    assert code == 1
    _one_error_line(capsys.readouterr().err, "pair as 'x'")


def test_prepare_removes_what_a_killed_run_left_half_written(clip, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    litter = tmp_path / "data" / "clips" / "some_source" / f".0.npz.v2m-{_HOST}-{int(dead.stdout)}-zz.part.npz"
    litter.parent.mkdir(parents=True)
    litter.write_bytes(b"half a clip")
    code = main(["prepare", clip, "-o", str(tmp_path / "data"), "--no-clip", "--no-codec", "--clip-seconds", "2",
                 "--min-seconds", "1", "-q"])
    assert code == 0 and not litter.exists()
    leftovers = [p for p in (tmp_path / "data").rglob("*") if ".part" in p.name]
    assert leftovers == [] and (tmp_path / "data" / "manifest.jsonl").read_text().count("\n") == 1
