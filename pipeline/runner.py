"""Run every missing or stale stage of a dataset in order, with default configs.

The order is the spec's lineage: embed → UMAP (display + cluster) → HDBSCAN → toponymy labels
→ scope → links → local LanceDB table. ``tweetscope run`` and the studio's first start call
:func:`run_pipeline`; each stage is the same ``run_*`` function the stage commands use.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from pipeline.progress import Progress, null_progress
from pipeline.workspace import Dataset, read_json


@dataclass
class StageStep:
    """One stage of the pipeline: how to tell whether it must run, and how to run it."""

    name: str
    needs_run: Callable[[Dataset], Optional[str]]  # reason to run, or None when current
    run: Callable[[Dataset, Progress], object]


def _status_reason(kind: str, **match) -> Callable[[Dataset], Optional[str]]:
    def reason(ds: Dataset) -> Optional[str]:
        st = ds.status(kind, **match)
        return None if st["status"] == "done" else st["reason"] or st["status"]

    return reason


def _links_reason(ds: Dataset) -> Optional[str]:
    meta_path = ds.links_dir / "meta.json"
    if not meta_path.is_file():
        return "no links yet"
    meta = read_json(meta_path)
    recorded = meta.get("input_fingerprint")
    if recorded and recorded != ds.input_fingerprint():
        return "the dataset was ingested again"
    return None


def _lance_reason(ds: Dataset) -> Optional[str]:
    scope_id = ds.latest("scopes")
    if scope_id is None:
        return "no scope yet"
    table = ds.sidecar(scope_id).get("lancedb_table_id")
    record = ds.lancedb_dir / "exports.json"
    if record.is_file():
        exports = read_json(record)
        entries = exports if isinstance(exports, list) else exports.get("exports", [])
        if any(e.get("table") == table for e in entries if isinstance(e, dict)):
            return None
    return f"{scope_id} has no local LanceDB table yet"


def _run_embed(ds: Dataset, progress: Progress):
    from pipeline.embed import EmbedConfig, run_embed

    return run_embed(ds, EmbedConfig(), progress)


def _run_umap(ds: Dataset, progress: Progress):
    from pipeline.umap_stage import run_umap

    return run_umap(ds, None, progress)


def _run_cluster(ds: Dataset, progress: Progress):
    from pipeline.cluster import run_cluster

    return run_cluster(ds, None, progress)


def _run_labels(ds: Dataset, progress: Progress):
    from pipeline.labels import run_labels

    return run_labels(ds, None, progress)


def _run_scope(ds: Dataset, progress: Progress):
    from pipeline.scope import run_scope

    return run_scope(ds, None, progress)


def _run_links(ds: Dataset, progress: Progress):
    from pipeline.links import run_links

    return run_links(ds, progress)


def _run_lance(ds: Dataset, progress: Progress):
    from pipeline.lance_export import export_lance

    return export_lance(ds, ds.latest("scopes"), None, progress)


PIPELINE: tuple[StageStep, ...] = (
    StageStep("embed", _status_reason("embedding"), _run_embed),
    StageStep("umap", _status_reason("umap", purpose="display"), _run_umap),
    StageStep("cluster", _status_reason("cluster"), _run_cluster),
    StageStep("labels", _status_reason("toponymy"), _run_labels),
    StageStep("scope", _status_reason("scopes"), _run_scope),
    StageStep("links", _links_reason, _run_links),
    StageStep("lancedb", _lance_reason, _run_lance),
)
STAGE_NAMES = tuple(step.name for step in PIPELINE)


@dataclass
class RunReport:
    ran: list[tuple[str, object, float]] = field(default_factory=list)  # (stage, result, seconds)
    skipped: list[str] = field(default_factory=list)


def plan_pipeline(dataset: Dataset, stages: Optional[list[str]] = None, force: bool = False) -> list[tuple[str, str]]:
    """The stages that would run, with the reason for each, in order.

    Once a stage runs, everything after it must run too, so the plan is cumulative.
    """
    wanted = set(stages or STAGE_NAMES)
    unknown = wanted - set(STAGE_NAMES)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGE_NAMES)}")
    plan, upstream_ran = [], False
    for step in PIPELINE:
        if step.name not in wanted:
            continue
        reason = "forced" if force else step.needs_run(dataset)
        if reason is None and upstream_ran:
            reason = "an earlier stage ran"
        if reason is not None:
            plan.append((step.name, reason))
            upstream_ran = True
    return plan


def run_pipeline(
    dataset: Dataset,
    progress: Optional[Progress] = None,
    stages: Optional[list[str]] = None,
    force: bool = False,
) -> RunReport:
    """Run each planned stage in order; stops at the first error (earlier artifacts stay)."""
    progress = progress or null_progress("run")
    report = RunReport()
    planned = dict(plan_pipeline(dataset, stages, force))
    steps = [s for s in PIPELINE if s.name in planned]
    for i, step in enumerate(steps):
        progress.for_stage("run").update(i, len(steps), f"{step.name}: {planned[step.name]}")
        started = time.perf_counter()
        result = step.run(dataset, progress.for_stage(step.name))
        report.ran.append((step.name, result, time.perf_counter() - started))
    progress.for_stage("run").update(len(steps), len(steps), "done")
    report.skipped = [s.name for s in PIPELINE if s.name not in planned and (not stages or s.name in stages)]
    return report


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress, workspace_from_args

    ws = workspace_from_args(args)
    if args.archive:
        from pipeline.ingest import ingest_archive

        ingest_archive(args.archive, ws, args.dataset, overwrite=args.overwrite,
                       progress=cli_progress("ingest"))
    dataset = ws.dataset(args.dataset)
    plan = plan_pipeline(dataset, args.stages, args.force)
    if not plan:
        print(f"{dataset.name}: every stage is up to date")
        return 0
    for name, reason in plan:
        print(f"will run {name}: {reason}")
    if args.dry_run:
        return 0
    report = run_pipeline(dataset, cli_progress("run"), args.stages, args.force)
    for name, result, seconds in report.ran:
        print(f"{name}: {result if isinstance(result, (str, tuple)) else 'done'} ({seconds:.1f} s)")
    return 0


def add_commands(subparsers) -> None:
    from pipeline.cli import add_data_dir

    p = subparsers.add_parser("run", help="run every missing or stale stage with default settings")
    add_data_dir(p)
    p.add_argument("--archive", help="ingest this archive first (ZIP, folder or Community Archive JSON)")
    p.add_argument("--overwrite", action="store_true", help="with --archive: replace an existing dataset")
    p.add_argument("--stages", nargs="*", choices=STAGE_NAMES, help="only these stages")
    p.add_argument("--force", action="store_true", help="run the stages even when they are up to date")
    p.add_argument("--dry-run", action="store_true", help="print what would run and stop")
    p.set_defaults(func=cmd_run)
