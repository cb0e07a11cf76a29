"""The web page (``make app``, ``instclf/page/app.ipynb``) in a real browser (README,
"Predict your own audio").

Voila serves the page on the smoke profile on a free port; headless Chromium (Debian's
``chromium``, driven by Playwright) uploads a rendered note through the page's upload button,
reads the predicted family and sees the spectrogram and the note explorer, then uploads a text
file named ``.wav`` and a file past the size limit and reads their errors. A second start
serves a read-only data root that holds only a model: the page predicts, shows no explorer
and writes nothing. The tests bound themselves (Voila start, page load and each upload have
their own timeouts) and always stop Voila and its kernel. Where Chromium is absent the browser
tests skip, saying why and how to install it (`make test` installs it where it can); with
``INSTCLF_REQUIRE_CHROMIUM`` set (``.ci/run``) they fail instead.
"""

from __future__ import annotations

import datetime
import http.client
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import ipywidgets
import nbformat
import pytest
from test_predict import read_only, snapshot

from instclf import FAMILIES, app, experiments, models, predict, widgets
from instclf.profiles import get_profile

START_TIMEOUT = 60  # s until Voila listens
PAGE_TIMEOUT = 90  # s until the upload button shows: a kernel imports TensorFlow, runs the page
UPLOAD_TIMEOUT = 30  # s from choosing a file to its prediction or error
TOTAL_BUDGET = 150  # s for the whole test, model check included
NOT_AUDIO = b"My practice notes: scales on Monday, arpeggios on Tuesday.\n" * 20


@pytest.fixture(scope="module")
def smoke():
    """The smoke profile with its best model on disk (trained in seconds if missing)."""
    profile = get_profile("smoke")
    experiments.best_model(profile)
    return profile


@pytest.fixture(scope="module")
def model_only(smoke, tmp_path_factory):
    """The smoke profile on a data root that holds only a copy of its best model (+ JSON)."""
    best = models.best_model_path(smoke)
    run = tmp_path_factory.mktemp("model-only") / "data" / "models" / "smoke" / best.parent.name
    run.mkdir(parents=True)
    for path in (best, best.with_suffix(".json")):
        shutil.copy2(path, run / path.name)
    return replace(smoke, data_dir=run.parents[2])


def _part(panel: ipywidgets.Box, css_class: str) -> ipywidgets.DOMWidget:
    return next(w for w in panel.children if css_class in w._dom_classes)


def test_upload_panel_shows_a_prediction_then_an_error(smoke):
    """The FileUpload callback with ipywidgets 8's value (a tuple of dicts), no browser."""
    predictor = predict.load_predictor(profile=smoke)
    wav = Path(app.demo_note(smoke)["path"]).read_bytes()
    panel = widgets.upload_panel(predictor)
    upload = next(w for w in panel.children if isinstance(w, ipywidgets.FileUpload))
    prediction, error, chart, spectrogram = (_part(panel, c) for c in (
        "instclf-prediction", "instclf-error", "instclf-chart", "instclf-spectrogram"))
    for name, content in (("note.wav", wav), ("notes.wav", NOT_AUDIO)):
        upload.value = ({"name": name, "type": "audio/wav", "size": len(content),
                         "content": memoryview(content),
                         "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
        if name == "note.wav":
            expected = predict.predict_audio(wav, predictor).idxmax()
            assert f"<b class='instclf-family'>{expected}</b>" in prediction.value
            assert error.value == "" and chart.value[:4] == spectrogram.value[:4] == b"\x89PNG"
            assert chart.layout.display is None and spectrogram.layout.display is None
        else:
            assert prediction.value == "" and chart.layout.display == "none"
            assert spectrogram.layout.display == "none"
            assert "notes.wav: not audio" in error.value


def test_page_takes_uploads_past_the_size_limit():
    """Larger than predict's limit still reaches the kernel, which refuses it with a message."""
    assert app.WEBSOCKET_MAX_BYTES > predict.MAX_BYTES + 2**20


def chromium_or_skip() -> str:
    """Chromium's path; where it is absent, a skip that says why and how to install it (a
    failure when ``INSTCLF_REQUIRE_CHROMIUM`` is set, as ``.ci/run`` does)."""
    try:
        return app.find_chromium()
    except Exception as error:  # an InstclfError that says how to install it
        if os.environ.get("INSTCLF_REQUIRE_CHROMIUM"):
            pytest.fail(str(error))
        pytest.skip(f"no browser test of the page on this machine: {error}")


def test_chromium_is_installed():
    assert Path(chromium_or_skip()).is_file()


def test_page_predicts_an_upload_and_refuses_what_is_not_a_note(smoke, tmp_path):
    start = time.monotonic()
    chromium_or_skip()  # skips (or fails) first with the install command, before Voila starts
    note = app.demo_note(smoke)
    wav = Path(note["path"]).read_bytes()
    probabilities = predict.predict_audio(wav, predict.load_predictor(profile=smoke))
    expected = predict.top_families(probabilities, k=1)[0][0]
    log = tmp_path / "voila.log"
    try:
        with app.serving(smoke, timeout=START_TIMEOUT, log_path=log,
                         options=("--show_tracebacks=True",)) as url, app.browser() as chromium:
            page = app.open_page(chromium, url, PAGE_TIMEOUT)
            loaded = time.monotonic() - start

            shown = app.upload(page, f"{note['note_str']}.wav", wav, UPLOAD_TIMEOUT)
            assert shown["error"] is None, shown["error"]
            assert shown["family"] in FAMILIES
            assert shown["family"] == expected, (shown, probabilities.round(3).to_dict())
            chart = page.wait_for_selector(app.CHART, state="visible",
                                           timeout=UPLOAD_TIMEOUT * 1000)
            box = chart.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100
            page.wait_for_selector(app.SPECTROGRAM, state="visible", timeout=UPLOAD_TIMEOUT * 1000)
            page.wait_for_selector(app.EXPLORER, state="visible", timeout=UPLOAD_TIMEOUT * 1000)
            page.locator(".instclf-upload").screenshot(path=str(tmp_path / "prediction.png"))

            refused = app.upload(page, "practice_notes.wav", NOT_AUDIO, UPLOAD_TIMEOUT)
            assert refused["family"] is None
            assert refused["error"] and "not audio" in refused["error"], refused
            assert "practice_notes.wav" in refused["error"]
            assert page.is_hidden(app.CHART) and page.is_hidden(app.SPECTROGRAM)

            too_large = tmp_path / "two_hours.wav"  # past Tornado's 10 MiB websocket default
            too_large.write_bytes(b"\0" * (predict.MAX_BYTES + 2**20))
            refused = app.upload(page, too_large.name, too_large, UPLOAD_TIMEOUT)
            too_large.unlink()
            assert refused["error"] and "too large" in refused["error"], refused
    except BaseException:
        if log.is_file():
            print(f"--- Voila's output ({log}):\n{log.read_text(errors='replace')[-6000:]}")
        raise
    took = time.monotonic() - start
    print(f"page ready after {loaded:.0f} s; whole test {took:.0f} s; "
          f"screenshot {tmp_path / 'prediction.png'}")
    assert (tmp_path / "prediction.png").stat().st_size > 10_000
    assert took < TOTAL_BUDGET, f"the browser test took {took:.0f} s"


def _get(url: str, path: str = "/", host: str | None = None, origin: str | None = None,
         until: str | None = None) -> tuple[int, str]:
    """A plain HTTP GET, as a script or another site's page sends it: the status and the body
    read until the regular expression ``until`` matches (else the first 2 kB)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PAGE_TIMEOUT)
    headers = {"Host": host or parts.netloc, **({"Origin": origin} if origin else {})}
    try:
        connection.request("GET", path, headers=headers)
        response, body = connection.getresponse(), ""
        while chunk := response.read1(4096).decode(errors="replace"):
            body += chunk
            if until is None or re.search(until, body):
                break
        return response.status, body
    finally:
        connection.close()


def test_page_refuses_other_hosts_and_origins_and_loads_past_its_kernel_limit(smoke, tmp_path):
    """DNS rebinding (another site's name pointed at 127.0.0.1) sends that name as Host: 403.
    With a limit of one kernel, a second page load is refused (503) until the first kernel,
    idle, is culled."""
    log = tmp_path / "voila.log"
    options = ("--BoundedKernelManager.max_kernels=1", "--MappingKernelManager.cull_interval=1",
               "--MappingKernelManager.cull_idle_timeout=3")
    try:
        with app.serving(smoke, timeout=START_TIMEOUT, log_path=log, options=options) as url:
            port = urlsplit(url).port
            assert _get(url, host=f"rebound.example:{port}")[0] == 403
            status, page = _get(url, until=r'"kernelId": "[0-9a-f-]+"')
            assert status == 200
            kernel = f"/api/kernels/{re.search(r'kernelId.: .([0-9a-f-]+)', page)[1]}"
            assert _get(url, kernel, host=f"localhost:{port}")[0] == 200
            assert _get(url, kernel, host=f"rebound.example:{port}")[0] == 403
            assert _get(url, kernel, origin=f"http://127.0.0.1:{port}")[0] == 200
            assert _get(url, kernel, origin="http://rebound.example")[0] == 404  # hidden
            status, busy = _get(url)
            assert status == 503 and "serves 1 visitors at once" in busy
            deadline = time.monotonic() + PAGE_TIMEOUT  # the notebook runs, then idles 3 s
            while _get(url, kernel)[0] == 200 and time.monotonic() < deadline:
                time.sleep(1)
            assert _get(url, kernel)[0] == 404, "the idle kernel was not culled"
            assert _get(url)[0] == 200  # its place is free again
    except BaseException:
        if log.is_file():
            print(f"--- Voila's output ({log}):\n{log.read_text(errors='replace')[-6000:]}")
        raise


def test_screenshot_is_retaken_only_when_the_model_or_the_page_changed(tmp_path):
    import os

    from instclf import app

    model, shot = tmp_path / "model.keras", tmp_path / "page.png"
    model.write_bytes(b"model")
    assert not app.screenshot_is_current(shot, model)  # no screenshot yet
    shot.write_bytes(b"png")
    newest = max(p.stat().st_mtime for p in (app.PROJECT_ROOT / s for s in app.PAGE_SOURCES))
    os.utime(model, (newest, newest))
    os.utime(shot, (newest + 10, newest + 10))
    assert app.screenshot_is_current(shot, model)
    os.utime(model, (newest + 20, newest + 20))  # the model was retrained after the shot
    assert not app.screenshot_is_current(shot, model)


def test_page_serves_a_read_only_root_that_holds_only_a_model(model_only, smoke, tmp_path):
    chromium_or_skip()
    root = model_only.data_dir
    wav = Path(app.demo_note(smoke)["path"]).read_bytes()  # from the project's own data root
    model = models.best_model_path(model_only).resolve()
    expected = predict.predict_audio(wav, predict.load_predictor(model)).idxmax()
    log = tmp_path / "voila.log"
    try:
        with read_only(root):
            before = snapshot(root)
            with app.serving(model_only, timeout=START_TIMEOUT, log_path=log,
                             options=("--show_tracebacks=True",)) as url, \
                    app.browser() as chromium:
                page = app.open_page(chromium, url, PAGE_TIMEOUT)
                assert app.upload(page, "my_note.wav", wav, UPLOAD_TIMEOUT) == {
                    "family": expected, "error": None}
                page.wait_for_selector(app.SPECTROGRAM, state="visible",
                                       timeout=UPLOAD_TIMEOUT * 1000)
                assert str(root) in page.inner_text(app.NO_DATASET)
                assert page.query_selector(app.EXPLORER) is None
                assert str(model) in page.inner_text(".instclf-model")
            assert snapshot(root) == before
    except BaseException:
        if log.is_file():
            print(f"--- Voila's output ({log}):\n{log.read_text(errors='replace')[-6000:]}")
        raise


def test_make_app_serves_the_best_recorded_model_or_the_one_named(model_only, tmp_path,
                                                                   monkeypatch):
    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    monkeypatch.setattr(experiments, "best_model", lambda *a, **k: pytest.fail("trained a model"))
    best = models.best_model_path(model_only)
    assert app.served_model(model_only) == best
    assert app.served_model(model_only, tmp_path / "other.keras") == tmp_path / "other.keras"
    monkeypatch.setenv(app.MODEL_ENV, str(tmp_path / "mine.keras"))
    assert app.served_model(model_only) == tmp_path / "mine.keras"
    assert app.dataset_notes(model_only) is None


def test_the_page_is_stored_without_outputs():
    page = nbformat.read(app.PAGE, as_version=4)
    code = [cell for cell in page.cells if cell.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "upload_panel" in code[0].source  # the upload comes first
