"""Fast checks of the labels stage's pieces: hierarchy merging, adaptive counts, prompts, answers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pipeline.stages.labels.clusterer import adaptive_count, contiguous_labels, merge_layers, parents_and_children


def _blobs(n_clusters=24, per=30, dims=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (n_clusters, dims))
    labels = np.repeat(np.arange(n_clusters), per)
    rng.shuffle(labels)
    return labels, centres[labels] + rng.normal(0, 0.5, (len(labels), dims))


def test_merge_layers_are_nested_partitions():
    labels, manifold = _blobs()
    layers = merge_layers(labels, manifold, branching=3, min_top_clusters=2, max_layers=5)
    assert len(layers) >= 2
    assert np.array_equal(layers[0], labels)
    sizes = [int(lab.max()) + 1 for lab in layers]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    for finer, coarser in zip(layers, layers[1:]):
        assert len(coarser) == len(finer)
        assert set(np.unique(coarser)) == set(range(int(coarser.max()) + 1))  # contiguous, no noise
        for c in np.unique(finer):  # each finer cluster lies inside exactly one coarser cluster
            assert len(np.unique(coarser[finer == c])) == 1
    parents, children = parents_and_children(layers)
    for layer in range(1, len(layers)):
        for parent, kids in enumerate(children[layer]):
            assert kids and all(parents[layer - 1][k] == parent for k in kids)
    assert (parents[-1] == -1).all()


def test_merge_layers_keeps_few_clusters_flat():
    labels, manifold = _blobs(n_clusters=4)
    assert len(merge_layers(labels, manifold, min_top_clusters=3)) == 1


def test_contiguous_labels_rejects_noise_and_keeps_originals():
    codes, originals = contiguous_labels(np.array([5, 2, 5, 9]))
    assert codes.tolist() == [1, 0, 1, 2] and originals.tolist() == [2, 5, 9]
    with pytest.raises(ValueError, match="noise"):
        contiguous_labels(np.array([0, -1, 1]))


def test_adaptive_counts_grow_with_cluster_size():
    counts = [adaptive_count(size, 4, 16) for size in (5, 30, 100, 400, 5000)]
    assert counts == sorted(counts) and counts[0] == 4 and counts[-1] == 16


def test_prompt_asks_for_description_and_offline_answer_matches_toponymy_regex():
    from toponymy.prompt_construction import topic_name_prompt
    from toponymy.templates import GET_TOPIC_NAME_REGEX

    from pipeline.stages.labels.namers import offline_answer
    from pipeline.stages.labels.prompts import label_prompt_templates, parse_answer, prompt_kind

    prompt = topic_name_prompt(
        0, 0, [[]], exemplar_texts=[["nix flakes are great", "home manager and nix flakes", "I love nix"]],
        keyphrases=[["nix flakes", "home manager", "nix"]], subtopics=None, cluster_tree=None,
        object_description="tweets", corpus_description="an archive", summary_kind="clear and concise (3 to 6 word)",
        prompt_template=label_prompt_templates())
    assert "topic_description" in prompt["system"] and "topic_description" in prompt["user"]
    assert prompt_kind(prompt) == "name"
    answer = offline_answer(prompt["system"], prompt["user"])
    assert re.findall(GET_TOPIC_NAME_REGEX, answer, re.DOTALL)
    parsed = parse_answer("name", answer)
    assert "nix" in parsed["topic_name"].lower()
    assert 0.0 <= parsed["topic_specificity"] <= 1.0 and parsed["topic_description"]


def test_parse_answer_rejects_what_toponymy_would_silently_drop():
    from pipeline.stages.labels.prompts import parse_answer

    with pytest.raises(ValueError):
        parse_answer("name", "A great name: Things")
    with pytest.raises(ValueError):
        parse_answer("name", '{"topic_name": "", "topic_specificity": 0.5}')
    ok = parse_answer("disambiguate", json.dumps(
        {"new_topic_name_mapping": {"1. a": "A x", "2. b": "B y"}, "topic_specificities": [0.4, 0.9]}))
    assert ok["names"] == ["A x", "B y"] and ok["specificities"] == [0.4, 0.9]
    assert parse_answer("judge", '{"score": 0.7, "reason": "fits"}')["score"] == 0.7


def test_offline_disambiguation_gives_distinct_names():
    from pipeline.stages.labels.namers import offline_answer
    from pipeline.stages.labels.prompts import parse_answer

    user = ('"1. Food":\n- Keywords for this group include: food, carnivore diet\n'
            '"2. Food":\n- Keywords for this group include: food, vegan recipes\n')
    system = 'Respond with {"new_topic_name_mapping": ..., "topic_specificities": [...]}'
    parsed = parse_answer("disambiguate", offline_answer(system, user))
    assert len(parsed["names"]) == 2 and len(set(parsed["names"])) == 2


def test_offline_parent_name_summarises_its_children_by_size():
    from pipeline.stages.labels.namers import offline_answer, summary_phrases
    from pipeline.stages.labels.prompts import parse_answer

    children = [["Ruminant meat beef, eating carnivore diet", 148], ["Nature resource depletion, overpopulation", 261],
                ["Sama hoole, cholesterol", 28], ["Scheisse, sagt", 400], ["Gold silver (catherine austin fitts)", 49]]
    names = frozenset({"samahoole", "milahu104"})
    # the two largest children with a content word lead; the expletive+verb child and the handle never do
    assert summary_phrases(children, 2, handles=names) == ["nature resource depletion", "ruminant meat beef"]
    assert "sama hoole" not in summary_phrases(children, 9, handles=names)
    assert summary_phrases(children[4:], 2) == ["gold silver", "catherine austin fitts"]
    answer = parse_answer("name", offline_answer("name it", "- Keywords for this group include: scheisse\n",
                                                 subtopics=children, handles=names))
    assert answer["topic_name"] == "Nature resource depletion, ruminant meat beef"


def test_offline_names_prefer_noun_phrases_and_never_spell_a_handle():
    from pipeline.stages.labels.keyterms import NameGuard, archive_names, content_word_count
    from pipeline.stages.labels.namers import distinctive_phrases

    names = archive_names(["@SamaHoole beef", "see https://milahu.github.io/x"], screen_names=["milahu104"])
    guard = NameGuard(names)
    assert {"samahoole", "milahu", "github", "milahu104"} <= names
    assert guard.spells_name("Sama hoole") and guard.spells_name("sama hoole cholesterol")
    assert guard.spells_name("Milahu")
    assert not guard.spells_name("cholesterol carnivore") and not NameGuard({"bitcoin_hotel"}).spells_name("hotel")
    assert content_word_count("scheisse sagt") == 0 and content_word_count("wolf tamers") == 2
    exemplars = ["Scheisse sagt er, wolf tamers banned", "scheisse sagt sie, wolf tamers", "wolf tamers scheisse sagt",
                 "sama hoole sagt cholesterol", "sama hoole cholesterol", "milahu sagt scheisse"]
    assert distinctive_phrases([], exemplars, 2, handles=names) == ["wolf tamers"]


def test_coverage_judge_scores_label_against_texts():
    from pipeline.stages.labels.keyterms import coverage

    texts = ["Nix flakes rock", "nixos on my laptop", "coffee time"]
    assert coverage("Nix flakes", texts) == pytest.approx(1 / 3)
    assert coverage("coffee", texts) == pytest.approx(1 / 3)
    assert coverage("", texts) == 0.0


def test_label_config_round_trips_and_resolves_provider(monkeypatch):
    from pipeline.core.errors import NamingError
    from pipeline.stages.labels.config import LabelConfig
    from pipeline.stages.labels.namers import make_namer, resolve_provider

    cfg = LabelConfig(provider="offline", audit_rounds=3)
    assert LabelConfig.from_dict(cfg.to_dict()).audit_rounds == 3
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert resolve_provider("auto") == "offline"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert resolve_provider("auto") == "anthropic"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(NamingError, match="OPENAI_API_KEY"):
        make_namer(LabelConfig(provider="openai"))


def test_cli_flags_come_from_the_config():
    from pipeline.cli.main import build_parser
    from pipeline.core.config import config_from_args
    from pipeline.stages.labels.config import LabelConfig

    args = build_parser().parse_args(["label", "--dataset", "d", "--cluster-id", "cluster-002", "--provider",
                                      "anthropic", "--model", "claude-x", "--audit-rounds", "0"])
    config = config_from_args(LabelConfig, args)
    assert (config.provider, config.model, config.audit_rounds) == ("anthropic", "claude-x", 0)
    assert args.cluster_id == "cluster-002"
    edit = build_parser().parse_args(["label-edit", "--dataset", "d", "--cluster", "0_1", "--cluster", "0_2",
                                      "--status", "flagged"])
    assert edit.cluster == ["0_1", "0_2"] and edit.status == "flagged"
