"""Media I/O that never loses data silently, never hangs and never tracebacks: the stream copy
of `v2m generate` keeps every frame (Matroska's packets without a dts included) and is checked
before it is kept; named pipes are refused before they are opened; a stream of unknown codec is
one line; an output container that cannot hold the video is refused before any work."""

from __future__ import annotations

import os
import re
import signal

import av
import numpy as np
import pytest

from v2m import media
from v2m.cli import main
from v2m.errors import MediaError
from synthetic import write_video


def _encoder(name: str):
    """Skip the test when the bundled FFmpeg lacks the encoder ``name``."""
    if name not in av.codecs_available:
        pytest.skip(f"the bundled FFmpeg has no {name} encoder")
    return name


def _frames(path) -> list[np.ndarray]:
    with av.open(os.fspath(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def _generate(capsys, *args) -> tuple[int, str]:
    code = main(["generate", *map(str, args), "-q", "--no-wav", "--no-midi"])
    return code, capsys.readouterr().err.strip()


def _leftovers(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if ".part" in p)


# --- the stream copy keeps every frame, and is checked ---------------------------------------


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_matroska_input_keeps_every_frame(tmp_path, capsys, codec):
    src = tmp_path / "in.mkv"
    write_video(src, duration=2.0, fps=25, size=(64, 48), cut_times=[1.0], codec=_encoder(codec))
    with av.open(str(src)) as c:  # what the old mux dropped: Matroska gives the first packets no dts
        assert [p.dts for p in c.demux(video=0)][:2] == [None, None]
    expected = _frames(src)
    assert len(expected) == 50
    for ext in (".mkv", ".mp4"):
        code, err = _generate(capsys, src, "-o", tmp_path / f"out{ext}")
        assert code == 0, err
        got = _frames(tmp_path / f"out{ext}")
        assert len(got) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))  # copied, not re-encoded


def test_a_broken_mux_fails_with_one_line_and_no_output(tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.mkv"
    write_video(src, duration=2.0, fps=25, size=(64, 48))
    copy = media._video_packets

    def old_bug(container, stream):  # the packets without a dts skipped, the first keyframe among them
        return ((t, p) for t, p in copy(container, stream) if p.dts is not None)

    monkeypatch.setattr(media, "_video_packets", old_bug)
    out = tmp_path / "out.mp4"
    code, err = _generate(capsys, src, "-o", out)
    assert code == 1 and len(err.splitlines()) == 1
    assert re.fullmatch(rf"v2m: error: {re.escape(str(out))}: the written file is broken \(4\d of the 50 video "
                        r"packets; 0 of its 0 keyframes decode\); nothing was written", err), err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_mux_music_checks_the_music_length(tmp_path, monkeypatch):
    src = write_video(tmp_path / "in.mp4", duration=2.0, fps=25, size=(64, 48)).path
    music = np.zeros((2, 2 * 44100), np.float32)
    media.mux_music(src, tmp_path / "ok.mkv", music, 44100)
    assert len(_frames(tmp_path / "ok.mkv")) == 50
    real = media._write_mux

    def half_the_music(video_path, tmp, fmt, audio, *rest):
        real(video_path, tmp, fmt, audio[:, : audio.shape[1] // 2], *rest)

    monkeypatch.setattr(media, "_write_mux", half_the_music)
    with pytest.raises(MediaError, match=r"music of 1\.0\d+ s instead of 2\.000 s"):
        media.mux_music(src, tmp_path / "short.mkv", music, 44100)
    assert not (tmp_path / "short.mkv").exists() and _leftovers(tmp_path) == []

    monkeypatch.undo()  # music in blocks is checked against the length it should have
    blocks = (np.zeros((2, 10_000), np.float32) for _ in range(5))  # 50 000 samples: 1.13 s of 2 s
    with pytest.raises(MediaError, match=r"music of 1\.1\d+ s instead of 2\.000 s"):
        media.mux_music(src, tmp_path / "blocks.mkv", blocks, 44100, samples=2 * 44100)
    media.mux_music(src, tmp_path / "blocks.mkv", (music[:, a : a + 30_000] for a in range(0, 2 * 44100, 30_000)),
                    44100, samples=2 * 44100)
    assert len(_frames(tmp_path / "blocks.mkv")) == 50 and _leftovers(tmp_path) == []


# --- named pipes are refused at once ---------------------------------------------------------


@pytest.fixture
def fifo(tmp_path):
    """A named pipe with a video extension, and a 20 s alarm so that a regression (a blocking
    open) fails the test instead of hanging the suite."""
    path = tmp_path / "pipe.mp4"
    os.mkfifo(path)

    def hung(signum, frame):
        raise TimeoutError("blocked on the named pipe")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield path
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("command", [
    ["probe", "{p}"],
    ["analyze", "{p}", "-o", "{d}/an", "--no-clip"],
    ["generate", "{p}", "-q"],
    ["prepare", "{p}", "-o", "{d}/ds", "--no-clip", "--no-codec"],
])
def test_a_named_pipe_is_refused_at_once(fifo, capsys, command):
    code = main([a.format(p=fifo, d=fifo.parent) for a in command])
    err = capsys.readouterr().err
    assert code == 1
    assert f"v2m: error: {fifo}: is a named pipe (FIFO), not a regular file" in err.splitlines()


def test_content_key_refuses_a_named_pipe(fifo):
    from v2m.analysis.video import content_key

    with pytest.raises(MediaError, match="named pipe"):
        content_key(str(fifo))


# --- a stream FFmpeg cannot identify ----------------------------------------------------------


def test_unknown_video_codec_is_one_line(tmp_path, capsys):
    good = write_video(tmp_path / "good.mp4", duration=1.0, fps=25, size=(64, 48)).path
    data = open(good, "rb").read()
    assert b"avc1" in data
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data.replace(b"avc1", b"zzzz"))  # the sample description's codec fourcc
    with pytest.raises(MediaError, match="video stream with an unknown or unsupported codec"):
        media.probe(bad)
    code, err = _generate(capsys, bad, "-o", tmp_path / "out.mp4")
    assert code == 1 and err == f"v2m: error: {bad}: video stream with an unknown or unsupported codec " \
                                "(damaged file header?)"
    assert not (tmp_path / "out.mp4").exists()


# --- the output container must hold the video ------------------------------------------------

CODECS = {  # encoder: (input extension, pixel format, size, the output extensions that hold it)
    "libx264": (".mkv", "yuv420p", (64, 48), [".mp4", ".m4v", ".mov", ".mkv"]),
    "prores_ks": (".mov", "yuv422p10le", (64, 48), [".mov", ".mkv"]),
    "libvpx": (".webm", "yuv420p", (64, 48), [".mkv"]),
    "libsvtav1": (".mkv", "yuv420p", (64, 64), [".mp4", ".m4v", ".mkv"]),
}


@pytest.mark.parametrize("codec", list(CODECS))
def test_what_each_container_holds(tmp_path, codec):
    ext, pix_fmt, size, holds = CODECS[codec]
    src = write_video(tmp_path / f"in{ext}", duration=1.0, fps=25, size=size, pix_fmt=pix_fmt,
                      codec=_encoder(codec)).path
    assert media.mux_extensions(src) == holds
    music = np.zeros((2, 44100), np.float32)
    for out_ext in media.MUX_FORMATS:
        out = tmp_path / f"out{out_ext}"
        if out_ext in holds:
            media.mux_music(src, out, music, 44100)
            assert len(_frames(out)) == 25
        else:
            with pytest.raises(MediaError, match=rf"a \{out_ext} file cannot hold the .* video of .*; use \.m"):
                media.mux_music(src, out, music, 44100)
            assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_generate_refuses_an_output_that_cannot_hold_the_video_before_any_work(tmp_path, capsys, monkeypatch):
    import v2m.soundtrack

    src = write_video(tmp_path / "in.mov", duration=1.5, fps=25, size=(64, 48), pix_fmt="yuv422p10le",
                      codec=_encoder("prores_ks")).path

    def no_analysis(*args, **kwargs):
        raise AssertionError("the video was analysed before the output was checked")

    monkeypatch.setattr(v2m.soundtrack, "analyze_video", no_analysis)
    out = tmp_path / "out.mp4"
    code, err = _generate(capsys, src, "-o", out)
    assert code == 1 and err == f"v2m: error: {out}: a .mp4 file cannot hold the prores video of {src}; " \
                                "use .mov or .mkv"
    assert not out.exists()


def test_without_o_the_extension_holds_the_video(tmp_path, capsys):
    from v2m.soundtrack import output_path

    vp8 = write_video(tmp_path / "clip.webm", duration=1.5, fps=25, size=(64, 48), codec=_encoder("libvpx")).path
    h264 = write_video(tmp_path / "other.mov", duration=1.0, fps=25, size=(64, 48)).path
    assert output_path(vp8, None, multiple=False) == str(tmp_path / "clip_scored.mkv")
    assert output_path(h264, None, multiple=False) == str(tmp_path / "other_scored.mov")
    assert output_path(vp8, str(tmp_path / "out"), multiple=True) == str(tmp_path / "out" / "clip.mkv")
    code, err = _generate(capsys, vp8)
    assert code == 0, err
    assert len(_frames(tmp_path / "clip_scored.mkv")) == len(_frames(vp8)) == 38


@pytest.mark.parametrize("shape", [(270, 480), (135, 240), (135, 241), (67, 120)])
def test_shrink_halves_by_block_means_and_drops_an_odd_edge(shape):
    """Each halving is the mean of 2x2 blocks; an odd last row or column is left out."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    h, w = shape[0] // 2, shape[1] // 2
    blocks = image[: 2 * h, : 2 * w].astype(np.float64).reshape(h, 2, w, 2).mean(axis=(1, 3))
    half = media.shrink(image, w, h)
    assert half.shape == (h, w)
    assert np.abs(half - blocks).max() <= 0.5 + 1e-9  # rounded to the nearest level


def test_reduce_frame_bgr_matches_ffmpeg_conversion():
    """The colour sample the analysis takes (OpenCV, BT.601) is FFmpeg's own area-reduced RGB
    to within a few levels on a smooth image; on an odd-sized 1080p-like chroma plane too."""
    yy, xx = np.mgrid[0:1080, 0:1920]
    rgb = np.stack([xx * 255 // 1919, yy * 255 // 1079, (xx + yy) * 255 // 2998], axis=-1).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    ours = media.reduce_frame_bgr(frame, 256, 144)[:, :, ::-1].astype(int)
    ffmpeg = frame.reformat(256, 144, "rgb24", interpolation="AREA").to_ndarray().astype(int)
    assert ours.shape == ffmpeg.shape == (144, 256, 3)
    assert np.abs(ours - ffmpeg).mean() < 2.5
    assert np.abs(ours - ffmpeg).max() <= 8


def test_audio_is_decoded_in_blocks_to_its_whole_resampled_length(tmp_path):
    sr = 44100
    x = np.zeros((2, 4 * sr), np.float32)
    x[:, :: sr // 2] = 0.5
    x[:, -10:] = 0.25  # the end survives the resampler's flush
    media.write_wav(tmp_path / "x.wav", x, sr)
    blocks = list(media.audio_blocks(tmp_path / "x.wav", 22050, size=10_000))
    assert [b.shape[1] for b in blocks[:-1]] == [10_000] * 8 and blocks[-1].shape == (2, 8200)
    whole = np.concatenate(blocks, axis=1)
    assert np.array_equal(whole, media.read_audio(tmp_path / "x.wav", 22050))
    assert np.abs(whole[:, -4:]).max() > 0.1
