"""The shareable map page (``<dataset>/index.html``) built from the sample scope made by the real stages."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.core.tombstones import add_tombstones
from pipeline.publish.plan import denied_reason, local_objects
from pipeline.publish.privacy import build_needles, scan_files
from pipeline.serving.webmap import (
    ELLIPSIS,
    JS_PINS,
    NOISE_LABEL,
    WebmapConfig,
    build_webmap_html,
    distinct_layer_names,
    embedded_texts,
    label_layers,
    webmap_inputs,
    write_webmap,
)
from pipeline.stages.scope import run_scope
from support import copy_dataset


def _hover(page: bytes) -> list[str]:
    return [v for w, v in embedded_texts(page) if ".hover_text[" in w]


def _long_unique_rows(ds, k: int) -> list[int]:
    texts = ds.read_input(["text"])["text"].fillna("").str.strip()
    counts = texts.value_counts()
    ok = [i for i, t in enumerate(texts) if len(t) >= 60 and counts[t] == 1]
    return ok[:k]


@pytest.fixture(scope="module")
def mapped(scoped_dataset, tmp_path_factory):
    """A copy of the sample with one row deleted and re-scoped, one more tombstoned after the scope."""
    ds = copy_dataset(scoped_dataset, tmp_path_factory.mktemp("webmap"))
    in_scope, after_scope = _long_unique_rows(ds, 2)
    add_tombstones(ds, [in_scope])
    scope_id = run_scope(ds)
    add_tombstones(ds, [after_scope])  # not applied to any scope yet: the page must still drop it
    path = write_webmap(ds, scope_id)
    texts = ds.read_input(["text"])["text"].fillna("").str.strip()
    return ds, scope_id, path, {"deleted": [texts[in_scope], texts[after_scope]],
                                "deleted_rows": [in_scope, after_scope], "texts": texts}


def test_deleted_rows_are_absent_and_every_kept_row_is_a_point(mapped):
    ds, scope_id, path, info = mapped
    page = path.read_bytes()
    hover = _hover(page)
    n_rows = len(info["texts"])
    assert len(hover) == n_rows - 2
    joined = "\n".join(v for _, v in embedded_texts(page))
    for text in info["deleted"]:
        assert text not in joined and text[:40] not in joined
    kept = [t for i, t in enumerate(info["texts"]) if i not in info["deleted_rows"] and 20 < len(t) < 150]
    assert kept and all(t in hover for t in kept[:50])  # the scan above would see a deleted one


def test_label_layers_come_from_the_labels_artifact(mapped):
    ds, scope_id, path, _ = mapped
    labels = pd.read_parquet(ds.label_file(ds.sidecar(scope_id)["labels_id"], ".parquet"))
    frame, layers, _ = webmap_inputs(ds, scope_id)
    assert len(layers) == labels["layer"].nunique() >= 2
    assert all(len(layer) == len(frame) for layer in layers)
    # finest first: the finest layer has the most distinct labels
    assert len(set(layers[0])) >= len(set(layers[-1]))
    label_payload = "\n".join(v for w, v in embedded_texts(path.read_bytes()) if w.endswith(".label"))
    shown = set(label_payload.replace("\n", " ").split(" "))
    top = labels.loc[labels["layer"] == labels["layer"].max(), "label"]
    for name in top:  # every top-layer topic is a label of the page (text-wrapped there)
        assert set(name.split()) <= shown, name
    assert NOISE_LABEL not in [layer[0] for layer in layers if (layer != NOISE_LABEL).all()]


def test_clusters_sharing_a_label_get_distinct_names_on_the_page_only(mapped):
    """datamapplot draws one label per distinct text: clusters of a layer named alike must be told apart
    on the page (a phrase of their own tweets, else the parent's name, else a number), the artifact kept."""
    ds, scope_id, _, _ = mapped
    path = ds.label_file(ds.sidecar(scope_id)["labels_id"], ".parquet")
    before = path.read_bytes()
    labels = pd.read_parquet(path)
    frame, _, _ = webmap_inputs(ds, scope_id)
    kept = set(frame["ls_index"].tolist())
    layer0 = labels.index[labels["layer"] == 0][:3]
    twins = labels.copy()
    twins.loc[layer0, "label"] = "Politics"  # three clusters named alike
    layers = label_layers(twins, frame)
    for layer, shown in zip(sorted(twins["layer"].unique()), layers):
        live = [r for r in twins[twins["layer"] == layer].itertuples() if kept & set(r.indices)]
        assert len(set(shown) - {NOISE_LABEL}) == len(live)  # one label per cluster, none merged
    names = {layers[0][list(frame["ls_index"]).index(next(i for i in twins.at[k, "indices"] if i in kept))]
             for k in layer0}
    assert len(names) == 3 and all(re.fullmatch(r"Politics \([^()]+\)", n) for n in names), names
    assert path.read_bytes() == before
    # texts that cannot tell two clusters apart: the parents' names, then numbers by size
    texts = dict(zip(frame["ls_index"], frame["text"].fillna("")))
    first = list(twins.at[layer0[0], "indices"])
    rows = pd.DataFrame({"label": ["Politics", "Politics"], "indices": [first, first],
                         "parent_label": ["Nature", "Europe"]})
    assert distinct_layer_names(rows, texts) == ["Politics (Nature)", "Politics (Europe)"]
    rows["parent_label"] = ["Nature", "Nature"]
    assert distinct_layer_names(rows, texts) == ["Politics (1)", "Politics (2)"]


def test_page_loads_pinned_cdn_scripts_and_no_web_font(mapped):
    _, _, path, _ = mapped
    page = path.read_text("utf-8")
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert sorted(scripts) == sorted(f"https://unpkg.com/{name}@{version}/{file}" for name, version, file in
                                     [("deck.gl", JS_PINS["deck.gl"], "dist.min.js"),
                                      ("apache-arrow", JS_PINS["apache-arrow"], "Arrow.es2015.min.js")])
    assert "fonts.googleapis.com" not in page
    assert 'id="text-search"' in page  # the search box


def test_rebuild_is_byte_identical_and_does_not_touch_the_file(mapped):
    ds, scope_id, path, _ = mapped
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    write_webmap(ds, scope_id)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_publish_plan_allows_only_index_html_with_the_html_type(mapped):
    ds, scope_id, _, _ = mapped
    from pipeline.publish.execute import PublishConfig

    assert denied_reason("index.html") is None
    assert denied_reason("scopes/index.html") and denied_reason("other.html")
    objects = {o.rel: o for o in local_objects(ds, scope_id, PublishConfig(), webmap=True)}
    assert objects["index.html"].content_type.startswith("text/html")
    assert "index.html" not in {o.rel for o in local_objects(ds, scope_id, PublishConfig())}


def test_privacy_scan_reads_the_pages_inline_payloads(mapped, tmp_path):
    ds, scope_id, path, info = mapped
    needles = build_needles(ds, ds.artifact_path(scope_id, "-input.parquet"), env={})
    assert scan_files([("d/index.html", path)], needles) == []
    # a page that (wrongly) kept the deleted rows: whole text, and cut to 40 characters
    frame = pd.DataFrame({"x": np.linspace(-1, 1, 4), "y": np.linspace(1, -1, 4),
                          "text": info["deleted"] + ["a kept tweet", "another kept tweet"]})
    layers = [np.array(["Topic A", "Topic A", "Topic B", NOISE_LABEL], dtype=object)]
    for chars in (2000, 40):
        leaky = tmp_path / f"leak-{chars}.html"
        leaky.write_bytes(build_webmap_html(frame, layers, title="t", config=WebmapConfig(hover_chars=chars)))
        if chars == 40:
            assert all(v.endswith(ELLIPSIS) for v in _hover(leaky.read_bytes())[:2])
        findings = scan_files([("d/index.html", leaky)], needles)
        assert {f.kind for f in findings} == {"tombstoned_text"} and len(findings) >= 2, findings
        assert all(t not in str(f) for f in findings for t in info["deleted"])  # findings never quote it
