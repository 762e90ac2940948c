"""Curator edits of a label artifact; every save is a new ``toponymy-NNN`` (nothing is overwritten).

Used by the studio's Labels view and by ``tweetscope label-edit``. A saved edit records
``edited_from`` (the parent id, also in ``inputs`` as ``toponymy_id``), the per-cluster
``statuses`` (auto / edited / approved / flagged) and the list of ``edits`` it made.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd

from pipeline.core.errors import LabelEditError, NamingError
from pipeline.core.progress import null_progress
from pipeline.stages.embed.stage import embedder_for, load_embeddings
from pipeline.stages.labels.config import LabelConfig
from pipeline.stages.labels.table import COLUMNS, STATUSES, arrow_table, load_labels

EDITABLE = ("label", "description", "status")
#: the longest label and description a curator may save (the map and the TS front end show them)
MAX_LABEL_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000


def clean_text(cluster: str, field: str, value: Any) -> str:
    """A curator's label (whitespace collapsed, not empty) or description (trimmed), within its limit."""
    raw = str(value if value is not None else "")
    text = " ".join(raw.split()) if field == "label" else raw.strip()
    if field == "label" and not text:
        raise LabelEditError(f"the label of {cluster} cannot be empty; undo or type a label")
    limit = MAX_LABEL_CHARS if field == "label" else MAX_DESCRIPTION_CHARS
    if len(text) > limit:
        raise LabelEditError(f"the {field} of {cluster} is {len(text)} characters; keep it under {limit}")
    return text
#: sidecar fields an edit does not inherit from its parent (they describe the parent's own run)
_OWN_FIELDS = {"id", "params", "inputs", "rows", "timings", "versions", "created_at", "edits", "edit_note",
               "edited_from", "statuses", "relabel"}


def statuses_of(dataset, toponymy_id: str) -> dict[str, str]:
    """Per-cluster status of a label artifact (clusters never reviewed are 'auto')."""
    side = dataset.sidecar(toponymy_id)
    table = load_labels(dataset, toponymy_id)
    recorded = side.get("statuses") or {}
    return {cid: recorded.get(cid, "auto") for cid in table["cluster"]}


def _check_changes(table: pd.DataFrame, changes: dict[str, dict]) -> None:
    if not changes:
        raise LabelEditError("no changes given: name at least one cluster and a new label, description or status")
    known = set(table["cluster"])
    unknown = sorted(set(changes) - known)
    if unknown:
        raise LabelEditError(f"unknown cluster(s) {', '.join(unknown)}; clusters look like 0_3 or 1_0 "
                         f"(this artifact has {len(known)})")
    for cid, change in changes.items():
        bad = sorted(set(change) - set(EDITABLE))
        if bad:
            raise LabelEditError(f"cluster {cid}: cannot edit {', '.join(bad)} (editable: {', '.join(EDITABLE)})")
        for field in ("label", "description"):
            if field in change and (field == "label" or change[field] is not None):
                clean_text(cid, field, change[field])
        if "status" in change and change["status"] not in STATUSES:
            raise LabelEditError(f"cluster {cid}: status {change['status']!r} is not one of {', '.join(STATUSES)}")


def _save(dataset, parent_id: str, table: pd.DataFrame, statuses: dict[str, str], edits: list[dict],
          note: str, extra: Optional[dict] = None, timings: Optional[dict] = None) -> str:
    parent = dataset.sidecar(parent_id)
    inherited = {k: v for k, v in parent.items() if k not in _OWN_FIELDS}
    with dataset.new_artifact("toponymy") as art:
        art.write_parquet(arrow_table(table[COLUMNS]))
        art.write_sidecar(
            {**inherited, **(extra or {}), "edited_from": parent_id, "statuses": statuses, "edits": edits,
             "edit_note": note},
            params=parent.get("params"),
            inputs={**(parent.get("inputs") or {}), "toponymy_id": parent_id},
            rows=len(table), timings=timings or {})
    return art.id


def edit_labels(dataset, toponymy_id: str, changes: dict[str, dict[str, Any]], note: str = "") -> str:
    """Apply ``{cluster_id: {"label"?, "description"?, "status"?}}`` -> id of the new artifact.

    A changed label or description makes the cluster's status 'edited' unless a status is given.
    """
    table = load_labels(dataset, toponymy_id).copy()
    _check_changes(table, changes)
    statuses = statuses_of(dataset, toponymy_id)
    row_of = {cid: i for i, cid in enumerate(table["cluster"])}
    edits = []
    for cid, change in changes.items():
        row = row_of[cid]
        for field in ("label", "description"):
            if field in change:
                new = clean_text(cid, field, change[field]) if change[field] is not None else None
                old = table.at[row, field]
                old = None if old is None or (isinstance(old, float) and np.isnan(old)) else old
                if new != old:
                    table.at[row, field] = new
                    edits.append({"cluster": cid, "field": field, "old": old, "new": new})
        status = change.get("status")
        if status is None and any(e["cluster"] == cid for e in edits):
            status = "edited"
        if status is not None and status != statuses[cid]:
            edits.append({"cluster": cid, "field": "status", "old": statuses[cid], "new": status})
            statuses[cid] = status
    if not edits:
        raise LabelEditError("nothing changed: the given values equal the current ones, so no new artifact was saved")
    return _save(dataset, toponymy_id, table, statuses, edits, note)


def set_status(dataset, toponymy_id: str, cluster_ids: Iterable[str], status: str, note: str = "") -> str:
    """Approve / flag / reset several clusters at once -> new artifact id."""
    return edit_labels(dataset, toponymy_id, {cid: {"status": status} for cid in cluster_ids}, note)


def relabel(dataset, toponymy_id: str, cluster_ids: Iterable[str], config: Optional[LabelConfig] = None,
            progress=None, namer=None, contrast_size: int = 20_000) -> str:
    """Ask the namer for new labels of the chosen clusters -> new artifact id (status 'auto').

    toponymy builds the prompt as in the stage: its keyphrases (weighted against a sample of the
    other clusters), its exemplars and, above layer 0, the children's labels as subtopics.
    """
    from toponymy.clustering import centroids_from_labels
    from toponymy.keyphrases import KeyphraseBuilder
    from toponymy.llm_wrappers import FailFastLLMError
    from toponymy.prompt_construction import topic_name_prompt

    from pipeline.stages.labels.audit import summary_kind_for
    from pipeline.stages.labels.clusterer import AdaptiveClusterLayerText
    from pipeline.stages.labels.namers import make_namer
    from pipeline.stages.labels.prompts import label_prompt_templates, with_relabel_note
    from pipeline.stages.labels.stage import EmbedderAdapter, dataset_handles, label_texts

    t0 = time.perf_counter()
    progress = progress or null_progress("relabel")
    cluster_ids = list(dict.fromkeys(cluster_ids))
    if not cluster_ids:
        raise LabelEditError("name at least one cluster to relabel (e.g. 0_3)")
    table = load_labels(dataset, toponymy_id).copy()
    _check_changes(table, {cid: {} for cid in cluster_ids})
    side = dataset.sidecar(toponymy_id)
    params = {k: v for k, v in (side.get("params") or {}).items() if k in LabelConfig.param}
    config = config or LabelConfig.from_dict(params)
    namer = namer or make_namer(config)

    texts, _ = label_texts(dataset, side["embedding_id"])
    namer.prepare(texts, dataset_handles(dataset))
    embeddings = load_embeddings(dataset, side["embedding_id"])
    embedder = EmbedderAdapter(embedder_for(dataset, side["embedding_id"]))
    rng = np.random.default_rng(config.seed)
    n_layers = int(table["layer"].max()) + 1
    code = {}
    all_names: list[list[str]] = []
    for layer in range(n_layers):
        rows = table[table["layer"] == layer]
        code.update({cid: (layer, i) for i, cid in enumerate(rows["cluster"])})
        all_names.append(rows["label"].tolist())
    tree = {code[cid]: [code[k] for k in kids] for cid, kids in zip(table["cluster"], table["children"])
            if len(kids)}
    edits, new_rows = [], {}
    by_layer: dict[int, list[str]] = {}
    for cid in cluster_ids:
        by_layer.setdefault(code[cid][0], []).append(cid)
    for layer, chosen in by_layer.items():
        progress.update(0, None, f"relabelling {len(chosen)} clusters of layer {layer}")
        rows = table[table["layer"] == layer]
        labels_full = np.empty(len(texts), dtype=np.int64)
        for i, idx in enumerate(rows["indices"]):
            labels_full[np.asarray(idx, dtype=np.int64)] = i
        focus = np.concatenate([np.asarray(table.loc[table["cluster"] == cid, "indices"].iloc[0]) for cid in chosen])
        others = np.setdiff1d(np.arange(len(texts)), focus)
        if len(others) > contrast_size:
            others = rng.choice(others, contrast_size, replace=False)
        subset = np.sort(np.concatenate([focus, others])).astype(np.int64)
        sub_texts = [texts[i] for i in subset]
        sub_labels = labels_full[subset]
        builder = KeyphraseBuilder(max_features=config.keyphrase_max_features, n_jobs=1, verbose=False)
        matrix, vocab, _ = builder.fit_transform(sub_texts)
        vocab_vectors = embedder.encode(vocab)
        lay = AdaptiveClusterLayerText(
            sub_labels, centroids_from_labels(sub_labels, np.asarray(embeddings[subset], dtype=np.float64)),
            layer_id=layer, n_exemplars=config.max_exemplars, n_keyphrases=config.max_keyphrases,
            min_exemplars=config.min_exemplars, min_keyphrases=config.min_keyphrases,
            prompt_template=label_prompt_templates(), verbose=False, show_progress_bar=False)
        lay.exemplar_delimiters = ['    * "', '"\n']
        lay.make_exemplar_texts(sub_texts, np.asarray(embeddings[subset], dtype=np.float32),
                                method=config.exemplar_method)
        lay.make_keyphrases(vocab, matrix, vocab_vectors, embedder, method=config.keyphrase_method)
        prompts = []
        for cid in chosen:
            number = code[cid][1]
            prompt = topic_name_prompt(
                number, layer, all_names, exemplar_texts=lay.exemplars, keyphrases=lay.keyphrases,
                subtopics=[[] for _ in all_names[layer]] if layer > 0 else None, cluster_tree=tree,
                object_description=config.object_description, corpus_description=config.corpus_description,
                summary_kind=summary_kind_for(layer, n_layers), max_num_keyphrases=lay.n_keyphrases,
                max_num_exemplars=lay.n_exemplars, prompt_template=label_prompt_templates())
            if isinstance(prompt, str):  # one child: a new label would just repeat the child's
                prompt = topic_name_prompt(
                    number, layer, all_names, exemplar_texts=lay.exemplars, keyphrases=lay.keyphrases,
                    subtopics=None, cluster_tree=None, object_description=config.object_description,
                    corpus_description=config.corpus_description, summary_kind=summary_kind_for(layer, n_layers),
                    max_num_keyphrases=lay.n_keyphrases, max_num_exemplars=lay.n_exemplars,
                    prompt_template=label_prompt_templates())
            prompts.append(with_relabel_note(prompt, all_names[layer][number], 0.0, "the curator asked for a new label"))
        try:
            answers = namer.name(prompts)
        except FailFastLLMError as exc:
            raise NamingError(f"relabel stopped: {getattr(exc, 'original_exception', None) or exc}") from None
        for cid, answer in zip(chosen, answers):
            new_rows[cid] = answer
    statuses = statuses_of(dataset, toponymy_id)
    row_of = {cid: i for i, cid in enumerate(table["cluster"])}
    for cid, answer in new_rows.items():
        row = row_of[cid]
        for field, value in (("label", answer["topic_name"]), ("description", answer["topic_description"]),
                             ("topic_specificity", answer["topic_specificity"])):
            old = table.at[row, field]
            table.at[row, field] = value
            edits.append({"cluster": cid, "field": field, "old": None if pd.isna(old) else old, "new": value,
                          "relabelled": True})
        statuses[cid] = "auto"
    usage = dict(namer.usage)
    return _save(dataset, toponymy_id, table, statuses, edits, f"relabelled {', '.join(cluster_ids)}",
                 extra={"relabel": {**namer.describe(), "usage": usage, "cost_usd_estimate": namer.cost_estimate()}},
                 timings={"relabel": round(time.perf_counter() - t0, 3)})


def diff_labels(dataset, a: str, b: str) -> pd.DataFrame:
    """Clusters whose label, description or status differ between label artifacts ``a`` and ``b``.

    Columns: cluster, layer, change ('changed' / 'added' / 'removed'), label_a, label_b,
    description_a, description_b, status_a, status_b.
    """
    ta, tb = load_labels(dataset, a), load_labels(dataset, b)
    sa, sb = statuses_of(dataset, a), statuses_of(dataset, b)
    fa = ta.set_index("cluster")[["layer", "label", "description"]]
    fb = tb.set_index("cluster")[["layer", "label", "description"]]
    rows = []

    def value(frame, cid, col):
        if cid not in frame.index:
            return None
        v = frame.at[cid, col]
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    for cid in list(dict.fromkeys([*ta["cluster"], *tb["cluster"]])):
        la, lb = value(fa, cid, "label"), value(fb, cid, "label")
        da, db = value(fa, cid, "description"), value(fb, cid, "description")
        sta, stb = sa.get(cid), sb.get(cid)
        if cid not in fa.index:
            change = "added"
        elif cid not in fb.index:
            change = "removed"
        elif (la, da, sta) != (lb, db, stb):
            change = "changed"
        else:
            continue
        layer = value(fa, cid, "layer") if cid in fa.index else value(fb, cid, "layer")
        rows.append({"cluster": cid, "layer": int(layer), "change": change, "label_a": la, "label_b": lb,
                     "description_a": da, "description_b": db, "status_a": sta, "status_b": stb})
    return pd.DataFrame(rows, columns=["cluster", "layer", "change", "label_a", "label_b", "description_a",
                                       "description_b", "status_a", "status_b"])
