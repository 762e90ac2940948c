"""The text for meaning: what is removed, what is kept, and that it is recorded."""

from __future__ import annotations

import pytest

from pipeline.core import textnorm
from pipeline.core.textnorm import normalise, with_context


@pytest.mark.parametrize("text, expected", [
    ("@alice @bob_2, thanks for this https://t.co/abc123", "thanks for this"),
    ("RT @news: @mayor the budget passed &amp; was signed", "the budget passed & was signed"),
    (".@alice said so", "said so"),
    ("@alice see t.co/xyz and pic.twitter.com/q1 please", "see and please"),
    ("no handles here\n\nsecond line", "no handles here second line"),
    ("@alice Gasspeicher in Deutschland sind voll", "Gasspeicher in Deutschland sind voll"),
])
def test_address_line_rt_prefix_and_urls_are_removed(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize("text, expected", [
    # the fast paths skip a pattern when its marker is absent; these sit at the markers' edges
    ("\u2003hello\u00a0world\u2028again\x85end ", "hello world again end"),  # Unicode whitespace
    ("  RT @x: words", "words"),  # leading whitespace before RT
    ("RTL is a channel", "RTL is a channel"),
    ("visit WWW.Example.ORG/path today", "visit today"),
    ("HTTPS://T.CO/abc is gone", "is gone"),
    ("pic.twitter.com/abc and a picnic", "and a picnic"),
    ("&lt;3 &amp;&amp; @bob", "<3 && bob"),
    ("tab\tand\nnewline", "tab and newline"),
])
def test_fast_paths_give_what_the_full_rules_give(text, expected):
    assert normalise(text) == expected


def test_handles_inside_the_sentence_follow_the_setting():
    text = "@bob I agree with @carol_x about trains"
    assert normalise(text, "name") == "I agree with carol_x about trains"
    assert normalise(text, "keep") == "I agree with @carol_x about trains"
    assert normalise(text, "drop") == "I agree with about trains"
    assert normalise("mail me@example.org", "drop") == "mail me@example.org"  # an address is no handle
    with pytest.raises(ValueError, match="inner_handles"):
        normalise(text, "strip")


def test_nothing_left_falls_back_to_url_words_then_the_original():
    assert normalise("@a @b https://milahu.github.io/gasspeicher-deutschland/dist/") == \
        "milahu github gasspeicher deutschland"
    assert normalise("@a @b https://t.co/abc") == "@a @b https://t.co/abc"
    assert normalise("@a   @b") == "@a @b"
    assert normalise(None) == "" and normalise("") == ""
    assert normalise("@thisnameistoolong16 hi") == "@thisnameistoolong16 hi"  # not a handle (> 15 chars)


def test_parent_context_and_record():
    assert with_context("yes", None) == "yes"
    assert with_context("yes", "x" * 300, max_parent_chars=10) == "yes\n> " + "x" * 10
    record = textnorm.describe("drop", True)
    assert record == {"name": textnorm.NAME, "version": textnorm.VERSION, "inner_handles": "drop",
                      "parent_context": True}
