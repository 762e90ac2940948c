"""Run the stage and scope command groups through the real ``tweetscope`` error handling."""

from __future__ import annotations

import argparse

from pipeline.cli import main as cli_mod
from pipeline.cli import scope, stages


def cli(argv):
    """``tweetscope`` with only the stage and scope commands registered (fast: no studio, no publish)."""
    parser = argparse.ArgumentParser(prog="tweetscope")
    sub = parser.add_subparsers(dest="command")
    stages.add_commands(sub)
    scope.add_commands(sub)
    original = cli_mod.build_parser
    cli_mod.build_parser = lambda: parser
    try:
        return cli_mod.main(argv)
    finally:
        cli_mod.build_parser = original
