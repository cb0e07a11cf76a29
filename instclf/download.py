"""Official NSynth on request: the download stage of the data flow.

Used by ``instclf data download``:

archive URL ──► :func:`fetch` (resumable ``.part`` file) ──► :func:`verify_archive` ──►
:func:`extract_archive` ──► ``<root>/nsynth-<split>``, the same NSynth-format folder the
embedded dataset renders. A download that stops resumes with an HTTP Range request; a split
folder appears only once it is whole and valid. Only the standard library touches the network.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from tqdm.auto import tqdm

from . import nsynth
from .config import SPLITS, InstclfError

OFFICIAL_BASE_URL = "http://download.magenta.tensorflow.org/datasets/nsynth"
OFFICIAL_NOTES = {"train": 289_205, "valid": 12_678, "test": 4_096}
ARCHIVE_GB = {"train": 22, "valid": 1.0, "test": 0.3}  # about, compressed (what is downloaded)
WAV_BYTES = 44 + 2 * nsynth.NOTE_SAMPLES  # one extracted note: 16-bit mono WAV
URL_ENV = "INSTCLF_NSYNTH_URL"
TIMEOUT = 60  # seconds without data before a connection counts as dropped
RETRY_DELAYS = (2, 10, 30)  # seconds before each new attempt after a dropped connection
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
SHOWN_PROBLEMS = 20
USER_AGENT = "instclf"
log = logging.getLogger(__name__)


class _Interrupted(Exception):
    """A transfer that stopped early; the next attempt resumes from the ``.part`` file."""


def _hint(split: str | None = None) -> str:
    return f"instclf data download --splits {split}" if split else "instclf data download"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InstclfError(
            f"unknown split {split!r}; run {_hint()} --splits with one of {', '.join(SPLITS)}"
        )


def split_sizes() -> dict[str, dict]:
    """Notes, download and disk size (GB) of each official split (``instclf data download``)."""
    return {split: {"notes": notes, "download_gb": ARCHIVE_GB[split],
                    "disk_gb": round(notes * WAV_BYTES / 1e9, 1)}
            for split, notes in OFFICIAL_NOTES.items()}


def chosen_splits(splits: list[str] | None) -> list[str]:
    """The splits ``instclf data download`` fetches: those named, never all by default (the
    training split alone is 22 GB); none named is an error listing each split and its size."""
    if splits:
        return list(dict.fromkeys(splits))
    listed = "; ".join(f"{split}: {size['notes']:,} notes, about {size['download_gb']:g} GB to "
                       f"download, {size['disk_gb']:g} GB on disk"
                       for split, size in split_sizes().items())
    raise InstclfError(f"name the splits to download, e.g. {_hint('valid test')} ({listed}); "
                       "the nsynth profile needs all three")


def archive_name(split: str) -> str:
    """``nsynth-<split>.jsonwav.tar.gz``, the official archive of one split."""
    return f"nsynth-{split}.jsonwav.tar.gz"


def archive_url(split: str, base_url: str | None = None) -> str:
    """The URL of one split's archive (used by ``instclf data download``).

    ``base_url`` (else ``INSTCLF_NSYNTH_URL``, else the official host) is an http(s):// or
    file:// URL or a local folder holding ``nsynth-<split>.jsonwav.tar.gz``.
    """
    _check_split(split)
    base = base_url or os.environ.get(URL_ENV) or OFFICIAL_BASE_URL
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    return f"{base.rstrip('/')}/{archive_name(split)}"


# --- fetch ------------------------------------------------------------------------------------


def _local_source(url: str) -> Path | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "":
        return Path(url).expanduser()
    raise InstclfError(
        f"cannot download {url}: only http(s):// and file:// URLs or local folders work; "
        f"set {URL_ENV} or --base-url to one (or unset it for the official host)"
    )


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _copy(read: Callable[[int], bytes], part: Path, start: int, total: int | None,
          progress: bool, chunk_size: int) -> None:
    """Write what ``read`` yields into ``part`` from byte ``start`` on (0: a fresh file)."""
    try:
        out = part.open("r+b" if start else "wb")
    except OSError as error:
        raise InstclfError(f"cannot write {part} ({error}); check the folder and run "
                           f"{_hint()} again") from error
    with out, tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name.removesuffix(".part"), disable=not progress) as bar:
        out.seek(start)
        out.truncate()
        while chunk := read(chunk_size):
            out.write(chunk)
            bar.update(len(chunk))


def _copy_local(source: Path, part: Path, progress: bool, chunk_size: int) -> None:
    if not source.is_file():
        raise InstclfError(
            f"{source} does not exist; set {URL_ENV} or --base-url to the folder holding "
            f"the NSynth archives (or unset it for the official host) and run {_hint()} again"
        )
    total = source.stat().st_size
    start = _size(part) if _size(part) <= total else 0
    with source.open("rb") as src:
        src.seek(start)
        _copy(src.read, part, start, total, progress, chunk_size)
    if _size(part) != total:
        raise InstclfError(f"{source} changed while it was copied; run {_hint()} again")


def _range_total(content_range: str | None) -> int | None:
    match = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", content_range or "")
    return int(match[1]) if match else None


def _range_start(content_range: str | None) -> int | None:
    match = re.match(r"bytes\s+(\d+)-\d+/", content_range or "")
    return int(match[1]) if match else None


def _response_span(response, offset: int, part: Path) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's full size, from the headers."""
    if response.status == 206:
        start = _range_start(response.headers.get("Content-Range"))
        if start not in (0, offset):
            part.unlink(missing_ok=True)
            raise _Interrupted(f"the server resumed at byte {start}, not {offset}")
        return start, _range_total(response.headers.get("Content-Range"))
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _after_416(part: Path, headers, offset: int) -> None:
    """A 416 answer to ``Range: bytes=<size>-``: complete, unless the size disagrees."""
    total = _range_total(headers.get("Content-Range"))
    if total is not None and total != offset:
        part.unlink(missing_ok=True)
        raise _Interrupted(f"{part} holds {offset} bytes of {total}; starting again")


def _open(url: str, offset: int):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)


def _fetch_http_once(url: str, part: Path, progress: bool, chunk_size: int) -> None:
    offset = _size(part)
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            return _after_416(part, error.headers, offset)
        if error.code in RETRY_STATUS:
            raise _Interrupted(f"HTTP {error.code} {error.reason}") from error
        raise InstclfError(
            f"{url} answered HTTP {error.code} {error.reason}; check {URL_ENV} or --base-url "
            f"(unset it for the official host) and run {_hint()} again"
        ) from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _Interrupted(str(getattr(error, "reason", error))) from error
    with response:
        start, total = _response_span(response, offset, part)
        try:
            _copy(response.read, part, start, total, progress, chunk_size)
        except (OSError, http.client.HTTPException) as error:
            raise _Interrupted(str(error) or type(error).__name__) from error
    size = _size(part)
    if total is not None and size != total:
        if size > total:
            part.unlink()
        raise _Interrupted(f"received {size} of {total} bytes")


def _fetch_http(url: str, part: Path, progress: bool, chunk_size: int) -> None:
    for delay in (*RETRY_DELAYS, None):
        try:
            return _fetch_http_once(url, part, progress, chunk_size)
        except _Interrupted as error:
            if delay is None:
                raise InstclfError(
                    f"downloading {url} stopped ({error}); {part} keeps what arrived: run "
                    f"{_hint()} again to resume"
                ) from error
            time.sleep(delay)


def fetch(url: str, dest: Path, progress: bool = False, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` (http(s)://, file:// or a local path) to ``dest``, resuming if stopped.

    Bytes go to ``<dest>.part``, which a later call resumes (HTTP Range); ``dest`` appears
    only once the size matches what the server announced. Used by ``instclf data download``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    source = _local_source(url)
    if source is None:
        _fetch_http(url, part, progress, chunk_size)
    else:
        _copy_local(source, part, progress, chunk_size)
    os.replace(part, dest)
    return dest


# --- verify -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _read_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive as a tar stream, read on to the gzip trailer so that its CRC is checked."""
    with gzip.open(path, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        yield tar
        while stream.read(1 << 20):
            pass


def _member_problem(member: tarfile.TarInfo, split: str) -> str | None:
    """Why one member may not be extracted (None: it may)."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or "\\" in name:
        return f"{name}: unsafe path (absolute or with '..')"
    if not (member.isfile() or member.isdir()):
        return f"{name}: links and special files are not allowed"
    if not parts or parts[0] != f"nsynth-{split}":
        return f"{name}: outside nsynth-{split}/"
    return None


def _wav_key(name: str, split: str) -> str | None:
    """``nsynth-<split>/audio/<key>.wav`` -> ``<key>`` (None for any other member)."""
    match = re.fullmatch(rf"nsynth-{re.escape(split)}/audio/([^/]+)\.wav", name)
    return match[1] if match else None


def _scan_archive(path: Path, split: str) -> tuple[dict | None, set[str], int, list[str]]:
    """Read every member of the archive once: examples.json, WAV names, bytes, problems."""
    examples, wavs, size, problems = None, set(), 0, []
    with _read_tar(path) as tar:
        for member in tar:
            problem = _member_problem(member, split)
            if problem:
                problems.append(problem)
                continue
            size += member.size
            if member.name == f"nsynth-{split}/examples.json":
                examples, problem = _parse_examples(tar.extractfile(member).read())
                problems += [f"{member.name}: {problem}"] if problem else []
            elif (key := _wav_key(member.name, split)) is not None and member.isfile():
                wavs.add(key)
    return examples, wavs, size, problems


def _parse_examples(data: bytes) -> tuple[dict | None, str | None]:
    try:
        examples = json.loads(data)
    except ValueError as error:
        return None, f"not valid JSON ({error})"
    if not isinstance(examples, dict):
        return None, "not a JSON object of notes"
    return examples, None


def _pairing_problems(examples: dict | None, wavs: set[str], split: str) -> list[str]:
    if examples is None:
        return [f"nsynth-{split}/examples.json: missing"]
    audio = f"nsynth-{split}/audio"
    return ([f"{audio}/{key}.wav: listed in examples.json but missing"
             for key in sorted(set(examples) - wavs)]
            + [f"{audio}/{key}.wav: not listed in examples.json"
               for key in sorted(wavs - set(examples))])


def _refuse(path: Path, split: str, problems: list[str]) -> InstclfError:
    shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
    more = (f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more"
            if len(problems) > SHOWN_PROBLEMS else "")
    return InstclfError(
        f"{path} is not a valid NSynth {split} archive ({len(problems)} problem(s)); delete it "
        f"and run {_hint(split)} again:\n  {shown}{more}"
    )


def verify_archive(path: Path, split: str) -> dict:
    """Read the whole archive and check it before extraction (``instclf data download``).

    Refuses unsafe members (links, absolute paths, '..', anything outside ``nsynth-<split>/``),
    a truncated or corrupt archive, and notes without their WAV or WAVs without their note.
    Returns ``split``, ``notes``, ``wavs``, ``bytes`` (extracted), ``archive_bytes`` and
    ``official`` (whether the note count is the official one).
    """
    path = Path(path)
    _check_split(split)
    try:
        examples, wavs, size, problems = _scan_archive(path, split)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise _refuse(path, split, [f"unreadable or truncated ({error})"]) from error
    problems += _pairing_problems(examples, wavs, split)
    if problems:
        raise _refuse(path, split, problems)
    return {
        "split": split, "notes": len(examples), "wavs": len(wavs), "bytes": size,
        "archive_bytes": path.stat().st_size,
        "official": len(examples) == OFFICIAL_NOTES[split],
    }


# --- extract ----------------------------------------------------------------------------------


def _safe_members(tar: tarfile.TarFile, path: Path, split: str):
    for member in tar:
        problem = _member_problem(member, split)
        if problem:
            raise _refuse(path, split, [problem])
        yield member


def _extract_all(path: Path, folder: Path, split: str) -> None:
    data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with _read_tar(path) as tar:
            tar.extractall(folder, members=_safe_members(tar, path, split), **data_filter)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _refuse(path, split, [f"unreadable or truncated ({error})"]) from error
    except OSError as error:
        raise InstclfError(f"cannot extract {path} into {folder.parent} ({error}); free space "
                           f"and run {_hint(split)} again") from error


def _move_into_place(new: Path, target: Path, scratch: Path) -> None:
    """Rename ``new`` onto ``target``; a previous ``target`` goes to ``scratch`` first."""
    previous = scratch / "previous"
    if target.exists():
        os.replace(target, previous)
    try:
        os.replace(new, target)
    except OSError:
        if previous.exists():
            os.replace(previous, target)
        raise


def _remove_stale_extractions(root: Path, split: str) -> None:
    for stale in root.glob(f".nsynth-{split}.extracting-*"):
        shutil.rmtree(stale, ignore_errors=True)


def extract_archive(path: Path, root: Path, split: str) -> Path:
    """Extract a verified archive into ``<root>/nsynth-<split>`` (``instclf data download``).

    Extracts beside it into a temporary folder, checks the result with
    :func:`instclf.nsynth.validate_split`, then renames it into place; a previous folder is
    replaced only then, and a failure leaves no half-extracted folder behind.
    """
    path, root = Path(path), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_extractions(root, split)
    scratch = Path(tempfile.mkdtemp(prefix=f".nsynth-{split}.extracting-", dir=root))
    try:
        _extract_all(path, scratch, split)
        extracted = nsynth.split_folder(scratch, split)
        if not (extracted / "examples.json").is_file():
            raise _refuse(path, split, [f"nsynth-{split}/examples.json: missing"])
        problems = nsynth.validate_split(extracted)
        if problems:
            raise _refuse(path, split, problems)
        _move_into_place(extracted, nsynth.split_folder(root, split), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return nsynth.split_folder(root, split)


# --- the whole stage --------------------------------------------------------------------------


def _check_root(root: Path) -> Path:
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise InstclfError(
            f"dataset root {root} is a file, not a folder; pass a folder with "
            f"{_hint()} --root <folder> (or set INSTCLF_DATA_DIR)"
        )
    return root


def _is_valid_split(folder: Path) -> bool:
    if not (folder / "examples.json").is_file():
        return False
    try:
        return not nsynth.validate_split(folder)
    except InstclfError:
        return False


def download_split(split: str, root: Path, base_url: str | None = None, progress: bool = True,
                   keep_archive: bool = False) -> Path:
    """Download, verify and extract one official NSynth split (``instclf data download``).

    Returns ``<root>/nsynth-<split>``. A split that is already there and valid is returned
    without touching the network; an interrupted download resumes from its ``.part`` file in
    ``<root>/downloads``. The archive is deleted after extraction unless ``keep_archive``.
    """
    _check_split(split)
    root = _check_root(root)
    folder = nsynth.split_folder(root, split)
    if _is_valid_split(folder):
        log.info("%s: already there and valid, nothing to download", folder)
        return folder
    archive = root / "downloads" / archive_name(split)
    if not archive.is_file():
        log.info("downloading %s to %s", archive_url(split, base_url), archive)
        fetch(archive_url(split, base_url), archive, progress=progress)
    log.info("verifying %s", archive)
    verify_archive(archive, split)
    log.info("extracting into %s", folder)
    extract_archive(archive, root, split)
    if not keep_archive:
        archive.unlink()
    return folder
