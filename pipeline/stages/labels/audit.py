"""Audit loop: judge each label against a sample of its cluster, relabel the weak ones.

The judge is the namer itself answering a judge prompt (an LLM for API providers; the
offline namer answers with keyphrase coverage: the share of sampled tweets that contain a
word of the label). A relabel prompt is toponymy's naming prompt for that cluster with the
judged sample as exemplars, plus a note on why the old label was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from toponymy.prompt_construction import topic_name_prompt
from toponymy.templates import SUMMARY_KINDS

from pipeline.stages.labels.prompts import judge_prompt, with_relabel_note, with_subtopic_sizes


@dataclass
class ClusterLabel:
    """The current label of one cluster of a layer."""

    layer: int
    cluster: int  # number within its layer (toponymy's index)
    name: str
    description: Optional[str]
    specificity: Optional[float]
    score: Optional[float] = None
    history: list = field(default_factory=list)


def sample_members(members: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(members) <= size:
        return members
    return np.sort(rng.choice(members, size=size, replace=False))


def summary_kind_for(layer: int, n_layers: int, lowest: float = 0.0, highest: float = 1.0) -> str:
    """The detail wording toponymy uses for a layer (same formula as ``Toponymy.fit``)."""
    detail = np.linspace(lowest, highest, n_layers)[layer]
    return SUMMARY_KINDS[int(round(detail * (len(SUMMARY_KINDS) - 1)))]


def naming_prompt(topo, layer: int, cluster: int, exemplars: list[str], topic_names: Optional[list] = None
                  ) -> Optional[dict]:
    """toponymy's naming prompt for one cluster with ``exemplars`` shown, subtopics named by
    ``topic_names`` (default: the names toponymy gave) and their sizes attached; None if the
    cluster has a single child, whose name it simply carries."""
    lay = topo.cluster_layers_[layer]
    names = topo.topic_names_ if topic_names is None else topic_names
    all_exemplars = list(lay.exemplars)
    all_exemplars[cluster] = list(exemplars)
    prompt = topic_name_prompt(
        cluster, layer, names,
        exemplar_texts=all_exemplars, keyphrases=lay.keyphrases,
        subtopics=lay.subtopics if len(lay.subtopics) else None,
        cluster_tree=topo.cluster_tree_,
        object_description=topo.object_description, corpus_description=topo.corpus_description,
        summary_kind=summary_kind_for(layer, len(topo.cluster_layers_), topo.lowest_detail_level,
                                      topo.highest_detail_level),
        max_num_keyphrases=lay.n_keyphrases, max_num_subtopics=lay.n_subtopics,
        max_num_exemplars=max(len(exemplars), 1),
        exemplar_start_delimiter=lay.exemplar_delimiters[0], exemplar_end_delimiter=lay.exemplar_delimiters[1],
        prompt_template=lay.prompt_template,
    )
    if isinstance(prompt, str):  # "[!SKIP!]: <child name>"
        return None
    sizes = [np.bincount(x.cluster_labels[x.cluster_labels >= 0]) for x in topo.cluster_layers_]
    return with_subtopic_sizes(prompt, layer, cluster, names, topo.cluster_tree_, sizes)


def relabel_prompt(topo, layer: int, cluster: int, sample_texts: list[str], old: ClusterLabel,
                   reason: str) -> Optional[dict]:
    """toponymy's naming prompt for one cluster with ``sample_texts`` as exemplars (None if the
    cluster has a single child, whose name it simply carries)."""
    prompt = naming_prompt(topo, layer, cluster, sample_texts)
    return None if prompt is None else with_relabel_note(prompt, old.name, old.score or 0.0, reason)


def refresh_parents(topo, namer, labels: dict[tuple[int, int], ClusterLabel],
                    cluster_name: Callable[[int, int], str]) -> list[dict]:
    """Rename the parents whose children's names changed after they were named (by the audit), layer
    by layer upwards, so a parent's name summarises its children as they are: a single child's name is
    carried, others are asked again with the children's current names. Returns what changed."""
    names = [list(layer_names) for layer_names in topo.topic_names_]
    changes = []
    for layer in range(1, len(topo.cluster_layers_)):
        for (lay, c), label in labels.items():  # the layer below as it is now
            if lay == layer - 1:
                names[lay][c] = label.name
        stale = [c for c in range(len(names[layer]))
                 if any(names[k_lay][k] != topo.topic_names_[k_lay][k]
                        for k_lay, k in topo.cluster_tree_.get((layer, c), []))]
        asks, keys = [], []
        for c in stale:
            kids = topo.cluster_tree_.get((layer, c), [])
            prompt = naming_prompt(topo, layer, c, list(topo.cluster_layers_[layer].exemplars[c]), names)
            if prompt is None:  # one child: carry its name, as toponymy does
                child = labels[tuple(kids[0])]
                answer = {"topic_name": child.name, "topic_description": child.description,
                          "topic_specificity": child.specificity}
                _rename(labels[(layer, c)], answer, changes, cluster_name(layer, c), child.score)
            else:
                asks.append(prompt)
                keys.append(c)
        for c, answer in zip(keys, namer.name(asks)):
            _rename(labels[(layer, c)], answer, changes, cluster_name(layer, c))
    return changes


def _rename(label: ClusterLabel, answer: dict, changes: list, cluster: str, score: Optional[float] = None) -> None:
    if answer["topic_name"] == label.name:
        return
    changes.append({"cluster": cluster, "old_label": label.name, "new_label": answer["topic_name"]})
    label.history.append(label.name)
    label.name = answer["topic_name"]
    label.description = answer["topic_description"] or label.description
    label.specificity = answer["topic_specificity"]
    label.score = score  # the old name's score does not apply (None: not judged)


def run_audit(topo, namer, texts: list[str], layer_labels: list[np.ndarray], labels: dict[tuple[int, int], ClusterLabel],
              *, rounds: int, threshold: float, sample_size: int, audit_layers: int, seed: int,
              cluster_name: Callable[[int, int], str], progress=None) -> list[dict]:
    """Run up to ``rounds`` audit rounds, updating ``labels`` in place; returns each round's record."""
    if rounds <= 0:
        return []
    rng = np.random.default_rng(seed)
    members = {}
    for layer, lab in enumerate(layer_labels[:audit_layers]):
        order = np.argsort(lab, kind="stable")
        bounds = np.cumsum(np.bincount(lab))
        for c, chunk in enumerate(np.split(order, bounds[:-1])):
            members[(layer, c)] = chunk
    pending = [key for key in labels if key in members]
    records = []
    for round_no in range(1, rounds + 1):
        if not pending:
            break
        if progress is not None:
            progress.update(round_no - 1, rounds, f"audit round {round_no}: judging {len(pending)} labels")
        samples = {key: sample_members(members[key], sample_size, rng) for key in pending}
        verdicts = namer.judge([
            judge_prompt(labels[key].name, labels[key].description, [texts[i] for i in samples[key]],
                         topo.object_description, topo.corpus_description)
            for key in pending])
        for key, verdict in zip(pending, verdicts):
            labels[key].score = verdict["score"]
        weak = [(key, verdict) for key, verdict in zip(pending, verdicts) if verdict["score"] < threshold]
        scores = [v["score"] for v in verdicts]
        record = {"round": round_no, "judged": len(pending), "mean_score": round(float(np.mean(scores)), 4),
                  "scores": {cluster_name(*key): round(v["score"], 4) for key, v in zip(pending, verdicts)},
                  "below_threshold": [cluster_name(*key) for key, _ in weak], "changes": []}
        prompts, keys = [], []
        for key, verdict in weak:
            prompt = relabel_prompt(topo, key[0], key[1], [texts[i] for i in samples[key]], labels[key],
                                    verdict.get("reason", ""))
            if prompt is not None:
                prompts.append(prompt)
                keys.append(key)
        answers = namer.name(prompts)
        # judge the candidates on a fresh sample, so a relabel is not graded on its own evidence
        fresh = {key: sample_members(members[key], sample_size, rng) for key in keys}
        candidate_verdicts = namer.judge([
            judge_prompt(a["topic_name"], a["topic_description"], [texts[i] for i in fresh[key]],
                         topo.object_description, topo.corpus_description)
            for key, a in zip(keys, answers)])
        next_pending = []
        for key, answer, verdict in zip(keys, answers, candidate_verdicts):
            old = labels[key]
            kept = verdict["score"] > (old.score or 0.0)
            record["changes"].append({
                "cluster": cluster_name(*key), "old_label": old.name, "old_score": round(old.score or 0.0, 4),
                "new_label": answer["topic_name"], "new_score": round(verdict["score"], 4),
                "applied": bool(kept)})
            if kept:
                old.history.append(old.name)
                old.name = answer["topic_name"]
                old.description = answer["topic_description"] or old.description
                old.specificity = answer["topic_specificity"]
                old.score = verdict["score"]
            if old.score < threshold:
                next_pending.append(key)
        records.append(record)
        pending = next_pending
    if progress is not None:
        progress.update(rounds, rounds, f"audit done ({len(records)} rounds)")
    return records
