"""The load box: a malformed record fails the ingest with its one line; 'Skip bad records' ingests the rest."""

from __future__ import annotations

from kits.archives import make_zip, tweet, ytd
from studio.jobs import DONE, FAILED, JobRunner
from studio.state import StudioState
from studio.views.load import LoadModel


def test_skip_bad_records_checkbox(tmp_path):
    state = StudioState(tmp_path / "data", runner=JobRunner())
    records = [tweet(1500000000000000001, "kept"), {"like": {"tweetId": "1"}}]
    archive = make_zip(tmp_path / "a.zip", {"data/tweets.js": ytd("tweets", records)})
    load = LoadModel(state)
    load.path, load.dataset_name = str(archive), "me"
    job = load.submit_path()
    state.runner.wait(job, timeout=60)
    state.poll_jobs()
    assert job.status == FAILED and "a.zip:data/tweets.js: record 2 is wrapped as {'like'" in load.error
    assert "Skip bad records" in load.error and state.workspace.dataset_names() == []

    load.skip_bad_records = True
    job = load.submit_path()
    state.runner.wait(job, timeout=60)
    state.poll_jobs()
    assert job.status == DONE, job.error
    assert "ready" in load.info and "skipped 1 malformed record(s)" in load.info and "record 2" in load.info
    assert state.workspace.dataset("me").read_input()["text"].tolist() == ["kept"]
