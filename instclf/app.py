"""The web page: Voila serves ``instclf/page/app.ipynb``, code hidden; a browser can drive it.

The page is notebook 07's widgets without its lessons: the upload first, then the answer, its
chart and the spectrogram the model heard, then the dataset's note explorer when the data
root holds the dataset. It needs only a model file: a data root that holds nothing but
``models/`` (read-only, even) serves it. ``make app`` runs ``python -m instclf.app serve``
(the profile of ``INSTCLF_PROFILE``, default ``default``; the model of ``--model`` or
``INSTCLF_MODEL``, else the profile's best); ``make reproduce`` runs ``python -m instclf.app
screenshot figures/07_prediction_page.png``; ``tests/test_app.py`` drives the page in
headless Chromium through the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from .config import PROJECT_ROOT, InstclfError
from .profiles import Profile, get_profile

# in a folder of its own: the kernel runs there, and instclf's modules must not shadow others
PAGE = Path(__file__).resolve().parent / "page" / "app.ipynb"
MODEL_ENV = "INSTCLF_MODEL"  # the model file the page serves (default: the profile's best)
DEFAULT_PORT = 8866
CHROMIUM_PATHS = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-gpu", "--disable-extensions", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--mute-audio")
# CSS selectors of the upload panel (instclf.widgets gives the elements these classes)
UPLOAD_BUTTON = ".instclf-upload .instclf-upload-button"
PREDICTED_FAMILY = ".instclf-upload .instclf-prediction .instclf-family"
CHART = ".instclf-upload img.instclf-chart"
SPECTROGRAM = ".instclf-upload img.instclf-spectrogram"
EXPLORER = ".instclf-explorer"
NO_DATASET = ".instclf-no-dataset"
ERROR = ".instclf-upload .instclf-error"


# An upload reaches the kernel as one websocket message, and Tornado closes the connection on
# a message over 10 MiB by default, without a word on the page. Allow well past
# predict.MAX_BYTES (50 MB), so that a larger file gets predict's "too large" message.
WEBSOCKET_MAX_BYTES = 128 * 2**20

# Voila starts one kernel per page load: a process that imports TensorFlow and loads the model,
# about 1 GB, so the model cannot be shared between visitors; each page loads it once and
# keeps it for all its uploads. Voila's defaults hold every kernel until its tab closes, and
# forever for a load that never closes (a script's GET). These bound the server's memory to
# about MAX_KERNELS GB (benchmarks/bench_page.py measures it):
MAX_KERNELS = 4  # page loads served at once; the next gets "busy" (HTTP 503) until one ends
CULL_IDLE_TIMEOUT = 600  # s without a message to or from a kernel, tab open or not: shut down
CULL_INTERVAL = 60  # s between two looks for such kernels
KERNEL_LIMITS = {"BoundedKernelManager": {"max_kernels": MAX_KERNELS},
                 "MappingKernelManager": {"cull_idle_timeout": CULL_IDLE_TIMEOUT,
                                          "cull_interval": CULL_INTERVAL,
                                          "cull_connected": True}}  # an open, idle tab too
BUSY = (f"This page serves {{}} visitors at once (each holds a model in memory) and has no "
        f"place free; try again in a few minutes: a page left idle for {CULL_IDLE_TIMEOUT // 60} "
        f"minutes frees its place.")
# Requests are served only under a loopback Host (127.0.0.1, ::1, localhost): a page of another
# site whose name was rebound to 127.0.0.1 sends its own name and is refused (403), and
# Jupyter's default Origin check refuses a websocket or API call from another origin.
HOST_CHECK = {"allow_remote_access": False, "local_hostnames": ["localhost"]}


def bounded_kernel_manager():
    """Voila's kernel manager, refusing a page load past ``max_kernels`` kernels (``make app``).

    0 or less: no limit (Voila's default, the alternative ``benchmarks/bench_page.py`` measures).
    """
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web
    from traitlets import Integer

    class BoundedKernelManager(AsyncMappingKernelManager):
        max_kernels = Integer(MAX_KERNELS, config=True, help="kernels held at once; 0: no limit")
        starting = 0  # kernels being started: not yet counted by len(self)

        async def start_kernel(self, *args, **kwargs):
            if 0 < self.max_kernels <= len(self) + self.starting:
                busy = BUSY.format(self.max_kernels)
                raise web.HTTPError(503, busy, reason=busy)  # Voila's error page shows reason
            self.starting += 1
            try:
                return await super().start_kernel(*args, **kwargs)
            finally:
                self.starting -= 1

    return BoundedKernelManager


def run_voila(argv: list[str]) -> None:
    """Voila's command line (``voila ARGS``), with room for uploads up to the size limit, the
    kernel manager of ``bounded_kernel_manager`` and the Host check."""
    from traitlets.config import Config
    from voila.app import Voila

    config = Config({**KERNEL_LIMITS, "VoilaConfiguration": {
        "multi_kernel_manager_class": bounded_kernel_manager()}})  # options given override it
    Voila.launch_instance(argv=argv, config=config, tornado_settings={
        "websocket_max_message_size": WEBSOCKET_MAX_BYTES, **HOST_CHECK})


def voila_command(port: int, notebook: Path = PAGE, *options: str) -> list[str]:
    """The command that serves ``notebook`` on ``http://127.0.0.1:<port>/``, code hidden.

    ``options`` may change the kernel limits: ``--BoundedKernelManager.max_kernels=0`` and
    ``--MappingKernelManager.cull_idle_timeout=0`` give Voila's defaults."""
    return [sys.executable, "-m", "instclf.app", "voila", str(notebook), f"--port={port}",
            "--no-browser", "--Voila.ip=127.0.0.1", *options]


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM Voila (it shuts its kernels down), then SIGKILL it and any kernel left."""
    try:
        import psutil

        children = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # psutil missing or Voila already gone: nothing more to find
        children = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()


@contextlib.contextmanager
def serving(profile: Profile, port: int | None = None, timeout: float = 60,
            log_path: Path | None = None, options: tuple[str, ...] = (),
            model: Path | None = None):
    """Voila serving the page on the profile (its name and data root); yields the URL.

    The page predicts with ``model`` (default: the profile's best recorded model). Waits
    until the server listens (at most ``timeout`` s), and always stops it, with its kernels,
    on leaving. Its output goes to ``log_path`` (default: a temporary file), quoted in the
    error if it does not start.
    """
    port = port or free_port()
    env = {**os.environ, "INSTCLF_PROFILE": profile.name,
           "INSTCLF_DATA_DIR": str(profile.data_dir)}
    env.pop(MODEL_ENV, None)
    if model is not None:
        env[MODEL_ENV] = str(model)
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "voila.log"
        log = stack.enter_context(open(log_path, "wb"))
        process = subprocess.Popen(voila_command(port, PAGE, *options), env=env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = Path(log_path).read_text(errors="replace")[-3000:]
                    raise InstclfError(f"Voila did not start on port {port} within {timeout:.0f} s"
                                       f" (exit code {process.poll()}); its output:\n{tail}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}/"
        finally:
            _stop(process)


def find_chromium() -> str:
    """The path of the Chromium binary (Debian's ``chromium`` package)."""
    for candidate in CHROMIUM_PATHS:
        found = shutil.which(candidate)
        if found:
            return found
    raise InstclfError(f"Chromium not found (looked for {', '.join(CHROMIUM_PATHS)}); install "
                       "it with: make system (or: sudo apt-get install -y chromium)")


@contextlib.contextmanager
def browser():
    """Headless Chromium driven by Playwright (never Playwright's own browser download)."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(chromium, url: str, timeout: float = 90):
    """A new page on ``url``, returned once the upload button has appeared."""
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url, wait_until="commit", timeout=timeout * 1000)
    page.wait_for_selector(UPLOAD_BUTTON, state="visible", timeout=timeout * 1000)
    return page


def upload(page, name: str, content: bytes | Path, timeout: float = 30) -> dict:
    """Upload a file through the page's upload button; wait for its prediction or its error.

    ``content`` is the file's bytes, or its path (Playwright takes at most 50 MB as bytes);
    a path's own name is the name uploaded.

    Returns ``{"family": ..., "error": ...}`` (one of them ``None``). Give each upload of a
    page its own ``name``: the status line naming it tells this result from the last. The
    FileUpload widget keeps its ``<input type=file>`` out of the document, so the file goes
    through the file chooser its button opens.
    """
    with page.expect_file_chooser(timeout=timeout * 1000) as chooser:
        page.click(UPLOAD_BUTTON, timeout=timeout * 1000)
    if isinstance(content, Path):
        name = content.name
        chooser.value.set_files(str(content))
    else:
        chooser.value.set_files([{"name": name, "mimeType": "audio/wav", "buffer": content}])
    # the kernel answers by changing the prediction or the error element; wait for either
    page.wait_for_function("""(name) => {
        const status = document.querySelector('.instclf-upload .instclf-status');
        const family = document.querySelector('%s');
        const error = document.querySelector('%s');
        return status !== null && status.innerText.includes(name) &&
               (family !== null || (error !== null && error.innerText.trim().length > 0));
    }""" % (PREDICTED_FAMILY, ERROR), arg=name, timeout=timeout * 1000)
    family = page.query_selector(PREDICTED_FAMILY)
    error = page.inner_text(ERROR).strip()
    return {"family": family.inner_text().strip() if family else None, "error": error or None}


def demo_note(profile: Profile) -> pd.Series:
    """The note the screenshot uploads: a guitar of a held-out instrument (test split).

    Needs the profile's notes (made available first); notebook 07 and ``make reproduce``.
    """
    from . import subsets

    notes = profile.notes(progress=False)
    picked = subsets.one_note_per_family(notes[notes["split"] == "test"])
    guitars = picked[picked["family"] == "guitar"]
    return (guitars if len(guitars) else picked).iloc[0]


# --- what the page shows (instclf/page/app.ipynb runs these in its kernel) ------------------

def page_predictor(profile: Profile):
    """The page's classifier: the model file of ``INSTCLF_MODEL``, else the profile's best
    recorded model. Reads nothing but model files."""
    from . import predict

    return predict.load_predictor(os.environ.get(MODEL_ENV) or None, profile)


def dataset_notes(profile: Profile) -> pd.DataFrame | None:
    """The notes of the profile's sources when they are on disk, else None; never renders,
    downloads or writes (the page's note explorer)."""
    from .sources.base import read_notes

    try:
        return read_notes(profile.sources, profile.data_dir, progress=False, ensure=False)
    except InstclfError:
        return None


def explorer_section(profile: Profile, predictor):
    """The page's note explorer under its heading, or a line saying it needs the dataset."""
    import ipywidgets

    from . import widgets

    notes = dataset_notes(profile)
    if notes is None:
        return ipywidgets.HTML(
            f"<p><i>The note explorer shows the notes of the dataset; "
            f"{html.escape(str(profile.data_dir))} holds none (instclf data render makes it)."
            "</i></p>").add_class("instclf-no-dataset")
    heading = ipywidgets.HTML("<h2>Notes of the dataset</h2><p>Pick a family, an instrument, a "
                              "pitch and a velocity: hear the note and see what the model "
                              "answers beside its true family.</p>")
    return ipywidgets.VBox([heading, widgets.dataset_explorer(notes, predictor)])


def model_note(predictor):
    """One line on the page naming the model: backbone, profile, validation loss, file."""
    import ipywidgets

    meta = predictor.meta
    trained = f", trained on the {meta['profile']} profile" if meta.get("profile") else ""
    loss = meta.get("best_val_loss")
    loss = f" (validation loss {loss:.3f})" if isinstance(loss, (int, float)) else ""
    return ipywidgets.HTML(
        f"<p><small>Model: {html.escape(str(meta.get('backbone', 'unnamed')))}{trained}{loss};"
        f" {html.escape(str(predictor.path))}</small></p>").add_class("instclf-model")


PAGE_SOURCES = ("instclf/app.py", "instclf/widgets.py", "instclf/predict.py", "instclf/plots.py",
                "instclf/page/app.ipynb")


def screenshot_is_current(path: Path, model_path: Path) -> bool:
    """True if ``path`` is newer than the model and every file the page is made of."""
    path = Path(path)
    if not path.is_file():
        return False
    inputs = [Path(model_path), *(PROJECT_ROOT / source for source in PAGE_SOURCES)]
    return all(path.stat().st_mtime > p.stat().st_mtime for p in inputs if p.exists())


def screenshot(path: Path, profile: Profile | None = None, timeout: float = 300) -> Path:
    """Save the upload panel of the web page after a prediction as a PNG (``make reproduce``).

    Trains the profile's best model first if it is missing, so the page loads quickly.
    """
    from . import experiments, storage

    profile = profile or get_profile()
    model = experiments.best_model(profile).path
    note = demo_note(profile)
    with serving(profile, model=model) as url, browser() as chromium:
        page = open_page(chromium, url, timeout)
        shown = upload(page, f"{note['note_str']}.wav", Path(note["path"]).read_bytes(), timeout)
        if shown["family"] is None:
            raise InstclfError(f"the web page gave no prediction: {shown['error']}")
        for image in (CHART, SPECTROGRAM):
            page.wait_for_selector(image, state="visible", timeout=timeout * 1000)
        with storage.atomic_path(Path(path)) as tmp:
            page.locator(".instclf-upload").screenshot(path=str(tmp), timeout=timeout * 1000)
    return Path(path)


def served_model(profile: Profile, model: str | Path | None = None) -> Path:
    """The model ``make app`` serves: ``model``, else ``INSTCLF_MODEL``, else the profile's
    best recorded model; only when there is none at all is the best backbone trained first."""
    from . import models

    model = model or os.environ.get(MODEL_ENV) or models.best_model_path(profile)
    if model is not None:
        return Path(model).expanduser().resolve()
    from . import experiments

    print(f"profile {profile.name} has no trained model: training {models.BEST_EXPERIMENT} first",
          flush=True)
    try:
        return experiments.best_model(profile, progress=print).path
    except OSError as error:
        raise InstclfError(f"profile {profile.name} has no trained model and training one in "
                           f"{profile.data_dir} failed ({error}); give a model file: "
                           "make app MODEL=PATH") from None


def serve(port: int = DEFAULT_PORT, profile: Profile | None = None,
          model: str | Path | None = None) -> None:
    """``make app``: find (or train) the model, check it loads, then become Voila serving the
    page with it.

    The process is replaced by Voila (``exec``), so Ctrl-C reaches it and stops its kernels.
    """
    from . import predict

    profile = profile or get_profile()
    path = served_model(profile, model)
    predictor = predict.load_predictor(path)  # a bad file fails here, in one line
    print(f"model {path} ({predictor.meta.get('backbone', 'unnamed')})\nserving the page on "
          f"http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    env = {**os.environ, "INSTCLF_PROFILE": profile.name,
           "INSTCLF_DATA_DIR": str(profile.data_dir), MODEL_ENV: str(path)}
    command = voila_command(port)
    os.chdir(PROJECT_ROOT)
    os.execve(command[0], command, env)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["voila"]:  # what voila_command runs: Voila's own options follow
        run_voila(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m instclf.app",
                                     description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the page with Voila (make app)")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--model", help=f"a .keras file saved by instclf (default: "
                              f"${MODEL_ENV}, else the profile's best trained model)")
    commands.add_parser("voila", help="Voila itself, its options after it (what serve runs)")
    shot = commands.add_parser("screenshot", help="save the page after a prediction as a PNG")
    shot.add_argument("path", type=Path)
    shot.add_argument("--if-stale", action="store_true",
                      help="skip when the file is newer than the model and the page's sources")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.port, model=args.model)  # does not return
        start = time.perf_counter()
        if args.if_stale:
            from . import experiments

            model_path = experiments.best_model(get_profile()).path
            if screenshot_is_current(args.path, model_path):
                print(f"web page screenshot: {args.path} is up to date")
                return 0
        path = screenshot(args.path)
        print(f"web page screenshot: {path} ({time.perf_counter() - start:.0f} s)")
        return 0
    except InstclfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
