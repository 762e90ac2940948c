"""Digest every artifact data file of a pipeline run on the bundled sample, and compare two digests.

A refactor that claims "no behaviour change" is checked with it: run the sample through
``tweetscope ingest`` + ``tweetscope run`` (default seed) with the code before and after,
then compare. Data files (parquet, h5, npz, png) must be byte-identical (exit 1 otherwise); JSON sidecars are
not compared byte for byte (they carry timestamps, timings and a fresh ``scope_uid``); their
``params`` differences are listed as notes.

    python benchmarks/artifact_digest.py run  --out before.json [--repo DIR] [--python PY]
    python benchmarks/artifact_digest.py compare before.json after.json

``--repo`` runs another checkout's code (e.g. a ``git worktree`` of the old commit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = (".parquet", ".h5", ".npz", ".png")


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def digest_dataset(folder: Path) -> dict:
    """``{"files": {relative path: sha256}, "params": {artifact id: params}}`` of one dataset folder."""
    files, params = {}, {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(("lancedb/", ".ids/")) or "/." in f"/{rel}":
            continue
        if path.suffix in DATA_SUFFIXES:
            files[rel] = _sha256(path)
        elif path.suffix == ".json" and path.parent != folder:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "params" in data:
                params[rel] = data["params"]
    return {"files": files, "params": params}


def run_sample(repo: Path, python: str, work: Path, name: str = "sample") -> Path:
    """Ingest the bundled sample and run every stage offline with the repo's code; returns the dataset folder."""
    env = dict(os.environ, TWEETSCOPE_QUIET="1", VOYAGE_API_KEY="", OPENAI_API_KEY="", ANTHROPIC_API_KEY="",
               PYTHONPATH=str(repo))
    env.pop("LANCEDB_URI", None)
    archive = repo / "assets" / "sample" / "twitter-archive.zip"
    cli = [python, "-m", "pipeline.cli"]
    subprocess.run([*cli, "ingest", str(archive), "--data-dir", str(work), "--dataset", name],
                   cwd=repo, env=env, check=True)
    subprocess.run([*cli, "run", "--data-dir", str(work), "--dataset", name], cwd=repo, env=env, check=True)
    return work / name


def compare(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """(data-file differences, sidecar ``params`` differences), one line each."""
    problems = []
    for rel in sorted(set(before["files"]) | set(after["files"])):
        a, b = before["files"].get(rel), after["files"].get(rel)
        if a is None or b is None:
            problems.append(f"{rel}: only in {'after' if a is None else 'before'}")
        elif a != b:
            problems.append(f"{rel}: bytes differ")
    notes = []
    for rel in sorted(set(before["params"]) | set(after["params"])):
        old, new = before["params"].get(rel) or {}, after["params"].get(rel) or {}
        changed = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
        if changed:
            notes.append(f"{rel}: params " + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items()))
    return problems, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the sample through every stage and write the digest")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repo", type=Path, default=ROOT, help="checkout whose code runs (default: this one)")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--keep", type=Path, default=None, help="data dir to keep the run in (default: a temp dir)")
    p = sub.add_parser("compare", help="compare two digests; exit 1 when they differ")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        with tempfile.TemporaryDirectory() as tmp:
            work = args.keep or Path(tmp)
            folder = run_sample(args.repo.resolve(), args.python, work)
            digest = digest_dataset(folder)
        args.out.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
        print(f"{len(digest['files'])} data files digested -> {args.out}")
        return 0
    problems, notes = compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    for line in problems:
        print(line)
    for line in notes:
        print(f"note: {line}")
    print(f"data files: {'identical' if not problems else f'{len(problems)} difference(s)'}; "
          f"{len(notes)} sidecar(s) with other params")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
