"""Scoring part of a video (`v2m generate --start/--end`) and the provenance written with every
soundtrack (<name>.json and the video's metadata)."""

from __future__ import annotations

import json

import av
import mido
import numpy as np
import pytest

from v2m.analysis import analyze_video
from v2m.cli import main
from v2m.errors import V2MError
from v2m.media import read_audio, read_comment
from v2m.soundtrack import generate, parse_time, scored_span
from synthetic import write_video

SR = 44100


@pytest.fixture(scope="module")
def toned(tmp_path_factory):
    """14 s with a 440 Hz tone as its own sound; cuts at 2, 6 and 9.5 s."""
    return write_video(tmp_path_factory.mktemp("partial") / "toned.mp4", duration=14.0, fps=10, size=(64, 36),
                       cut_times=[2.0, 6.0, 9.5], pulse_times=[4.0, 8.0], audio=True)


def test_a_window_of_the_analysis_is_a_video_of_its_own(toned):
    a = analyze_video(toned.path)
    w = a.window(4.5, 11.0)
    assert w.duration == pytest.approx(6.5) and w.n_seconds == 7 and w.meta["window"] == [4.5, 11.0]
    np.testing.assert_allclose(w.cut_times, [1.5, 5.0], atol=0.06)  # 6.0 and 9.5, shifted
    assert w.shots[0, 0] == 0.0 and w.shots[-1, 1] == pytest.approx(6.5) and len(w.shots) == 3
    np.testing.assert_array_equal(w.scene_cut, [0, 1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(w.motion, a.motion[4:11])
    assert np.all((w.frame_times >= 0) & (w.frame_times < 6.5)) and np.all((w.beat_times >= 0) & (w.beat_times < 6.5))
    with pytest.raises(V2MError, match="not inside the video"):
        a.window(10.0, 20.0)


def test_times_and_spans():
    assert parse_time("75.5") == 75.5 and parse_time("1:15") == 75.0 and parse_time("1:02:03.5") == 3723.5
    with pytest.raises(ValueError, match="not understood"):
        parse_time("1m15")
    assert scored_span(14.0, None, None) is None and scored_span(14.0, 0, 14.0) is None  # all of it
    assert scored_span(14.0, 3.0, None) == (3.0, 14.0) and scored_span(14.0, None, 30.0) is None
    with pytest.raises(V2MError, match="at or after the video's end"):
        scored_span(14.0, 14.0, None)
    with pytest.raises(V2MError, match="shorter than 1 s"):
        scored_span(14.0, 5.0, 5.5)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def test_only_the_part_asked_for_is_scored(toned, tmp_path):
    r = generate(toned.path, str(tmp_path / "out.mp4"), start=4.0, end=11.0, fade=1.0, seed=2)
    assert r.span == (4.0, 11.0) and r.duration == pytest.approx(14.0, abs=0.05)
    out = read_audio(r.wav, SR)[0]
    original = read_audio(toned.path, SR)[0][: len(out)]
    assert len(out) == pytest.approx(14.0 * SR, abs=0.05 * SR)
    before, after = slice(int(0.5 * SR), int(3.5 * SR)), slice(int(11.5 * SR), int(13.5 * SR))
    for part in (before, after):  # the original sound, as it was
        assert _corr(out[part], original[part]) > 0.99
        assert np.std(out[part]) == pytest.approx(np.std(original[part]), rel=0.05)
    inside = slice(int(5.5 * SR), int(9.5 * SR))
    assert abs(_corr(out[inside], original[inside])) < 0.3  # the music, without the tone
    # the tone goes out as the music comes in, and back as it goes out
    assert _corr(out[int(4.0 * SR):int(4.05 * SR)], original[int(4.0 * SR):int(4.05 * SR)]) > 0.9
    assert _corr(out[int(10.95 * SR):int(11.0 * SR)], original[int(10.95 * SR):int(11.0 * SR)]) > 0.9
    assert r.cuts_on_beats == 1.0  # the cuts at 6.0 and 9.5 s are hit, as in a whole video
    # the score starts where the scored part does: its notes lie inside it, in the video's time
    now, onsets, markers = 0.0, [], {}
    for m in mido.MidiFile(r.midi):
        now += m.time
        if m.type == "marker":
            markers[m.text] = now
        elif m.type == "note_on" and m.velocity > 0:
            onsets.append(now - markers.get("video start", 0.0))
    assert "scored part start" in markers
    assert markers["scored part start"] - markers["video start"] == pytest.approx(4.0, abs=0.01)
    assert min(onsets) > 3.0 and max(onsets) < 11.0


def test_the_music_fades_in_and_out_over_the_fade(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", duration=12.0, fps=10, size=(64, 36), cut_times=[5.0]).path
    r = generate(silent, str(tmp_path / "out.mp4"), start=3.0, end=10.0, fade=1.5, midi=False)
    out = read_audio(r.wav, SR)[0]

    def level(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(out[int(a * SR):int(b * SR)] ** 2)))

    assert level(0.0, 2.99) == 0.0 and level(10.01, 12.0) == 0.0  # no sound of its own: silence outside
    middle = level(4.5, 8.5)
    assert level(3.0, 3.3) < 0.35 * middle and level(9.7, 10.0) < 0.35 * middle  # a fade, not a switch
    assert level(3.6, 4.5) > 0.35 * middle


def test_provenance_beside_and_inside_the_video(toned, tmp_path, capsys):
    assert main(["generate", toned.path, "-o", str(tmp_path / "v.mp4"), "--style", "lofi", "--seed", "7",
                 "--music-control", "pitch,1.5", "--start", "0:02", "-q"]) == 0
    rec = json.loads((tmp_path / "v.json").read_text())
    assert rec["format"] == "v2m-provenance" and rec["made_by"].startswith("v2m ")
    assert (rec["model"], rec["seed"], rec["music"]["style"], rec["scored"]) == ("composer", 7, "lofi", [2.0, 14.0])
    assert rec["controls"]["music"] == ["pitch,1.5"] and rec["weights"] is None
    assert rec["licence"].startswith("none") and rec["soundfont_licence"]
    with av.open(str(tmp_path / "v.mp4")) as c:
        assert json.loads(c.metadata["description"]) == rec
    assert read_comment(str(tmp_path / "v.mp4")).startswith("v2m ") and "seed 7" in read_comment(str(tmp_path / "v.wav"))
    # a second run replaces v2m's own sidecar, but never a JSON file v2m did not write
    assert main(["generate", toned.path, "-o", str(tmp_path / "v.mp4"), "-q"]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["seed"] == 0
    (tmp_path / "w.json").write_text('{"my": "notes"}')
    assert main(["generate", toned.path, "-o", str(tmp_path / "w.mp4"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "w.json: exists and was not written by v2m" in err and not (tmp_path / "w.mp4").exists()


def test_neural_models_name_their_weights_terms():
    from v2m.provenance import LICENCES, licence_files

    assert "Stability AI Community License" in LICENCES["diffv2m"] and "CC-BY-NC 4.0" in LICENCES["stad"]
    assert licence_files("org/hub-id") == [] and licence_files(None) == []


def test_licence_files_beside_local_weights(tmp_path):
    from v2m.provenance import licence_files

    (tmp_path / "vae").mkdir()
    (tmp_path / "LICENSE.md").write_text("terms")
    (tmp_path / "vae" / "LICENCE").write_text("more terms")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert [p.split("/")[-1] for p in licence_files(str(tmp_path))] == ["LICENSE.md", "LICENCE"]
    assert len(licence_files(str(tmp_path / "model.safetensors"))) == 2
