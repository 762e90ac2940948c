"""Plot wall time against rows for each stage, Tweetscope Studio vs latentscope (matplotlib, Agg).

    .venv/bin/python benchmarks/plot_compare.py [results/compare-latest.json] [-o results/compare-latest.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OURS, THEIRS = "#1f4e79", "#c0504d"


def _series(result: dict, stage: str, side: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for size in result["sizes"]:
        row = next((r for r in size["comparison"] if r["stage"] == stage), None)
        value = row and row.get(side)
        if isinstance(value, dict) and "wall_s" in value:
            xs.append(size["rows"])
            ys.append(value["wall_s"])
    return xs, ys


def plot(result: dict, out: Path) -> Path:
    """One panel per stage; log-log, both tools; a missing line means n/a (or an error)."""
    stages = [r["stage"] for r in result["sizes"][0]["comparison"]
              if isinstance(r.get("ours"), dict) and ("wall_s" in r["ours"] or "error" in r["ours"])
              or isinstance(r.get("latentscope"), dict) and "wall_s" in r["latentscope"]]
    stages = [s for s in stages if any(_series(result, s, side)[0] for side in ("ours", "latentscope"))]
    if not stages:
        raise ValueError("no stage has a wall time in any size: nothing to plot")
    sizes = [size["rows"] for size in result["sizes"]]
    cols = 4
    rows = (len(stages) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, stage in zip(axes.flat, stages):
        for side, colour, name in (("ours", OURS, "Tweetscope Studio"), ("latentscope", THEIRS, "latentscope")):
            xs, ys = _series(result, stage, side)
            if xs:
                ax.plot(xs, ys, "o-", color=colour, label=name)
            else:  # the tool has no such step (or it failed at every size)
                ax.text(0.02, 0.04 if side == "latentscope" else 0.12, f"{name}: n/a",
                        transform=ax.transAxes, fontsize=8, color=colour)
        ax.set_title(stage, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}K"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))  # spans under a decade
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlabel("tweets")
        ax.set_ylabel("wall s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(stages):]:
        ax.set_visible(False)
    version = result.get("versions", {}).get("latentscope", {}).get("latentscope", "?")
    fig.suptitle(f"Wall time per stage — Tweetscope Studio vs latentscope {version} "
                 f"({result['machine'].get('cpus')} cores, {result['created_at'][:10]})", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, nargs="?", default=RESULTS / "compare-latest.json")
    parser.add_argument("-o", "--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = json.loads(args.json.read_text())
    out = plot(result, args.out or args.json.with_suffix(".png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
