"""`v2m generate` with the offline composer, end to end, and every control."""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from v2m.analysis import analyze_video
from v2m.cli import main
from v2m.controls import ControlError, Controls, MusicControl, VideoControl
from v2m.evaluate.metrics import cuts_on_beats
from v2m.soundtrack import generate
from v2m.media import read_audio
from v2m.models.composer import compose, find_soundfont
from v2m.render import integrated_loudness
from synthetic import write_video

# Cuts at irregular times, 1.9-2.9 s apart: no single tempo fits them all, so landing them on
# beats needs the tempo search and the bends.
CUTS = [2.3, 4.7, 6.6, 9.5, 11.9, 14.2]
PULSES = [1.2, 8.1, 13.0]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    colors = [(200, 40, 40), (40, 60, 200), (240, 240, 230), (40, 170, 60), (30, 30, 40), (230, 120, 30),
              (150, 50, 170)]
    v = write_video(folder / "scene.mp4", duration=16.0, fps=25, size=(160, 96), cut_times=CUTS,
                    pulse_times=PULSES, shot_colors=colors, audio=True)
    return v


@pytest.fixture(scope="module")
def analysis(scene):
    return analyze_video(scene.path)


@pytest.fixture(scope="module")
def result(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "scored.mp4"
    return generate(scene.path, str(out), plot=True, seed=3)


def _packets(path, kind):
    with av.open(path) as c:
        stream = getattr(c.streams, kind)[0]
        return [bytes(p) for p in c.demux(stream) if p.size]


def test_outputs_are_written(result):
    for path in (result.video, result.wav, result.midi, result.plot):
        assert path and os.path.getsize(path) > 0
    with open(result.plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(os.path.dirname(result.video)) if ".part" in p]


def test_video_copied_and_music_muxed_at_the_exact_duration(scene, result):
    with av.open(result.video) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert c.streams.audio[0].codec_context.name == "aac"
        video_duration = float(c.streams.video[0].duration * c.streams.video[0].time_base)
        audio_duration = float(c.streams.audio[0].duration * c.streams.audio[0].time_base)
    assert _packets(result.video, "video") == _packets(scene.path, "video")  # not re-encoded
    assert video_duration == pytest.approx(16.0, abs=0.001)
    assert abs(audio_duration - video_duration) < 0.025  # within one AAC frame
    wav = read_audio(result.wav, 44100)
    assert wav.shape == (2, 16 * 44100)


def test_loudness_on_target_without_clipping(result):
    wav = read_audio(result.wav, 44100)
    assert integrated_loudness(wav, 44100) == pytest.approx(-14.0, abs=1.0)
    assert np.abs(wav).max() <= 10 ** (-1 / 20) + 1e-3
    muxed = read_audio(result.video, 44100)
    assert integrated_loudness(muxed, 44100) == pytest.approx(-14.0, abs=1.0)


def test_cuts_land_on_beats(analysis, result):
    # The grid puts cuts on beats by construction (anchors); 5 of 6 is the floor we accept for
    # cuts this irregular (a bend over 10 % is refused). Then the audio itself: an onset (the
    # cymbal, bass and new chord the composer puts on each landed cut) within 50 ms of the cut.
    import librosa

    assert result.cuts_on_beats >= 5 / 6
    y, sr = read_audio(result.wav, 22050, channels=1)[0], 22050
    onsets = librosa.onset.onset_detect(y=y, sr=sr, units="time", hop_length=256, backtrack=False)
    heard = cuts_on_beats(analysis.cut_times, onsets, tolerance=0.05)
    assert heard >= 4 / 6, (onsets, analysis.cut_times)


def test_same_seed_same_music_other_seed_other_music(analysis):
    a = compose(analysis, analysis.duration, seed=7)
    b = compose(analysis, analysis.duration, seed=7)
    c = compose(analysis, analysis.duration, seed=8)
    notes = lambda s: [(round(n.start, 4), n.pitch, n.velocity, n.part) for n in s.notes]  # noqa: E731
    assert notes(a) == notes(b)
    assert notes(a) != notes(c)
    sf = find_soundfont()
    assert np.array_equal(a.render(sf), b.render(sf))


def _melody(score):
    return score.notes_of("melody")


def test_pitch_control_moves_the_register(analysis):
    base = compose(analysis, analysis.duration, seed=1)
    up = compose(analysis, analysis.duration, Controls.parse(music=["pitch,2"]), seed=1)
    down = compose(analysis, analysis.duration, Controls.parse(music=["pitch,0.5"]), seed=1)
    mean = lambda s: np.mean([n.pitch for n in _melody(s)])  # noqa: E731
    assert mean(up) == pytest.approx(mean(base) + 12, abs=0.01)
    assert mean(down) == pytest.approx(mean(base) - 12, abs=0.01)
    assert [n.pitch for n in up.notes_of("drums")] == [n.pitch for n in base.notes_of("drums")]


def test_loudness_control_moves_the_dynamics(analysis):
    spread = lambda s: np.std([n.velocity for n in s.notes])  # noqa: E731
    wide = compose(analysis, analysis.duration, Controls.parse(music=["loudness,2"]), seed=1)
    narrow = compose(analysis, analysis.duration, Controls.parse(music=["loudness,0.3"]), seed=1)
    base = compose(analysis, analysis.duration, seed=1)
    assert spread(wide) > 1.5 * spread(base) > 1.5 * 1.5 * spread(narrow)


def test_chroma_control_moves_the_harmonic_colour(analysis):
    def pitch_classes_per_chord(score):
        by_onset = {}  # the held chords of the strings, struck together
        for n in score.notes_of("harmony"):
            by_onset.setdefault(round(n.start, 3), set()).add(n.pitch % 12)
        return np.median([len(v) for v in by_onset.values()])

    strings = dict(seed=1, style="cinematic-strings")
    rich = compose(analysis, analysis.duration, Controls.parse(music=["chroma,2.5"]), **strings)
    plain = compose(analysis, analysis.duration, **strings)
    bare = compose(analysis, analysis.duration, Controls.parse(music=["chroma,0.3"]), **strings)
    pitch_classes_per_bar = pitch_classes_per_chord
    assert pitch_classes_per_bar(rich) == pytest.approx(5)
    assert pitch_classes_per_bar(plain) == pytest.approx(3)
    assert pitch_classes_per_bar(bare) == pytest.approx(2)


def test_spectral_control_moves_the_brightness(analysis):
    import librosa

    sf = find_soundfont()

    def centroid(weight):
        s = compose(analysis, analysis.duration, Controls.parse(music=[f"spectral,{weight}"]), seed=1)
        y = s.render(sf).mean(axis=0)
        return float(np.mean(librosa.feature.spectral_centroid(y=y, sr=44100)))

    assert centroid(2.0) > 1.1 * centroid(1.0) > 1.1 * 1.1 * centroid(0.5)


def _section_notes(score, analysis, shot):
    a, z = analysis.shots[shot]
    return [n for n in score.notes if a - 1e-6 <= n.start < z - 1e-6]


def test_move_control_calms_one_shot(analysis):
    base = compose(analysis, analysis.duration, seed=1)
    calm = compose(analysis, analysis.duration, Controls.parse(video=["3,-1,move,0.1"]), seed=1)
    assert len(_section_notes(calm, analysis, 3)) < len(_section_notes(base, analysis, 3))
    # softer in every pitched part (a busy groove's ghost notes are soft, so the kit is left out)
    for part in ("melody", "harmony", "bass"):
        vel = lambda s: np.mean([n.velocity for n in _section_notes(s, analysis, 3)  # noqa: E731
                                 if s.parts[n.part].name == part])
        assert vel(calm) < vel(base), part


def test_color_control_moves_the_register_of_one_shot(analysis):
    # shot 1 is a saturated cool blue: exaggerating its colour lowers its music, greying it lifts
    # it, against the rest of the cue (whose key the colour may also move). One style for both:
    # the colour of a shot also moves the whole cue's mood, hence its style.
    def relative(s):
        pitched = [n for n in s.notes if not s.parts[n.part].is_drum and s.parts[n.part].name != "bass"]
        inside = {id(n) for n in _section_notes(s, analysis, 1)}
        return (np.mean([n.pitch for n in pitched if id(n) in inside])
                - np.mean([n.pitch for n in pitched if id(n) not in inside]))

    vivid = compose(analysis, analysis.duration, Controls.parse(video=["1,-1,color,3"]), seed=1, style="acoustic")
    grey = compose(analysis, analysis.duration, Controls.parse(video=["1,-1,color,0"]), seed=1, style="acoustic")
    assert relative(vivid) < relative(grey) - 3


@pytest.fixture(scope="module")
def long_shots(tmp_path_factory):
    """Four shots of 14-16 s: each opens a section of the music."""
    folder = tmp_path_factory.mktemp("long")
    v = write_video(folder / "long.mp4", duration=60.0, fps=10, size=(64, 36), cut_times=[15.0, 29.0, 45.0],
                    shot_colors=[(200, 60, 40), (40, 60, 200), (230, 220, 200), (40, 160, 60)])
    return analyze_video(v.path)


def test_semantic_control_zero_keeps_the_previous_motif(long_shots):
    analysis = long_shots

    def motifs(score):
        """Each section's melody rhythm in its first bar, in beats from the bar's start."""
        out = []
        for _, a, z in score.sections:
            start = float(score.grid.position(a))
            # on a sixteenth-note grid: the performance moves notes by a few milliseconds
            out.append([round(4 * (float(score.grid.position(n.start)) - start)) / 4 for n in score.notes_of("melody")
                        if a - 0.05 <= n.start < z - 0.05 and score.grid.position(n.start) - start < 3.9])
        return [m for m in out if m]

    same = motifs(compose(analysis, analysis.duration, Controls.parse(video=["-1,-1,semantic,0"]), seed=1))
    fresh = motifs(compose(analysis, analysis.duration, Controls.parse(video=["-1,-1,semantic,2"]), seed=1))
    assert len(same) >= 2 and all(m == same[0] for m in same)
    assert any(m != fresh[0] for m in fresh)


def test_tempo_and_key_options(analysis):
    s = compose(analysis, analysis.duration, Controls.parse(tempo=90, key="D minor"), seed=1)
    assert s.info["bpm"] == 90 and s.info["key"] == "D minor"
    assert {n.pitch % 12 for n in s.notes_of("bass")} <= {2, 4, 5, 7, 9, 10, 0, 1}  # D minor (+ C#)


@pytest.mark.parametrize(
    "spec, message",
    [
        (["--music-control", "pitchy,2"], "allowed: pitch, chroma, loudness, spectral, all"),
        (["--music-control", "pitch"], "FEATURE,WEIGHT"),
        (["--music-control", "pitch,-1"], ">= 0"),
        (["--video-control", "1,0,moves,1"], "allowed: semantic, color, move, area, position, all"),
        (["--video-control", "a,0,move,1"], "SHOT and OBJ must be integers"),
        (["--video-control", "1,move,0.5"], "SHOT,OBJ,FEATURE,WEIGHT"),
        (["--key", "H major"], "key 'H major' not understood"),
        (["--tempo", "1000"], "between 20 and 300"),
    ],
)
def test_malformed_controls_are_refused(scene, tmp_path, capsys, spec, message):
    code = main(["generate", scene.path, "-o", str(tmp_path / "x.mp4"), *spec])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_control_parsing():
    assert MusicControl.parse("ALL, 1.5") == MusicControl("all", 1.5)
    assert VideoControl.parse("2,-1,move,0.5") == VideoControl(2, -1, "move", 0.5)
    c = Controls.parse(music=["pitch,2", "all,0.5"], video=["-1,-1,color,2", "1,0,color,3"])
    assert c.music_weight("pitch") == 1.0 and c.music_weight("chroma") == 0.5
    assert c.video_weight("color", 1) == 6.0 and c.video_weight("color", 0) == 2.0
    with pytest.raises(ControlError):
        VideoControl.parse("-2,0,move,1")


def test_bad_inputs_and_no_overwrite(scene, tmp_path, capsys):
    from synthetic import write_audio_only

    audio_only = write_audio_only(tmp_path / "a.m4a")
    for path, problem in ((str(tmp_path / "missing.mp4"), "file not found"),
                          (audio_only, "has no video stream")):
        code = main(["generate", path, "-o", str(tmp_path / "out.mp4"), "-q"])
        err = capsys.readouterr().err
        assert code == 1 and err.strip() == f"v2m: error: {path}: {problem}" + (
            " (audio only)" if path == audio_only else "")
    code = main(["generate", scene.path, "-o", scene.path, "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "would overwrite the input" in err
    code = main(["generate", scene.path, "-o", str(tmp_path / "x.webm"), "-q"])
    assert code == 1 and "use one of .mp4" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a.m4a"]


def test_mix_keeps_the_original_underneath(scene, tmp_path):
    plain = generate(scene.path, str(tmp_path / "plain.mp4"), seed=3, midi=False)
    mixed = generate(scene.path, str(tmp_path / "mixed.mp4"), seed=3, mix=1.0, midi=False)
    a, b = read_audio(plain.wav, 44100), read_audio(mixed.wav, 44100)
    # the original is a 440 Hz tone: it is there in the mix, not in the plain score
    spectrum = lambda x: np.abs(np.fft.rfft(x.mean(axis=0)))  # noqa: E731
    bin440 = int(round(440 * a.shape[1] / 44100))
    assert spectrum(b)[bin440] > 5 * spectrum(a)[bin440]
    assert integrated_loudness(b, 44100) == pytest.approx(-14.0, abs=1.0)


def test_short_video_and_folder_run(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "two.mp4", duration=2.0, fps=25, cut_times=[1.0])
    write_video(src / "three.mkv", duration=3.0, fps=25)
    (src / "sub").mkdir()
    write_video(src / "sub" / "two.mp4", duration=2.5, fps=25)  # same name, another folder
    (src / "broken.mp4").write_bytes(b"not a video at all")
    code = main(["generate", str(src), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "1 of 4 videos failed" in err and "broken.mp4" in err
    outs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert outs == ["sub/two.json", "sub/two.mid", "sub/two.mp4", "sub/two.wav", "three.json", "three.mid",
                    "three.mkv", "three.wav", "two.json", "two.mid", "two.mp4", "two.wav"]
    assert read_audio(tmp_path / "out" / "two.wav", 44100).shape[1] == 2 * 44100


def test_python_api(scene, tmp_path):
    import v2m

    r = v2m.generate(scene.path, str(tmp_path / "api.mkv"), controls=Controls.parse(music=["pitch,2"]), wav=False)
    assert r.video.endswith("api.mkv") and r.wav is None and os.path.exists(r.midi)
    assert r.info["key"] and r.info["bpm"]


def test_composer_statistics_are_learned_from_the_corpus():
    from v2m.models.composer.compose import load_stats
    from v2m.models.composer.train import learn

    shipped = load_stats()
    assert shipped["source"]["chorales"] >= 100 and shipped["source"]["tunes"] >= 500
    for mode in ("major", "minor"):
        assert np.allclose(np.sum(shipped["harmony"][mode]["transition"], axis=1), 1.0, atol=1e-4)
    # V -> I is the most common way out of the dominant in Bach's major-key chorales
    assert int(np.argmax(shipped["harmony"]["major"]["transition"][4])) == 0
    small = learn(chorales=2, tunes=5, log=lambda m: None)
    assert small.keys() == shipped.keys() and small["source"]["chorales"] == 2
    assert json.loads(json.dumps(small)) == small


# --- stems --------------------------------------------------------------------------------------


def test_stems_are_aligned_and_sum_to_the_mix_before_mastering(scene, analysis, tmp_path):
    from v2m.models import GenerationRequest
    from v2m.models.composer import Composer

    r = generate(scene.path, str(tmp_path / "s.mp4"), seed=3, stems=True, midi=False, analysis=analysis)
    folder = tmp_path / "s.stems"
    parts = [p.name for p in compose(analysis, analysis.duration, seed=3).parts]
    assert list(r.stems) == parts and sorted(os.listdir(folder)) == sorted(f"{p}.wav" for p in parts)
    n = read_audio(r.wav, 44100).shape[1]
    total = np.zeros((2, n), np.float64)
    for part, path in r.stems.items():
        with av.open(path) as c:
            assert c.streams.audio[0].codec_context.name == "pcm_f32le"
        audio = read_audio(path, 44100)
        assert audio.shape == (2, n)  # sample-aligned with the mix and the video
        total += audio
    music = Composer().generate(GenerationRequest(analysis, analysis.duration, seed=3))
    try:
        premaster = music.array()
    finally:
        music.close()
    assert np.abs(total - premaster).max() < 1e-5
    # a second run replaces v2m's stems; a file of the same name that v2m did not write is left alone
    from v2m.media import write_wav

    write_wav(folder / f"{parts[0]}.wav", np.zeros((2, 100), np.float32), 44100)  # no v2m mark
    before = (tmp_path / "s.mp4").read_bytes()
    code = main(["generate", scene.path, "-o", str(tmp_path / "s.mp4"), "--stems", "--seed", "3", "-q"])
    assert code == 1 and (tmp_path / "s.mp4").read_bytes() == before
    assert read_audio(folder / f"{parts[0]}.wav", 44100).shape[1] == 100


def test_stems_from_a_neural_model_are_refused_in_one_line(scene, tmp_path, capsys):
    for model in ("diffv2m", "stad"):
        code = main(["generate", scene.path, "-o", str(tmp_path / "n.mp4"), "--model", model, "--stems", "-q"])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        assert "--stems" in err and "one mixed signal" in err and "composer" in err
    with pytest.raises(Exception, match="one mixed signal"):
        generate(scene.path, str(tmp_path / "n.mp4"), model="stad", stems=True)
    assert os.listdir(tmp_path) == []


def test_the_stems_of_a_part_scored_sit_where_it_sounds_in_the_video(scene, analysis, tmp_path):
    r = generate(scene.path, str(tmp_path / "p.mp4"), seed=3, stems=True, midi=False, analysis=analysis,
                 start=4.0, end=12.0)
    n = read_audio(r.wav, 44100).shape[1]
    for path in r.stems.values():
        audio = read_audio(path, 44100)
        assert audio.shape == (2, n)
        assert not audio[:, : 4 * 44100].any() and not audio[:, 12 * 44100 :].any()
    assert any(read_audio(path, 44100)[:, 4 * 44100 : 12 * 44100].any() for path in r.stems.values())
