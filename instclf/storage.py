"""Atomic writes: every file is written to a temporary name in its folder, then renamed.

A reader therefore sees either the old file or the whole new one, never half of it; a run
that is killed leaves only ``*.tmp-*`` files, which :func:`remove_temporaries` clears.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

TEMP_MARK = ".tmp-"
# Bump when a change to the code alters what a cached result holds (features, activations,
# models, predictions tables): every key changes with it, so nothing stale is reused.
CACHE_VERSION = 3


def content_key(*parts) -> str:
    """The one key of every cached result: a digest of what it was computed from.

    ``parts`` are JSON-serialisable descriptions of the inputs (content digests of upstream
    caches, front-end and backbone settings, schedules); :data:`CACHE_VERSION` is always part
    of it. Features, frozen activations, models and predictions tables are keyed this way.
    """
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """SHA-1 of a file's bytes: the content key of a cache file and its integrity check, the
    check of a downloaded sample package."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name ends with ``path``'s extensions, for writers that insist on them
    (Keras wants ``.keras`` and ``.weights.h5``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TEMP_MARK, suffix="".join(path.suffixes),
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would stick to the file it replaces
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (same object, same bytes)."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def remove_temporaries(folder: Path) -> int:
    """Delete the temporary files an interrupted run left in ``folder`` (recursively)."""
    count = 0
    for tmp in Path(folder).rglob(f"*{TEMP_MARK}*"):
        if tmp.is_file():
            tmp.unlink()
            count += 1
    return count


def readable(read, path):
    """``read(path)``, or None when the cached file does not parse (then it is rebuilt)."""
    try:
        return read(path)
    except (OSError, ValueError, KeyError, EOFError):  # pandas' ParserError is a ValueError
        return None
