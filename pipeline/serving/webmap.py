"""The shareable map: one self-contained datamapplot page of a scope, published as ``<dataset>/index.html``.

Points are coloured by cluster, labels come from the scope's label artifact (every layer,
finest first, so datamapplot shows coarse topics zoomed out and fine ones zoomed in), hover
text is the tweet text trimmed to ``hover_chars``, and the search box searches it. Deleted rows
(``deleted=true`` in the scope, or tombstoned since) are left out entirely, not blanked.

The data is inlined (gzip + base64) so the page works from any static host with no server;
its JavaScript (deck.gl, apache-arrow) loads from ``cdn_url`` at pinned versions. The build is
deterministic — the same scope gives the same bytes — so a republish sends nothing new.

:func:`build_webmap_html` is the pure step (frame + label layers -> bytes); :func:`write_webmap`
reads the scope and writes the file; :func:`embedded_texts` decodes a page's inline payloads
for the privacy scan.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import html
import json
import re
import threading
from typing import Optional

import numpy as np
import pandas as pd
import param

from pipeline.core.config import StageConfig
from pipeline.core.errors import PublishError
from pipeline.core.textnorm import normalise
from pipeline.core.tombstones import tombstone_mask
from pipeline.core.workspace import Dataset, atomic_write_bytes, read_json
from pipeline.stages.labels.keyterms import (
    NameGuard,
    archive_handles,
    content_word_count,
    label_problem,
    phrase_analyzer,
)

WEBMAP_NAME = "index.html"
NOISE_LABEL = "Unlabelled"
ELLIPSIS = "…"  # marks hover text cut at hover_chars
#: npm package -> exact version the page loads; datamapplot asks for ranges ("@9.1", "@latest")
#: that would change under a published page. The browser test serves these same versions.
JS_PINS = {"deck.gl": "9.1.15", "apache-arrow": "21.2.0"}
_DEP_URL = re.compile(r'(<script src="https://[^/"]+/)(deck\.gl|apache-arrow)@[^/"]+(/[^"]*")')
# gzip streams in base64 start with "H4sI" (1f 8b 08 00); datamapplot inlines each payload so.
_GZIP_B64 = re.compile(r"H4sI[A-Za-z0-9+/=]{8,}")
_FONT_LOCK = threading.Lock()


class WebmapConfig(StageConfig):
    """How the shareable map looks and how big it gets."""

    hover_chars = param.Integer(200, bounds=(20, 2000),
                                doc="hover/search text per point is the tweet text cut to this many characters")
    label_wrap_width = param.Integer(18, bounds=(8, 60), doc="label text wraps at this many characters")
    darkmode = param.Boolean(False, doc="dark background")
    cdn_url = param.String("unpkg.com", doc="host the page loads deck.gl and apache-arrow from")
    font_family = param.String("Helvetica, Arial, sans-serif",
                               doc="CSS font stack of labels and title (system fonts: no font download)")


# --------------------------------------------------------------------------- pure steps

def kept_rows(frame: pd.DataFrame, tombstoned: Optional[np.ndarray] = None) -> pd.DataFrame:
    """Rows of a scope frame that may be shown: not ``deleted`` and not tombstoned (by ls_index)."""
    drop = (frame["deleted"].fillna(False).to_numpy(dtype=bool, copy=True) if "deleted" in frame
            else np.zeros(len(frame), bool))
    if tombstoned is not None and len(tombstoned):
        ls = frame["ls_index"].to_numpy(dtype=np.int64)
        inside = (ls >= 0) & (ls < len(tombstoned))
        drop |= np.where(inside, tombstoned[np.clip(ls, 0, len(tombstoned) - 1)], False)
    return frame.loc[~drop].reset_index(drop=True)


def _phrase_shares(texts: list[str], analyze) -> tuple[dict, int]:
    counts: dict = {}
    for text in texts:
        for phrase in set(analyze(text)):
            counts[phrase] = counts.get(phrase, 0) + 1
    return counts, max(len(texts), 1)


def _distinguishing_phrases(label: str, members: list[list[str]], guard: NameGuard) -> list[Optional[str]]:
    """For clusters sharing ``label``: each one's phrase most over-represented in its own (kept)
    tweets against the others', with no word of the label and no handle, number or name; None when
    none stands out."""
    analyze = phrase_analyzer()
    taken = set(re.findall(r"\w+", label.lower()))
    shares = [_phrase_shares(texts, analyze) for texts in members]
    out: list[Optional[str]] = []
    for i, (counts, n) in enumerate(shares):
        best, best_score = None, 0.0
        for phrase, count in counts.items():
            if count < 2 or taken & set(phrase.split()) or content_word_count(phrase) == 0:
                continue
            other = max((c.get(phrase, 0) / m for j, (c, m) in enumerate(shares) if j != i), default=0.0)
            score = (count / n - other) * (1.0 + 0.3 * (len(phrase.split()) - 1))
            if score > best_score and label_problem(phrase, guard.names) is None and not guard.spells_name(phrase):
                best, best_score = phrase, score
        out.append(best)
    return out


def distinct_layer_names(rows: pd.DataFrame, texts: dict, guard: Optional[NameGuard] = None,
                         max_texts: int = 2000) -> list[str]:
    """The names a layer's clusters are shown by, unique within the layer (datamapplot draws one
    label per distinct text, so two clusters named alike would merge into one label).

    ``rows``: one layer of a label table (``label``, ``indices``, optional ``parent_label``);
    ``texts``: ls_index -> tweet text of the rows that may be shown. Clusters sharing a name get,
    in this order of preference, the phrase that sets each apart in its own tweets
    ("Hate speech (nixos ban)"), their parent's name, or a number by size ("Hate speech (2)").
    The labels artifact is not changed.
    """
    names = [str(x) if isinstance(x, str) and x.strip() else NOISE_LABEL for x in rows["label"]]
    guard = guard or NameGuard(archive_handles(texts.values()))
    parents = rows["parent_label"].tolist() if "parent_label" in rows else [None] * len(rows)
    sizes = [len(ix) for ix in rows["indices"]]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if name != NOISE_LABEL:
            groups.setdefault(" ".join(name.lower().split()), []).append(i)
    out = list(names)
    for members in groups.values():
        if len(members) < 2:
            continue
        label = names[members[0]]
        picked = _distinguishing_phrases(label, [
            [normalise(texts[k]) for k in list(rows["indices"].iloc[i])[:max_texts] if k in texts]
            for i in members], guard)
        parent_names = [parents[i] if isinstance(parents[i], str) and parents[i] != label else None
                        for i in members]
        order = sorted(members, key=lambda i: -sizes[i])
        for i, phrase, parent in zip(members, picked, parent_names):
            if phrase and picked.count(phrase) == 1:
                more = phrase
            elif parent and parent_names.count(parent) == 1:
                more = parent
            else:
                more = str(order.index(i) + 1)
            out[i] = f"{names[i]} ({more})"
    seen: dict[str, int] = {}
    for i, name in enumerate(out):  # a new name may still meet another cluster's
        key = " ".join(name.lower().split())
        if key in seen and name != NOISE_LABEL:
            seen[key] += 1
            out[i] = f"{name} #{seen[key]}"
        else:
            seen[key] = 1
    return out


def label_layers(labels: Optional[pd.DataFrame], frame: pd.DataFrame) -> list[np.ndarray]:
    """One label array per layer (finest first) aligned with ``frame`` rows; unlabelled = NOISE_LABEL.

    ``labels`` is a label table (``label``, ``indices`` = ls_index lists, optional ``layer``,
    ``cluster`` and ``parent_cluster``); without one, the scope's own layer-0 ``label`` column is
    the single layer. Names are made unique within each layer (:func:`distinct_layer_names`).
    """
    ls = frame["ls_index"].to_numpy(dtype=np.int64)
    if labels is None or labels.empty:
        names = frame["label"].astype(object).where(frame["label"].notna(), NOISE_LABEL).to_numpy()
        unknown = frame["cluster"].astype(str).isin(["unknown", "-1"]).to_numpy() if "cluster" in frame else False
        return [np.where(unknown, NOISE_LABEL, names).astype(object)]
    layer_of = labels["layer"].to_numpy(dtype=np.int64) if "layer" in labels else np.zeros(len(labels), np.int64)
    size = int(max(ls.max(initial=-1), max((max(ix, default=-1) for ix in labels["indices"]), default=-1))) + 1
    labels = labels.assign(indices=[list(ix) for ix in labels["indices"]])
    if {"cluster", "parent_cluster"} <= set(labels.columns):
        label_of = dict(zip(labels["cluster"], labels["label"]))
        labels = labels.assign(parent_label=[label_of.get(p) for p in labels["parent_cluster"]])
    texts = (dict(zip(frame["ls_index"].tolist(), frame["text"].fillna("").astype(str).tolist()))
             if "text" in frame else {})
    guard = NameGuard(archive_handles(texts.values()))
    layers = []
    for layer in sorted(set(layer_of.tolist())):
        full = np.full(size, NOISE_LABEL, dtype=object)
        rows = labels.loc[layer_of == layer]
        shown = distinct_layer_names(rows, texts, guard)
        # Larger clusters first, so a point in two overlapping clusters keeps the smaller one's label.
        for label, indices in sorted(zip(shown, rows["indices"]), key=lambda r: -len(r[1])):
            idx = np.asarray(indices, dtype=np.int64)
            full[idx[(idx >= 0) & (idx < size)]] = str(label) if label else NOISE_LABEL
        layers.append(full[ls])
    return layers


def hover_texts(texts: pd.Series, max_chars: int) -> list[str]:
    """Tweet texts cut at ``max_chars``: a cut text is its first ``max_chars - 1`` characters plus "…"
    (kept verbatim otherwise, so the privacy scan can match deleted texts and their prefixes)."""
    out = []
    for text in texts.fillna("").astype(str):
        text = text.strip()
        out.append(text if len(text) <= max_chars else text[: max_chars - 1] + ELLIPSIS)
    return out


def _pin_dependencies(page: str) -> str:
    """Replace datamapplot's version ranges by the pinned versions; fail loudly if the tags moved."""
    found = set()

    def pin(match: re.Match) -> str:
        found.add(match.group(2))
        return f"{match.group(1)}{match.group(2)}@{JS_PINS[match.group(2)]}{match.group(3)}"

    page = _DEP_URL.sub(pin, page)
    if found != set(JS_PINS):
        raise PublishError(f"datamapplot's page no longer loads {sorted(set(JS_PINS) - found)} from a CDN "
                           "script tag; update pipeline/serving/webmap.py JS_PINS for this datamapplot version")
    return page


def _zero_gzip_mtime(page: str) -> str:
    """gzip headers carry the build time; zero it so the same scope gives the same bytes."""

    def fix(match: re.Match) -> str:
        try:
            raw = bytearray(base64.b64decode(match.group(0), validate=True))
        except (binascii.Error, ValueError):
            return match.group(0)
        if raw[:3] != b"\x1f\x8b\x08":
            return match.group(0)
        raw[4:8] = b"\0\0\0\0"
        return base64.b64encode(bytes(raw)).decode("ascii")

    return _GZIP_B64.sub(fix, page)


def build_webmap_html(frame: pd.DataFrame, layers: list[np.ndarray], *, title: str, sub_title: str = "",
                      config: Optional[WebmapConfig] = None) -> bytes:
    """The page for the rows of ``frame`` (``x``, ``y``, ``text``) and their label ``layers``."""
    import datamapplot
    from datamapplot import interactive_helpers

    config = config or WebmapConfig()
    if frame.empty:
        raise PublishError("the scope has no tweet left to map (every row is deleted)")
    coords = frame[["x", "y"]].to_numpy(dtype=np.float32)
    # datamapplot probes fonts.googleapis.com at build time (10 s when offline) to inline a web
    # font; the page uses a system font stack instead, so the build never touches the network.
    with _FONT_LOCK:
        saved = interactive_helpers.can_reach_google_fonts
        interactive_helpers.can_reach_google_fonts = lambda timeout=None: False
        try:
            figure = datamapplot.create_interactive_plot(
                coords, *layers,
                hover_text=hover_texts(frame["text"], config.hover_chars),
                inline_data=True, enable_search=True, noise_label=NOISE_LABEL,
                label_wrap_width=config.label_wrap_width, darkmode=config.darkmode,
                title=html.escape(title), sub_title=html.escape(sub_title),
                font_family=config.font_family, cdn_url=config.cdn_url,
                offline_mode=False, show_loading_progress=False)
        finally:
            interactive_helpers.can_reach_google_fonts = saved
    page = _zero_gzip_mtime(_pin_dependencies(str(figure)))
    return page.encode("utf-8")


def embedded_texts(page: bytes) -> list[tuple[str, str]]:
    """(where, text) of a page: its markup and every inline gzip payload decoded (JSON strings walked).

    The privacy scan reads these: hover text and labels sit inside base64 gzip blobs that a plain
    byte search would never see.
    """
    text = page.decode("utf-8", "replace")
    out = [("html", _GZIP_B64.sub("", text))]
    for n, match in enumerate(_GZIP_B64.finditer(text)):
        try:
            data = gzip.decompress(base64.b64decode(match.group(0)))
        except (binascii.Error, ValueError, OSError, EOFError):
            continue
        decoded = data.decode("utf-8", "replace")
        try:
            doc = json.loads(decoded)
        except ValueError:
            out.append((f"inline payload {n}", decoded))
            continue
        out += _json_strings(doc, f"inline payload {n} $")
    return out


def _json_strings(obj, path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    stack = [(obj, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack += [(v, f"{where}.{k}") for k, v in value.items()]
            out += [(f"{where} (key)", str(k)) for k in value]
        elif isinstance(value, list):
            if value and all(isinstance(v, str) for v in value):  # hover columns: one string per point
                out += [(f"{where}[{i}]", v) for i, v in enumerate(value)]
            else:
                stack += [(v, f"{where}[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, str):
            out.append((where, value))
    return out


# --------------------------------------------------------------------------- I/O edge

def webmap_inputs(dataset: Dataset, scope_id: str) -> tuple[pd.DataFrame, list[np.ndarray], str]:
    """(kept rows, label layers, title) of a scope, with deletions applied as publish applies them."""
    import pyarrow.parquet as pq

    path = dataset.artifact_path(scope_id, "-input.parquet")
    if not (dataset.sidecar_path(scope_id).is_file() and path.is_file()):
        raise PublishError(f"dataset '{dataset.name}' has no complete {scope_id} to map; "
                           "run `tweetscope scope` first")
    scope = read_json(dataset.sidecar_path(scope_id))
    columns = [c for c in ("ls_index", "x", "y", "text", "deleted", "cluster", "label")
               if c in pq.read_schema(path).names]
    frame = pq.read_table(path, columns=columns).to_pandas()
    n_rows = int(frame["ls_index"].max()) + 1 if len(frame) else 0
    frame = kept_rows(frame, tombstone_mask(dataset, n_rows))
    labels = None
    labels_id = scope.get("labels_id")
    if isinstance(labels_id, str) and labels_id:
        try:
            label_path = dataset.label_file(labels_id, ".parquet")
        except Exception:  # noqa: BLE001 - a latent-scope style id: fall back to the scope's own labels
            label_path = None
        if label_path is not None and label_path.is_file():
            names = pq.read_schema(label_path).names
            labels = pq.read_table(label_path, columns=[c for c in ("cluster", "layer", "label", "parent_cluster",
                                                                    "indices") if c in names]).to_pandas()
            if "indices" not in labels:
                labels = None
    title = str(scope.get("label") or dataset.name)
    return frame, label_layers(labels, frame), title


def write_webmap(dataset: Dataset, scope_id: str, config: Optional[WebmapConfig] = None):
    """Build ``<dataset>/index.html`` for ``scope_id``; the file is replaced only when its bytes change."""
    frame, layers, title = webmap_inputs(dataset, scope_id)
    page = build_webmap_html(frame, layers, title=title,
                             sub_title=f"{len(frame):,} tweets · {dataset.name}", config=config)
    path = dataset.joinpath(WEBMAP_NAME)
    if not (path.is_file() and path.read_bytes() == page):
        atomic_write_bytes(path, page)
    return path


__all__ = ["WEBMAP_NAME", "ELLIPSIS", "WebmapConfig", "JS_PINS", "kept_rows", "distinct_layer_names",
           "label_layers", "hover_texts",
           "build_webmap_html", "embedded_texts", "webmap_inputs", "write_webmap"]
