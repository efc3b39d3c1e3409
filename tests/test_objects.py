"""ControllableV2M's object decomposition: the selection rule, SAM's mask post-processing, the
per-object features on a video with known objects, and the real SAM + CLIP path with tiny models."""

from __future__ import annotations

import av
import numpy as np
import pytest

from v2m.analysis.objects import (MaskSettings, SamSegmenter, bgr_histograms, box_nms, decompose, mask_overview,
                                  remove_small_regions, sample_times, select_objects, shot_seconds)
from v2m.analysis.shot_objects import StadShot, clip_tensors, merge_shots
from v2m.errors import WeightsUnavailable


def _square(shape, top, left, size) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_selection_rule_is_the_official_one():
    shape = (40, 40)
    big = _square(shape, 0, 0, 20)  # 400 px
    half_inside = _square(shape, 10, 10, 14)  # 196 px, 100 of them inside `big`: 51 % covered
    third_inside = _square(shape, 14, 14, 15)  # 225 px, 36 inside `big`: 16 %
    corner = _square(shape, 30, 30, 10)  # 100 px
    tiny = _square(shape, 0, 35, 3)
    objects = select_objects([tiny, corner, half_inside, big, third_inside], n_objects=5)
    assert len(objects) == 5 and all(o.dtype == bool for o in objects)
    assert [int(o.sum()) for o in objects[:4]] == [400, 225, 100, 9]  # largest first, half_inside refused
    np.testing.assert_array_equal(objects[-1], ~(big | third_inside | corner | tiny))  # the background
    assert len(select_objects([big, third_inside, corner, tiny], n_objects=3)) == 3  # at most n - 1 objects
    assert len(select_objects([], n_objects=5)) == 0
    # each kept mask is checked on its own: 25 % + 25 % covered by two kept masks is accepted
    left, right = _square(shape, 0, 0, 10), _square(shape, 0, 20, 10)
    straddling = np.zeros(shape, bool)
    straddling[0:4, 5:25] = True
    assert len(select_objects([left, right, straddling], n_objects=5)) == 4


def test_sam_post_processing():
    m = _square((30, 30), 5, 5, 12)
    m[10, 10] = False  # a one-pixel hole
    m[25, 25] = True  # a one-pixel island
    clean = remove_small_regions(m, 5)
    assert clean[10, 10] and not clean[25, 25] and clean.sum() == 144
    boxes = np.array([[0, 0, 19, 19], [1, 1, 20, 20], [30, 30, 39, 39]], np.float32)  # IoU 0.82, 0
    assert box_nms(boxes, np.array([0.5, 0.9, 0.7]), 0.7) == [1, 2]  # the weaker duplicate goes


def test_seconds_belong_to_the_shot_holding_their_middle():
    shots = np.array([[0.0, 0.3], [0.3, 2.0], [2.0, 3.6]])
    assert shot_seconds(shots, 3.6) == [(1, 0, 2), (2, 2, 4)]  # shot 0 holds no second's middle
    assert sample_times(shots, 3.6) == [(1, [0.3, 1.0]), (2, [2.0, 3.0])]


def test_merging_keeps_every_second():
    def shot(seconds, value):
        return StadShot(np.full((5, 8), value, np.float32), np.zeros((5, 3, 256), np.float32),
                        np.full((5, 1), 0.2, np.float32), np.zeros((5, 2), np.float32),
                        np.cumsum(np.ones((5, 2, seconds), np.float32), axis=2))

    shots = [shot(2, 1), shot(1, 2), shot(3, 3)]
    merged = merge_shots(shots, 2)
    assert [s.seconds for s in merged] == [3, 3] and merged[0].semantic[0, 0] == 1
    np.testing.assert_array_equal(merged[0].position[0, 0], [1, 2, 3])  # continues where shot 0 ended
    t = clip_tensors(shots, max_shots=2, n_objects=5, seconds=8)
    assert t["time_mask"].sum() == 6 and list(t["shot_of_second"][:6]) == [0, 0, 0, 1, 1, 1]
    assert t["semantic"].shape == (2, 5, 8)


# --- a video whose objects are known -------------------------------------------------------------

RED, GREEN, GREY, BLUE = (220, 30, 30), (30, 200, 30), (128, 128, 128), (40, 40, 160)


def _write_square_video(path, fps=10):
    """4 s, 128x96: a red 20 px square moving right 10 px/s on grey, then (cut at 2 s) a still
    green square on blue."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for i in range(4 * fps):
            t = i / fps
            img = np.empty((96, 128, 3), np.uint8)
            if t < 2.0:
                img[:] = GREY
                left = 20 + int(round(10 * t))
                img[40:60, left : left + 20] = RED
            else:
                img[:] = BLUE
                img[20:40, 80:100] = GREEN
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


class ColourSegmenter:
    """Objects = the red and the green square, found by colour (a stand-in for SAM)."""

    def _find(self, image, rgb):
        return np.abs(image.astype(int) - rgb).sum(-1) < 120

    def masks(self, image):
        return [m for m in (self._find(image, c) for c in (RED, GREEN)) if m.sum() > 20]

    def track(self, image, masks):
        out = []
        for m in masks:
            colour = RED if self._find(image, RED)[m].mean() > 0.5 or not self._find(image, GREEN).any() else GREEN
            out.append(self._find(image, colour))
        return out


class MeanColour:
    """A stand-in for CLIP: the mean colour of the pixels that are not black."""

    dim = 3

    def __call__(self, images):
        return np.stack([im[im.any(-1)].mean(0) for im in images]).astype(np.float32)


def test_features_of_known_objects(tmp_path):
    video = _write_square_video(tmp_path / "squares.mp4")
    keep = []
    shots = decompose(video, np.array([[0.0, 2.0], [2.0, 4.0]]), 4.0, segmenter=ColourSegmenter(),
                      embedder=MeanColour(), keep_masks=keep)
    assert [s.seconds for s in shots] == [2, 2]
    first, second = shots
    # frames are read with the longest side at 256 px: the 20 px square is 40 px, it moves 20 px/s
    assert first.semantic.shape == (5, 3) and np.abs(first.semantic[0] - RED).max() < 25
    assert np.abs(first.semantic[1] - GREY).max() < 10  # the background, everything else black
    assert not first.semantic[2:].any() and not first.area[2:].any()  # empty object slots
    np.testing.assert_allclose(first.area.sum(), 1.0, rtol=1e-6)
    assert abs(first.area[0, 0] - 1600 / (256 * 192)) < 0.002
    assert first.hist[0].sum(1).tolist() == [first.hist[0, 0].sum()] * 3  # every channel counts the mask pixels
    assert 1500 <= first.hist[0, 0].sum() <= 1700 and first.hist[0, 2, 200:240].sum() > 0.9 * first.hist[0, 2].sum()
    centre = np.array([99.5, 59.5]) / np.array([192, 256]) * 2 - 1  # (row, col) of the box centre at t = 0
    np.testing.assert_allclose(first.start[0], centre, atol=0.02)
    assert np.all(first.position[:, :, 0] == 0)
    np.testing.assert_allclose(first.position[0, :, 1], [0, 20], atol=2)  # moved right by 20 px in one second
    np.testing.assert_allclose(second.position[0], 0, atol=1.5)  # the green square stands still
    assert np.abs(second.semantic[0] - GREEN).max() < 25
    overview = mask_overview(keep)
    assert overview.shape == (192, 512, 3) and overview.dtype == np.uint8


def test_histograms_count_bgr():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 200  # R = 10, B = 200
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    h = bgr_histograms(image, mask)
    assert h[0, 200] == 8 and h[2, 10] == 8 and h[1, 0] == 8 and h.sum() == 24


# --- the real path: SAM and CLIP from folders ------------------------------------------------------


def test_decomposition_with_tiny_sam_and_clip(tmp_path, tiny_sam, tiny_clip, events_video):
    from v2m.analysis.semantic import ClipEmbedder

    # random weights predict low IoU: accept every mask so that objects are selected and tracked
    loose = MaskSettings(points_per_side=4, points_per_batch=8, pred_iou_thresh=-1e9, stability_score_thresh=0.0,
                         min_mask_region_area=4)
    sam = SamSegmenter(str(tiny_sam), device="cpu", settings=loose)
    assert sam.masks(np.zeros((48, 64, 3), np.uint8)) is not None
    shots = decompose(events_video.path, np.array([[0.0, 2.0], [2.0, 4.2], [4.2, 6.0]]), 6.0, segmenter=sam,
                      embedder=ClipEmbedder(str(tiny_clip), device="cpu"))
    assert [s.seconds for s in shots] == [2, 2, 2]
    for shot in shots:
        assert shot.semantic.shape == (5, 24) and shot.hist.shape == (5, 3, 256) and shot.position.shape == (5, 2, 2)
        np.testing.assert_allclose(shot.area.sum(), 1.0, rtol=1e-5)
        assert np.all(np.abs(shot.start) <= 1) and np.all(shot.position[..., 0] == 0)
        live = shot.area[:, 0] > 0
        assert live.sum() >= 1 and np.all(shot.hist[live].sum(2) > 0) and np.all(np.abs(shot.semantic[live]).sum(1) > 0)
    t = clip_tensors(shots, seconds=8)
    assert t["semantic"].shape == (10, 5, 24) and t["time_mask"].sum() == 6


def test_missing_weights_are_a_clear_error(tmp_path, tiny_clip, events_video):
    with pytest.raises(WeightsUnavailable, match="SAM weights"):
        decompose(events_video.path, np.array([[0.0, 6.0]]), 6.0, sam=str(tmp_path / "no-sam"), clip=str(tiny_clip),
                  device="cpu")


def test_analyze_objects_writes_the_official_files(events_video, tiny_sam, tiny_clip, tmp_path, capsys):
    import json

    from v2m.cli import main
    from v2m.data.official import load_stad_clip

    args = ["analyze", events_video.path, "-o", str(tmp_path / "out"), "--no-clip", "--objects", "--sam", str(tiny_sam),
            "--object-clip", str(tiny_clip), "--device", "cpu", "-q"]
    assert main(args) == 0, capsys.readouterr().err
    folder = tmp_path / "out" / "events.mp4.objects"
    shots = load_stad_clip(folder)  # the official reader takes them
    summary = json.loads((folder / "objects.json").read_text())
    assert len(shots) == len(summary["shots"]) == 3 and sum(s.seconds for s in shots) == 6
    assert shots[0].semantic.shape == (5, 24) and (folder / "objects.png").stat().st_size > 0
    # SAM that cannot load: one line, no objects folder
    code = main([*args[:7], str(tmp_path / "no-sam"), *args[8:], "-o", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert code == 1 and "SAM weights" in err and err.count("\n") == 1
    assert not (tmp_path / "out2" / "events.mp4.objects").exists()
