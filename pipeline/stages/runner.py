"""Run every missing or stale stage of a dataset in order, with default configs.

The order is the registry's (:data:`pipeline.stages.registry.STAGES`): embed → UMAP (display +
cluster) → HDBSCAN → toponymy labels → scope → links → LanceDB table. ``tweetscope run`` and
the studio's first start and "run all" call :func:`plan_pipeline` / :func:`run_pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from pipeline.core.errors import ConfigError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.workspace import Dataset
from pipeline.stages.registry import STAGE_NAMES, STAGES


@dataclass
class RunReport:
    ran: list[tuple[str, str, float]] = field(default_factory=list)  # (stage, artifact id, seconds)
    skipped: list[str] = field(default_factory=list)


def plan_pipeline(dataset: Dataset, stages: Optional[list[str]] = None, force: bool = False) -> list[tuple[str, str]]:
    """The stages that would run, with the reason for each, in order.

    Once a stage runs, everything after it must run too, so the plan is cumulative.
    """
    wanted = set(stages or STAGE_NAMES)
    unknown = wanted - set(STAGE_NAMES)
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGE_NAMES)}")
    plan, upstream_ran = [], False
    for stage in STAGES:
        if stage.name not in wanted:
            continue
        reason = "forced" if force else stage.needs_run(dataset)
        if reason is None and upstream_ran:
            reason = "an earlier stage ran"
        if reason is not None:
            plan.append((stage.name, reason))
            upstream_ran = True
    return plan


def run_pipeline(
    dataset: Dataset,
    progress: Optional[Progress] = None,
    stages: Optional[list[str]] = None,
    force: bool = False,
) -> RunReport:
    """Run each planned stage in order with its default config; stops at the first error (earlier artifacts stay)."""
    progress = progress or null_progress("run")
    report = RunReport()
    planned = dict(plan_pipeline(dataset, stages, force))
    steps = [s for s in STAGES if s.name in planned]
    for i, stage in enumerate(steps):
        progress.for_stage("run").update(i, len(steps), f"{stage.name}: {planned[stage.name]}")
        started = time.perf_counter()
        result = stage.execute(dataset, progress=progress.for_stage(stage.name))
        report.ran.append((stage.name, result, time.perf_counter() - started))
    progress.for_stage("run").update(len(steps), len(steps), "done")
    report.skipped = [s.name for s in STAGES if s.name not in planned and (not stages or s.name in stages)]
    return report
