"""The download stage: fetch (local, file://, loopback HTTP with Range), verify, extract."""

from __future__ import annotations

import json
import logging
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from instclf import cli, download, nsynth
from instclf.config import InstclfError
from nsynth_archives import NOTES, SPLIT, add, build_archive, example, wav_bytes


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A folder holding a valid ``nsynth-valid.jsonwav.tar.gz``."""
    folder = tmp_path_factory.mktemp("mirror")
    build_archive(folder / download.archive_name(SPLIT))
    return folder


@pytest.fixture
def archive_bytes(mirror) -> bytes:
    return (mirror / download.archive_name(SPLIT)).read_bytes()


# --- a loopback HTTP server that honours Range ------------------------------------------------


class RangeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = server.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = self.headers.get("Range")
        if wanted and not server.ignore_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_first_at is not None:
            body, server.cut_first_at = body[:server.cut_first_at], None
        self.wfile.write(body)


@pytest.fixture
def server(mirror):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.root, httpd.requests = mirror, []
    httpd.ignore_range, httpd.cut_first_at = False, None
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAYS", (0, 0, 0))
    monkeypatch.delenv(download.URL_ENV, raising=False)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if ".extracting-" in p.name or
                  p.name.endswith(".part"))


# --- archive_url ------------------------------------------------------------------------------


def test_archive_url_official_override_and_env(tmp_path, monkeypatch):
    assert download.archive_url("test") == (
        "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-test.jsonwav.tar.gz")
    assert download.archive_url("train", "https://mirror.example/nsynth/") == (
        "https://mirror.example/nsynth/nsynth-train.jsonwav.tar.gz")
    assert download.archive_url("valid", str(tmp_path)) == (
        f"{tmp_path.as_uri()}/nsynth-valid.jsonwav.tar.gz")
    monkeypatch.setenv(download.URL_ENV, "http://127.0.0.1:9/x")
    assert download.archive_url("valid") == "http://127.0.0.1:9/x/nsynth-valid.jsonwav.tar.gz"
    assert download.OFFICIAL_NOTES == {"train": 289_205, "valid": 12_678, "test": 4_096}


def test_split_sizes_and_no_split_by_default(tmp_path, capsys):
    """`instclf data download` fetches only the splits named: none named lists every split with
    its size and fetches nothing (the training split alone is 22 GB)."""
    sizes = download.split_sizes()
    assert sizes["train"] == {"notes": 289_205, "download_gb": 22, "disk_gb": 37.0}
    assert download.chosen_splits(["valid", "test", "valid"]) == ["valid", "test"]
    with pytest.raises(InstclfError) as error:
        download.chosen_splits(None)
    for split, size in sizes.items():
        listed = f"{split}: {size['notes']:,} notes, about {size['download_gb']:g} GB"
        assert listed in str(error.value)
    assert cli.main(["data", "download", "--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instclf: error: name the splits to download")
    assert "--splits valid test" in err and not (tmp_path / "data").exists()


def test_unknown_split_and_file_root_are_refused(tmp_path):
    with pytest.raises(InstclfError, match="unknown split 'dev'.*instclf data download"):
        download.archive_url("dev")
    root = tmp_path / "root"
    root.write_text("not a folder")
    with pytest.raises(InstclfError, match=f"{root} is a file.*--root"):
        download.download_split(SPLIT, root)


# --- download_split end to end ----------------------------------------------------------------


def test_download_from_local_folder(tmp_path, mirror):
    folder = download.download_split(SPLIT, tmp_path / "data", base_url=str(mirror),
                                     progress=False)
    assert folder == tmp_path / "data" / "nsynth-valid"
    assert nsynth.validate_split(folder) == []
    assert sorted(nsynth.read_split(folder)["note_str"]) == sorted(NOTES)
    assert not (tmp_path / "data" / "downloads" / download.archive_name(SPLIT)).exists()
    assert leftovers(tmp_path / "data") == []


def test_download_from_file_url_keeps_archive(tmp_path, mirror, archive_bytes, monkeypatch):
    monkeypatch.setenv(download.URL_ENV, mirror.as_uri())
    folder = download.download_split(SPLIT, tmp_path, progress=False, keep_archive=True)
    assert nsynth.validate_split(folder) == []
    kept = tmp_path / "downloads" / download.archive_name(SPLIT)
    assert kept.read_bytes() == archive_bytes


def test_download_over_http_then_reuse_without_network(tmp_path, server, caplog):
    caplog.set_level(logging.INFO, logger="instclf")
    folder = download.download_split(SPLIT, tmp_path, base_url=server.url, progress=False)
    assert nsynth.validate_split(folder) == []
    assert server.requests == [(f"/{download.archive_name(SPLIT)}", None)]
    assert [r.getMessage().split()[0] for r in caplog.records] == ["downloading", "verifying",
                                                                   "extracting"]
    caplog.clear()
    assert download.download_split(SPLIT, tmp_path, base_url=server.url) == folder
    assert caplog.messages == [f"{folder}: already there and valid, nothing to download"]
    assert len(server.requests) == 1
    (folder / "audio" / f"{NOTES[0]}.wav").unlink()
    download.download_split(SPLIT, tmp_path, base_url=server.url, progress=False)
    assert len(server.requests) == 2
    assert nsynth.validate_split(folder) == []


# --- fetch: resume, servers without Range, errors ---------------------------------------------


def test_fetch_resumes_partial_file_with_range(tmp_path, server, archive_bytes):
    dest = tmp_path / "a.tar.gz"
    half = len(archive_bytes) // 2
    dest.with_name("a.tar.gz.part").write_bytes(archive_bytes[:half])
    download.fetch(download.archive_url(SPLIT, server.url), dest, chunk_size=4096)
    assert server.requests[-1][1] == f"bytes={half}-"
    assert dest.read_bytes() == archive_bytes
    assert not dest.with_name("a.tar.gz.part").exists()


def test_fetch_restarts_when_server_ignores_range(tmp_path, server, archive_bytes):
    server.ignore_range = True
    dest = tmp_path / "a.tar.gz"
    dest.with_name("a.tar.gz.part").write_bytes(archive_bytes[:1000])
    download.fetch(download.archive_url(SPLIT, server.url), dest)
    assert server.requests[-1][1] == "bytes=1000-"
    assert dest.read_bytes() == archive_bytes


def test_fetch_of_complete_part_accepts_416(tmp_path, server, archive_bytes):
    dest = tmp_path / "a.tar.gz"
    dest.with_name("a.tar.gz.part").write_bytes(archive_bytes)
    download.fetch(download.archive_url(SPLIT, server.url), dest)
    assert server.requests == [(f"/{download.archive_name(SPLIT)}",
                                f"bytes={len(archive_bytes)}-")]
    assert dest.read_bytes() == archive_bytes


def test_fetch_resumes_after_dropped_connection(tmp_path, server, archive_bytes):
    server.cut_first_at = 5000
    dest = tmp_path / "a.tar.gz"
    download.fetch(download.archive_url(SPLIT, server.url), dest, chunk_size=1024)
    assert [r[1] for r in server.requests] == [None, "bytes=5000-"]
    assert dest.read_bytes() == archive_bytes


def test_fetch_missing_archive_names_url_and_leaves_nothing(tmp_path, server):
    url = f"{server.url}/nsynth-nope.jsonwav.tar.gz"
    with pytest.raises(InstclfError, match=f"{url} answered HTTP 404.*INSTCLF_NSYNTH_URL"):
        download.fetch(url, tmp_path / "a.tar.gz")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InstclfError, match="does not exist"):
        download.fetch(str(tmp_path / "missing.tar.gz"), tmp_path / "b.tar.gz")


def test_fetch_local_path_resumes_part(tmp_path, mirror, archive_bytes):
    dest = tmp_path / "a.tar.gz"
    dest.with_name("a.tar.gz.part").write_bytes(archive_bytes[:777])
    download.fetch(str(mirror / download.archive_name(SPLIT)), dest, chunk_size=1000)
    assert dest.read_bytes() == archive_bytes


# --- verify and extract -----------------------------------------------------------------------


def test_verify_summary(mirror):
    summary = download.verify_archive(mirror / download.archive_name(SPLIT), SPLIT)
    assert summary["notes"] == summary["wavs"] == len(NOTES)
    assert summary["bytes"] > len(NOTES) * nsynth.NOTE_SAMPLES * 2
    assert summary["official"] is False


@pytest.mark.parametrize("keep", ["half", "all but the gzip trailer"])
def test_truncated_archive_is_refused_and_leaves_no_folder(tmp_path, archive_bytes, keep):
    source = tmp_path / "mirror"
    source.mkdir()
    cut = len(archive_bytes) // 2 if keep == "half" else len(archive_bytes) - 8
    (source / download.archive_name(SPLIT)).write_bytes(archive_bytes[:cut])
    root = tmp_path / "data"
    hint = "delete it and run instclf data download --splits valid"
    with pytest.raises(InstclfError, match=hint):
        download.download_split(SPLIT, root, base_url=str(source), progress=False)
    archive = root / "downloads" / download.archive_name(SPLIT)
    with pytest.raises(InstclfError, match="truncated"):
        download.extract_archive(archive, root, SPLIT)
    assert not (root / "nsynth-valid").exists()
    assert leftovers(root) == []


@pytest.mark.parametrize("member", [
    ("../evil.txt", b"x"),
    ("/tmp/evil.txt", b"x"),
    ("nsynth-valid/../../evil.txt", b"x"),
    ("nsynth-test/examples.json", b"{}"),
    ("nsynth-valid/audio/link.wav", b"", tarfile.SYMTYPE, "/etc/passwd"),
])
def test_unsafe_member_is_refused(tmp_path, member):
    archive = build_archive(tmp_path / "a.tar.gz", extra=[member])
    pattern = f"(?s){re.escape(str(archive))}.*{re.escape(member[0])}"
    with pytest.raises(InstclfError, match=pattern):
        download.verify_archive(archive, SPLIT)
    root = tmp_path / "data"
    with pytest.raises(InstclfError, match=re.escape(member[0])):
        download.extract_archive(archive, root, SPLIT)
    assert not (root / "nsynth-valid").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert leftovers(root) == []


def test_missing_and_unlisted_wavs_are_all_listed(tmp_path):
    archive = build_archive(tmp_path / "a.tar.gz", listed=NOTES[:4], wavs=NOTES[1:])
    with pytest.raises(InstclfError) as error:
        download.verify_archive(archive, SPLIT)
    message = str(error.value)
    assert f"audio/{NOTES[0]}.wav: listed in examples.json but missing" in message
    assert f"audio/{NOTES[4]}.wav: not listed in examples.json" in message
    assert "2 problem(s)" in message


def test_archive_without_examples_json_is_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add(tar, "nsynth-valid/audio/x.wav", b"RIFF")
    with pytest.raises(InstclfError, match="examples.json: missing"):
        download.verify_archive(archive, SPLIT)


def test_extract_replaces_previous_folder_only_when_complete(tmp_path, mirror):
    root = tmp_path / "data"
    old = root / "nsynth-valid"
    old.mkdir(parents=True)
    (old / "marker").write_text("previous")
    short_wav = tmp_path / "short.tar.gz"
    with tarfile.open(short_wav, "w:gz") as tar:  # a WAV of the wrong length
        add(tar, "nsynth-valid/examples.json",
            json.dumps({NOTES[0]: example(NOTES[0], 0)}).encode())
        add(tar, f"nsynth-valid/audio/{NOTES[0]}.wav", wav_bytes(60)[:-1000])
    with pytest.raises(InstclfError, match="samples, expected 64000"):
        download.extract_archive(short_wav, root, SPLIT)
    assert (old / "marker").read_text() == "previous"
    download.extract_archive(mirror / download.archive_name(SPLIT), root, SPLIT)
    assert not (old / "marker").exists()
    assert nsynth.validate_split(old) == []
    assert leftovers(root) == []
