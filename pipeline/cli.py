"""The ``tweetscope`` command: one sub-command per stage, flags generated from the stage configs.

Each command family lives with its stage: a module listed in ``COMMAND_MODULES`` defines
``add_commands(subparsers)`` and registers its sub-commands (with ``func=handler``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from pathlib import Path
from typing import Optional

from pipeline import __version__
from pipeline.progress import Cancelled, Progress, ProgressEvent
from pipeline.workspace import Workspace, WorkspaceError, default_data_dir

COMMAND_MODULES = (
    "pipeline.ingest.commands",
    "pipeline.stage_commands",
    "pipeline.labels.commands",
    "pipeline.scope_commands",
    "pipeline.lance_commands",
    "pipeline.publish",
    "pipeline.runner",
    "studio.commands",
)


class UserError(Exception):
    """An error the user can fix; printed as one line, exit code 1 (2 for usage)."""


def add_data_dir(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $TWEETSCOPE_DATA_DIR or ./data)")
    if dataset:
        parser.add_argument("--dataset", required=True, help="dataset name")


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    return Workspace(args.data_dir or default_data_dir())


class ProgressBar:
    """A progress callback that draws a bar on stderr (tqdm) for anything slower than a second."""

    def __init__(self, stream=None, min_seconds: float = 1.0):
        self.stream = stream or sys.stderr
        self.min_seconds = min_seconds
        self._bars: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        with self._lock:
            bar = self._bars.get(event.stage)
            if bar is None:
                if event.elapsed < self.min_seconds and not (event.total and event.done < event.total):
                    return
                bar = tqdm(total=event.total, desc=event.stage or "working", file=self.stream,
                           leave=True, dynamic_ncols=True, mininterval=0.2)
                self._bars[event.stage] = bar
            if event.total is not None and bar.total != event.total:
                bar.total = event.total
            bar.n = event.done
            if event.message:
                bar.set_postfix_str(event.message[:60], refresh=False)
            bar.refresh()
            if event.total and event.done >= event.total:
                bar.close()
                self._bars.pop(event.stage, None)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()


def cli_progress(stage: str = "") -> Progress:
    """A Progress wired to a stderr bar; quiet when stderr is not a terminal and CI is set."""
    quiet = os.environ.get("TWEETSCOPE_QUIET") == "1"
    return Progress(None if quiet else ProgressBar(), stage)


def cmd_datasets(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    names = ws.dataset_names()
    if not names:
        print(f"no datasets in {ws.data_dir}")
        return 0
    kinds = ("embedding", "umap", "cluster", "toponymy", "scopes")
    for ds in ws.datasets():
        meta = ds.meta()
        states = " ".join(f"{k}:{ds.status(k)['status']}" for k in kinds)
        print(f"{ds.name}\t{meta.get('length', '?')} rows\t{states}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tweetscope", description="Tweetscope Studio: archive -> map of ideas -> publish")
    parser.add_argument("--version", action="version", version=f"tweetscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("datasets", help="list datasets and their stage status")
    add_data_dir(p, dataset=False)
    p.set_defaults(func=cmd_datasets)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that command family is not built yet
            raise
        module.add_commands(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, WorkspaceError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
