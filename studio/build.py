"""'Build the map': every missing or stale stage of a dataset, in order, as ONE job.

The plan and the run are :mod:`pipeline.stages.runner`'s (the registry's stage order), so
the studio keeps no stage list of its own; the job's progress shows the stage it is on.
"""

from __future__ import annotations

from typing import Optional

from pipeline.stages.registry import STAGE_NAMES
from pipeline.stages.runner import plan_pipeline, run_pipeline
from studio.jobs import Job, JobRunner

RUN_ALL = "run-all"  # the job's stage name in the runner and the Jobs view
#: the stages the map needs (everything up to the labels, in the registry's order)
MAP_STAGES = STAGE_NAMES[: STAGE_NAMES.index("labels") + 1]


def build_job(workspace, name: str, after: Optional[Job] = None):
    """The job function: run what ``plan_pipeline`` says is missing or stale (after ``after`` succeeded)."""

    def run(progress):
        if after is not None and after.status != "done":
            raise RuntimeError(f"not run because {after.stage} {after.status}: {after.error}")
        report = run_pipeline(workspace.dataset(name), progress=progress)
        return [artifact for _stage, artifact, _seconds in report.ran] or "everything was up to date"

    return run


def submit_build(runner: JobRunner, workspace, name: str, after: Optional[Job] = None) -> Job:
    """Queue the build of ``name`` (behind ``after``, e.g. its ingest: one worker per dataset runs them in order)."""
    return runner.submit(name, RUN_ALL, build_job(workspace, name, after),
                         title=f"build the map of '{name}' (every missing or stale stage)")


def pending_stages(dataset) -> list[str]:
    """The stages that are missing or stale for ``dataset`` (empty: nothing to run)."""
    try:
        return [stage for stage, _reason in plan_pipeline(dataset)]
    except Exception:  # noqa: BLE001 - an unreadable sidecar: the Stages view shows the error
        return list(STAGE_NAMES)


def map_is_built(dataset) -> bool:
    """True when every stage the map needs is done and up to date."""
    try:
        return not plan_pipeline(dataset, stages=list(MAP_STAGES))
    except Exception:  # noqa: BLE001
        return False
