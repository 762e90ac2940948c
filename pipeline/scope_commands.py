"""``tweetscope scope | links | validate | tombstone``: assemble, link, gate and curate a scope."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    from pipeline.cli import add_data_dir
    from pipeline.config import add_config_arguments
    from pipeline.scope import ScopeConfig

    p = subparsers.add_parser(
        "scope", help="assemble a scope (scope JSON + parquet + -input.parquet) from the latest or given artifacts",
        description="Join input, display UMAP, clusters and labels into the three serving files. Missing ids "
                    "follow the chosen artifacts' lineage, else the latest; mismatched lineage is refused.")
    add_data_dir(p)
    p.add_argument("--embedding-id", default=None, help="embedding-NNN (default: the display UMAP's)")
    p.add_argument("--display-umap-id", default=None, help="display umap-NNN (default: the cluster's)")
    p.add_argument("--cluster-id", default=None, help="cluster-NNN (default: the labels', else the latest)")
    p.add_argument("--labels-id", default=None,
                   help="toponymy-NNN or 'default' (default: the cluster's latest toponymy labels)")
    add_config_arguments(p, ScopeConfig)
    p.set_defaults(func=cmd_scope)

    p = subparsers.add_parser("links", help="build reply/quote edges and node stats (links/*)")
    add_data_dir(p)
    p.set_defaults(func=cmd_links)

    p = subparsers.add_parser(
        "validate", help="deploy gate: check a scope's artifacts (exit 0 = publishable, 1 = problems listed)")
    add_data_dir(p)
    p.add_argument("--scope", default=None, help="scopes-NNN (default: the latest scope)")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("tombstone", help="delete rows from what is served (and undo) by ls_index")
    tsub = p.add_subparsers(dest="tombstone_command", metavar="ACTION", required=True)
    for action, text in (("add", "mark rows deleted"), ("remove", "undo: restore rows"),
                         ("list", "show tombstoned rows"), ("apply", "rewrite a scope for the current tombstones")):
        q = tsub.add_parser(action, help=text)
        add_data_dir(q)
        if action in ("add", "remove"):
            q.add_argument("ls_index", type=int, nargs="+", help="row numbers (ls_index)")
        if action != "list":
            q.add_argument("--scope", default=None,
                           help="scope to rewrite (default: the latest); 'none' only records the change"
                           if action != "apply" else "scopes-NNN (default: the latest)")
        q.set_defaults(func=cmd_tombstone, tombstone_action=action)


def _dataset(args):
    from pipeline.cli import workspace_from_args

    return workspace_from_args(args).dataset(args.dataset)


def cmd_scope(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress
    from pipeline.config import config_from_args
    from pipeline.scope import ScopeConfig, run_scope

    dataset = _dataset(args)
    scope_id = run_scope(dataset, config_from_args(ScopeConfig, args), cli_progress("scope"),
                         embedding_id=args.embedding_id, display_umap_id=args.display_umap_id,
                         cluster_id=args.cluster_id, labels_id=args.labels_id)
    scope = dataset.sidecar(scope_id)
    print(f"{scope_id}: {scope['rows']:,} rows, {scope['cluster_id']} labelled by {scope['cluster_labels_id']}, "
          f"lancedb table {scope['lancedb_table_id']}")
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress
    from pipeline.links import run_links

    meta = run_links(_dataset(args), cli_progress("links"))
    counts = meta["edge_type_counts"]
    print(f"links: {meta['edges']:,} edges ({counts['reply']:,} reply, {counts['quote']:,} quote; "
          f"{meta['internal_edges']:,} internal), {meta['nodes']:,} nodes")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.validate import validate_scope

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
    from pipeline import tombstones as tomb

    dataset = _dataset(args)
    action = args.tombstone_action
    if action == "list":
        rows = sorted(tomb.load_tombstones(dataset))
        print(f"{len(rows)} tombstoned row(s)" + (": " + " ".join(map(str, rows)) if rows else ""))
        return 0
    if action == "add":
        rows = tomb.add_tombstones(dataset, args.ls_index)
    elif action == "remove":
        rows = tomb.remove_tombstones(dataset, args.ls_index)
    else:
        rows = tomb.load_tombstones(dataset)
    print(f"{len(rows)} tombstoned row(s)")
    if (args.scope or "").lower() == "none" or (action != "apply" and not dataset.latest("scopes") and not args.scope):
        return 0
    scope_id = dataset.require("scopes", args.scope or None)
    result = tomb.apply_tombstones(dataset, scope_id)
    print(f"{scope_id}: {result['deleted']} deleted row(s) applied" + (", links rebuilt" if result["links"] else ""))
    return 0
