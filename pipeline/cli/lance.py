"""``tweetscope lance`` (export a scope to LanceDB) and ``tweetscope search`` (a quick query of it)."""

from __future__ import annotations

import argparse

from pipeline.cli.common import UserError, add_data_dir, cli_progress, workspace_from_args
from pipeline.core.config import add_config_arguments, config_from_args
from pipeline.serving.lance_export import export_lance, search_scope
from pipeline.stages.lancedb import LanceConfig


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scope", required=True, help="scope id, e.g. scopes-001")
    p.add_argument("--uri", default=None,
                   help="LanceDB folder, s3://bucket/prefix or db://name "
                        "(default: $LANCEDB_URI, else <dataset>/lancedb); "
                        "Cloud key/region come from $LANCEDB_API_KEY/$LANCEDB_REGION")


def cmd_lance(args: argparse.Namespace) -> int:
    dataset = workspace_from_args(args).dataset(args.dataset)
    config = config_from_args(LanceConfig, args)
    record = export_lance(dataset, args.scope, uri=args.uri, progress=cli_progress("lance"),
                          register=not args.no_register, vector_index_min_rows=config.vector_index_min_rows)
    built = ", ".join(f"{i['index_type']}({i['column']}) {i['seconds']}s" for i in record["indices"]) or "none"
    print(f"{record['rows']} rows -> {record['table']} at {record['uri']} "
          f"({record['deleted_skipped']} tombstoned rows left out) in {record['timings']['total_s']}s")
    print(f"indices: {built}")
    for skipped in record["skipped_indices"]:
        print(f"skipped {skipped['index_type']}({skipped['column']}): {skipped['reason']}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    if sum(x is not None for x in (args.query, args.fts)) != 1:
        raise UserError("give exactly one of --query TEXT (semantic) or --fts WORDS (full text)")
    dataset = workspace_from_args(args).dataset(args.dataset)
    found = search_scope(dataset, args.scope, query=args.query, fts=args.fts, cluster=args.cluster,
                         limit=args.limit, uri=args.uri, columns=["id", "ls_index", "cluster", "text"])
    if found.empty:
        print("no matches")
        return 0
    score = "_distance" if "_distance" in found else "_score" if "_score" in found else None
    for _, row in found.iterrows():
        text = " ".join(str(row["text"]).split())[:100]
        value = f"{row[score]:.3f}\t" if score else ""
        print(f"{value}{row['ls_index']}\t{row['cluster']}\t{row['id']}\t{text}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("lance", help="export a scope to LanceDB (table + vector/BTREE/FTS indices)")
    add_data_dir(p)
    _add_target(p)
    p.add_argument("--no-register", action="store_true",
                   help="do not upsert the dataset/scope rows of the _meta control-plane tables")
    add_config_arguments(p, LanceConfig)
    p.set_defaults(func=cmd_lance)

    p = subparsers.add_parser("search", help="query an exported scope table (semantic or full text)")
    add_data_dir(p)
    _add_target(p)
    p.add_argument("--query", default=None, help="text to embed with the scope's embedder")
    p.add_argument("--fts", default=None, help="full-text query on the tweet text")
    p.add_argument("--cluster", default=None,
                   help="only rows of this cluster: its id in the scope's cluster column, e.g. 0_3 (toponymy) or 3")
    p.add_argument("--limit", type=int, default=10, help="number of results (default 10)")
    p.set_defaults(func=cmd_search)
