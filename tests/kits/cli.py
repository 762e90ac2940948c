"""Run the stage and scope command groups through the real ``tweetscope`` error handling."""

from __future__ import annotations

import argparse

from pipeline.cli import main as cli_mod
from pipeline.cli import scope, stages


def cli(argv, modules=(stages, scope)):
    """``tweetscope`` with only the given command modules registered (default: the stage and scope
    commands; fast: no studio, no publish)."""
    parser = argparse.ArgumentParser(prog="tweetscope")
    sub = parser.add_subparsers(dest="command")
    for module in modules:
        module.add_commands(sub)
    original = cli_mod.build_parser
    cli_mod.build_parser = lambda: parser
    try:
        return cli_mod.main(argv)
    finally:
        cli_mod.build_parser = original
