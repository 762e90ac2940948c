"""The ``tweetscope`` command: one entry point, one module per command group.

Each module in ``COMMAND_MODULES`` defines ``add_commands(subparsers)``; the stage commands
are generated from the stage registry. Packages that build on the pipeline (the studio) add
their commands through the ``tweetscope.commands`` entry-point group, so this package never
imports them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from typing import Optional

from pipeline import __version__
from pipeline.cli.common import add_data_dir, clear_progress_bars, workspace_from_args
from pipeline.core.errors import TweetscopeError
from pipeline.core.progress import Cancelled

COMMAND_MODULES = (
    "pipeline.cli.ingest",
    "pipeline.cli.stages",
    "pipeline.cli.labels",
    "pipeline.cli.scope",
    "pipeline.cli.lance",
    "pipeline.cli.publish",
    "pipeline.cli.unpublish",
    "pipeline.cli.run",
    "pipeline.cli.update",
)
PLUGIN_GROUP = "tweetscope.commands"


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
        importlib.import_module(module_name).add_commands(sub)
    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(sub)
    return parser


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line: a multi-line message's lines are joined with '; '."""
    lines = [line.strip().removeprefix("- ").strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], lines[1:]
    if rest and not head.endswith(":"):
        head += ":"
    return " ".join([head, "; ".join(rest)]) if rest else head


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (TweetscopeError, ValueError, FileNotFoundError, PermissionError) as exc:
        clear_progress_bars()
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except Cancelled as exc:
        clear_progress_bars()
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        clear_progress_bars()
        print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
