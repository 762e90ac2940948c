"""``tweetscope validate`` (the deploy gate) and ``tweetscope tombstone`` (delete rows from what is served)."""

from __future__ import annotations

import argparse

from pipeline.cli.common import UserError, add_data_dir, workspace_from_args
from pipeline.core import tombstones as tomb
from pipeline.serving.validate import validate_scope
from pipeline.stages.scope import apply_tombstones


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="deploy gate: check a scope's artifacts (exit 0 = publishable, 1 = problems listed)")
    add_data_dir(p)
    p.add_argument("--scope", default=None, help="scopes-NNN (default: the latest scope)")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("tombstone", help="delete tweets from what is served (and undo), by tweet id or link")
    tsub = p.add_subparsers(dest="tombstone_command", metavar="ACTION", required=True)
    for action, text in (("add", "mark tweets deleted"), ("remove", "undo: restore tweets"),
                         ("list", "show deleted tweets"), ("apply", "rewrite a scope for the current tombstones")):
        q = tsub.add_parser(action, help=text)
        add_data_dir(q)
        if action in ("add", "remove"):
            q.add_argument("--tweet", action="append", default=[], metavar="ID_OR_URL",
                           help="a tweet id or tweet URL (repeatable), as in the studio's delete box; "
                                "deletions are stored by tweet id, so they hold across re-ingests and updates")
            q.add_argument("ls_index", type=int, nargs="*",
                           help="or row numbers (ls_index) of the current ingest")
        if action != "list":
            q.add_argument("--scope", default=None,
                           help="scope to rewrite (default: the latest); 'none' only records the change"
                           if action != "apply" else "scopes-NNN (default: the latest)")
        q.set_defaults(func=cmd_tombstone, tombstone_action=action)


def _dataset(args):
    return workspace_from_args(args).dataset(args.dataset)


def cmd_validate(args: argparse.Namespace) -> int:
    dataset = _dataset(args)
    scope_id = dataset.require("scopes", args.scope or None)
    problems = validate_scope(dataset, scope_id)
    if problems:
        for problem in problems:
            print(problem)
        print(f"{dataset.name}/{scope_id}: {len(problems)} problem(s); not publishable")
        return 1
    print(f"{dataset.name}/{scope_id}: ok")
    return 0


def cmd_tombstone(args: argparse.Namespace) -> int:
    dataset = _dataset(args)
    action = args.tombstone_action
    if action == "list":
        rows = sorted(tomb.load_tombstones(dataset))
        ids = tomb.deleted_tweet_ids(dataset)
        print(f"{len(rows)} tombstoned row(s)" + (": " + " ".join(map(str, rows)) if rows else ""))
        if ids:
            print(f"{len(ids)} deleted tweet id(s): " + " ".join(sorted(ids, key=lambda t: (len(t), t))))
        return 0
    if action in ("add", "remove"):
        named = list(args.ls_index)
        if args.tweet:
            found, unknown = tomb.rows_for_references(" ".join(args.tweet), tomb.tweet_rows(dataset))
            if unknown:
                raise UserError(f"not tweets of dataset '{dataset.name}': {', '.join(unknown)}")
            named += found
        if not named:
            raise UserError("name the tweets: --tweet ID_OR_URL (and/or ls_index row numbers)")
        change = tomb.add_tombstones if action == "add" else tomb.remove_tombstones
        rows = change(dataset, named)
    else:
        rows = tomb.load_tombstones(dataset)
    print(f"{len(rows)} tombstoned row(s)")
    if (args.scope or "").lower() == "none" or (action != "apply" and not dataset.latest("scopes") and not args.scope):
        return 0
    scope_id = dataset.require("scopes", args.scope or None)
    result = apply_tombstones(dataset, scope_id)
    print(f"{scope_id}: {result['deleted']} deleted row(s) applied" + (", links rebuilt" if result["links"] else ""))
    return 0
