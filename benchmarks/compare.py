"""Tweetscope Studio vs latentscope 1.0, stage by stage, on the same synthetic archives.

    .venv/bin/python benchmarks/compare.py --rows 10000 50000 212000

For each size: generate the archive (``synth_archive.py``, seed 0), then run both pipelines
stage by stage, interleaved so both sides see the same machine load, each stage in its own
child process (wall time, CPU time, peak RSS via ``os.wait4``; see ``peers/harness.py``).
latentscope runs in its own venv (``benchmarks/.peers-venv``, made by
``peers/install_latentscope.sh`` when missing), without network (``unshare -rn`` when the
kernel allows it), on the table our ingest produced and on our embedding (imported), so both
sides cluster the same vectors. What latentscope cannot do is recorded as ``n/a``.
Also measured on our side: re-cluster latency, map rasterize latency, first and no-op publish
bytes to a moto S3 server. Writes ``results/compare-<date>.json`` and ``.md`` (plus
``compare-latest.*``) and the plot ``compare-latest.png``. A failing stage is recorded as an
error; the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH / "peers"))
sys.path.insert(0, str(BENCH))

from harness import run_child  # noqa: E402
from synth_archive import generate_archive  # noqa: E402

OURS_PY = Path(sys.executable)
PEER_VENV = BENCH / ".peers-venv"
PEER_PY = PEER_VENV / "bin" / "python"
RESULTS = BENCH / "results"
NA = "n/a"

# (row label, our stages summed, latentscope stages summed, note). None = the tool cannot do it.
COMPARISON = [
    ("ingest", ["ingest"], ["ingest"],
     "ours parses the X archive ZIP; latentscope cannot read archives and ingests the table ours produced"),
    ("embed", ["embed"], None, "ours only (see Embedding above); latentscope imports these vectors"),
    ("import embeddings", None, ["import"], "latentscope only (ours embeds directly into its store)"),
    ("umap", ["umap"], ["umap"], "ours: one kNN graph → 2-D display + 10-D cluster manifold; latentscope: 2-D only"),
    ("cluster", ["cluster"], ["cluster"], "HDBSCAN: ours on the 10-D manifold, latentscope on the 2-D map"),
    ("labels (hierarchical)", ["labels"], None,
     "ours: toponymy layers, offline namer; latentscope labels only through an LLM API (flat)"),
    ("scope + LanceDB", ["scope", "lance"], ["scope"], "latentscope's scope step includes its LanceDB export"),
    ("links (reply/quote graph)", ["links"], None, ""),
    ("publish (S3, first)", ["publish"], None, "first publish + no-op republish to moto S3"),
]
# Totals over what both tools do (same input table, same vectors, to a searchable scope).
SHARED_OURS = ["ingest", "umap", "cluster", "scope", "lance"]
SHARED_THEIRS = ["ingest", "import", "umap", "cluster", "scope"]
FULL_OURS = ["ingest", "embed", "umap", "cluster", "labels", "scope", "lance", "links"]


def _peer_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update({
        "LATENT_SCOPE_DATA": str(data_dir), "LATENT_SCOPE_NO_DOTENV": "1", "LATENT_SCOPE_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
        "PATH": f"{PEER_VENV / 'bin'}:{os.environ.get('PATH', '')}",
    })
    return env


def _our_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
                "PYTHONUNBUFFERED": "1"})
    return env


def _no_network_prefix() -> list[str]:
    """``unshare -rn`` (a network namespace with no interfaces up) when the kernel allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


class Runner:
    """Runs the stages of one size and keeps their records."""

    def __init__(self, work: Path, rows: int, seed: int, timeout_s: float, no_network: list[str]):
        self.work, self.rows, self.seed, self.timeout_s = work, rows, seed, timeout_s
        self.name = f"synth-{rows}"
        self.ours_dir = work / "ours"
        self.peer_dir = work / "latentscope"
        self.exchange = work / "exchange" / self.name
        self.logs = work / "logs"
        self.no_network = no_network
        self.ours: dict[str, dict] = {}
        self.theirs: dict[str, dict] = {}

    def fresh(self) -> None:
        for path in (self.ours_dir / self.name, self.peer_dir / self.name, self.exchange):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.ours_dir, self.peer_dir, self.exchange, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    def _run(self, side: str, stage: str, cmd: list[str], env: dict) -> dict:
        tag = f"{self.name}-{side}-{stage}"
        print(f"  {side:11s} {stage:16s} ...", end="", flush=True)
        rec = run_child(cmd, result_path=self.logs / f"{tag}.result.json", log_path=self.logs / f"{tag}.log",
                        env=env, cwd=self.work, timeout_s=self.timeout_s)
        status = "ok" if rec.get("ok") else f"ERROR {rec.get('error', '')[:160]}"
        print(f" {rec['wall_s']:8.1f} s  {rec['peak_rss_mb']:7.0f} MB  {status}", flush=True)
        return rec

    def ours_stage(self, stage: str, **options) -> dict:
        cmd = [str(OURS_PY), str(BENCH / "peers" / "ours_stages.py"), stage,
               "--result", str(self.logs / f"{self.name}-ours-{stage}.result.json"),
               "--data-dir", str(self.ours_dir), "--dataset", self.name]
        for key, value in options.items():
            cmd += [f"--{key}", str(value)]
        self.ours[stage] = rec = self._run("ours", stage, cmd, _our_env())
        return rec

    def peer_stage(self, stage: str, **options) -> dict:
        if not PEER_PY.is_file():
            self.theirs[stage] = rec = {"ok": False, "error": f"no peer venv at {PEER_VENV}"}
            return rec
        cmd = self.no_network + [str(PEER_PY), str(BENCH / "peers" / "latentscope_stages.py"), stage,
                                 "--result", str(self.logs / f"{self.name}-latentscope-{stage}.result.json"),
                                 "--dataset", self.name]
        for key, value in options.items():
            cmd += [f"--{key}", str(value)]
        self.theirs[stage] = rec = self._run("latentscope", stage, cmd, _peer_env(self.peer_dir))
        return rec


def _archive(work: Path, rows: int, seed: int) -> tuple[Path, dict]:
    path = work / "archives" / f"synth-{rows}-seed{seed}.zip"
    info = {"path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path), "cached": path.is_file()}
    if not path.is_file():
        t0 = time.perf_counter()
        generate_archive(path, n_tweets=rows, seed=seed, fmt="zip")
        info["generate_s"] = round(time.perf_counter() - t0, 1)
    info["bytes"] = path.stat().st_size
    return path, info


def run_size(work: Path, rows: int, seed: int, umap_params: dict, timeout_s: float,
             no_network: list[str], embed_model: str = "") -> dict:
    """Both pipelines on one archive size; returns the size's record."""
    print(f"== {rows:,} tweets", flush=True)
    archive, archive_info = _archive(work, rows, seed)
    r = Runner(work, rows, seed, timeout_s, no_network)
    r.fresh()
    r.ours_stage("ingest", archive=archive)
    r.ours_stage("embed", model=embed_model)
    exported = r.ours_stage("export_for_peer", out_dir=r.exchange)
    if exported.get("ok"):
        r.peer_stage("ingest", path=r.exchange / "input.parquet")
        r.peer_stage("import", npy=r.exchange / "embeddings.npy")
    else:
        for stage in ("ingest", "import"):
            r.theirs[stage] = {"ok": False, "error": "our ingest/embed failed: nothing to import"}
    umap_opts = {"min-dist": umap_params["min_dist"], "seed": umap_params["seed"]}
    r.ours_stage("umap", neighbors=umap_params["n_neighbors"], **umap_opts)
    r.peer_stage("umap", neighbors=umap_params["peer_n_neighbors"], **umap_opts)
    ours_cluster = r.ours_stage("cluster")
    params = (ours_cluster.get("info") or {}).get("params") or {}
    mcs = int(params.get("min_cluster_size") or umap_params["min_cluster_size"])
    ms = int(params.get("min_samples") or umap_params["min_samples"])
    eps = float(params.get("cluster_selection_epsilon") or 0.0)
    r.peer_stage("cluster", **{"min-cluster-size": mcs, "min-samples": ms, "epsilon": eps})
    r.ours_stage("labels")
    r.ours_stage("scope")
    r.ours_stage("lance")
    r.peer_stage("scope")
    r.ours_stage("links")
    r.ours_stage("recluster")
    r.ours_stage("rasterize")
    r.ours_stage("publish")
    # disk is the shared scratch area: the vectors (and LanceDB tables) are the big part
    shutil.rmtree(r.exchange, ignore_errors=True)
    return {"rows": rows, "archive": archive_info,
            "cluster_params": {"min_cluster_size": mcs, "min_samples": ms, "cluster_selection_epsilon": eps},
            "ours": r.ours, "latentscope": r.theirs,
            "comparison": comparison_rows(r.ours, r.theirs)}


def _sum(records: dict, stages: Optional[list[str]]) -> Optional[dict]:
    """Summed wall/CPU and max peak RSS of ``stages``; an error when one failed; None = n/a."""
    if stages is None:
        return None
    recs = [records.get(s) for s in stages]
    failed = [s for s, rec in zip(stages, recs) if not rec or not rec.get("ok")]
    if failed:
        errors = "; ".join(f"{s}: {(records.get(s) or {}).get('error', 'not run')}" for s in failed)
        return {"error": errors[:500]}
    return {"wall_s": round(sum(r["wall_s"] for r in recs), 3), "cpu_s": round(sum(r["cpu_s"] for r in recs), 3),
            "work_s": round(sum(r.get("work_s", 0) for r in recs), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in recs)}


def _ratio(a: Optional[dict], b: Optional[dict], key: str) -> Optional[float]:
    if not a or not b or key not in a or key not in b or not b[key]:
        return None
    return round(a[key] / b[key], 2)


def comparison_rows(ours: dict, theirs: dict) -> list[dict]:
    rows = []

    def add(label, ours_stages, their_stages, note):
        o, t = _sum(ours, ours_stages), _sum(theirs, their_stages)
        rows.append({"stage": label, "ours": o if o is not None else NA, "latentscope": t if t is not None else NA,
                     "wall_ratio": _ratio(o, t, "wall_s"), "cpu_ratio": _ratio(o, t, "cpu_s"),
                     "rss_ratio": _ratio(o, t, "peak_rss_mb"), "note": note})

    for label, o, t, note in COMPARISON:
        add(label, o, t, note)
    add("total, shared stages", SHARED_OURS, SHARED_THEIRS,
        "ingest → map → clusters → searchable scope, on the same vectors")
    add("total, full pipeline", FULL_OURS, SHARED_THEIRS, "ours adds embed, hierarchical labels, links")
    # latentscope has no incremental re-cluster: a new min_cluster_size is a new ls-cluster run
    rec = ours.get("recluster") or {}
    their_cluster = theirs.get("cluster") or {}
    rows.append({
        "stage": "re-cluster (new min_cluster_size)",
        "ours": {"latency_s": rec["info"]["warm_median_s"], "first_call_s": rec["info"]["first_call_s"]}
        if rec.get("ok") else {"error": rec.get("error", "not run")},
        "latentscope": {"latency_s": their_cluster["wall_s"]} if their_cluster.get("ok") else NA,
        "wall_ratio": round(rec["info"]["warm_median_s"] / their_cluster["wall_s"], 4)
        if rec.get("ok") and their_cluster.get("ok") else None,
        "note": "ours re-extracts from the cached condensed tree; latentscope re-runs ls-cluster",
    })
    ras = ours.get("rasterize") or {}
    rows.append({
        "stage": "map rasterize", "latentscope": NA, "wall_ratio": None,
        "ours": {"latency_s": ras["info"]["warm_median_s"], "first_call_s": ras["info"]["first_call_s"]}
        if ras.get("ok") else {"error": ras.get("error", "not run")},
        "note": "datashader on display x,y by cluster; latentscope draws points in the browser (WebGL)",
    })
    pub = ours.get("publish") or {}
    if pub.get("ok"):
        info = pub["info"]
        ours_pub = {"first_bytes": info["first"]["bytes_uploaded"], "first_s": info["first"]["total_seconds"],
                    "noop_bytes": info["noop"]["bytes_uploaded"], "noop_s": info["noop"]["total_seconds"]}
    else:
        ours_pub = {"error": pub.get("error", "not run")}
    rows.append({"stage": "publish bytes (first / no-op)", "ours": ours_pub, "latentscope": NA,
                 "wall_ratio": None, "note": "moto S3 server on 127.0.0.1; latentscope has no publish step"})
    return rows


# ------------------------------------------------------------------------------------ report


def _cell(value, key="wall_s", fmt="{:.1f}") -> str:
    if value == NA:
        return NA
    if not isinstance(value, dict):
        return "—"
    if "error" in value:
        return "error"
    return fmt.format(value[key]) if key in value else "—"


def _r(x: Optional[float]) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x >= 0.01 else f"{x:.4f}"  # the slider's ratio is ~0.002: keep its digits


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n:,} B"


def _umap_settings(config: dict) -> str:
    umap = config.get("umap") or {}
    ours, theirs = umap.get("n_neighbors", "?"), umap.get("peer_n_neighbors", umap.get("n_neighbors", "?"))
    if ours == "default":
        ours = "the stage default"
    return (f"UMAP n_neighbors: ours {ours}, latentscope {theirs}; min_dist {umap.get('min_dist', '?')}, "
            f"seed {umap.get('seed', '?')}. ")


def markdown(result: dict) -> str:
    lines = [f"# Tweetscope Studio vs latentscope {result['versions']['latentscope'].get('latentscope', '?')}",
             "", f"Run {result['created_at']} on {result['machine']['description']}. Ratios are ours ÷ latentscope "
             "(lower is better); wall = child process wall time (start-up and imports included), "
             "RSS = peak resident memory of the stage's process. `n/a` = the tool has no such step. "
             f"Embedding: {result['config'].get('embedding', '?')}. {_umap_settings(result['config'])}"
             f"Command: `{result.get('command', '')}`.", ""]
    for size in result["sizes"]:
        rows = size["comparison"]
        lines += [f"## {size['rows']:,} tweets", "",
                  "| stage | ours s | latentscope s | wall ratio | CPU ratio | ours MB | latentscope MB | RSS ratio | note |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in rows:
            if row["stage"].startswith(("re-cluster", "map rasterize", "publish bytes")):
                continue
            lines.append(
                f"| {row['stage']} | {_cell(row['ours'])} | {_cell(row['latentscope'])} | {_r(row['wall_ratio'])} "
                f"| {_r(row.get('cpu_ratio'))} | {_cell(row['ours'], 'peak_rss_mb', '{:.0f}')} "
                f"| {_cell(row['latentscope'], 'peak_rss_mb', '{:.0f}')} | {_r(row.get('rss_ratio'))} | {row['note']} |")
        by = {row["stage"]: row for row in rows}
        rc, ras, pub = by["re-cluster (new min_cluster_size)"], by["map rasterize"], by["publish bytes (first / no-op)"]
        lines.append("")
        if "latency_s" in rc["ours"]:
            their = rc["latentscope"]
            lines.append(f"- Re-cluster (new `min_cluster_size`): ours **{rc['ours']['latency_s'] * 1000:.0f} ms** "
                         f"(first call {rc['ours']['first_call_s']:.2f} s); latentscope has none — it re-runs "
                         f"`ls-cluster`: {their['latency_s']:.1f} s" if isinstance(their, dict) else
                         f"- Re-cluster: ours {rc['ours']['latency_s'] * 1000:.0f} ms; latentscope n/a")
        else:
            lines.append(f"- Re-cluster: error ({rc['ours'].get('error', '')[:200]})")
        if "latency_s" in ras["ours"]:
            lines.append(f"- Map rasterize ({size['rows']:,} points, datashader): ours **{ras['ours']['latency_s'] * 1000:.0f} ms** "
                         f"warm (first call {ras['ours']['first_call_s']:.2f} s); latentscope n/a (renders in the browser)")
        else:
            lines.append(f"- Map rasterize: error ({ras['ours'].get('error', '')[:200]})")
        if "first_bytes" in pub["ours"]:
            p = pub["ours"]
            lines.append(f"- Publish to S3 (moto): first **{_mb(p['first_bytes'])}** in {p['first_s']:.1f} s; "
                         f"no-op republish **{_mb(p['noop_bytes'])}** in {p['noop_s']:.2f} s; latentscope n/a")
        else:
            lines.append(f"- Publish: error ({pub['ours'].get('error', '')[:200]})")
        errors = [f"{side} {stage}: {rec.get('error')}" for side in ("ours", "latentscope")
                  for stage, rec in size[side].items() if not rec.get("ok")]
        if errors:
            lines += ["", "Errors:", *[f"- `{e[:300]}`" for e in errors]]
        lines.append("")
    if len(result["sizes"]) > 1:
        lines += ["## Wall ratio by size (ours ÷ latentscope)", "",
                  "| stage | " + " | ".join(f"{s['rows']:,}" for s in result["sizes"]) + " |",
                  "|---|" + "---:|" * len(result["sizes"])]
        labels = [row["stage"] for row in result["sizes"][0]["comparison"] if row["wall_ratio"] is not None
                  or row["stage"].startswith(("ingest", "umap", "cluster", "scope", "total"))]
        for label in labels:
            cells = []
            for s in result["sizes"]:
                row = next((x for x in s["comparison"] if x["stage"] == label), None)
                cells.append(_r(row["wall_ratio"]) if row else "—")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _peer_versions() -> dict:
    if not PEER_PY.is_file():
        return {}
    code = ("import json, importlib.metadata as m\nout = {}\n"
            "for p in ('latentscope', 'umap-learn', 'hdbscan', 'numpy', 'pandas', 'pyarrow', 'lancedb', 'torch'):\n"
            "    try: out[p] = m.version(p)\n    except Exception: out[p] = None\nprint(json.dumps(out))")
    try:
        return json.loads(subprocess.run([str(PEER_PY), "-c", code], capture_output=True, text=True,
                                         timeout=120).stdout)
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}


def _our_versions() -> dict:
    from importlib import metadata

    out = {}
    for pkg in ("tweetscope-studio", "umap-learn", "hdbscan", "fast_hdbscan", "toponymy", "numpy", "pandas",
                "pyarrow", "lancedb", "onnxruntime", "datashader", "boto3", "moto"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _machine() -> dict:
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cpus = os.cpu_count()
    return {"cpus": cpus, "cpu_model": cpu, "mem_gb": mem, "platform": platform.platform(),
            "python": platform.python_version(), "load_1m_at_start": round(os.getloadavg()[0], 2),
            "description": f"{cpus} cores ({cpu or 'unknown CPU'}), {mem} GB RAM, {platform.system()}, "
                           f"Python {platform.python_version()}, shared with other jobs "
                           f"(1-min load {os.getloadavg()[0]:.1f} at start)"}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def ensure_peer_venv() -> Optional[str]:
    """Install latentscope into benchmarks/.peers-venv when it is missing (the script is idempotent)."""
    done = subprocess.run(["bash", str(BENCH / "peers" / "install_latentscope.sh")])
    return None if done.returncode == 0 and PEER_PY.is_file() else "installing latentscope failed"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000, 212_000])
    parser.add_argument("--seed", type=int, default=0, help="synthetic archive seed")
    parser.add_argument("--warmup-rows", type=int, default=1_000,
                        help="a small untimed run of both sides first, so numba caches and disk caches are "
                             "warm for both (0 = skip)")
    parser.add_argument("--n-neighbors", default="default",
                        help="ours: UMAP n_neighbors (default: the stage's default, 15)")
    parser.add_argument("--peer-n-neighbors", type=int, default=25, help="latentscope: UMAP n_neighbors (its default)")
    parser.add_argument("--min-dist", type=float, default=0.1)
    parser.add_argument("--umap-seed", default="42", help="UMAP seed for both sides ('none' = parallel, unseeded)")
    parser.add_argument("--embed-model", default="",
                        help="our embed stage's local model (default: the project default, wordllama; "
                             "all-MiniLM-L6-v2-int8 is ~200x slower)")
    parser.add_argument("--stage-timeout", type=float, default=3 * 3600, help="seconds per stage before it is killed")
    parser.add_argument("--work", type=Path, default=BENCH / "work" / "compare", help="scratch folder (git-ignored)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where compare-*.json/md/png go")
    parser.add_argument("--allow-network", action="store_true",
                        help="do not run latentscope inside a network namespace with no network")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="only re-render the markdown and the plot of an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.report:
        result = json.loads(args.report.read_text())
        print("\n".join(str(p) for p in write_results(result, args.out)))
        return 0
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the running stage is killed with the runner
    signal.signal(signal.SIGTERM, _interrupt)

    args.work, args.out = args.work.resolve(), args.out.resolve()  # children run with cwd = work
    problem = ensure_peer_venv()
    if problem:
        print(f"warning: {problem}; latentscope stages will be recorded as errors", file=sys.stderr)
    no_network = [] if args.allow_network else _no_network_prefix()
    umap_params = {"n_neighbors": args.n_neighbors, "peer_n_neighbors": args.peer_n_neighbors,
                   "min_dist": args.min_dist, "seed": args.umap_seed,
                   "min_cluster_size": 25, "min_samples": 5}
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {
        "benchmark": "compare", "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/compare.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": _machine(),
        "versions": {"ours": _our_versions(), "latentscope": _peer_versions()},
        "config": {"rows": args.rows, "seed": args.seed,
                   "umap": {k: umap_params[k] for k in ("n_neighbors", "peer_n_neighbors", "min_dist", "seed")},
                   "embedding": f"ours: local {args.embed_model or 'default'} model; "
                                "latentscope imports the same vectors",
                   "latentscope_network": "none (unshare -rn)" if no_network else "allowed"},
        "sizes": [],
    }
    if args.warmup_rows:
        print(f"warm-up ({args.warmup_rows:,} tweets, not reported)", flush=True)
        warm = run_size(args.work, args.warmup_rows, args.seed, umap_params, args.stage_timeout, no_network,
                        args.embed_model)
        result["warmup"] = {"rows": args.warmup_rows,
                            "errors": {f"{side}.{stage}": rec.get("error") for side in ("ours", "latentscope")
                                       for stage, rec in warm[side].items() if not rec.get("ok")}}
    for rows in args.rows:
        result["sizes"].append(run_size(args.work, rows, args.seed, umap_params, args.stage_timeout, no_network,
                                        args.embed_model))
        write_results(result, args.out, args.rows)  # after every size: a run that dies keeps what it measured
    result["total_run_s"] = round(time.perf_counter() - started, 1)
    paths = write_results(result, args.out, args.rows)
    print("\n" + markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def write_results(result: dict, out: Path, planned_rows: Optional[list[int]] = None) -> list[Path]:
    """JSON first (the numbers), then the markdown and the plot, each atomically.

    Files are named after ``planned_rows`` (default: the sizes measured), so a run's partial
    writes overwrite one set of files instead of leaving one per size.
    """
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["created_at"][:16].replace(":", "").replace("-", "")
    rows = planned_rows or [s["rows"] for s in result["sizes"]]
    sizes = "-".join(f"{r // 1000}k" if r % 1000 == 0 else str(r) for r in rows)
    paths = []
    for name in (f"compare-{stamp}-{sizes}", "compare-latest"):
        for suffix, render in ((".json", lambda: json.dumps(result, indent=1, default=str) + "\n"),
                               (".md", lambda: markdown(result))):
            path = out / f"{name}{suffix}"
            try:
                text = render()
            except Exception as exc:  # noqa: BLE001 - a report bug never loses the JSON
                print(f"warning: {path.name} not written: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            paths.append(path)
    try:
        from plot_compare import plot

        paths.append(plot(result, out / f"compare-{stamp}-{sizes}.png"))
        paths.append(plot(result, out / "compare-latest.png"))
    except Exception as exc:  # noqa: BLE001 - a plot failure never loses the numbers
        print(f"warning: plot failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return paths


if __name__ == "__main__":
    sys.exit(main())
