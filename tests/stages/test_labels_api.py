"""OpenAI and Anthropic namers through their official SDKs against a local stub API (127.0.0.1)."""

from __future__ import annotations

import pytest

from pipeline.stages.labels.config import LabelConfig
from pipeline.stages.labels.stubs import LLMStub

PROVIDERS = ("openai", "anthropic")


@pytest.fixture
def api_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")


def _config(provider: str, stub: LLMStub, **extra) -> LabelConfig:
    url = stub.openai_url if provider == "openai" else stub.anthropic_url
    return LabelConfig(provider=provider, base_url=url, retry_backoff=0.01, max_retries=2, **extra)


def _prompt():
    from toponymy.prompt_construction import topic_name_prompt

    from pipeline.stages.labels.prompts import label_prompt_templates

    return topic_name_prompt(
        0, 0, [[]], exemplar_texts=[["degrowth now", "degrowth and the economy", "growth is over"]],
        keyphrases=[["degrowth", "economy"]], subtopics=None, cluster_tree=None, object_description="tweets",
        corpus_description="an archive", summary_kind="clear and concise (3 to 6 word)",
        prompt_template=label_prompt_templates())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_answer_is_parsed_and_counted(provider, api_keys):
    from pipeline.stages.labels.namers import make_namer

    with LLMStub("good") as stub:
        namer = make_namer(_config(provider, stub, model="stub-model"))
        [answer] = namer.name([_prompt()])
    assert "degrowth" in answer["topic_name"].lower()
    assert stub.requests and all(r["auth"] and r["model"] == "stub-model" for r in stub.requests)
    assert namer.usage["calls"] == 1 and namer.usage["input_tokens"] == stub.input_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_answer_is_retried(provider, api_keys):
    from pipeline.stages.labels.namers import make_namer

    with LLMStub("malformed_once") as stub:
        namer = make_namer(_config(provider, stub))
        [answer] = namer.name([_prompt()])
    assert answer["topic_name"] and len(stub.requests) == 2 and namer.usage["retries"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode,requests", [("malformed", 3), ("refuse", 3), ("error500", 3), ("error401", 1)])
def test_failures_stop_with_a_clear_error(provider, mode, requests, api_keys):
    from pipeline.stages.labels.namers import NamerFailure, make_namer

    with LLMStub(mode) as stub:
        namer = make_namer(_config(provider, stub))
        with pytest.raises(NamerFailure) as info:
            namer.name([_prompt()])
    message = str(info.value)
    assert provider in message
    assert len(stub.requests) == requests  # retried what may pass on retry, not a bad key
    assert ("401" in message) if mode == "error401" else ("3 attempt" in message)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_run_labels_with_api_namer(provider, api_keys, mapped_dataset, tmp_path):
    from pipeline.stages.labels import load_labels, run_labels
    from support import copy_dataset

    ds = copy_dataset(mapped_dataset, tmp_path)
    with LLMStub("good") as stub:
        new_id = run_labels(ds, _config(provider, stub, audit_rounds=1, keyphrase_max_features=3000))
    side = ds.sidecar(new_id)
    table = load_labels(ds, new_id)
    assert side["provider"] == provider and side["model"]
    assert side["llm_calls"] == len(stub.requests) > 0
    assert side["usage"]["input_tokens"] == stub.input_tokens and side["tokens_estimated"] is False
    assert table["label"].str.len().gt(0).all()
    assert table["topic_specificity"].notna().all()
    assert "api_key" not in str(side).lower() and "test-openai-key" not in str(side)


def test_run_labels_fails_fast_and_writes_nothing(api_keys, mapped_dataset, tmp_path):
    from pipeline.stages.labels import NamingError, run_labels
    from support import copy_dataset

    ds = copy_dataset(mapped_dataset, tmp_path)
    before = ds.list_ids("toponymy")
    with LLMStub("malformed") as stub:
        with pytest.raises(NamingError, match="no usable answer after 3 attempt"):
            run_labels(ds, _config("openai", stub, keyphrase_max_features=3000))
    assert ds.list_ids("toponymy") == before
    assert not [p for p in (ds.path / "clusters").iterdir() if p.name.startswith(".tmp-")]
