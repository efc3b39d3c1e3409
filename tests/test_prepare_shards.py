"""`v2m prepare --shard i/n`: shards at work at once on one folder end with a complete manifest,
whatever order they finish in."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from v2m.analysis import AnalysisSettings
from v2m.data import prepare
from v2m.data.prepare import PrepareSettings, run_prepare, sources_digest
from v2m.fsutil import write_bytes_atomic
from synthetic import write_video

SECONDS = (2.0, 3.0, 4.0, 5.0)  # one-second clips: 14 in all
SETTINGS = PrepareSettings(clip_seconds=1.0, min_seconds=1.0, analysis=AnalysisSettings(clip=None))


@pytest.fixture(scope="module")
def shard_sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("shard-src")
    for k, seconds in enumerate(SECONDS):
        write_video(d / f"v{k}.mp4", duration=seconds, fps=10, size=(64, 48), audio=True)
    return d


def _assert_complete(out: Path):
    """Every clip of every source is listed, and the manifest was made from the sources as they are."""
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    by_source = {}
    for r in rows:
        by_source.setdefault(Path(r["source"]).name, []).append(r["id"].rsplit("/", 1)[1])
    assert by_source == {f"v{k}.mp4": [str(i) for i in range(int(s))] for k, s in enumerate(SECONDS)}
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["clips"] == len(rows) == sum(map(int, SECONDS)) and summary["sources"] == len(SECONDS)
    assert summary["sources_digest"] == sources_digest(prepare._source_files(str(out)))


def _shard(inputs: list[str], out: str, shard: tuple[int, int]) -> None:
    run_prepare(inputs, out, SETTINGS, shard=shard, progress=False)


def test_shards_at_work_at_once_end_complete(shard_sources, tmp_path, monkeypatch):
    """Four processes started together, one source each (of different lengths, so that they
    finish at different times), spawned as separate runs are. Each runs its matrix products on
    one thread: four processes with BLAS thread pools on two cores, next to the rest of the test
    session, were seen to stall in OpenBLAS's hand-over to its threads for many minutes."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")  # read by the children's numpy and torch when they load
    out = tmp_path / "ds"
    n = len(SECONDS)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_shard, args=([str(shard_sources)], str(out), (i, n))) for i in range(n)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(240)
    finally:
        for p in procs:  # a shard that hangs fails the test instead of running on
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * n
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"{i}-of-{n}" for i in range(n)]
    _assert_complete(out)


def test_a_stale_manifest_written_last_is_rebuilt(shard_sources, tmp_path, monkeypatch):
    """The race, made to happen: shard 0 lists the sources; shard 1 then writes its last source and
    its complete manifest; shard 0 writes its manifest from the stale listing after that."""
    out = str(tmp_path / "ds")
    written = []  # (shard, clips) of every manifest written, in order
    real_files, real_write = prepare._source_files, prepare.write_manifest
    current = [0]  # the shard at work in this process

    def files(folder):
        listing = real_files(folder)
        if current[0] == 0 and not written:  # shard 0's first listing: now shard 1 runs to its end
            current[0] = 1
            run_prepare([str(shard_sources)], out, SETTINGS, shard=(1, 2), progress=False)
            current[0] = 0
        return listing

    def write(out_dir, settings, origin=None):
        shard = current[0]
        summary = real_write(out_dir, settings, origin)
        written.append((shard, summary["clips"]))
        return summary

    monkeypatch.setattr(prepare, "_source_files", files)
    monkeypatch.setattr(prepare, "write_manifest", write)
    summary, failed = run_prepare([str(shard_sources)], out, SETTINGS, shard=(0, 2), progress=False)
    assert not failed
    total, shard0 = sum(map(int, SECONDS)), int(SECONDS[0] + SECONDS[2])
    # shard 1 wrote the whole manifest, shard 0's stale one replaced it, and shard 0 saw that and rebuilt
    assert written == [(1, total), (0, shard0), (0, total)]
    assert summary["clips"] == total
    _assert_complete(Path(out))


def test_a_shard_done_early_rebuilds_once(shard_sources, tmp_path, monkeypatch):
    """While another shard is still at work (its marker missing), a finished shard does not
    chase that shard's progress: it rebuilds once and leaves the last rebuild to it."""
    out = tmp_path / "ds"
    writes = []
    real_write = prepare.write_manifest

    def busy(out_dir, settings, origin=None):  # the other shard finishes a source during each of 3 rebuilds
        summary = real_write(out_dir, settings, origin)
        writes.append(summary)
        if len(writes) <= 3:
            write_bytes_atomic(Path(out_dir) / "sources" / f"other-{len(writes)}.json",
                               json.dumps({"settings_key": settings.key(), "rows": []}).encode())
        return summary

    monkeypatch.setattr(prepare, "write_manifest", busy)
    run_prepare([str(shard_sources)], str(out), SETTINGS, shard=(0, 2), progress=False)
    assert len(writes) == 1
    assert writes[0]["sources_digest"] != sources_digest(prepare._source_files(str(out)))  # stale, and left so
    monkeypatch.setattr(prepare, "write_manifest", real_write)
    run_prepare([str(shard_sources)], str(out), SETTINGS, shard=(1, 2), progress=False)  # the last shard
    _assert_complete(out)


def test_a_rerun_shard_takes_back_its_marker(shard_sources, tmp_path, monkeypatch):
    """A shard at work again (a re-run) takes its marker away until it is done, so a shard that
    finishes meanwhile leaves the last rebuild to it instead of chasing its progress."""
    out = tmp_path / "ds"
    run_prepare([str(shard_sources)], str(out), SETTINGS, shard=(0, 2), progress=False)
    assert (out / "shards" / "0-of-2").exists() and not prepare._all_shards_finished(str(out), 2)
    seen = []
    real = prepare.prepare_source

    def spy(*args, **kwargs):
        seen.append(sorted(p.name for p in (out / "shards").iterdir()))
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare, "prepare_source", spy)
    (out / "sources" / next(iter(prepare._source_files(str(out))))).unlink()  # one source to redo
    run_prepare([str(shard_sources)], str(out), SETTINGS, shard=(0, 2), progress=False)
    assert seen == [[]]  # at work: marker gone
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0-of-2"]  # done: back
