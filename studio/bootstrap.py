"""First start with ``--sample``: ingest the bundled archive and run its pipeline offline.

Everything runs as ordinary jobs of the studio's runner (one per stage, in order), so the
curator watches the progress in the Stages view and the sidebar like any other run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pipeline.core.workspace import Workspace
from pipeline.stages.registry import STAGE_NAMES, get_stage
from pipeline.stages.runner import plan_pipeline
from studio.jobs import Job, JobRunner
from studio.views.load import ingest_job

SAMPLE_ARCHIVE = Path(__file__).resolve().parents[1] / "assets" / "sample" / "twitter-archive.zip"
SAMPLE_NAME = "sample"


def _stage_job(workspace: Workspace, name: str, stage: str, before: list[Job]):
    def run(progress):
        failed = next((j for j in before if j.status in ("failed", "cancelled")), None)
        if failed is not None:
            raise RuntimeError(f"not run because {failed.stage} {failed.status}: {failed.error}")

        step = get_stage(stage)
        dataset = workspace.dataset(name)
        if step.needs_run(dataset) is None:
            return f"{stage} already up to date"
        return step.execute(dataset, progress=progress)

    return run


def bootstrap_sample(workspace: Workspace, runner: JobRunner, archive: Path = SAMPLE_ARCHIVE,
                     name: str = SAMPLE_NAME) -> list[Job]:
    """Queue what the sample still needs; returns the jobs (empty when there is nothing to do).

    With no dataset at all in the data dir, the sample archive is ingested first. When the
    sample exists, only its missing stages are queued (a first start that was interrupted
    resumes where it stopped).
    """
    jobs: list[Job] = []
    names = workspace.dataset_names()
    if not names:
        if not Path(archive).is_file():
            raise FileNotFoundError(f"the bundled sample archive is missing: {archive}")
        jobs.append(runner.submit(name, "ingest", ingest_job(Path(archive), workspace, name),
                                  title=f"ingest the sample archive as '{name}'"))
        stages = list(STAGE_NAMES)
    elif name in names:
        stages = _missing_stages(workspace, name)
    else:
        return []  # the curator has their own datasets: leave them alone
    for stage in stages:
        jobs.append(runner.submit(name, stage, _stage_job(workspace, name, stage, list(jobs)),
                                  title=f"{stage} (first start of '{name}')"))
    return jobs


def _missing_stages(workspace: Workspace, name: str) -> list[str]:
    try:
        plan = plan_pipeline(workspace.dataset(name))
    except Exception:  # noqa: BLE001 - an unreadable sidecar: nothing to resume, the Stages view shows it
        return []
    return [stage for stage, _reason in plan]


def first_failure(jobs: list[Job]) -> Optional[Job]:
    return next((j for j in jobs if j.status == "failed"), None)
