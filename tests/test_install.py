"""The install and its conventions (README, "Install"): pyproject.toml, the lock file
(constraints.txt), environment.yml and the Makefile agree; `python -m instclf --version` works;
`make lab` and `make app` need no browser; the results file records its environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from instclf import cli, instruments, report
from instclf.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "constraints.txt"
MAKEFILE = (ROOT / "Makefile").read_text()
README = (ROOT / "README.md").read_text()


def lock_pins() -> dict[str, str]:
    """The lock file as {canonical name: version}; every line is `name==version`."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and " " not in line, f"constraints.txt: {line!r} is no pin"
            pins[canonicalize_name(name)] = version
    return pins


def lock_python() -> str:
    """The Python the lock was made with, from its header (`make lock`)."""
    return re.search(r"Python (\d+\.\d+)\.\d+", LOCK.read_text())[1]


def make_variable(name: str) -> list[str]:
    """A `NAME := ...` variable of the Makefile, continuation lines included, as words."""
    match = re.search(rf"^{name} :?= ((?:.*\\\n)*.*)$", MAKEFILE, flags=re.M)
    return match[1].replace("\\\n", " ").split("#")[0].split()


def requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in listed]


def environment_yml() -> tuple[list[str], list[str]]:
    """environment.yml's conda dependencies and its pip section."""
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    return conda, pip


def test_the_lock_pins_every_dependency_inside_pyproject_ranges():
    pins = lock_pins()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in constraints.txt: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's "
            f"{requirement}: run make lock")
    assert "instclf" not in pins  # the package itself is installed editable, never pinned


def test_musicnn_is_pinned_alike_in_the_makefile_the_lock_and_environment_yml():
    pinned = make_variable("MUSICNN")[0]
    name, version = pinned.split("==")
    assert lock_pins()[name] == version
    assert f"pip install --no-deps {pinned}" in (ROOT / "environment.yml").read_text()
    assert f"--no-deps {pinned}" in README


def test_environment_yml_installs_pyproject_under_the_lock():
    """Every pyproject dependency reaches the conda environment through `-e .[dev]`, with the
    lock's versions (`-c constraints.txt`); whatever environment.yml pins agrees with the lock."""
    conda, pip = environment_yml()
    assert "-e .[dev]" in pip and "-c constraints.txt" in pip
    pins = lock_pins()
    for line in conda + [p for p in pip if not p.startswith("-")]:
        name, _, version = re.match(r"([A-Za-z0-9_.\-]+)\s*(==?|>=|<=)?\s*(\S*)", line).groups()
        name = canonicalize_name(name)
        if name == "python":
            assert version == lock_python(), "environment.yml's Python is not the lock's"
            assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(version)
        elif name in pins and version:
            assert version == pins[name], f"environment.yml pins {line}, the lock {pins[name]}"


def test_supported_pythons_agree_with_requires_python():
    supported = make_variable("SUPPORTED_PYTHONS")
    allowed = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert all(allowed.contains(v) for v in supported)
    first, last = Version(supported[0]), Version(supported[-1])
    assert not allowed.contains(f"{first.major}.{first.minor - 1}")
    assert not allowed.contains(f"{last.major}.{last.minor + 1}")
    assert lock_python() in supported
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported
    assert all(f"Python {v}" in README for v in supported)


def test_python_m_instclf_version():
    done = subprocess.run([sys.executable, "-m", "instclf", "--version"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"instclf {metadata.version('instclf')}"


def test_instclf_app_delegates_to_the_page_server(monkeypatch):
    from instclf import app

    calls = []
    monkeypatch.setattr(app, "main", lambda argv: calls.append(argv) or 0)
    monkeypatch.setenv("INSTCLF_PROFILE", "default")
    assert cli.main(["app", "--port", "9000", "--model", "m.keras", "--profile", "smoke"]) == 0
    assert calls == [["serve", "--port", "9000", "--model", "m.keras"]]
    assert os.environ["INSTCLF_PROFILE"] == "smoke"


def dry_run(target: str) -> str:
    """What `make -n TARGET` would run (nothing is run)."""
    done = subprocess.run(["make", "-n", target], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_only_the_targets_with_a_browser_ask_for_chromium():
    browser = make_variable("BROWSER_PACKAGES")
    assert "chromium" in browser and "chromium" not in make_variable("SYSTEM_PACKAGES")
    for target in ("lab", "app", "data"):
        assert "chromium" not in dry_run(target), f"make {target} asks for Chromium"
    for target in ("test", "reproduce", "bench"):
        assert "chromium" in dry_run(target), f"make {target} no longer installs Chromium"


def install_section() -> str:
    return README[README.index("## Install"):README.index("\n## ", README.index("## Install") + 1)]


def test_readme_recipes_name_every_system_package():
    section = install_section()
    for package in make_variable("SYSTEM_PACKAGES") + make_variable("BROWSER_PACKAGES"):
        assert package in section, f"README's Install section does not name {package}"
    assert "brew install fluid-synth libsndfile csound" in section
    assert "conda env create -f environment.yml" in section


def test_licence_file_and_table():
    declared = PYPROJECT["project"]["license"]  # a table today, an SPDX string with setuptools 77
    assert (declared["text"] if isinstance(declared, dict) else declared) == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    table = README[README.index("## Licences"):]
    for soundfont in instruments.SOUNDFONTS.values():
        assert soundfont.debian_package in table and soundfont.filename in table
    for asset in ("musicnn", "NSynth", "VGG19", "Csound", "Faust", "DawDreamer"):
        assert asset in table


def test_results_file_records_its_environment(tmp_path):
    found = report.environment()
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    for package in ("tensorflow", "keras", "librosa", "numpy"):
        assert found[package] == metadata.version(package)
    assert found["platform"] and found["machine"] and found["cpus"] >= 1
    profile = replace(get_profile("smoke"), data_dir=tmp_path)
    written = report.read_results(report.write_results(profile, {"models": {}}))
    assert written["environment"] == found and written["profile"] == "smoke"
