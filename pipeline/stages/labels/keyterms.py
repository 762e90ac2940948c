"""Word matching used by the offline namer and the offline (keyphrase coverage) judge."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD_RE = re.compile(r"[^\W_][\w'-]*[^\W_]|[^\W_]", re.UNICODE)
_NOISE = {"rt", "https", "http", "amp", "co", "t", "s", "don't", "i'm", "it's"}


def _stem(word: str) -> str:
    # a light, deterministic suffix strip so "packages"/"package" and "running"/"run" meet
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stop words, URLs or @handles."""
    text = re.sub(r"https?://\S+|@\w+", " ", text.lower())
    return [_stem(w) for w in _WORD_RE.findall(text)
            if w not in ENGLISH_STOP_WORDS and w not in _NOISE and len(w) > 1]


def covers(phrase_words: Sequence[str], text_words: set[str]) -> bool:
    """A phrase covers a text when all its content words occur in it."""
    return bool(phrase_words) and all(w in text_words for w in phrase_words)


def coverage(label: str, texts: Iterable[str]) -> float:
    """Share of ``texts`` that contain at least one content word of ``label``."""
    words = set(content_words(label))
    texts = list(texts)
    if not texts or not words:
        return 0.0
    hit = sum(1 for t in texts if words & set(content_words(t)))
    return hit / len(texts)
