"""The page under load: concurrent browser sessions, with the page's kernel limits and without.

``make app``'s page (Voila, one kernel per page load) is served on 127.0.0.1 only, twice in
the same run, with the model ``make app`` serves (the default profile's best, else the smoke
profile's):
- bounded: the page's settings (``instclf.app``: at most ``MAX_KERNELS`` kernels, idle ones
  culled), the idle timeout shortened to ``IDLE_TIMEOUT`` s so that the run ends in minutes;
- Voila's defaults: no kernel limit, no culling (the alternative).
Each gets the same load: ``ABANDONED`` plain page loads that are read to the end and left (a
script, or a tab closed without its unload event), a pause of ``SETTLE`` s, then ``SESSIONS``
concurrent headless Chromium sessions (``app.browser``, ``open_page``, ``upload``) that load
the page and upload a note each. Reported: the peak memory held by the server and its kernels
(sum of RSS, and of PSS, which counts shared libraries once), the peak number of kernels, the
time to load the page and from upload to answer. Every wait is bounded. Writes
benchmarks/results/page.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from instclf import app, experiments, models, profiles

RESULTS = Path(__file__).resolve().parent / "results"
SESSIONS = 4  # concurrent browser sessions: about 1 GB of kernel each, on a 2-core machine
ABANDONED = 2  # page loads left before the sessions arrive
IDLE_TIMEOUT, CULL_INTERVAL = 10, 2  # s; the page's own are 600 and 60
SETTLE = 30  # s between the abandoned loads and the sessions: past IDLE_TIMEOUT + CULL_INTERVAL
PAGE_TIMEOUT, UPLOAD_TIMEOUT = 240, 90  # s, for SESSIONS kernels starting at once on 2 cores
SETTINGS = {
    "bounded": (f"--MappingKernelManager.cull_idle_timeout={IDLE_TIMEOUT}",
                f"--MappingKernelManager.cull_interval={CULL_INTERVAL}"),
    "voila_defaults": ("--BoundedKernelManager.max_kernels=0",
                       "--MappingKernelManager.cull_idle_timeout=0"),
}


def served_profile() -> profiles.Profile:
    """The default profile when it has a trained model (what ``make app`` serves), else smoke."""
    profile = profiles.get_profile("default")
    if models.best_model_path(profile) is None:
        profile = profiles.get_profile("smoke")
        experiments.best_model(profile)
    return profile


def voila_server() -> psutil.Process:
    """The Voila process this one started (``app.serving``)."""
    for child in psutil.Process().children(recursive=True):
        if "instclf.app" in child.cmdline() and "voila" in child.cmdline():
            return child
    raise RuntimeError("no Voila process found")


def held(server: psutil.Process) -> dict:
    """Memory (MB) of the server and its kernels now, and how many kernels there are."""
    rss = pss = kernels = 0
    for process in [server, *server.children(recursive=True)]:
        try:
            memory = process.memory_full_info()
            kernels += "ipykernel_launcher" in " ".join(process.cmdline())
        except psutil.Error:  # a kernel that ended meanwhile
            continue
        rss, pss = rss + memory.rss, pss + memory.pss
    return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20, "kernels": kernels}


class Sampler(threading.Thread):
    """Samples ``held`` every half second until stopped; keeps the peaks."""

    def __init__(self, server: psutil.Process):
        super().__init__(daemon=True)
        self.server, self.peak, self.done = server, {}, threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            now = held(self.server)
            self.peak = {k: max(v, self.peak.get(k, 0)) for k, v in now.items()}


def abandoned_load(url: str) -> None:
    """A page load read to its end and left: its kernel is never told to shut down."""
    with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT) as response:
        response.read()


def session(url: str, wav: bytes, index: int, out: list) -> None:
    """One visitor: load the page in its own browser, upload a note, report the times."""
    try:
        with app.browser() as chromium:
            start = time.perf_counter()
            page = app.open_page(chromium, url, PAGE_TIMEOUT)
            loaded = time.perf_counter()
            shown = app.upload(page, f"note_{index}.wav", wav, UPLOAD_TIMEOUT)
            out.append({"page_load_s": loaded - start, "upload_s": time.perf_counter() - loaded,
                        "family": shown["family"], "error": shown["error"]})
    except Exception as error:  # a refused or timed-out session is a result, not a crash
        out.append({"failed": f"{type(error).__name__}: {str(error)[:200]}"})


def in_threads(target, args_list: list[tuple]) -> None:
    threads = [threading.Thread(target=target, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PAGE_TIMEOUT + UPLOAD_TIMEOUT + 30)


def load(profile: profiles.Profile, options: tuple[str, ...], wav: bytes) -> dict:
    """The whole load on one server; its peaks, times and kernels at each step."""
    with app.serving(profile, options=options) as url:
        sampler = Sampler(voila_server())
        sampler.start()
        began = time.perf_counter()
        in_threads(abandoned_load, [(url,)] * ABANDONED)
        after_abandoned = held(sampler.server)["kernels"]
        time.sleep(SETTLE)
        before_sessions = held(sampler.server)["kernels"]
        sessions: list[dict] = []
        in_threads(session, [(url, wav, i, sessions) for i in range(SESSIONS)])
        sampler.done.set()
        sampler.join()
        served = [s for s in sessions if "upload_s" in s]
        return {"seconds": round(time.perf_counter() - began, 1),
                "peak_rss_mb": round(sampler.peak["rss_mb"]),
                "peak_pss_mb": round(sampler.peak["pss_mb"]),
                "peak_kernels": sampler.peak["kernels"],
                "kernels_after_abandoned_loads": after_abandoned,
                "kernels_when_sessions_arrive": before_sessions,
                "sessions_served": len(served),
                "failures": [s["failed"] for s in sessions if "failed" in s],
                "page_load_s": sorted(round(s["page_load_s"], 2) for s in served),
                "upload_to_answer_s": sorted(round(s["upload_s"], 3) for s in served),
                "answers": sorted(str(s["family"] or s["error"]) for s in served)}


def main() -> dict:
    profile = served_profile()
    wav = Path(profiles.get_profile("smoke").notes(progress=False).path.iloc[0]).read_bytes()
    result = {"benchmark": "page", "cpu_count": os.cpu_count(), "sessions": SESSIONS,
              "abandoned_loads": ABANDONED, "settle_s": SETTLE, "profile": profile.name,
              "model": str(models.best_model_path(profile).relative_to(profile.data_dir)),
              "max_kernels": app.MAX_KERNELS, "idle_timeout_s": IDLE_TIMEOUT,
              "cull_interval_s": CULL_INTERVAL}
    for name, options in SETTINGS.items():
        result[name] = load(profile, options, wav)
        print(f"{name}: {json.dumps(result[name])}", flush=True)
    bounded, defaults = result["bounded"], result["voila_defaults"]
    if bounded["upload_to_answer_s"]:
        result["median_upload_to_answer_s"] = statistics.median(bounded["upload_to_answer_s"])
        result["median_page_load_s"] = statistics.median(bounded["page_load_s"])
    if defaults["upload_to_answer_s"]:
        result["defaults_median_upload_to_answer_s"] = statistics.median(
            defaults["upload_to_answer_s"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "page.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["bounded"]["sessions_served"] == SESSIONS else 1)
