"""Dataset folders, artifact ids, sidecar JSON, lineage, atomic writes and stage status.

Everything that touches the data directory goes through here, so that stages ask
for ``embedding-003`` and never build paths themselves (DESIGN §2–3).

Layout (spec §1–9)::

    <data_dir>/<dataset>/meta.json, input.parquet, tombstones.json
    embeddings/embedding-NNN.h5 + .json      umaps/umap-NNN.parquet + .json
    clusters/cluster-NNN.parquet + .json     clusters/toponymy-NNN.parquet + .json
    scopes/scopes-NNN.json/.parquet/-input.parquet
    links/edges.parquet, node_link_stats.parquet, meta.json
    lancedb/ (+ exports.json)                publishes/publish-NNN.json

An artifact exists once its sidecar ``<id>.json`` exists: data files are renamed into
place first and the sidecar last, so a crash leaves at most invisible temp files. Every
multi-file write goes through :class:`FileSet` (:func:`atomic_files`), single files through
:func:`atomic_path` and the ``atomic_write_*`` helpers.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from pipeline.core.errors import WorkspaceError

DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ID_RE = re.compile(r"^(?P<kind>[a-z]+)-(?P<num>\d{3,})$")
#: the placeholder labels the cluster stage writes beside ``cluster-NNN`` are ``cluster-NNN`` + this
#: (the one spelling; ``pipeline.stages.lineage`` re-exports it with ``default_labels_id``)
DEFAULT_LABELS_SUFFIX = "-labels-default"
#: a label artifact: toponymy labels, or the placeholder labels the cluster stage writes
LABELS_ID_RE = re.compile(rf"^(toponymy-\d{{3,}}|cluster-\d{{3,}}{re.escape(DEFAULT_LABELS_SUFFIX)})$")
#: the curator's deleted rows (local only, never published)
TOMBSTONES_FILE = "tombstones.json"

#: artifact kind -> sub-folder of the dataset
KIND_DIRS = {
    "embedding": "embeddings",
    "umap": "umaps",
    "cluster": "clusters",
    "toponymy": "clusters",
    "scopes": "scopes",
    "publish": "publishes",
}

#: artifact kind -> (what the curator calls it, the command that makes it)
KIND_MAKERS = {
    "embedding": ("embeddings", "embed"),
    "umap": ("UMAP", "umap"),
    "cluster": ("clusters", "cluster"),
    "toponymy": ("labels", "label"),
    "scopes": ("scope", "scope"),
    "publish": ("publish", "publish"),
}

TEMP_PREFIX = ".tmp-"
TRACKED_LIBRARIES = (
    "numpy", "pandas", "pyarrow", "umap-learn", "hdbscan", "scikit-learn", "toponymy",
    "lancedb", "onnxruntime", "voyageai", "tweetscope-studio",
)


# --------------------------------------------------------------------------- atomic writes

def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        value = float(obj)
        return None if math.isnan(value) else value
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def dumps_json(obj: Any, indent: Optional[int] = 2) -> str:
    return json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False, allow_nan=False)


def temp_path_for(path: Path) -> Path:
    """A unique temp name in the same folder as ``path`` (so rename is atomic)."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of our temp names (a write in progress or left by a crash)."""
    return name.startswith(TEMP_PREFIX)


@contextlib.contextmanager
def atomic_path(path: os.PathLike | str) -> Iterator[Path]:
    """Yield a temp path; on success rename it to ``path``, on any error delete it."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise WorkspaceError(f"nothing was written to {final}")
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: os.PathLike | str, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        _write_synced(tmp, data)
    return Path(path)


def atomic_write_text(path: os.PathLike | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: os.PathLike | str, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj) + "\n")


def write_parquet(table: Any, path: os.PathLike | str, **kwargs: Any) -> None:
    """Write a pandas DataFrame or Arrow table as Snappy parquet with statistics (no atomicity)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    kwargs.setdefault("compression", "snappy")
    kwargs.setdefault("write_statistics", True)
    pq.write_table(table, str(path), **kwargs)


def atomic_write_parquet(table: Any, path: os.PathLike | str, **kwargs: Any) -> Path:
    with atomic_path(path) as tmp:
        write_parquet(table, tmp, **kwargs)
    return Path(path)


class FileSet:
    """Several files that appear together: the one multi-file commit routine.

    :meth:`path` hands out a temp path in the final file's folder (so the rename is atomic);
    :meth:`commit` checks every temp was written, then renames them in *in the order they were
    asked for* — so the file that announces the others (a sidecar, a ``meta.json``) goes last;
    :meth:`abort` removes the temps. Use it through :func:`atomic_files`.
    """

    def __init__(self, what: str = ""):
        self.what = what  # prefix of error messages, e.g. the artifact id
        self._files: list[tuple[Path, Path]] = []  # (temp, final)

    def path(self, final: os.PathLike | str) -> Path:
        """A temp path to write ``final`` to; it is renamed into place on commit."""
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(final)
        self._files.append((tmp, final))
        return tmp

    def write_bytes(self, final: os.PathLike | str, data: bytes) -> Path:
        _write_synced(self.path(final), data)
        return Path(final)

    def write_text(self, final: os.PathLike | str, text: str) -> Path:
        return self.write_bytes(final, text.encode("utf-8"))

    def write_json(self, final: os.PathLike | str, obj: Any) -> Path:
        """JSON exactly as :func:`atomic_write_json` writes it."""
        return self.write_text(final, dumps_json(obj) + "\n")

    def write_parquet(self, final: os.PathLike | str, table: Any, **kwargs: Any) -> Path:
        write_parquet(table, self.path(final), **kwargs)
        return Path(final)

    def commit(self) -> None:
        prefix = f"{self.what}: " if self.what else ""
        for tmp, final in self._files:
            if not tmp.exists():
                raise WorkspaceError(f"{prefix}{final.name} was never written")
        for tmp, final in self._files:
            os.replace(tmp, final)

    def abort(self) -> None:
        for tmp, _ in self._files:
            _remove(tmp)


@contextlib.contextmanager
def atomic_files(what: str = "") -> Iterator[FileSet]:
    """A :class:`FileSet` committed when the block succeeds; on any error no temp file is left.

    Usage::

        with atomic_files() as files:
            files.write_parquet(folder / "data.parquet", table)
            files.write_json(folder / "meta.json", meta)  # renamed in last
    """
    files = FileSet(what)
    try:
        yield files
        files.commit()
    except BaseException:
        files.abort()
        raise


def read_json(path: os.PathLike | str) -> Any:
    with open(path, "r", encoding="utf-8") as fh:
        return json.load(fh)


# --------------------------------------------------------------------------- metadata helpers

def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def parse_id(artifact_id: str) -> tuple[str, int]:
    match = ID_RE.match(artifact_id or "")
    if not match:
        raise WorkspaceError(f"'{artifact_id}' is not an artifact id of the form <kind>-NNN")
    return match["kind"], int(match["num"])


def validate_dataset_name(name: str) -> str:
    if not isinstance(name, str) or not DATASET_NAME_RE.match(name):
        raise WorkspaceError(
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


# --------------------------------------------------------------------------- workspace

class Workspace:
    """The data directory: a folder of dataset folders."""

    def __init__(self, data_dir: os.PathLike | str):
        self.data_dir = Path(data_dir).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Workspace({str(self.data_dir)!r})"

    def dataset_names(self) -> list[str]:
        if not self.data_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.data_dir.iterdir()
            if p.is_dir() and DATASET_NAME_RE.match(p.name) and (p / "meta.json").is_file()
        )

    def datasets(self) -> list["Dataset"]:
        return [Dataset(self.data_dir / name) for name in self.dataset_names()]

    def has_dataset(self, name: str) -> bool:
        return (self.data_dir / validate_dataset_name(name) / "meta.json").is_file()

    def dataset(self, name: str) -> "Dataset":
        validate_dataset_name(name)
        if not self.has_dataset(name):
            known = ", ".join(self.dataset_names()) or "none"
            raise WorkspaceError(
                f"no dataset '{name}' in {self.data_dir} (datasets: {known}); "
                "run `tweetscope ingest` first"
            )
        return Dataset(self.data_dir / name)

    @contextlib.contextmanager
    def creating_dataset(self, name: str, overwrite: bool = False) -> Iterator["Dataset"]:
        """Build a new dataset in a hidden temp folder; it appears under ``name`` only on success.

        On any error the temp folder is removed, so a failed ingest leaves no dataset behind.
        With ``overwrite`` an existing dataset of that name is replaced (its old folder is
        removed only after the new one is complete).
        """
        validate_dataset_name(name)
        final = self.data_dir / name
        if final.exists() and not overwrite:
            raise WorkspaceError(
                f"dataset '{name}' already exists in {self.data_dir}; choose another name or overwrite it"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{name}-", dir=self.data_dir))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
        try:
            yield Dataset(tmp, name=name)
            if final.exists():
                old = final.with_name(f"{TEMP_PREFIX}old-{uuid.uuid4().hex[:8]}-{name}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def cleanup_temps(self) -> int:
        """Remove temp folders left by a crashed process; returns how many were removed."""
        if not self.data_dir.is_dir():
            return 0
        removed = 0
        for p in self.data_dir.iterdir():
            if is_temp_name(p.name):
                _remove(p)
                removed += 1
        for ds in self.datasets():
            removed += ds.cleanup_temps()
        return removed


class Dataset:
    """One dataset folder and its artifacts."""

    def __init__(self, path: os.PathLike | str, name: Optional[str] = None):
        self.path = Path(path)
        self.name = name or self.path.name

    def __repr__(self) -> str:
        return f"Dataset({self.name!r})"

    # ---- fixed files
    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    @property
    def input_path(self) -> Path:
        return self.path / "input.parquet"

    @property
    def links_dir(self) -> Path:
        return self.path / "links"

    @property
    def lancedb_dir(self) -> Path:
        return self.path / "lancedb"

    @property
    def links_edges_path(self) -> Path:
        return self.links_dir / "edges.parquet"

    @property
    def links_node_stats_path(self) -> Path:
        return self.links_dir / "node_link_stats.parquet"

    @property
    def links_meta_path(self) -> Path:
        """``links/meta.json``: written last, so the links exist once it does."""
        return self.links_dir / "meta.json"

    @property
    def links_paths(self) -> tuple[Path, Path, Path]:
        """The three links files in write order: edges, node stats, then the meta.json announcing them."""
        return self.links_edges_path, self.links_node_stats_path, self.links_meta_path

    @property
    def lance_exports_path(self) -> Path:
        """``lancedb/exports.json``: the local record of LanceDB exports."""
        return self.lancedb_dir / "exports.json"

    @property
    def tombstones_path(self) -> Path:
        return self.path / TOMBSTONES_FILE

    def relpath(self, path: os.PathLike | str) -> str:
        """``path`` relative to the dataset folder, '/'-separated (the tail of its CDN key)."""
        return Path(path).relative_to(self.path).as_posix()

    def joinpath(self, rel: str) -> Path:
        """The file at a dataset-relative, '/'-separated path (the caller checks containment)."""
        return self.path / rel

    def meta(self) -> dict:
        if not self.meta_path.is_file():
            raise WorkspaceError(f"dataset '{self.name}' has no meta.json; ingest it again")
        return read_json(self.meta_path)

    def read_input(self, columns: Optional[list[str]] = None):
        import pandas as pd

        if not self.input_path.is_file():
            raise WorkspaceError(f"dataset '{self.name}' has no input.parquet; ingest it again")
        return pd.read_parquet(self.input_path, columns=columns)

    def input_columns(self) -> list[str]:
        """Column names of input.parquet, read from its footer only."""
        import pyarrow.parquet as pq

        if not self.input_path.is_file():
            raise WorkspaceError(f"dataset '{self.name}' has no input.parquet; ingest it first")
        return pq.read_schema(self.input_path).names

    def input_fingerprint(self) -> Optional[str]:
        """Identity of the current input.parquet (recorded by ingest in meta.json)."""
        with contextlib.suppress(WorkspaceError, OSError, ValueError):
            return self.meta().get("input_fingerprint")
        return None

    # ---- artifacts
    def artifact_dir(self, kind: str) -> Path:
        if kind not in KIND_DIRS:
            raise WorkspaceError(f"unknown artifact kind '{kind}' (known: {', '.join(KIND_DIRS)})")
        return self.path / KIND_DIRS[kind]

    def artifact_path(self, artifact_id: str, suffix: str) -> Path:
        """Path of a file of an artifact, e.g. ('umap-001', '.parquet') or ('cluster-001', '-tree.npz')."""
        kind, _ = parse_id(artifact_id)
        return self.artifact_dir(kind) / f"{artifact_id}{suffix}"

    def label_file(self, labels_id: str, suffix: str) -> Path:
        """A file of a label artifact: ``toponymy-NNN`` or a cluster's default labels (``DEFAULT_LABELS_SUFFIX``)."""
        if not LABELS_ID_RE.match(labels_id or ""):
            raise WorkspaceError(f"'{labels_id}' is not a label artifact id "
                                 f"(toponymy-NNN or cluster-NNN{DEFAULT_LABELS_SUFFIX})")
        return self.artifact_dir("toponymy") / f"{labels_id}{suffix}"

    def sidecar_path(self, artifact_id: str) -> Path:
        return self.artifact_path(artifact_id, ".json")

    def exists(self, artifact_id: str) -> bool:
        try:
            return self.sidecar_path(artifact_id).is_file()
        except WorkspaceError:
            return False

    def sidecar(self, artifact_id: str) -> dict:
        path = self.sidecar_path(artifact_id)
        if not path.is_file():
            kind, _ = parse_id(artifact_id)
            have = ", ".join(self.list_ids(kind)) or "none"
            raise WorkspaceError(
                f"dataset '{self.name}' has no {artifact_id} (existing {kind} artifacts: {have})"
            )
        return read_json(path)

    def update_sidecar(self, artifact_id: str, **fields: Any) -> dict:
        """Add fields to an existing sidecar (atomically); used for notes such as publish state."""
        data = self.sidecar(artifact_id)
        data.update(fields)
        atomic_write_json(self.sidecar_path(artifact_id), data)
        return data

    def list_ids(self, kind: str, **match: Any) -> list[str]:
        """Ids of finished artifacts of ``kind`` in ascending order, optionally filtered by sidecar fields."""
        folder = self.artifact_dir(kind)
        if not folder.is_dir():
            return []
        ids = []
        for p in folder.glob(f"{kind}-*.json"):
            m = ID_RE.match(p.stem)
            if m and m["kind"] == kind:
                ids.append(p.stem)
        ids.sort(key=lambda i: parse_id(i)[1])
        if match:
            ids = [i for i in ids if all(self.sidecar(i).get(k) == v for k, v in match.items())]
        return ids

    def latest(self, kind: str, **match: Any) -> Optional[str]:
        ids = self.list_ids(kind, **match)
        return ids[-1] if ids else None

    def require(self, kind: str, artifact_id: Optional[str] = None, **match: Any) -> str:
        """``artifact_id`` if it exists, else the latest ``kind`` matching ``match``; a clear error otherwise."""
        if artifact_id is None:
            artifact_id = self.latest(kind, **match)
            if artifact_id is None:
                what, command = KIND_MAKERS[kind]
                qualifier = " ".join(str(v) for v in match.values())
                raise WorkspaceError(f"dataset '{self.name}' has no {qualifier + ' ' if qualifier else ''}{what} "
                                     f"yet; run `tweetscope {command}` first")
        self.sidecar(artifact_id)  # a named id that does not exist is a clear error too
        return artifact_id

    def reserve_id(self, kind: str) -> str:
        """Allocate the next ``<kind>-NNN`` atomically; a reserved id is never handed out again."""
        self.artifact_dir(kind)  # validates kind
        reservations = self.path / ".ids"
        reservations.mkdir(parents=True, exist_ok=True)
        used = [parse_id(p.name)[1] for p in reservations.glob(f"{kind}-*") if ID_RE.match(p.name)]
        used += [parse_id(i)[1] for i in self.list_ids(kind)]
        n = max(used, default=0) + 1
        while True:
            candidate = f"{kind}-{n:03d}"
            try:
                fd = os.open(reservations / candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                n += 1
                continue
            os.close(fd)
            return candidate

    @contextlib.contextmanager
    def new_artifact(self, kind: str) -> Iterator["ArtifactWriter"]:
        """Reserve an id and collect the artifact's files; all appear together on success.

        Usage::

            with ds.new_artifact("umap") as art:
                atomic-free writes go to art.path(".parquet")
                art.write_sidecar({...})
        """
        writer = ArtifactWriter(self, self.reserve_id(kind))
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def cleanup_temps(self) -> int:
        removed = 0
        if not self.path.is_dir():
            return 0
        for sub in [self.path, *(self.path / d for d in set(KIND_DIRS.values())), self.links_dir]:
            if sub.is_dir():
                for p in sub.iterdir():
                    if is_temp_name(p.name):
                        _remove(p)
                        removed += 1
        return removed

    # ---- lineage and status
    def inputs_of(self, artifact_id: str) -> dict[str, str]:
        return dict(self.sidecar(artifact_id).get("inputs") or {})

    def lineage(self, artifact_id: str) -> dict:
        """``{"id": ..., "inputs": {name: lineage(...)}}`` down to the dataset input."""
        inputs = {}
        for name, ref in self.inputs_of(artifact_id).items():
            if isinstance(ref, str) and ID_RE.match(ref) and self.exists(ref):
                inputs[name] = self.lineage(ref)
            else:
                inputs[name] = {"id": ref}
        return {"id": artifact_id, "inputs": inputs}

    def stale_reason(self, artifact_id: str) -> Optional[str]:
        """Why an artifact no longer follows from the newest inputs, or None when it is current.

        An artifact is stale when an input is missing, is itself stale, has a newer artifact
        of the same kind and purpose, or (for ``input``) the ingested data changed.
        """
        for name, ref in self.inputs_of(artifact_id).items():
            if name == "input":
                current = self.input_fingerprint()
                if current is not None and ref != current:
                    return "the dataset was ingested again"
                continue
            if not (isinstance(ref, str) and ID_RE.match(ref)):
                continue
            if not self.exists(ref):
                return f"its input {ref} no longer exists"
            kind, num = parse_id(ref)
            purpose = self.sidecar(ref).get("purpose")
            newer = self.latest(kind, **({"purpose": purpose} if purpose else {}))
            # an artifact derived from one of its own kind (a label edit) is itself the newer one
            if newer and parse_id(newer)[1] > num and kind != parse_id(artifact_id)[0]:
                return f"{newer} is newer than its input {ref}"
            upstream = self.stale_reason(ref)
            if upstream:
                return f"{ref} is stale ({upstream})"
        return None

    def status(self, kind: str, **match: Any) -> dict:
        """``{"status": missing|done|stale, "id": latest id or None, "reason": str}``."""
        latest = self.latest(kind, **match)
        if latest is None:
            return {"status": "missing", "id": None, "reason": f"no {kind} artifact yet"}
        reason = self.stale_reason(latest)
        return {"status": "stale" if reason else "done", "id": latest, "reason": reason or ""}


class ArtifactWriter:
    """Collects the files of one artifact in a :class:`FileSet`; commit renames them in, the sidecar last."""

    def __init__(self, dataset: Dataset, artifact_id: str):
        self.dataset = dataset
        self.id = artifact_id
        self.kind, self.number = parse_id(artifact_id)
        self._files = FileSet(artifact_id)
        self._sidecar: Optional[dict] = None
        dataset.artifact_dir(self.kind).mkdir(parents=True, exist_ok=True)

    def final_path(self, suffix: str) -> Path:
        if suffix == ".json":
            raise WorkspaceError("the sidecar .json is written with write_sidecar(), last")
        return self.dataset.artifact_path(self.id, suffix)

    def path(self, suffix: str) -> Path:
        """A temp path to write the file ``<id><suffix>`` to; it is renamed into place on commit."""
        return self._files.path(self.final_path(suffix))

    def write_parquet(self, table: Any, suffix: str = ".parquet", **kwargs: Any) -> Path:
        return self._files.write_parquet(self.final_path(suffix), table, **kwargs)

    def write_json(self, obj: Any, suffix: str) -> Path:
        """An extra JSON file of the artifact (not the sidecar), e.g. its default labels' JSON."""
        return self._files.write_json(self.final_path(suffix), obj)

    def write_sidecar(
        self,
        fields: dict,
        *,
        params: Optional[dict] = None,
        inputs: Optional[dict] = None,
        rows: Optional[int] = None,
        timings: Optional[dict] = None,
    ) -> dict:
        """The artifact's sidecar: stage fields + id, params, inputs (lineage), versions, timings, rows."""
        sidecar = {"id": self.id, **fields}
        if params is not None:
            sidecar["params"] = params
        sidecar["inputs"] = dict(inputs or {})
        if rows is not None:
            sidecar["rows"] = int(rows)
        sidecar["timings"] = dict(timings or {})
        sidecar["versions"] = library_versions()
        sidecar["created_at"] = utc_now_iso()
        dumps_json(sidecar)  # fail now, not at commit, if something is not serialisable
        self._sidecar = sidecar
        return sidecar

    def commit(self) -> None:
        if self._sidecar is None:
            raise WorkspaceError(f"{self.id}: the stage finished without writing its sidecar")
        self._files.write_json(self.dataset.sidecar_path(self.id), self._sidecar)  # renamed in last
        self._files.commit()

    def abort(self) -> None:
        self._files.abort()


def default_data_dir() -> Path:
    return Path(os.environ.get("TWEETSCOPE_DATA_DIR") or "./data").expanduser().resolve()
