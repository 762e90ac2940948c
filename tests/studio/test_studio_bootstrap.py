"""``tweetscope studio --sample``: first start queues ingest + the offline pipeline as jobs."""

from __future__ import annotations

import subprocess
import sys

from pipeline.core.workspace import Workspace
from pipeline.stages.registry import STAGE_NAMES
from studio.bootstrap import bootstrap_sample
from studio.jobs import CANCELLED, DONE, JobRunner


def test_first_start_ingests_the_sample_and_queues_every_stage(tmp_path, sample_zip):
    ws = Workspace(tmp_path / "data")
    runner = JobRunner()
    jobs = bootstrap_sample(ws, runner, archive=sample_zip)
    assert [j.stage for j in jobs] == ["ingest", *STAGE_NAMES]
    for job in jobs[1:]:  # the stages themselves are tested elsewhere; stop them here
        runner.cancel(job.id)
    runner.wait_idle(timeout=300)
    assert jobs[0].status == DONE, jobs[0].error
    assert ws.dataset_names() == ["sample"]
    assert all(j.status in (CANCELLED, DONE) for j in jobs[1:])
    assert ws.dataset("sample").latest("embedding") is None  # cancelled: nothing half-written

    # A second start resumes: the sample exists, its missing stages are queued again.
    again = bootstrap_sample(ws, runner, archive=sample_zip)
    assert [j.stage for j in again] == list(STAGE_NAMES)
    for job in again:
        runner.cancel(job.id)
    runner.wait_idle(timeout=300)


def test_the_curators_own_datasets_are_left_alone(tmp_path, sample_zip):
    ws = Workspace(tmp_path / "data")
    (ws.data_dir / "mine").mkdir(parents=True)
    (ws.data_dir / "mine" / "meta.json").write_text("{}")
    assert bootstrap_sample(ws, JobRunner(), archive=sample_zip) == []


def test_studio_command_is_registered():
    out = subprocess.run([sys.executable, "-c",
                          "from pipeline.cli.main import build_parser; build_parser().parse_args(['studio', '--help'])"],
                         capture_output=True, text=True, timeout=600,
                         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"})
    assert "--no-browser" in out.stdout and "--sample" in out.stdout and "127.0.0.1" in out.stdout
