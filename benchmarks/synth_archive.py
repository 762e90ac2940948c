"""Generate a realistic synthetic X archive (or Community Archive JSON) of any size.

Every benchmark reuses it. ~40 latent topics, each with its own vocabulary and phrases, so
embeddings really cluster: a tweet mixes 1-3 topics around a dominant one, lengths vary from
~20 to 280 characters, with hashtags, mentions, t.co links (``entities.urls``), media, replies
(to the owner's own tweets, forming threads up to depth 10, and to other users), quotes
(links to ``/status/<id>``, some of them the owner's own tweets), retweets (``RT @user: …``)
and a few long note tweets. Replies look like real ones: they start with the handles they
answer (``@a @b …``, 1-3 of them), go to accounts by a Zipf law (a few hubs get a large
share), lean to the replied account's own topic, are sometimes one-word reactions and come
in conversations of several turns; links repeat (a few pages are shared again and again).
Tweets are split into ``tweets.js``, ``tweets-part1.js`` … as X does for large archives,
next to ``manifest.js``, ``account.js``, ``profile.js``, a small ``like.js``,
``deleted-tweets.js`` and ``note-tweet.js``. Deterministic for a seed.

    python benchmarks/synth_archive.py OUT.zip --tweets 212000 [--seed 0] [--format zip|community]
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import json
import random
import re
import string
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

TOPICS = {
    "cooking": "recipe garlic onions simmer sourdough oven roast spices butter skillet broth pasta knead dough basil",
    "running": "marathon tempo run mileage pace splits trail shoes hills recovery long run intervals stride race day",
    "python": "python pandas numpy dataframe pip virtualenv typing asyncio decorator generator pytest refactor module",
    "rust": "rust borrow checker lifetimes cargo crate traits ownership async tokio compile errors unsafe macro",
    "gardening": "tomatoes seedlings compost mulch raised beds pruning soil watering blossoms weeds harvest greenhouse",
    "astronomy": "telescope nebula galaxy jupiter moons saturn rings meteor shower dark skies eclipse orbit star cluster",
    "coffee": "espresso grinder pour over beans roast crema latte burr grinder extraction aeropress barista single origin",
    "chess": "opening gambit endgame checkmate bishop knight rook sacrifice blitz rating tactics pawn structure",
    "jazz": "saxophone improvisation bebop chord changes coltrane trio bassline swing standard solo vinyl record",
    "climbing": "bouldering crimps belay rope chalk overhang route grade slab crux harness quickdraws",
    "startups": "founders seed round runway product market fit pitch deck investors churn growth hiring burn rate",
    "machine_learning": "neural network training loss gradient descent transformer embeddings dataset overfitting fine tune benchmark",
    "politics": "election senate policy vote campaign parliament bill debate polling coalition ballot legislation",
    "parenting": "toddler bedtime nap schedule daycare tantrum diapers lullaby school lunch homework playground",
    "photography": "aperture shutter speed lens bokeh golden hour tripod exposure raw files film camera composition",
    "cycling": "bike ride cadence watts climb gravel saddle chain derailleur peloton descent headwind",
    "books": "novel chapter author paperback library reading list fiction memoir bookshelf plot characters",
    "movies": "film director cinema trailer screenplay sequel box office cinematography actor premiere soundtrack",
    "cats": "cat kitten purring whiskers litter box catnip scratching post meow nap in sunbeam tuna treats",
    "dogs": "dog puppy leash walkies fetch tennis ball good boy vet kibble tail wagging dog park",
    "finance": "stocks index fund dividends inflation interest rates bonds portfolio savings mortgage budget",
    "crypto": "bitcoin ethereum wallet blockchain tokens defi mining halving exchange stablecoin ledger",
    "travel": "flight airport passport hostel itinerary train station backpack jet lag layover beach city break",
    "football": "goal striker midfield penalty league match referee offside transfer window derby keeper",
    "basketball": "three pointer dunk playoffs rebound point guard free throw buzzer beater court assist",
    "weather": "rain forecast thunderstorm humidity heatwave snow fog drizzle barometer wind chill sunshine",
    "linux": "kernel terminal bash distro package manager systemd dotfiles compile grep vim tiling window manager",
    "web_dev": "javascript react css flexbox frontend api endpoint browser dom webpack typescript component",
    "databases": "postgres index query planner sql join schema migration transaction replication vacuum",
    "philosophy": "ethics stoicism consciousness free will epistemology kant nietzsche meaning virtue argument",
    "history": "empire medieval revolution archive century dynasty treaty ancient rome manuscripts war",
    "fitness": "squat deadlift bench press reps sets protein gym progressive overload mobility warm up",
    "music_production": "synth daw mixing mastering drum machine sampler reverb compressor beat loop midi",
    "gaming": "console speedrun boss fight controller open world patch notes multiplayer quest save file",
    "architecture": "facade concrete brutalism floor plan courtyard skyscraper timber beams staircase daylight",
    "birds": "birdwatching heron warbler binoculars migration feeder sparrows owl call hawk nesting",
    "mental_health": "therapy anxiety journaling burnout sleep hygiene mindfulness boundaries self care rest",
    "space_flight": "rocket launch booster orbit payload landing capsule astronauts countdown reentry",
    "urbanism": "bike lanes zoning transit density housing walkable streets tram car free city planning",
    "tea": "green tea oolong matcha kettle steep loose leaf teapot sencha jasmine earl grey",
}
TEMPLATES = (
    "{a} {b} and {c}",
    "thinking about {a} again. {b} is underrated",
    "hot take: {a} beats {b} every time",
    "today: {a}, {b}, {c}",
    "anyone else obsessed with {a}? the {b} part gets me",
    "new post on {a} and why {b} matters",
    "I finally understand {a}. it was the {b} all along",
    "{a} is just {b} with extra steps",
    "small win: {a} worked on the first try",
    "ok but what if {a} and {b} together",
    "reading about {a} at 2am instead of sleeping",
    "my {a} setup is finally done. {b} next",
    "unpopular opinion: {a} is overrated, {b} is not",
    "learned something about {a} from a stranger today",
    "{a}? {b}. {c}!",
)
FILLERS = ("honestly", "lol", "again", "this week", "somehow", "for real", "I think", "maybe", "today", "tbh")
OTHER_USERS = [f"{w}_{n}" for w in ("river", "atlas", "nova", "pixel", "maple", "orbit", "sage", "delta",
                                    "ember", "lumen", "quill", "cedar") for n in range(80)]
USER_IDS = {user: str(10**9 + i) for i, user in enumerate(OTHER_USERS)}
DOMAINS = ("example.com", "blog.example.org", "news.example.net", "docs.example.io", "github.com/example")
# Fixed (seed-independent) traits of the other accounts: who the hubs are and what each talks about.
_TRAITS = random.Random(18)
# Replies go to accounts by a Zipf law (weight 1/rank): the top hub gets ~13 % of them, the top ten ~40 %.
HUB_ORDER = _TRAITS.sample(OTHER_USERS, len(OTHER_USERS))
_HUB_CUM = list(itertools.accumulate(1.0 / rank for rank in range(1, len(HUB_ORDER) + 1)))
USER_TOPIC = {user: _TRAITS.randrange(len(TOPICS)) for user in OTHER_USERS}
REPLY_EXTRA_HANDLES = (0,) * 72 + (1,) * 21 + (2,) * 7  # "@a text" / "@a @b text" / "@a @b @c text"
SHORT_REPLIES = ("exactly", "this", "lol", "so true", "source?", "thanks!", "agreed", "ha, yes", "same here",
                 "wow", "good point", "not sure about that", "congrats!", "love this", "yes!", "+1")
# A few pages shared over and over (Zipf again), as people link their own blog or a favourite doc.
POPULAR_URLS = tuple(f"https://{DOMAINS[i % len(DOMAINS)]}/{slug}" for i, slug in enumerate(
    ("about", "newsletter", "talk-2019", "reading-list", "projects", "uses", "now", "faq", "cv", "podcast",
     "slides", "notes", "archive", "contact", "donate", "map", "guide", "changelog", "tools", "links")))
_URL_CUM = list(itertools.accumulate(1.0 / rank for rank in range(1, len(POPULAR_URLS) + 1)))
SOURCES = ('<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
           '<a href="http://twitter.com/download/iphone" rel="nofollow">Twitter for iPhone</a>',
           '<a href="http://twitter.com/download/android" rel="nofollow">Twitter for Android</a>')
LANGS = ("en",) * 17 + ("de", "fr", "und")
SNOWFLAKE_EPOCH_MS = 1288834974657
START = dt.datetime(2012, 1, 1, tzinfo=dt.timezone.utc)
END = dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc)
TWEETS_PER_PART = 40_000
ACCOUNT = {"username": "synthetic_owner", "display_name": "Synthetic Owner", "account_id": "1234567890123456789"}
FAKE_EMAIL = "owner@synthetic.example.invalid"
FIXED_TIME = (2026, 1, 1, 0, 0, 0)


def _pick(r, seq):
    """``random.choice`` without its overhead (the generator's hot path)."""
    return seq[int(r() * len(seq))]


def _words(r, topic: str, k: int) -> str:
    vocab = VOCAB[topic]
    n = len(vocab)
    if k == 1:
        return vocab[int(r() * n)]
    return " ".join([vocab[int(r() * n)] for _ in range(k)])


VOCAB = {name: words.split() for name, words in TOPICS.items()}
TOPIC_NAMES = list(TOPICS)
_TOKEN = re.compile(r"[a-z]+")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _api_time(seconds: int) -> str:
    """X's created_at spelling (``Fri Mar 06 13:02:05 +0000 2026``), faster than strftime."""
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000 {t.tm_year}")


class _Gen:
    """Stateful tweet generator (thread chains, earlier ids for quotes)."""

    def __init__(self, n_tweets: int, seed: int):
        self.rng = random.Random(seed)
        self.n = n_tweets
        span_ms = int((END - START).total_seconds() * 1000)
        self.start_ms = int(START.timestamp() * 1000)
        self.step_ms = max(span_ms // max(n_tweets, 1), 1)
        self.t_ms = self.start_ms
        self.own_ids: list[str] = []
        self.thread_tail: str | None = None
        self.thread_left = 0
        self.thread_topic = 0
        self.seq = 0
        self.notes: list[dict] = []
        self.tco = 0
        self.conv_users: list[str] = []  # handles of the conversation the owner is replying in
        self.conv_topic = 0
        self.conv_left = 0
        self.conv_last = ""

    def tco_url(self) -> str:
        self.tco += 1
        return "https://t.co/" + format(self.rng.getrandbits(56), "x").rjust(14, "0")[:10]

    def next_id(self) -> tuple[str, str]:
        self.t_ms += self.rng.randint(self.step_ms // 4, self.step_ms * 7 // 4)
        self.seq = (self.seq + 1) % 4096
        tid = ((self.t_ms - SNOWFLAKE_EPOCH_MS) << 22) | (self.rng.getrandbits(10) << 12) | self.seq
        return str(tid), _api_time(self.t_ms // 1000)

    def body(self, topic: int) -> str:
        r = self.rng.random
        dominant = TOPIC_NAMES[topic]
        others = [_pick(r, TOPIC_NAMES) for _ in range(_pick(r, (0, 1, 1, 2)))]

        def pick() -> str:
            return dominant if (not others or r() < 0.7) else _pick(r, others)

        target = _pick(r, (20, 40, 60, 90, 120, 160, 200, 240, 275))
        parts = []
        length = 0
        while length < target:
            part = _pick(r, TEMPLATES).format(a=_words(r, pick(), 1 + int(r() * 2)),
                                              b=_words(r, pick(), 1 + int(r() * 3)),
                                              c=_words(r, pick(), 1))
            parts.append(part)
            length += len(part) + 1
            if r() < 0.3:
                filler = _pick(r, FILLERS)
                parts.append(filler)
                length += len(filler) + 1
        text = " ".join(parts)
        if r() < 0.15:
            text += " #" + _pick(r, VOCAB[dominant]).replace("_", "")
        if r() < 0.05:
            text = text.replace(" and ", " &amp; ", 1)
        return text[:280].rstrip()

    def tweet(self) -> dict:
        rng = self.rng
        tid, created = self.next_id()
        entities: dict = {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}
        rec: dict = {
            "edit_info": {"initial": {"editTweetIds": [tid], "editableUntil": "2026-01-01T00:00:00.000Z",
                                      "editsRemaining": "5", "isEditEligible": False}},
            "retweeted": False, "source": rng.choice(SOURCES), "entities": entities,
            "favorite_count": str(int(rng.paretovariate(1.2)) - 1), "id_str": tid, "truncated": False,
            "retweet_count": str(int(rng.paretovariate(1.8)) - 1), "id": tid, "created_at": created,
            "favorited": False, "lang": rng.choice(LANGS),
        }
        roll = rng.random()
        if self.thread_left > 0 and roll < 0.6:
            # continue a self-thread
            topic = self.thread_topic
            rec.update(self._reply_fields(self.thread_tail, ACCOUNT["username"], ACCOUNT["account_id"]))
            self.thread_left -= 1
            text = self.body(topic)
            self.thread_tail = tid
        elif roll < 0.10:  # retweet
            user = rng.choice(OTHER_USERS)
            inner = self.body(rng.randrange(len(TOPIC_NAMES)))
            text = f"RT @{user}: {inner}"
            if len(text) > 140:
                text = text[:139] + "…"
            entities["user_mentions"].append(self._mention(user, 3))
            self.thread_left = 0
        elif roll < 0.45:  # reply to other users
            text = self._reply(tid, rec, entities)
        else:
            topic = rng.randrange(len(TOPIC_NAMES))
            text = self.body(topic)
            if rng.random() < 0.12:  # start a thread
                self.thread_left = rng.randint(1, 9)
                self.thread_topic = topic
                self.thread_tail = tid
        if rng.random() < 0.06:  # quote: link to a status, often one of ours
            if self.own_ids and rng.random() < 0.5:
                recent = min(len(self.own_ids), 5000)
                qid, quser = self.own_ids[-1 - int(rng.random() * recent)], ACCOUNT["username"]
            else:
                qid, quser = str(int(tid) - rng.randint(10**9, 10**16)), rng.choice(OTHER_USERS)
            text = self._add_url(text, entities, f"https://{rng.choice(('twitter.com', 'x.com'))}/{quser}/status/{qid}",
                                 f"x.com/{quser}/stat…")
        elif rng.random() < 0.10:
            if rng.random() < 0.6:
                url = POPULAR_URLS[bisect.bisect(_URL_CUM, rng.random() * _URL_CUM[-1])]
            else:
                path = "".join(rng.choice(string.ascii_lowercase) for _ in range(8))
                url = f"https://{rng.choice(DOMAINS)}/{path}"
            text = self._add_url(text, entities, url, url.removeprefix("https://"))
        if rng.random() < 0.05:
            self._add_media(tid, text, rec, entities)
            text = rec.pop("_text")
        if not text.startswith("RT @") and rng.random() < 0.003:
            text = self._note(tid, created, text, entities)
        rec["full_text"] = text
        rec["display_text_range"] = ["0", str(len(text))]
        self.own_ids.append(tid)
        return {"tweet": rec}

    def _reply_target(self) -> str:
        return HUB_ORDER[bisect.bisect(_HUB_CUM, self.rng.random() * _HUB_CUM[-1])]

    def _reply(self, tid: str, rec: dict, entities: dict) -> str:
        """A reply to other accounts, ``@a @b text``; a conversation goes on for a few turns."""
        rng = self.rng
        r = rng.random
        if self.conv_left > 0 and r() < 0.6:
            self.conv_left -= 1
            if r() < 0.25:  # the owner adds to their own last reply, still addressed to the others
                parent, user, user_id = self.conv_last, ACCOUNT["username"], ACCOUNT["account_id"]
            else:  # answers the other side's newer reply
                user = self.conv_users[0]
                parent, user_id = str(int(tid) - rng.randint(10**6, 10**12)), USER_IDS[user]
        else:
            user = self._reply_target()
            handles = [user]
            for _ in range(_pick(r, REPLY_EXTRA_HANDLES)):
                other = self._reply_target()
                if other not in handles:
                    handles.append(other)
            self.conv_users = handles
            # people mostly answer an account about what that account talks about
            self.conv_topic = USER_TOPIC[user] if r() < 0.6 else int(r() * len(TOPIC_NAMES))
            self.conv_left = _pick(r, (0, 0, 1, 2, 3, 5))
            parent, user_id = str(int(tid) - rng.randint(10**9, 10**15)), USER_IDS[user]
        self.conv_last = tid
        rec.update(self._reply_fields(parent, user, user_id))
        prefix = ""
        for handle in self.conv_users:
            entities["user_mentions"].append(self._mention(handle, len(prefix)))
            prefix += f"@{handle} "
        body = _pick(r, SHORT_REPLIES) if r() < 0.15 else self.body(self.conv_topic)
        return (prefix + body)[:280].rstrip()

    def _mention(self, user: str, start: int) -> dict:
        uid = USER_IDS[user]
        return {"name": user.replace("_", " ").title(), "screen_name": user,
                "indices": [str(start), str(start + len(user) + 1)], "id_str": uid, "id": uid}

    def _reply_fields(self, status_id: str, user: str, user_id: str) -> dict:
        return {"in_reply_to_status_id_str": status_id, "in_reply_to_status_id": status_id,
                "in_reply_to_user_id": user_id, "in_reply_to_user_id_str": user_id,
                "in_reply_to_screen_name": user}

    def _add_url(self, text: str, entities: dict, expanded: str, display: str) -> str:
        short = self.tco_url()
        text = text[: 280 - len(short) - 1].rstrip() + " " + short
        entities["urls"].append({"url": short, "expanded_url": expanded, "display_url": display,
                                 "indices": [str(len(text) - len(short)), str(len(text))]})
        return text

    def _add_media(self, tid: str, text: str, rec: dict, entities: dict) -> None:
        short = self.tco_url()
        text = text[: 280 - len(short) - 1].rstrip() + " " + short
        key = "".join(self.rng.choice(string.ascii_letters) for _ in range(15))
        media = {"expanded_url": f"https://x.com/{ACCOUNT['username']}/status/{tid}/photo/1",
                 "indices": [str(len(text) - len(short)), str(len(text))], "url": short,
                 "media_url": f"http://pbs.twimg.com/media/{key}.jpg", "id_str": tid, "id": tid,
                 "media_url_https": f"https://pbs.twimg.com/media/{key}.jpg", "type": "photo",
                 "display_url": f"pic.x.com/{key[:10]}"}
        entities["media"] = [media]
        rec["extended_entities"] = {"media": [media]}
        rec["_text"] = text

    def _note(self, tid: str, created: str, text: str, entities: dict) -> str:
        """Make this a long post: the tweet keeps a truncated text, note-tweet.js the full one."""
        full = text + " " + " ".join(self.body(self.rng.randrange(len(TOPIC_NAMES))) for _ in range(3))
        when = dt.datetime.strptime(created, "%a %b %d %H:%M:%S +0000 %Y").replace(tzinfo=dt.timezone.utc)
        self.notes.append({"noteTweet": {
            "noteTweetId": str(int(tid) + 1), "updatedAt": when.isoformat().replace("+00:00", ".000Z"),
            "lifecycle": {"value": "live", "name": "Live", "originalName": "live", "annotations": {}},
            "createdAt": when.isoformat().replace("+00:00", ".000Z"),
            "core": {"styletags": [], "urls": [], "text": full, "mentions": [], "cashtags": [], "hashtags": []},
        }})
        short = self.tco_url()
        entities["urls"].append({"url": short, "expanded_url": f"https://twitter.com/i/web/status/{tid}",
                                 "display_url": "twitter.com/i/web/status/1…", "indices": ["0", "0"]})
        return full[:270].rstrip() + "… " + short

    def like(self, i: int) -> dict:
        rng = self.rng
        tid = str(((self.start_ms + rng.randrange(10**11) - SNOWFLAKE_EPOCH_MS) << 22) | rng.getrandbits(22))
        if i % 50 == 7:  # X omits the text of some liked tweets
            return {"like": {"tweetId": tid, "expandedUrl": f"https://twitter.com/i/web/status/{tid}"}}
        return {"like": {"tweetId": tid, "fullText": self.body(rng.randrange(len(TOPIC_NAMES))),
                         "expandedUrl": f"https://twitter.com/i/web/status/{tid}"}}


_WORD_TOPICS: dict[str, list[int]] = {}
for _i, _name in enumerate(TOPIC_NAMES):
    for _word in VOCAB[_name]:
        _WORD_TOPICS.setdefault(_word, []).append(_i)


def dominant_topic(text: str) -> int:
    """The topic a generated text was written around (-1 when its words do not say clearly).

    A text mixes up to three topics with 70 % of its words from the dominant one, so the
    topic with the most vocabulary hits (at least two, no tie) is a ground truth that
    clustering benchmarks can score against (about 93 % of tweets get one).
    """
    counts: dict[int, int] = {}
    for word in _TOKEN.findall(text.lower()):
        for topic in _WORD_TOPICS.get(word, ()):
            counts[topic] = counts.get(topic, 0) + 1
    if not counts:
        return -1
    ranked = sorted(counts.values(), reverse=True)
    best = max(counts, key=counts.get)
    return best if ranked[0] >= 2 and (len(ranked) == 1 or ranked[0] > ranked[1]) else -1


def _dumps(obj) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    return json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8")


def _ytd(name: str, part: int, items: list) -> bytes:
    return f"window.YTD.{name}.part{part} = ".encode() + _dumps(items)


def _tweet_parts(gen: _Gen, n_tweets: int) -> Iterator[list]:
    done = 0
    while done < n_tweets:
        size = min(TWEETS_PER_PART, n_tweets - done)
        yield [gen.tweet() for _ in range(size)]
        done += size


def _account_records() -> tuple[list, list]:
    account = [{"account": {"email": FAKE_EMAIL, "createdVia": "web", "username": ACCOUNT["username"],
                            "accountId": ACCOUNT["account_id"], "createdAt": "2011-12-01T10:00:00.000Z",
                            "accountDisplayName": ACCOUNT["display_name"]}}]
    profile = [{"profile": {"description": {"bio": "a synthetic account for benchmarks", "website": "",
                                            "location": "Nowhere"}, "avatarMediaUrl": ""}}]
    return account, profile


def _manifest(parts: list[tuple[str, int]], n_likes: int, n_deleted: int, n_notes: int) -> bytes:
    def entry(files):
        return {"files": [{"fileName": f"data/{f}", "globalName": g, "count": str(c)} for f, g, c in files]}

    data_types = {
        "account": entry([("account.js", "YTD.account.part0", 1)]),
        "profile": entry([("profile.js", "YTD.profile.part0", 1)]),
        "tweets": {"mediaDirectory": "data/tweets_media",
                   "files": entry([(f, f"YTD.tweets.part{i}", c) for i, (f, c) in enumerate(parts)])["files"]},
        "like": entry([("like.js", "YTD.like.part0", n_likes)]),
        "deletedTweets": entry([("deleted-tweets.js", "YTD.deleted_tweets.part0", n_deleted)]),
        "noteTweet": entry([("note-tweet.js", "YTD.note_tweet.part0", n_notes)]),
        # listed but absent, as in real trimmed archives
        "directMessages": entry([("direct-messages.js", "YTD.direct_messages.part0", 0)]),
    }
    config = {"userInfo": {"accountId": ACCOUNT["account_id"], "userName": ACCOUNT["username"],
                           "displayName": ACCOUNT["display_name"]},
              "archiveInfo": {"generationDate": "2026-01-01T00:00:00.000Z", "isPartialArchive": False},
              "dataTypes": data_types}
    return b"window.__THAR_CONFIG = " + _dumps(config)


def generate_archive(path, n_tweets: int = 212_000, seed: int = 0, fmt: str = "zip",
                     n_likes: int | None = None, n_deleted: int | None = None) -> Path:
    """Write a synthetic archive to ``path`` (``fmt`` "zip" = X archive, "community" = Community JSON)."""
    if fmt not in ("zip", "community"):
        raise ValueError(f"fmt must be 'zip' or 'community', not {fmt!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = _Gen(n_tweets, seed)
    n_likes = min(2000, max(10, n_tweets // 50)) if n_likes is None else n_likes
    n_deleted = min(200, max(2, n_tweets // 500)) if n_deleted is None else n_deleted
    account, profile = _account_records()
    tmp = path.with_name(f".{path.name}.partial")
    if fmt == "community":
        tweets = [t for part in _tweet_parts(gen, n_tweets) for t in part]
        doc = {"upload-options": {"keepPrivate": False, "uploadLikes": True},
               "profile": profile, "account": [{"account": {k: v for k, v in account[0]["account"].items()
                                                            if k != "email"}}],
               "tweets": tweets, "follower": [], "following": [], "note-tweet": gen.notes,
               "like": [gen.like(i) for i in range(n_likes)], "community-tweet": []}
        data = orjson.dumps(doc) if orjson is not None else json.dumps(doc, ensure_ascii=False).encode()
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    parts_meta: list[tuple[str, int]] = []
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(f"data/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=1)

        for i, part in enumerate(_tweet_parts(gen, n_tweets)):
            name = "tweets.js" if i == 0 else f"tweets-part{i}.js"
            put(name, _ytd("tweets", i, part))
            parts_meta.append((name, len(part)))
            del part
        deleted = []
        for _ in range(n_deleted):
            record = gen.tweet()
            record["tweet"]["deleted_at"] = "Wed Dec 31 00:00:00 +0000 2025"
            deleted.append(record)
        likes = [gen.like(i) for i in range(n_likes)]
        put("deleted-tweets.js", _ytd("deleted_tweets", 0, deleted))
        put("like.js", _ytd("like", 0, likes))
        put("note-tweet.js", _ytd("note_tweet", 0, gen.notes))
        put("account.js", _ytd("account", 0, account))
        put("profile.js", _ytd("profile", 0, profile))
        put("manifest.js", _manifest(parts_meta, n_likes, n_deleted, len(gen.notes)))
    tmp.replace(path)
    return path


_TWEETS_MEMBER = re.compile(r"^(?:.*/)?data/tweets(?:-part\d+)?\.js$")


def _created_at(record: dict) -> dt.datetime:
    return dt.datetime.strptime(record["tweet"]["created_at"], "%a %b %d %H:%M:%S %z %Y")


def older_download(source, dest, keep) -> tuple[Path, int, int]:
    """A time split: ``dest`` is the X archive ``source`` with only its oldest tweets, as an earlier
    download of the same account would be. ``keep`` is a share (0 < keep < 1) or a count of tweets.

    Returns (dest, tweets kept, tweets in source). Every other member is copied as it is.
    """
    with zipfile.ZipFile(source) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    tweets = []
    for info, data in members:
        if _TWEETS_MEMBER.match(info.filename):
            text = data.decode("utf-8")
            tweets += json.loads(text[text.index("=") + 1:])
    tweets.sort(key=lambda r: (_created_at(r), int(r["tweet"]["id_str"])))
    count = int(len(tweets) * keep) if isinstance(keep, float) else int(keep)
    kept = tweets[:count]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        written = False
        for info, data in members:
            if _TWEETS_MEMBER.match(info.filename):
                if not written:  # every kept tweet in the first tweets file
                    out.writestr(info, b"window.YTD.tweets.part0 = " + json.dumps(kept).encode("utf-8"))
                    written = True
                continue
            out.writestr(info, data)
    return Path(dest), len(kept), len(tweets)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output .zip (X archive) or .json (Community Archive)")
    parser.add_argument("--tweets", type=int, default=212_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("zip", "community"), default=None,
                        help="default: from the file extension")
    args = parser.parse_args(argv)
    fmt = args.format or ("community" if args.out.suffix == ".json" else "zip")
    t0 = time.perf_counter()
    generate_archive(args.out, args.tweets, args.seed, fmt)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {args.tweets:,} tweets, {fmt}) "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
