"""The web app's work without the page (v2m.app.jobs): upload checks, session folders, scoring and
variations through the same function as ``v2m generate``, and the CLI's summary words."""

from __future__ import annotations

import os

import numpy as np
import pytest

from v2m.analysis import analyze_video
from v2m.app import jobs
from v2m.controls import Controls
from v2m.errors import V2MError
from v2m.media import read_audio
from v2m.models import get_generator
from v2m.soundtrack import generate
from synthetic import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", duration=6.0, fps=10, size=(64, 36),
                       cut_times=[2.0, 4.1])


def test_an_upload_that_is_not_a_video_is_one_line(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video at all")
    with pytest.raises(V2MError) as e:
        jobs.check_upload(str(fake))
    assert e.value.path == "notes.mp4" and "\n" not in str(e.value)


def test_an_upload_too_long_or_too_large_is_refused(clip):
    assert jobs.check_upload(clip.path).duration == pytest.approx(6.0, abs=0.05)
    with pytest.raises(V2MError, match=r"is 6 s long; the app scores videos up to 5 s"):
        jobs.check_upload(clip.path, jobs.Limits(max_seconds=5))
    with pytest.raises(V2MError, match=r"the app takes videos up to 0 MB"):
        jobs.check_upload(clip.path, jobs.Limits(max_megabytes=0.001))
    with pytest.raises(V2MError, match="must be positive"):
        jobs.Limits(keep_minutes=0)


def test_sessions_are_apart_and_old_ones_are_swept(tmp_path):
    space = jobs.Workspace(str(tmp_path / "app"), jobs.Limits(keep_minutes=10))
    a, b = space.session("alice"), space.session("bob")
    assert a != b and os.path.isdir(a) and os.path.isdir(b)
    open(os.path.join(a, "x.wav"), "w").close()
    old = os.path.getmtime(a) - 11 * 60
    os.utime(a, (old, old))
    assert space.sweep() == ["alice"]
    assert not os.path.exists(a) and os.path.isdir(b)
    space.remove("bob")
    assert not os.path.exists(b)
    with pytest.raises(V2MError, match="invalid session key"):
        space.session("../etc")


def test_shot_choices_and_the_control_they_write(clip):
    analysis = analyze_video(clip.path)
    choices = jobs.shot_choices(analysis)
    assert [i for _, i in choices] == list(range(len(analysis.shots))) and len(choices) == 3
    assert choices[1][0].startswith("shot 1 (2.0-")
    text = jobs.video_control(choices[1][1], "move", 0.5)
    assert text == "1,-1,move,0.5"
    assert Controls.parse(video=[text]).video_weight("move", 1) == 0.5
    assert Controls.parse(video=[jobs.video_control(None, "color", 2)]).video_weight("color", 2) == 2.0


def test_variations_score_the_same_video_three_ways_as_the_command_line_would(clip, tmp_path):
    generator = get_generator("composer", style="acoustic")
    results = jobs.variations(clip.path, str(tmp_path), generator=generator, seeds=(4, 5, 6))
    assert [os.path.basename(r.video) for r in results] == ["clip_seed4.mp4", "clip_seed5.mp4", "clip_seed6.mp4"]
    audio = [read_audio(r.wav, 44100) for r in results]
    assert all(a.shape == (2, 6 * 44100) for a in audio)
    assert not np.array_equal(audio[0], audio[1])  # other seeds, other music
    for r in results:
        assert os.path.getsize(r.midi) > 0 and os.path.getsize(r.plot) > 0
        assert "acoustic" in jobs.describe(r)
    # the same seed through v2m generate gives the same music: one code path
    direct = generate(clip.path, str(tmp_path / "direct.mp4"), generator=generator, seed=5)
    assert np.array_equal(read_audio(direct.wav, 44100), audio[1])
    again = jobs.score(clip.path, str(tmp_path), generator=generator, seed=5)  # a rerun replaces its files
    assert np.array_equal(read_audio(again.wav, 44100), audio[1])


def test_variations_report_their_progress_in_order(clip, tmp_path):
    generator = get_generator("composer")
    heard = []
    jobs.variations(clip.path, str(tmp_path), generator=generator, seeds=(0, 1),
                    progress=lambda stage, f: heard.append((stage, f)))
    shares = [f for _, f in heard]
    assert shares == sorted(shares) and 0 < shares[0] and shares[-1] == pytest.approx(0.95)  # both takes' mux
    assert [s for s, _ in heard] == ["music", "render", "mux"] * 2  # the analysis was made once, before
    assert [jobs.stage_share(s, 0.5) for s in ("analysis", "music", "render", "mux")] == \
        pytest.approx([0.2, 0.575, 0.825, 0.95])
