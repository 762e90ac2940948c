"""Privacy scan of everything about to be published: no tombstoned text, no account email, no secret.

The scan looks at decoded values, not raw bytes (parquet pages are Snappy-compressed): every
string cell of every parquet column (lists flattened), the schema metadata, and every key and
string of every JSON document. Needles:

* the original ``input.parquet`` text of each tombstoned row (``deleted=true`` in the scope),
  minus texts that a kept row legitimately shares (retweet duplicates); plus deleted rows must
  have empty ``text`` in any table that has both columns;
* the account email(s) of the archive (``meta.json`` ``account.email`` if present, else read
  from the original archive's ``account.js`` when ``archive_source`` still points to it);
* the value of every environment variable named ``*_KEY``, ``*_SECRET``, ``*_TOKEN`` or
  ``*_PASSWORD`` that is at least 8 characters long.

Findings name the object, the column/JSON path and the row, never the secret or the deleted text.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np

from pipeline.core.tombstones import deleted_tweet_ids, load_tombstones
from pipeline.core.workspace import Dataset
from pipeline.serving.contracts import PERSONAL_COLUMNS, blank_value
from pipeline.serving.webmap import ELLIPSIS, embedded_texts

SECRET_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN", "_PASSWORD")
MIN_SECRET_LEN = 8
MIN_EXACT_TEXT_LEN = 8       # shorter deleted texts ("lol") are not identifying on their own
MIN_SUBSTRING_TEXT_LEN = 24  # long enough that a substring hit is not a coincidence
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")
_EMAIL_FIELD = re.compile(r'"email"\s*:\s*"([^"@\s]+@[^"\s]+)"')
_REGEX_BATCH = 200  # needles per RE2 alternation (keeps each compiled program small)


@dataclass(frozen=True)
class Needle:
    value: str
    kind: str    # tombstoned_text | email | secret
    label: str   # safe to print: where the needle came from, never its value
    substring: bool = True
    ignore_case: bool = False


@dataclass
class PrivacyFinding:
    key: str
    kind: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.key} [{self.where}]: {self.detail}"


@dataclass
class Needles:
    items: list[Needle] = field(default_factory=list)
    # column -> blank value a deleted=true row must hold there (checked in every parquet)
    personal_blanks: dict[str, str] = field(default_factory=lambda: {"text": ""})
    # tweet ids deleted anywhere in the dataset: a row with one of them must be blank in every table
    deleted_ids: frozenset = frozenset()

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- needle sources

def secret_values(env: Optional[Mapping[str, str]] = None) -> list[Needle]:
    env = os.environ if env is None else env
    needles = []
    for name, value in env.items():
        if name.upper().endswith(SECRET_SUFFIXES) and value and len(value.strip()) >= MIN_SECRET_LEN:
            needles.append(Needle(value.strip(), "secret", f"value of ${name}"))
    return needles


def _emails_in_text(text: str) -> list[str]:
    return [m.group(1) for m in _EMAIL_FIELD.finditer(text)]


def archive_emails(dataset: Dataset, archives: Iterable[os.PathLike | str] = (),
                   env: Optional[Mapping[str, str]] = None) -> list[str]:
    """The account email(s) of the archive, from every place that may know them: meta.json
    ``account.email`` (ingest normally never stores it), an archive path recorded in meta
    (``archive_path``/``source_path``), the original archive(s) passed in, and
    ``$TWEETSCOPE_ACCOUNT_EMAILS`` (comma-separated)."""
    env = os.environ if env is None else env
    emails: list[str] = [e for e in (env.get("TWEETSCOPE_ACCOUNT_EMAILS") or "").split(",") if e.strip()]
    for archive in archives:
        emails += _emails_from_archive(Path(archive))
    try:
        meta = dataset.meta()
    except Exception:  # noqa: BLE001 - a dataset without meta has no known email
        return sorted({e.strip() for e in emails if "@" in e})
    account = meta.get("account")
    if isinstance(account, dict):
        for key in ("email", "emails"):
            value = account.get(key)
            emails += [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
    for field_name in ("archive_path", "source_path", "archive_source"):
        source = meta.get(field_name)
        if isinstance(source, dict):
            source = source.get("path")
        if isinstance(source, str) and ("/" in source or "\\" in source):
            emails += _emails_from_archive(Path(source))
    return sorted({e.strip() for e in emails if e and "@" in e})


def _emails_from_archive(path: Path) -> list[str]:
    """Read only the small account file of an X archive (zip or folder) or a Community Archive JSON."""
    try:
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.filename.endswith("account.js") and info.file_size < 1_000_000:
                        return _emails_in_text(zf.read(info).decode("utf-8", "replace"))
        elif path.is_dir():
            for candidate in (path / "data" / "account.js", path / "account.js"):
                if candidate.is_file() and candidate.stat().st_size < 1_000_000:
                    return _emails_in_text(candidate.read_text("utf-8", "replace"))
        elif path.is_file() and path.suffix == ".json" and path.stat().st_size < 2_000_000_000:
            with open(path, "rb") as fh:
                head = fh.read(4_000_000).decode("utf-8", "replace")
            return _emails_in_text(head)
    except (OSError, zipfile.BadZipFile, ValueError):
        return []
    return []


def _personal_blanks() -> dict[str, str]:
    """Column -> the value a tombstoned row must hold there (from the serving contract)."""
    try:
        return {c: blank_value(c) for c in PERSONAL_COLUMNS} or {"text": ""}
    except Exception:  # noqa: BLE001 - a contract without a personal column spec must not stop the scan
        return {"text": ""}


def _tombstoned_indices(dataset: Dataset) -> set[int]:
    return load_tombstones(dataset)


def tombstone_needles(dataset: Dataset, scope_input_path: Optional[Path] = None) -> list[Needle]:
    """Original texts of the dataset's tombstoned rows (tombstones.json, plus rows deleted in the given
    scope), minus texts that a kept row of ``input.parquet`` also has (a duplicated retweet is not private).

    Dataset-wide on purpose: a deletion covers every published scope, not only the one being published.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tombstoned = set(_tombstoned_indices(dataset))
    scope_kept_text = None  # a kept row of the scope that shares a deleted text (a retweet) keeps it public
    if scope_input_path is not None and Path(scope_input_path).is_file():
        schema_names = pq.read_schema(scope_input_path).names
        if "deleted" in schema_names:
            cols = [c for c in ("ls_index", "deleted", "text") if c in schema_names]
            scope = pq.read_table(scope_input_path, columns=cols)
            deleted = pc.fill_null(scope["deleted"], False).to_numpy(zero_copy_only=False).astype(bool)
            ls_index = scope["ls_index"].to_numpy() if "ls_index" in cols else np.arange(scope.num_rows)
            tombstoned |= set(ls_index[deleted].tolist())
            if "text" in cols:
                keep = ~np.isin(ls_index, sorted(tombstoned))
                scope_kept_text = pc.utf8_trim_whitespace(pc.filter(scope["text"], pa.array(keep)))
    if not tombstoned or not dataset.input_path.is_file():
        return []
    source = pq.read_table(dataset.input_path, columns=["id", "text"])
    rows = sorted(int(i) for i in tombstoned if 0 <= int(i) < source.num_rows)
    originals = source.take(pa.array(rows, pa.int64()))
    texts = [t.strip() if isinstance(t, str) else None for t in originals["text"].to_pylist()]
    ids = originals["id"].to_pylist()
    candidates = sorted({t for t in texts if t and len(t) >= MIN_EXACT_TEXT_LEN})
    shared: set[str] = set()
    if candidates:
        keep = np.ones(source.num_rows, dtype=bool)
        keep[rows] = False
        for kept_text in (pc.utf8_trim_whitespace(pc.filter(source["text"], pa.array(keep))), scope_kept_text):
            if kept_text is not None:
                hits = pc.filter(kept_text, pc.fill_null(pc.is_in(kept_text, value_set=pa.array(candidates)), False))
                shared |= set(hits.to_pylist())
    needles, seen = [], set()
    for i, text, tweet_id in zip(rows, texts, ids):
        if not text or len(text) < MIN_EXACT_TEXT_LEN or text in shared or text in seen:
            continue
        seen.add(text)
        needles.append(Needle(text, "tombstoned_text", f"text of tombstoned tweet id={tweet_id} (ls_index {int(i)})",
                              substring=len(text) >= MIN_SUBSTRING_TEXT_LEN))
    return needles


def build_needles(dataset: Dataset, scope_input_path: Optional[Path],
                  env: Optional[Mapping[str, str]] = None,
                  extra_emails: Iterable[str] = (), archives: Iterable[os.PathLike | str] = ()) -> Needles:
    items = secret_values(env)
    for email in sorted(set(archive_emails(dataset, archives, env)) | set(extra_emails)):
        items.append(Needle(email, "email", "the archive account's email address", ignore_case=True))
    items += tombstone_needles(dataset, scope_input_path)
    return Needles(items, personal_blanks=_personal_blanks(), deleted_ids=frozenset(deleted_tweet_ids(dataset)))


# --------------------------------------------------------------------------- matching

def _re2_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in text)


class _Matcher:
    """Vectorised needle search over Arrow string arrays (RE2 alternations + exact set lookups)."""

    def __init__(self, needles: Needles):
        import pyarrow as pa

        self.needles = needles.items
        self.exact = pa.array(sorted({n.value for n in self.needles if not n.substring}), pa.string())
        self.patterns = []
        for ignore_case in (False, True):
            subs = [n.value for n in self.needles if n.substring and n.ignore_case == ignore_case]
            for start in range(0, len(subs), _REGEX_BATCH):
                body = "|".join(_re2_escape(v) for v in subs[start:start + _REGEX_BATCH])
                self.patterns.append(("(?i)" if ignore_case else "") + f"(?:{body})")

    def hit_mask(self, arr) -> np.ndarray:
        """Boolean mask of cells that contain (or equal) any needle."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(arr) == 0:
            return np.zeros(0, dtype=bool)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        mask = np.zeros(len(arr), dtype=bool)
        if len(self.exact):
            mask |= pc.fill_null(pc.is_in(pc.utf8_trim_whitespace(arr), value_set=self.exact), False).to_numpy(zero_copy_only=False)
        for pattern in self.patterns:
            mask |= pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)
        return mask

    def which(self, cell: str) -> list[Needle]:
        found = []
        low = cell.lower()
        for n in self.needles:
            if n.substring:
                if (n.value.lower() in low) if n.ignore_case else (n.value in cell):
                    found.append(n)
            elif cell.strip() == n.value:
                found.append(n)
        return found


def _has_strings(t) -> bool:
    import pyarrow as pa

    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _string_leaves(arr):
    """(string values, flattened?) of a column — nested lists flattened; (None, _) if not text."""
    import pyarrow as pa

    t, flattened = arr.type, False
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        arr = arr.flatten()
        t, flattened = arr.type, True
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr, flattened
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return arr.cast(pa.string()), flattened
    return None, flattened


def scan_parquet(key: str, path: Path, matcher: _Matcher, needles: Needles,
                 max_findings: int = 20) -> list[PrivacyFinding]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    findings: list[PrivacyFinding] = []
    pf = pq.ParquetFile(path)
    schema_text = [json.dumps(pf.schema_arrow.names)]
    meta = pf.schema_arrow.metadata or {}
    schema_text += [k.decode("utf-8", "replace") + "=" + v.decode("utf-8", "replace") for k, v in meta.items()]
    findings += scan_strings(key, ["schema"] * len(schema_text), schema_text, matcher)
    names = pf.schema_arrow.names
    blanks = {c: v for c, v in needles.personal_blanks.items() if c in names} if "deleted" in names else {}
    by_id = ({c: v for c, v in needles.personal_blanks.items() if c in names}
             if needles.deleted_ids and "id" in names else {})
    # Only text-bearing columns (strings, lists of strings) can leak; skip reading the rest.
    wanted = [f.name for f in pf.schema_arrow if _has_strings(f.type)]
    wanted += [c for c in (["deleted"] if blanks else []) + list(blanks) if c not in wanted]
    wanted += [c for c in (["id"] if by_id else []) + list(by_id) if c not in wanted]
    deleted_ids = pa.array(sorted(needles.deleted_ids), pa.string()) if by_id else None
    if not wanted:
        return findings
    row0 = 0
    for batch in pf.iter_batches(batch_size=65_536, columns=wanted):
        for name in batch.schema.names:
            leaves, flattened = _string_leaves(batch.column(name))
            if leaves is None or len(leaves) == 0:
                continue
            mask = matcher.hit_mask(leaves)
            for j in np.flatnonzero(mask)[:max_findings]:
                cell = leaves[int(j)].as_py()
                for n in matcher.which(cell or ""):
                    where = (f"column {name}, list value {int(j)} of batch at row {row0}" if flattened
                             else f"column {name}, row {row0 + int(j)}")
                    findings.append(PrivacyFinding(key, n.kind, where, f"contains the {n.label}"))
        if blanks:
            deleted = pc.fill_null(batch.column("deleted").cast(pa.bool_()), False)
            for column, blank in blanks.items():
                values = pc.fill_null(batch.column(column).cast(pa.string()), blank)
                not_blank = pc.and_(pc.not_equal(values, blank), pc.not_equal(values, ""))
                bad = np.flatnonzero(pc.and_(deleted, not_blank).to_numpy(zero_copy_only=False))
                for j in bad[:max_findings]:
                    findings.append(PrivacyFinding(
                        key, "deleted_row_text", f"column {column}, row {row0 + int(j)}",
                        f"row is deleted=true but its {column} is not blank"))
        if by_id:
            # A deleted tweet must be blank wherever its id appears, whatever the row's deleted flag says.
            hit = pc.fill_null(pc.is_in(batch.column("id").cast(pa.string()), value_set=deleted_ids), False)
            for column, blank in by_id.items():
                values = pc.fill_null(batch.column(column).cast(pa.string()), blank)
                not_blank = pc.and_(pc.not_equal(values, blank), pc.not_equal(values, ""))
                for j in np.flatnonzero(pc.and_(hit, not_blank).to_numpy(zero_copy_only=False))[:max_findings]:
                    findings.append(PrivacyFinding(
                        key, "deleted_row_text", f"column {column}, row {row0 + int(j)}",
                        f"row of a deleted tweet (by id) has a non-blank {column}"))
        row0 += batch.num_rows
        if len(findings) >= max_findings:
            break
    return findings[:max_findings]


def _walk_json(obj, path: str, out_paths: list[str], out_values: list[str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out_paths.append(f"{path}.{k} (key)")
            out_values.append(str(k))
            _walk_json(v, f"{path}.{k}", out_paths, out_values)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk_json(v, f"{path}[{i}]", out_paths, out_values)
    elif isinstance(obj, str):
        out_paths.append(path)
        out_values.append(obj)


def scan_strings(key: str, paths: list[str], values: list[str], matcher: _Matcher,
                 max_findings: int = 20) -> list[PrivacyFinding]:
    import pyarrow as pa

    if not values or not matcher.needles:
        return []
    mask = matcher.hit_mask(pa.array(values, pa.string()))
    findings = []
    for j in np.flatnonzero(mask)[:max_findings]:
        for n in matcher.which(values[int(j)]):
            findings.append(PrivacyFinding(key, n.kind, paths[int(j)], f"contains the {n.label}"))
    return findings


def scan_json_bytes(key: str, data: bytes, matcher: _Matcher) -> list[PrivacyFinding]:
    try:
        doc = json.loads(data)
    except ValueError:
        # Not valid JSON: scan the raw text as one string so nothing slips through.
        return scan_strings(key, ["raw"], [data.decode("utf-8", "replace")], matcher)
    paths: list[str] = []
    values: list[str] = []
    _walk_json(doc, "$", paths, values)
    return scan_strings(key, paths, values, matcher)


def scan_html_bytes(key: str, data: bytes, matcher: _Matcher, needles: Needles) -> list[PrivacyFinding]:
    """The shareable map page: its markup and its decoded inline payloads (hover text, labels).

    Hover text is cut at a fixed length, so a cut deleted text shows up as a prefix of its needle.
    """
    pairs = embedded_texts(data)
    findings = scan_strings(key, [w for w, _ in pairs], [v for _, v in pairs], matcher)
    cut = {v[:-len(ELLIPSIS)].strip(): w for w, v in pairs
           if v.endswith(ELLIPSIS) and len(v) > MIN_SUBSTRING_TEXT_LEN}
    lengths = {len(p) for p in cut}
    for n in needles.items:
        if n.kind != "tombstoned_text":
            continue
        for length in lengths:
            where = cut.get(n.value[:length].strip())
            if where is not None and len(n.value) > length:
                findings.append(PrivacyFinding(key, n.kind, where, f"contains the start of the {n.label}"))
                break
    return findings


def scan_bytes(key: str, data: bytes, needles: Needles) -> list[PrivacyFinding]:
    """Scan an in-memory JSON document (e.g. the manifest before it is written)."""
    return scan_json_bytes(key, data, _Matcher(needles))


def scan_files(files: Iterable[tuple[str, Path]], needles: Needles) -> list[PrivacyFinding]:
    """Scan (key, local path) pairs; returns every finding (empty = clean)."""
    matcher = _Matcher(needles)
    findings: list[PrivacyFinding] = []
    for key, path in files:
        path = Path(path)
        if path.suffix == ".parquet":
            findings += scan_parquet(key, path, matcher, needles)
        elif path.suffix == ".html":
            findings += scan_html_bytes(key, path.read_bytes(), matcher, needles)
        else:
            findings += scan_json_bytes(key, path.read_bytes(), matcher)
    return findings
