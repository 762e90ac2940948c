"""Read files out of an untrusted archive (ZIP or extracted folder) without trusting it.

Defences (issue 3 §7): member names that escape the archive (``../``, absolute paths,
drive letters), symlink members, encrypted members, too many members, and zip bombs.
Members are never extracted to disk; the ones ingest needs are decompressed in memory
through a counting reader that enforces, on the bytes actually produced (header sizes
can lie), a per-member size cap, a compression-ratio cap and a cap on the total read.
A folder gets the same caps, and symlinks that point outside it are refused.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

from pipeline.core.errors import IngestError

CHUNK = 1 << 20
#: C0 controls, DEL and C1 controls: never in a genuine archive's member names
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied while reading an archive; generous for real archives, fatal for bombs."""

    #: largest single data file read (X splits big tweet files into parts far below this)
    max_member_bytes: int = 2 * 1024**3
    #: total bytes decompressed from one archive
    max_total_bytes: int = 8 * 1024**3
    #: decompressed / compressed size of one member (real archive JSON is ~5-20)
    max_ratio: float = 100.0
    #: the ratio is only enforced past this size: tiny files may compress oddly and cannot hurt
    ratio_floor_bytes: int = 1 << 20
    #: members listed in a ZIP / files found in a folder
    max_members: int = 500_000


DEFAULT_LIMITS = ArchiveLimits()


def _fix_hint(capital: bool = False) -> str:
    hint = "use the unmodified archive X sent you (or its extracted folder)"
    return hint[0].upper() + hint[1:] if capital else hint


class ArchiveFiles:
    """The regular files of an archive, by relative POSIX path, read with limits."""

    label: str

    def __init__(self, label: str, limits: ArchiveLimits):
        self.label = label
        self.limits = limits
        self.bytes_read = 0

    # subclasses fill these
    def names(self) -> list[str]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "ArchiveFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def where(self, name: str) -> str:
        """How error messages name a member: ``archive.zip:data/tweets.js``."""
        return f"{self.label}:{name}"

    def _count(self, name: str, produced: int, compressed: Optional[int], declared: bool = False) -> None:
        """Enforce the caps on ``produced`` bytes of ``name`` decompressed so far (or ``declared``)."""
        lim = self.limits
        gave = "declares" if declared else "already gave"
        if produced > lim.max_member_bytes:
            raise IngestError(
                f"{self.where(name)}: file is larger than {lim.max_member_bytes:,} bytes, "
                f"the limit for one archive file; {_fix_hint()}"
            )
        if (
            compressed is not None
            and produced > lim.ratio_floor_bytes
            and produced > lim.max_ratio * max(compressed, 1)
        ):
            raise IngestError(
                f"{self.where(name)}: expands more than {lim.max_ratio:g}:1 "
                f"({compressed:,} compressed bytes {gave} {produced:,}), which looks like a zip bomb; "
                f"{_fix_hint()}"
            )
        if self.bytes_read + produced > lim.max_total_bytes:
            raise IngestError(
                f"{self.where(name)}: reading it would take the archive past {lim.max_total_bytes:,} "
                f"decompressed bytes, the total limit; {_fix_hint()}"
            )


def _check_member_name(label: str, raw_name: str) -> Optional[str]:
    """The member's normalised relative path, None for a directory entry; hostile names raise.

    ``raw_name`` must be the name as stored (``ZipInfo.orig_filename``): ``ZipInfo.filename``
    is cut at a NUL, which would hide ``data/tweets.js\\x00/../../x.js`` behind ``data/tweets.js``.
    """
    bad = CONTROL_RE.search(raw_name)
    if bad:
        what = "a NUL byte" if bad.group() == "\x00" else f"the control character {bad.group()!r}"
        raise IngestError(f"{label}: member name {raw_name!r} contains {what}; refusing it. "
                          f"{_fix_hint(capital=True)}")
    name = raw_name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise IngestError(
            f"{label}: member '{raw_name}' has an absolute path, which a genuine archive never has; "
            f"refusing it. {_fix_hint(capital=True)}"
        )
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise IngestError(
            f"{label}: member '{raw_name}' points outside the archive (zip slip); refusing it. "
            f"{_fix_hint(capital=True)}"
        )
    if name.endswith("/"):
        return None
    return "/".join(p for p in parts if p not in ("", "."))


class ZipArchiveFiles(ArchiveFiles):
    """Members of a ZIP, validated up front, decompressed on demand with limits."""

    def __init__(self, path: Path, limits: ArchiveLimits = DEFAULT_LIMITS):
        super().__init__(path.name, limits)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise IngestError(f"{path.name}: not a readable ZIP file ({exc}); {_fix_hint()}") from None
        try:
            self._infos = self._validate()
        except BaseException:
            self._zip.close()
            raise

    def _validate(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_members:
            raise IngestError(
                f"{self.label}: has {len(infos):,} members, more than the limit of "
                f"{self.limits.max_members:,}; {_fix_hint()}"
            )
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = _check_member_name(self.label, info.orig_filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise IngestError(
                    f"{self.label}: member '{info.filename}' is a symbolic link, which a genuine archive "
                    f"never has; refusing it. {_fix_hint(capital=True)}"
                )
            if name is None or info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise IngestError(
                    f"{self.label}: member '{info.filename}' is encrypted; decrypt the archive first"
                )
            if name in by_name:
                raise IngestError(
                    f"{self.label}: member '{name}' appears twice, so it is ambiguous which to read; "
                    f"{_fix_hint()}"
                )
            by_name[name] = info
        return by_name

    def names(self) -> list[str]:
        return sorted(self._infos)

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def read(self, name: str) -> bytes:
        info = self._infos[name]
        # cheap early refusal on what the header declares; the counting loop below checks
        # the bytes actually produced
        self._count(name, info.file_size, info.compress_size, declared=True)
        chunks: list[bytes] = []
        produced = 0
        try:
            with self._zip.open(info) as fh:
                while True:
                    chunk = fh.read(CHUNK)
                    if not chunk:
                        break
                    produced += len(chunk)
                    self._count(name, produced, info.compress_size)
                    chunks.append(chunk)
        except IngestError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise IngestError(f"{self.where(name)}: cannot be decompressed ({exc}); {_fix_hint()}") from None
        except Exception as exc:  # zlib.error and friends from a corrupt stream
            raise IngestError(f"{self.where(name)}: corrupt compressed data ({exc}); {_fix_hint()}") from None
        self.bytes_read += produced
        return b"".join(chunks)

    def close(self) -> None:
        self._zip.close()


class FolderArchiveFiles(ArchiveFiles):
    """Files under an extracted archive folder; symlinks leading outside it are refused."""

    def __init__(self, path: Path, limits: ArchiveLimits = DEFAULT_LIMITS):
        super().__init__(path.name or str(path), limits)
        self.root = path.resolve()
        self._files = self._scan()

    def _outside(self, link: Path) -> bool:
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):
            return True  # dangling or looping links are refused as well
        return target != self.root and self.root not in target.parents

    def _scan(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath)
            for entry in dirnames + filenames:
                full = here / entry
                rel = full.relative_to(self.root).as_posix()
                if full.is_symlink() and self._outside(full):
                    raise IngestError(
                        f"{self.label}/{rel}: is a symbolic link pointing outside the archive folder; "
                        "refusing it. Remove the link or copy the real file into the folder"
                    )
            for entry in filenames:
                full = here / entry
                if full.is_file():
                    files[full.relative_to(self.root).as_posix()] = full
            if len(files) > self.limits.max_members:
                raise IngestError(
                    f"{self.label}: holds more than {self.limits.max_members:,} files; "
                    "point at the extracted archive folder itself"
                )
        return files

    def names(self) -> list[str]:
        return sorted(self._files)

    def where(self, name: str) -> str:
        return f"{self.label}/{name}"

    def size(self, name: str) -> int:
        return self._files[name].stat().st_size

    def read(self, name: str) -> bytes:
        path = self._files[name]
        self._count(name, path.stat().st_size, None)
        chunks: list[bytes] = []
        produced = 0
        try:
            with open(path, "rb") as fh:
                while True:
                    chunk = fh.read(CHUNK)
                    if not chunk:
                        break
                    produced += len(chunk)
                    self._count(name, produced, None)
                    chunks.append(chunk)
        except OSError as exc:
            raise IngestError(f"{self.where(name)}: cannot be read ({exc.strerror or exc})") from None
        self.bytes_read += produced
        return b"".join(chunks)


class SingleFile(FolderArchiveFiles):
    """One file (a Community Archive JSON) read with the same caps as an archive member."""

    def __init__(self, path: Path, limits: ArchiveLimits = DEFAULT_LIMITS):
        ArchiveFiles.__init__(self, path.name, limits)
        self.root = path.parent.resolve()
        self._files = {path.name: path}

    def where(self, name: str) -> str:
        return name


def open_archive_files(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> ArchiveFiles:
    """A ZIP or a folder as :class:`ArchiveFiles`."""
    if path.is_dir():
        return FolderArchiveFiles(path, limits)
    return ZipArchiveFiles(path, limits)
