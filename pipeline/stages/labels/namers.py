"""LLM namers for toponymy: OpenAI, Anthropic (official async SDKs) and an offline namer.

All are ``toponymy.llm_wrappers.AsyncLLMWrapper`` subclasses, so toponymy's own naming,
disambiguation and batching run unchanged. The shared base adds what toponymy does not do:

- it checks every answer against the JSON the prompt asked for and retries (with backoff)
  timeouts, rate limits, server errors, refusals and unparseable answers, then **fails fast**
  (toponymy would otherwise turn a failure into an empty or unchanged name);
- it records ``topic_specificity`` and the description of each answer (toponymy drops them),
  and counts calls and tokens for the sidecar.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections import Counter
from typing import Any, Callable, Optional

from toponymy.llm_wrappers import AsyncLLMWrapper, FailFastLLMError

from pipeline.core.errors import NamingError
from pipeline.core.progress import Cancelled
from pipeline.stages.labels.config import DEFAULT_MODELS, LabelConfig
from pipeline.stages.labels.keyterms import (
    NameGuard,
    PhraseStats,
    content_word_count,
    content_words,
    coverage,
    covers,
    dominant_language,
    label_problem,
    language_of,
    phrase_analyzer,
)
from pipeline.stages.labels.prompts import (
    SUBTOPIC_SIZES,
    parse_answer,
    prompt_key,
    prompt_kind,
    read_disambiguation_prompt,
    read_judge_prompt,
    read_naming_prompt,
)

#: USD per million (input, output) tokens; list prices, only used for the sidecar's estimate
PRICES_PER_MTOK = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "claude-haiku-4-5-20251001": (1.00, 5.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    DEFAULT_MODELS["offline"]: (0.0, 0.0),
}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


class NamerFailure(FailFastLLMError):
    """Raised inside a namer call; toponymy re-raises it instead of returning an empty name."""


class NamingCancelled(NamerFailure):
    """The caller cancelled the stage while names were being generated."""


class _BadAnswer(Exception):
    pass


class RecordingNamer(AsyncLLMWrapper):
    """Base of our namers: retries, answer validation, fail-fast, specificity and usage capture."""

    provider = "base"
    FAIL_FAST_EXCEPTIONS = (NamerFailure,)

    def __init__(self, model: str, *, max_concurrency: int = 8, timeout: float = 60.0, max_retries: int = 2,
                 retry_backoff: float = 1.0, temperature: float = 0.4):
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.temperature = temperature
        self.named: dict[str, dict] = {}          # prompt key -> parsed naming answer
        self.specificity_by_name: dict[str, float] = {}
        self.usage: dict[str, Any] = {"calls": 0, "retries": 0, "input_tokens": 0, "output_tokens": 0,
                                      "by_kind": {}}
        self.on_call: Optional[Callable[[dict], None]] = None  # progress hook; may raise Cancelled
        self._lock = threading.Lock()
        self._loop_state: Optional[tuple] = None

    def prepare(self, texts: list[str], handles: frozenset = frozenset()) -> None:
        """Called with the corpus (the texts the prompts quote) and its @handles before naming.
        API namers need nothing: the model reads the prompt; the offline namer keeps statistics."""

    # ---- provider specifics
    def _make_client(self) -> Any:
        return None

    async def _complete(self, client: Any, system: str, user: str, max_tokens: int) -> tuple[str, int, int]:
        """Send one request; return (answer text, input tokens, output tokens)."""
        raise NotImplementedError

    async def _complete_prompt(self, client: Any, prompt: dict, system: str, user: str,
                               max_tokens: int) -> tuple[str, int, int]:
        """Send one prompt; API namers send only its text (``_complete``)."""
        return await self._complete(client, system, user, max_tokens)

    def _is_transient(self, exc: BaseException) -> bool:
        """Worth retrying (timeouts, rate limits, server errors); anything else fails at once."""
        return isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError))

    # ---- toponymy hooks
    @property
    def supports_system_prompts(self) -> bool:
        return True

    async def _call_single_llm_with_system(self, prompt: dict, temperature: float, max_tokens: int) -> str:
        return await self._answer(prompt, max_tokens)

    async def _call_single_llm(self, prompt: dict, temperature: float, max_tokens: int) -> str:
        return await self._answer(prompt, max_tokens)

    # ---- the call
    def _state(self) -> tuple:
        """(semaphore, client) of the running event loop (toponymy runs one loop per batch)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop_state is None or self._loop_state[0] is not loop:
                self._loop_state = (loop, asyncio.Semaphore(self.max_concurrency), self._make_client())
            return self._loop_state[1], self._loop_state[2]

    async def _answer(self, prompt: dict, max_tokens: int) -> str:
        kind = prompt_kind(prompt)
        system = prompt.get("system") or ""
        user = prompt.get("user") or prompt.get("combined") or ""
        attempts = self.max_retries + 1
        problem = "no attempt made"
        try:
            semaphore, client = self._state()
            for attempt in range(attempts):
                if attempt:
                    with self._lock:
                        self.usage["retries"] += 1
                    await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
                try:
                    async with semaphore:
                        text, tokens_in, tokens_out = await self._complete_prompt(client, prompt, system, user,
                                                                                  max_tokens)
                except _BadAnswer as exc:
                    problem = str(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - classified below
                    if self._is_transient(exc):
                        problem = f"{type(exc).__name__}: {exc}"
                        continue
                    raise NamerFailure(
                        f"{self.provider} model '{self.model}' rejected the request: {type(exc).__name__}: {exc}"
                    ) from None
                self._count(kind, tokens_in, tokens_out)
                try:
                    parsed = parse_answer(kind, text)
                    if kind == "disambiguate":
                        expected = len(read_disambiguation_prompt(user))
                        if expected and len(parsed["names"]) != expected:
                            raise ValueError(f"{len(parsed['names'])} new names for {expected} topics")
                except ValueError as exc:
                    snippet = (text or "")[:160].replace("\n", " ")
                    problem = f"unparseable answer ({exc}): {snippet!r}"
                    continue
                self._record(kind, prompt, parsed)
                if self.on_call is not None:
                    self.on_call(dict(self.usage))
                return text
        except NamerFailure:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # includes pipeline.core.progress.Cancelled from the hook
            if isinstance(exc, Cancelled):
                raise NamingCancelled(str(exc)) from None
            raise NamerFailure(f"{self.provider} namer failed: {type(exc).__name__}: {exc}") from None
        raise NamerFailure(
            f"{self.provider} model '{self.model}' gave no usable answer after {attempts} attempt(s); "
            f"last problem: {problem}"
        )

    def _count(self, kind: str, tokens_in: int, tokens_out: int) -> None:
        with self._lock:
            self.usage["calls"] += 1
            self.usage["input_tokens"] += int(tokens_in or 0)
            self.usage["output_tokens"] += int(tokens_out or 0)
            per = self.usage["by_kind"].setdefault(kind, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            per["calls"] += 1
            per["input_tokens"] += int(tokens_in or 0)
            per["output_tokens"] += int(tokens_out or 0)

    def _record(self, kind: str, prompt: dict, parsed: dict) -> None:
        with self._lock:
            if kind == "name":
                self.named[prompt_key(prompt)] = parsed
                self.specificity_by_name[parsed["topic_name"]] = parsed["topic_specificity"]
            elif kind == "disambiguate":
                for name, spec in zip(parsed["names"], parsed["specificities"]):
                    self.specificity_by_name[name] = spec

    # ---- audit
    async def _judge_all(self, prompts: list[dict]) -> list[dict]:
        texts = await asyncio.gather(*(self._answer(p, 256) for p in prompts))
        return [parse_answer("judge", t) for t in texts]

    def judge(self, prompts: list[dict]) -> list[dict]:
        """Scores ({"score", "reason"}) for judge prompts; raises NamingError on failure."""
        from toponymy.cluster_layer import run_async

        if not prompts:
            return []
        return run_async(self._judge_all(prompts))

    def name(self, prompts: list[dict]) -> list[dict]:
        """Parsed naming answers for toponymy-built prompts (used by the audit and relabel)."""
        from toponymy.cluster_layer import run_async

        async def go():
            texts = await asyncio.gather(*(self._answer(p, 256) for p in prompts))
            return [parse_answer("name", t) for t in texts]

        return run_async(go()) if prompts else []

    def cost_estimate(self) -> Optional[float]:
        price = PRICES_PER_MTOK.get(self.model)
        if price is None:
            return None
        return round((self.usage["input_tokens"] * price[0] + self.usage["output_tokens"] * price[1]) / 1e6, 6)

    def describe(self) -> dict:
        return {"provider": self.provider, "model": self.model}


# --------------------------------------------------------------------------- providers

class OpenAINamer(RecordingNamer):
    """OpenAI chat completions through the official ``openai`` async client (JSON mode)."""

    provider = "openai"

    def __init__(self, model: str, *, api_key: str, base_url: Optional[str] = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        self._api_key = api_key
        self.base_url = base_url or None

    def _make_client(self) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    async def _complete(self, client: Any, system: str, user: str, max_tokens: int) -> tuple[str, int, int]:
        response = await client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=self.temperature,
            max_completion_tokens=max_tokens,
            response_format={"type": "json_object"},
        )
        usage = getattr(response, "usage", None)
        tokens = (getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
        if not response.choices:
            raise _BadAnswer("the answer has no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            self._count("refusal", *tokens)
            raise _BadAnswer(f"the model refused: {message.refusal}")
        return message.content or "", tokens[0], tokens[1]

    def _is_transient(self, exc: BaseException) -> bool:
        import openai

        return super()._is_transient(exc) or isinstance(
            exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                  openai.InternalServerError))


class AnthropicNamer(RecordingNamer):
    """Anthropic messages through the official ``anthropic`` async client."""

    provider = "anthropic"

    def __init__(self, model: str, *, api_key: str, base_url: Optional[str] = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        self._api_key = api_key
        self.base_url = base_url or None

    def _make_client(self) -> Any:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    async def _complete(self, client: Any, system: str, user: str, max_tokens: int) -> tuple[str, int, int]:
        # anthropic >= 2 has no temperature argument (current models fix it), so none is sent
        response = await client.messages.create(
            model=self.model, system=system, max_tokens=max_tokens, messages=[{"role": "user", "content": user}],
        )
        usage = getattr(response, "usage", None)
        tokens = (getattr(usage, "input_tokens", 0) or 0, getattr(usage, "output_tokens", 0) or 0)
        if getattr(response, "stop_reason", None) == "refusal":
            self._count("refusal", *tokens)
            raise _BadAnswer("the model refused")
        text = "".join(getattr(block, "text", "") for block in response.content
                       if getattr(block, "type", "") == "text")
        return text, tokens[0], tokens[1]

    def _is_transient(self, exc: BaseException) -> bool:
        import anthropic

        if isinstance(exc, anthropic.APIStatusError):
            return exc.status_code == 429 or exc.status_code >= 500
        return super()._is_transient(exc) or isinstance(exc, (anthropic.APITimeoutError, anthropic.APIConnectionError))


class OfflineNamer(RecordingNamer):
    """A deterministic namer that reads toponymy's prompt and answers in its JSON format.

    Names: the most distinctive phrases of the cluster, c-TF-IDF style — how many exemplars
    shown contain a phrase (toponymy's keyphrases for the cluster count extra), weighted by
    its rarity in the whole corpus, phrases with more content words preferred, phrases of only
    stop words, common verbs or expletives ("Scheisse, sagt") penalised — in the cluster's
    dominant language, never a bare @handle, number, URL or date, nor an account or site name
    split into words ("Sama hoole"). A cluster with subtopics (a parent) is named from its
    children's names, each phrase weighted by the sizes of the children naming it, so a
    top-layer label summarises what it holds. The judge score is the share of sample tweets
    containing a word of the label (keyphrase coverage). Token counts are estimates (4
    characters per token).
    """

    provider = "offline"

    def __init__(self, model: str = DEFAULT_MODELS["offline"], max_terms: int = 2, **kwargs: Any):
        kwargs.setdefault("retry_backoff", 0.0)
        super().__init__(model, **kwargs)
        self.max_terms = max_terms
        self.corpus: Optional[PhraseStats] = None
        self.handles = NameGuard()

    def prepare(self, texts: list[str], handles: frozenset = frozenset()) -> None:
        self.corpus = PhraseStats(texts)
        self.handles = NameGuard(handles)

    async def _complete_prompt(self, client: Any, prompt: dict, system: str, user: str,
                               max_tokens: int) -> tuple[str, int, int]:
        text = offline_answer(system, user, self.max_terms, self.corpus, self.handles, prompt.get(SUBTOPIC_SIZES))
        return text, (len(system) + len(user)) // 4, len(text) // 4

    async def _complete(self, client: Any, system: str, user: str, max_tokens: int) -> tuple[str, int, int]:
        return await self._complete_prompt(client, {}, system, user, max_tokens)


def offline_answer(system: str, user: str, max_terms: int = 2, corpus: Optional[PhraseStats] = None,
                   handles=frozenset(), subtopics: Optional[list] = None) -> str:
    """The offline namer's JSON answer to a naming, disambiguation or judge prompt.

    ``handles``: account and site names (a set, or a :class:`NameGuard`) no name may spell;
    ``subtopics``: [name, size] of a parent's children (``prompts.SUBTOPIC_SIZES``)."""
    import json

    handles = handles if isinstance(handles, NameGuard) else NameGuard(handles)

    kind = prompt_kind({"system": system})
    if kind == "judge":
        info = read_judge_prompt(user)
        score = coverage(info["label"], info["texts"])
        hits = round(score * len(info["texts"]))
        answer = {"score": round(score, 4),
                  "reason": f"{hits} of {len(info['texts'])} sample texts contain a word of the label"}
    elif kind == "disambiguate":
        answer = _disambiguate(read_disambiguation_prompt(user), handles)
    else:
        info = read_naming_prompt(user)
        terms = summary_phrases(subtopics, max_terms, corpus, handles) if subtopics and len(subtopics) > 1 else []
        terms = terms or distinctive_phrases(info["keywords"], info["exemplars"], max_terms, corpus, handles)
        texts = [set(content_words(e)) for e in info["exemplars"]]
        covered = sum(1 for t in texts if any(covers(content_words(k), t) for k in terms))
        shown = len(texts)
        about = ", ".join(terms[:-1]) + (" & " if len(terms) > 1 else "") + terms[-1]
        sentence = ("Beiträge über {about}; {covered} von {shown} Beispielen erwähnen es."
                    if dominant_language(info["exemplars"]) == "de"
                    else "Posts about {about}; {covered} of {shown} sample posts mention them.")
        name = ", ".join(terms)
        answer = {"topic_name": name[:1].upper() + name[1:],
                  "topic_description": sentence.format(about=about, covered=covered, shown=shown),
                  "topic_specificity": round(covered / shown, 4) if shown else 0.5}
    return json.dumps(answer, ensure_ascii=False)


def _usable(phrase: str, handles: NameGuard) -> bool:
    """A phrase can name a cluster: not a handle, number, URL or date, and no run of its words an
    account or site name (a reply's addressee says whom, not what)."""
    words = phrase.lower().split()
    return bool(words) and label_problem(phrase, handles.names) is None and not handles.spells_name(phrase)


def _weight(phrase: str) -> float:
    """Preference by form: each content word beyond the first adds 60 %; a phrase of only stop
    words, verbs or expletives is kept only when nothing else is left."""
    n_content = content_word_count(phrase)
    return 0.05 if n_content == 0 else 1.0 + 0.6 * (n_content - 1)


def _pick(scored: list[tuple[float, str]], max_terms: int) -> list[str]:
    """Best phrases first, each adding words the earlier ones lack, none below half the best score."""
    scored = sorted(scored, key=lambda item: (-item[0], item[1]))
    chosen: list[str] = []
    for score, phrase in scored:
        words = set(phrase.split())
        if any(words & set(c.split()) for c in chosen):
            continue
        if chosen and score < 0.5 * scored[0][0]:
            break
        chosen.append(phrase)
        if len(chosen) >= max_terms:
            break
    return chosen


_SUFFIX_RE = re.compile(r"\s+#\d+$")


def summary_phrases(subtopics: list, max_terms: int = 2, corpus: Optional[PhraseStats] = None,
                    handles=frozenset()) -> list[str]:
    """A parent's name from its children's: the union of the phrases of the children's names
    (a disambiguation's "(extra)" included), each scored by the sizes of the children naming it
    (a child's first phrase counts fully, later ones half), its rarity in the corpus and its form."""
    handles = handles if isinstance(handles, NameGuard) else NameGuard(handles)
    analyze = phrase_analyzer()
    score: Counter = Counter()
    for name, size in subtopics:
        terms = [t.strip(" ()").lower() for t in re.split(r",|\(", _SUFFIX_RE.sub("", str(name)))]
        seen = set()
        for rank, term in enumerate(t for t in terms if t):
            grams = analyze(term)
            phrase = " ".join(term.split())
            if phrase not in grams or phrase in seen or not _usable(phrase, handles):
                continue  # only phrases as the keyphrase vocabulary spells them
            seen.add(phrase)
            score[phrase] += float(size) * (1.0 if rank == 0 else 0.5)
    scored = []
    for phrase, weight in score.items():
        idf = corpus.idf(phrase) if corpus is not None else 1.0
        scored.append((weight * idf * _weight(phrase), phrase))
    return _pick(scored, max_terms)


def distinctive_phrases(keywords: list[str], exemplars: list[str], max_terms: int = 2,
                        corpus: Optional[PhraseStats] = None, handles=frozenset()) -> list[str]:
    """The cluster's most distinctive phrases (c-TF-IDF over the exemplars, toponymy's keyphrases
    as extra evidence), in its dominant language, each adding words the earlier ones lack."""
    handles = handles if isinstance(handles, NameGuard) else NameGuard(handles)
    analyze = phrase_analyzer()
    shown = [set(analyze(e)) for e in exemplars]
    lang = dominant_language(exemplars)
    in_lang = [bool(lang) and language_of(e) == lang for e in exemplars]
    tf: Counter = Counter()
    native: Counter = Counter()
    for phrases, own in zip(shown, in_lang):
        tf.update(phrases)
        if own:
            native.update(phrases)
    ranked = []
    for k in keywords:  # toponymy ranks these for the whole cluster; spelt as our phrases are
        grams = analyze(k)
        if grams and grams[-1] not in ranked:
            ranked.append(grams[-1])
    for rank, k in enumerate(ranked):
        tf[k] += 1.0 + (len(ranked) - rank) / len(ranked)
    scored = []
    anywhere = {p for s in shown for p in s}
    for phrase, count in tf.items():
        if (count < 2 and phrase not in ranked) or not _usable(phrase, handles):
            continue
        idf = corpus.idf(phrase) if corpus is not None else 1.0
        lang_weight = 1.0 if not lang or native[phrase] or phrase not in anywhere else 0.3
        scored.append((count * idf * _weight(phrase) * lang_weight, phrase))
    chosen = _pick(scored, max_terms)
    if not chosen:
        fallback = [w for w, _ in Counter(w for e in exemplars for w in analyze(e) if " " not in w).most_common()
                    if _usable(w, handles)]
        fallback.sort(key=lambda w: content_word_count(w) == 0)  # stable: most common content word first
        if not fallback:
            raise _BadAnswer("the prompt shows no usable phrase to name the cluster by")
        chosen = fallback[:1]
    return chosen


def _disambiguate(topics: list[dict], handles: NameGuard) -> dict:
    mapping, specs, taken = {}, [], set()
    for topic in topics:
        old_words = set(content_words(topic["name"]))
        extra = next((k for k in topic["keywords"]
                      if content_words(k) and not set(content_words(k)) <= old_words and k not in taken
                      and _usable(k, handles)), None)
        new = f"{topic['name']} ({extra})" if extra else topic["name"]
        if new in taken:
            new = f"{new} #{topic['index']}"
        taken.update({new, extra} - {None})
        mapping[f"{topic['index']}. {topic['name']}"] = new
        texts = topic["exemplars"]
        specs.append(round(coverage(new, texts), 4) if texts else 0.5)
    return {"new_topic_name_mapping": mapping, "topic_specificities": specs}


# --------------------------------------------------------------------------- choice

def resolve_provider(provider: str) -> str:
    """'auto' -> openai if OPENAI_API_KEY is set, else anthropic if ANTHROPIC_API_KEY, else offline."""
    if provider != "auto":
        return provider
    for name in ("openai", "anthropic"):
        if os.environ.get(KEY_ENV[name]):
            return name
    return "offline"


def make_namer(config: LabelConfig) -> RecordingNamer:
    """The namer the config asks for; API keys come only from the environment."""
    provider = resolve_provider(config.provider)
    model = config.model or DEFAULT_MODELS[provider]
    common = dict(max_concurrency=config.max_concurrency, timeout=config.timeout, max_retries=config.max_retries,
                  retry_backoff=config.retry_backoff, temperature=config.temperature)
    if provider == "offline":
        common["retry_backoff"] = 0.0
        return OfflineNamer(model, **common)
    key = os.environ.get(KEY_ENV[provider])
    if not key:
        raise NamingError(
            f"the {provider} namer needs {KEY_ENV[provider]} in the environment; set it, or use --provider offline")
    base_url = config.base_url or os.environ.get(BASE_URL_ENV[provider]) or None
    cls = OpenAINamer if provider == "openai" else AnthropicNamer
    return cls(model, api_key=key, base_url=base_url, **common)
