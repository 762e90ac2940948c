"""Word matching used by the offline namer and the offline (keyphrase coverage) judge, the
stop words of the keyphrase vocabulary, and the rules of what a label may not be."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

#: German function words (the sample and many archives mix German and English tweets)
GERMAN_STOP_WORDS = frozenset("""
aber alle allem allen aller alles als also am an ander andere anderen anderer anderes auch auf aus bei beim
bin bis bist da dabei dadurch dafür dagegen daher damit dann darauf darum das dass daß dein deine deinem deinen
deiner dem den denen denn der deren des deshalb dessen dich die dies diese diesem diesen dieser dieses dir doch
dort du durch ein eine einem einen einer eines einfach einige er es etwa etwas euch euer eure für gab gar gegen
gewesen gibt ging habe haben hab hat hatte hätte hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer
im immer in indem ins ist ja jede jedem jeden jeder jedes jetzt kann kannst kein keine keinem keinen keiner
könnte machen man manche mehr mein meine meinem meinen meiner mich mir mit muss musst mußt nach nachdem nein
nicht nichts noch nun nur ob oder ohne schon sehr sein seine seinem seinen seiner seit sich sie sind so solche
soll sollte sondern sonst über um und uns unser unsere unter viel vom von vor war waren warum was weil weiter
welche welchem welchen welcher wem wen wenn wer werde werden wie wieder will wir wird wirst wo wohl wollen
würde würden zu zum zur zwar zwischen eben halt mal ganz genau eigentlich bitte danke ok okay ne nee ja jo
""".split())
#: the keyphrase vocabulary's stop words: English and German
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | GERMAN_STOP_WORDS
#: keyphrase tokens start with a letter (numbers and "2016" never become keyphrases on their own)
KEYPHRASE_TOKEN_PATTERN = r"(?u)\b[^\W\d_][-'\w]*\w\b"

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
            if w not in STOP_WORDS and w not in _NOISE and len(w) > 1]


def language_of(text: str) -> str:
    """'de', 'en' or '' by German vs English function words (enough to tell a cluster's language)."""
    words = _WORD_RE.findall(text.lower())
    de = sum(w in GERMAN_STOP_WORDS and w not in ENGLISH_STOP_WORDS for w in words)
    en = sum(w in ENGLISH_STOP_WORDS and w not in GERMAN_STOP_WORDS for w in words)
    return "de" if de > en else "en" if en > de else ""


def dominant_language(texts: Iterable[str]) -> str:
    """The language most of ``texts`` are written in ('' when none can be told)."""
    counts = Counter(lang for lang in map(language_of, texts) if lang)
    return counts.most_common(1)[0][0] if counts else ""


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


# ----------------------------------------------------------------- what a label may not be

_HANDLE_RE = re.compile(r"^\.?@?[A-Za-z0-9_]{1,15}$")
_URLISH_RE = re.compile(r"(?:https?://|www\.|\b[a-z0-9-]+\.(?:com|org|net|io|de|co|ly|me|gov|edu)\b|\bt\.co/)", re.I)
_NUMBER_RE = re.compile(r"^[#+\-]?\d[\d.,:/%+\-]*$")
_MONTHS = ("jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august "
           "september october november december januar februar märz mai juni juli oktober dezember").split()
_DAYS = ("mon tue wed thu fri sat sun monday tuesday wednesday thursday friday saturday sunday montag dienstag "
         "mittwoch donnerstag freitag samstag sonntag today yesterday tomorrow heute gestern morgen").split()
_ORDINAL_RE = re.compile(r"^\d+(?:st|nd|rd|th|\.)$", re.I)
_DATE_WORDS = set(_MONTHS) | set(_DAYS)


def _date_or_number(token: str) -> bool:
    t = token.lower().strip(".,;:!?()[]\"'")
    return bool(not t or _NUMBER_RE.match(t) or _ORDINAL_RE.match(t) or t in _DATE_WORDS)


_ANY_HANDLE_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")


def archive_handles(texts: Iterable[str]) -> frozenset:
    """Every @handle written in ``texts``, lower case, without the "@"."""
    return frozenset(h.lower() for t in texts if isinstance(t, str) for h in _ANY_HANDLE_RE.findall(t))


_HOST_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s]*@)?((?:[a-z0-9][a-z0-9-]*\.)+[a-z]{2,})(?=[/:?#]|$)", re.I)
_NAME_NOISE_RE = re.compile(r"[\d_\-]+")
#: host labels that name no site: the web's own prefixes and second-level domains (co.uk)
_HOST_NOISE = {"www", "m", "mobile", "en", "de", "amp", "co", "com", "org", "net", "ac", "gov", "edu"}


def url_name_labels(urls: Iterable[str]) -> frozenset:
    """The names in the host names of ``urls``, lower case: every label but the top-level domain
    and "www" ("milahu" and "github" of milahu.github.io) — a site or its owner, never a topic."""
    out = set()
    for url in urls:
        if not isinstance(url, str):
            continue
        match = _HOST_RE.match(url.strip())
        if match:
            labels = match.group(1).lower().split(".")[:-1]
            out.update(x for x in labels if len(x) > 1 and x not in _HOST_NOISE)
    return frozenset(out)


def archive_names(texts: Iterable[str], urls: Iterable[str] = (), screen_names: Iterable[str] = ()) -> frozenset:
    """Every account or site name of an archive, lower case: the @handles written in ``texts``, the
    ``screen_names`` (the owner, reply targets) and the host-name labels of ``urls`` and of the
    URLs written in ``texts``."""
    texts = [t for t in texts if isinstance(t, str)]
    written = [u for t in texts for u in re.findall(r"https?://\S+|\b(?:[a-z0-9-]+\.)+(?:[a-z]{2,})/\S*", t, re.I)]
    return (archive_handles(texts) | frozenset(str(s).lower().lstrip("@") for s in screen_names if s)
            | url_name_labels([*urls, *written]))


class NameGuard:
    """Tells whether a phrase spells an account or site name, even split into words ("sama hoole"
    for @SamaHoole, "milahu" for @milahu104): some run of its words, joined without spaces, equals a
    name or the name without its digits, "_" and "-", or — two words or more, 6+ letters — is
    contained in one. A single word inside a longer name ("hotel" of @bitcoin_hotel) stays a word."""

    def __init__(self, names: Iterable[str] = ()):
        self.names = frozenset(n.lower() for n in names if n)
        stripped = {_NAME_NOISE_RE.sub("", n) for n in self.names}
        self.exact = self.names | {n for n in stripped if len(n) >= 3}
        self._haystack = "\n".join(sorted(self.names))
        self._seen: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.names)

    def spells_name(self, phrase: str) -> bool:
        key = phrase.lower()
        hit = self._seen.get(key)
        if hit is None:
            words = [w.strip(".,;:!?()[]\"'@#") for w in key.replace("-", " ").split()]
            words = [w for w in words if w]
            hit = False
            for i in range(len(words)):
                for j in range(i + 1, len(words) + 1):
                    joined = "".join(words[i:j])
                    if joined in self.exact or (j - i > 1 and len(joined) >= 6 and joined in self._haystack):
                        hit = True
                        break
                if hit:
                    break
            self._seen[key] = hit
        return hit


def term_problem(term: str) -> str | None:
    """Why a single label term is no name ('handle', 'number', 'url', 'date'), or None."""
    t = term.strip()
    if not t:
        return "empty"
    if _URLISH_RE.search(t):
        return "url"
    if t.startswith(("@", ".@")) and _HANDLE_RE.match(t):
        return "handle"
    tokens = t.split()
    if all(_NUMBER_RE.match(x.strip(".,;:()")) for x in tokens):
        return "number"
    if all(_date_or_number(x) for x in tokens):
        return "date"
    return None


def label_problem(label: str, handles: set[str] = frozenset()) -> str | None:
    """Why ``label`` is no name, or None: it (or one of its comma-separated terms) is only a
    @handle, a number, a URL or a date/ordinal token. ``handles`` (lower-case, without "@")
    are account names known from the texts: a bare "bryanalexander" counts as a handle too."""
    for term in [label, *label.split(",")]:
        problem = term_problem(term)
        if problem:
            return problem
        if term.strip().lower().lstrip(".@") in handles:
            return "handle"
    return None


# ----------------------------------------------------------------- weak words

#: words that name no topic on their own, English and German: common verbs in their frequent
#: forms, expletives and interjections (the stop words are the other half of "weak")
WEAK_WORDS = frozenset("""
say says said saying tell tells told ask asks asked think thinks thought know knows knew known want wants
wanted get gets got getting go goes went gone going make makes made making take takes took taken come comes
came see sees saw seen look looks looked let lets use uses used need needs needed like likes liked try tries
tried feel feels felt seem seems seemed mean means meant give gives gave given put keep keeps kept call calls
called post posts posted share shared ban bans banned block blocked delete deleted happen happens happened
happening own owns owned stop stopped start started believe believes talk talks talking read reads write
wrote written guess guessed
sagen sagt sagte gesagt sage meinen meint meinte gemeint denke denkt dachte glaube glaubt glauben weiß wissen
wusste finde findet finden gefunden macht machte gemacht geht ging gegangen gehen kommt kam kommen gekommen
sieht sah sehen gesehen geben gegeben nimmt nehmen genommen steht stehen lassen lässt bleibt heißt zeigt
spricht schreibt kennt bringt hört fragt frage fragen hatte hatten wurde wurden worden
fuck fucks fucking fucked shit shitty damn crap bullshit wtf lol lmao rofl omg haha hahaha hehe yeah yep yes
nope hmm wow oh ah ugh idk imo tbh btw thanks thank thx rt via amp
scheisse scheiße scheiss scheiß kacke mist verdammt fick ficken gefickt arsch haha jaja naja achso
""".split())


def weak_word(word: str) -> bool:
    """A stop word, a common verb form (also any English "-ed" form), an expletive or interjection."""
    w = word.lower()
    return w in STOP_WORDS or w in WEAK_WORDS or (len(w) > 5 and w.endswith("ed") and not w.endswith("eed"))


def content_word_count(phrase: str) -> int:
    """How many words of ``phrase`` are not weak (0: the phrase names nothing)."""
    return sum(not weak_word(w) for w in phrase.split())


# ----------------------------------------------------------------- distinctive phrases (c-TF-IDF)

def phrase_analyzer(max_words: int = 3):
    """Text -> its lower-cased 1..max_words-word phrases, stop words removed first (as toponymy's
    keyphrase vocabulary is built)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(ngram_range=(1, max_words), stop_words=sorted(STOP_WORDS),
                           token_pattern=KEYPHRASE_TOKEN_PATTERN).build_analyzer()


class PhraseStats:
    """Document frequency of every phrase in a corpus: the "against the whole corpus" half of c-TF-IDF."""

    def __init__(self, texts: Sequence[str], max_words: int = 3):
        analyze = phrase_analyzer(max_words)
        self.df: Counter = Counter()
        for text in texts:
            self.df.update(set(analyze(text)))
        self.n_docs = max(len(texts), 1)

    def idf(self, phrase: str) -> float:
        """log(1 + N / df): rare phrases weigh more; a phrase unseen in the corpus counts as seen once."""
        import math

        return math.log(1.0 + self.n_docs / max(self.df.get(phrase, 0), 1))
