"""Size and build time of the shareable map page (``<dataset>/index.html``) at 212K tweets.

    .venv/bin/python benchmarks/bench_webmap.py [--rows 212000] [--hover-chars 200 120 2000]

The scope frame is synthetic but shaped like a real one: tweet texts from synth_archive's
generator (20-280 characters, mentions, t.co links), 2-D points in ~40 topic blobs, and three
label layers (~400 / 40 / 8 clusters, ~8 % unlabelled). Writes benchmarks/results/webmap-<rows>.json
with the page size per ``hover_chars`` (the spec target is <= 25 MB), the size of each inline
payload and the gzip transfer size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth_archive import _Gen, dominant_topic  # noqa: E402

from pipeline.core.workspace import atomic_write_json, library_versions, utc_now_iso  # noqa: E402
from pipeline.serving.webmap import NOISE_LABEL, WebmapConfig, build_webmap_html  # noqa: E402

TARGET_BYTES = 25 * 1024 * 1024


def synthetic_scope(n: int, seed: int = 0, texts_from: Path | None = None) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """(frame with x, y, text; label layers finest first) for ``n`` tweets.

    ``texts_from``: an input.parquet whose real texts are drawn (with replacement) instead of the
    generator's, which compress better than real tweets (a smaller vocabulary).
    """
    gen = _Gen(n, seed)
    texts = [gen.tweet()["tweet"]["full_text"] for _ in range(n)]
    if texts_from is not None:
        real = pd.read_parquet(texts_from, columns=["text"])["text"].dropna().astype(str).tolist()
        texts = [real[i] for i in np.random.default_rng(seed + 1).integers(0, len(real), n)]
    topic = np.array([dominant_topic(t) for t in texts])
    rng = np.random.default_rng(seed)
    n_topics = 40
    centres = rng.uniform(-0.8, 0.8, size=(n_topics, 2))
    t = np.where(topic >= 0, topic % n_topics, rng.integers(0, n_topics, n))
    xy = centres[t] + rng.normal(0, 0.06, size=(n, 2))
    angle = np.arctan2(xy[:, 1] - centres[t, 1], xy[:, 0] - centres[t, 0])
    sub = ((angle + np.pi) / (2 * np.pi) * 10).astype(int) % 10  # 10 sub-clusters per topic
    noise = (topic < 0) & (rng.random(n) < 0.6)
    fine = np.where(noise, NOISE_LABEL, [f"Topic {a} angle {b}" for a, b in zip(t, sub)]).astype(object)
    mid = np.where(noise, NOISE_LABEL, [f"Topic {a}" for a in t]).astype(object)
    top = np.where(noise, NOISE_LABEL, [f"Theme {a // 5}" for a in t]).astype(object)
    frame = pd.DataFrame({"x": xy[:, 0].astype("float32"), "y": xy[:, 1].astype("float32"), "text": texts})
    return frame, [fine, mid, top]


def payload_sizes(page: str) -> dict:
    """Bytes of each inline base64 payload (points, hover, labels) of a datamapplot page."""
    sizes = {}
    for name in ("pointDataEncoded", "hoverDataEncoded", "labelDataEncoded"):
        match = re.search(rf'{name}\s*=\s*"([A-Za-z0-9+/=]+)"', page)
        if match:
            sizes[name] = len(match.group(1))
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=212_000)
    ap.add_argument("--hover-chars", type=int, nargs="+", default=[200, 120, 2000])
    ap.add_argument("--texts-from", type=Path, default=None,
                    help="draw the texts from this input.parquet (e.g. the ingested sample archive)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    frame, layers = synthetic_scope(args.rows, texts_from=args.texts_from)
    synth_s = time.perf_counter() - t0
    import datamapplot  # noqa: F401  (import time is reported apart from the build)

    runs = []
    for chars in args.hover_chars:
        t = time.perf_counter()
        page = build_webmap_html(frame, layers, title="bench", sub_title=f"{args.rows:,} tweets",
                                 config=WebmapConfig(hover_chars=chars))
        build_s = time.perf_counter() - t
        text = page.decode("utf-8")
        runs.append({"hover_chars": chars, "html_bytes": len(page), "html_mb": round(len(page) / 2**20, 2),
                     "within_25mb": len(page) <= TARGET_BYTES,
                     "gzip_transfer_bytes": len(gzip.compress(page, 6)),
                     "payload_base64_bytes": payload_sizes(text), "build_seconds": round(build_s, 2)})
        print(json.dumps(runs[-1]))
    result = {
        "benchmark": "webmap", "created_at": utc_now_iso(), "rows": args.rows,
        "texts": f"drawn from {args.texts_from.name} of {args.texts_from.parent.name}" if args.texts_from
        else "synth_archive generator",
        "text_chars_mean": round(float(frame["text"].str.len().mean()), 1),
        "label_layers": [int(len(set(layer)) - (NOISE_LABEL in set(layer))) for layer in layers],
        "synthetic_build_seconds": round(synth_s, 1), "target_bytes": TARGET_BYTES,
        "default_hover_chars": WebmapConfig().hover_chars, "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "note": "2 cores shared with other sessions while measuring"},
        "versions": library_versions(),
    }
    suffix = "-realtext" if args.texts_from else ""
    out = args.out or ROOT / "benchmarks" / "results" / f"webmap-{args.rows}{suffix}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
