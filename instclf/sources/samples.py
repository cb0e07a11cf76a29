"""The sampled source: real instruments, recorded note by note, played as a sampler plays them.

Its notes come from the tonejs-instruments sample library (samples CC-BY 3.0), published on
npm one package per instrument (:data:`PACKAGES`): recordings of real violins, horns,
guitars, a piano, a harmonium, edited for consistency by its author. It is the project's
only lineage of real recordings; every other source is synthesised or a General MIDI bank.

One instrument is one package; its NSynth family and source follow from the General MIDI
program it is listed with (:data:`instclf.instruments.GM_PROGRAMS`). A pitch without a sample
of its own is the nearest sample played faster or slower, at most :data:`MAX_SHIFT`
semitones away, as a sampler does; pitches further from every sample are not played. Each
note is the sample's first :data:`render.HOLD_SECONDS` seconds with a short release, then the
way of every rendered note (:func:`instclf.render.render_notes`). A family with two or more
instruments here has a share of them held out.

The packages are installed like the soundfonts, once, before anything renders: ``make``
fetches them (``instclf data samples``) from the npm registry (or ``INSTCLF_SAMPLES_URL``: a
folder or URL holding the same tarballs) into the environment, ``<sys.prefix>/share/instclf/
samples/`` (or ``INSTCLF_SAMPLES_DIR``), each checked against its published SHA-1. Rendering
reads them there and never downloads.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .. import download, render, storage, subsets
from ..config import FAMILIES, InstclfError
from ..instruments import GM_PROGRAMS
from .base import Source
from .synth import level

REGISTRY = "https://registry.npmjs.org"
URL_ENV = "INSTCLF_SAMPLES_URL"
DIR_ENV = "INSTCLF_SAMPLES_DIR"
FETCH_HINT = "instclf data samples (make does it)"
MAX_SHIFT = 2  # semitones a sample is played away from its own pitch
FADE_SECONDS = 0.25  # the fade after the held part (the recordings sustain longer)
FIRST_INDEX = 5000  # instrument_str numbers 5000-5999 of each family belong to this source
SAMPLES_VERSION = 2  # bump when a change to this module changes the rendered bytes
# A sample starts at its first sample above this, relative to its peak: the MP3 encoder's
# delay and the near-silent lead-in before the attack (6 to 35 ms) are dropped, so a note
# starts with its sound as every rendered note does (and as predict.find_onset cuts an upload)
LEAD_IN_DB = -90.0
INSTRUMENT_KEYS = ("package", "version", "program", "family", "source", "instrument")
SAMPLE_NAME = re.compile(r"^package/(?P<letter>[A-G])(?P<sharp>s?)(?P<octave>-?\d)\.mp3$")
LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True)
class Package:
    """One npm package of samples: its instrument name, version, published SHA-1 of the
    tarball, and the General MIDI program that gives its family."""

    name: str
    version: str
    sha1: str
    program: int

    @property
    def npm_name(self) -> str:
        return f"tonejs-instrument-{self.name}-mp3"

    @property
    def tarball(self) -> str:
        return f"{self.npm_name}-{self.version}.tgz"


#   instrument        version  SHA-1 of the tarball (npm's dist.shasum)       GM program
PACKAGE_TABLE = """
    bass-electric     1.1.2    79eadbeb4e9752b7b976acfcfc663a3173b6f946       33
    bassoon           1.1.2    5d3b2449f5b414eddfdb7c218554cbf333bce238       70
    cello             1.1.1    246e801b80accdbe9481a9a9b1bb212aa9346d90       42
    clarinet          1.1.2    f5900a1c8e7e7708fe2c154f8108ea1e9b044f53       71
    contrabass        1.1.2    ead51151ed8073c30330b5be4a6d26117b5f77cc       43
    flute             1.1.2    232d9cb3757dfb935fb196dec6def6d8ce26ca80       73
    french-horn       1.1.2    d9ffb0d8f6bc93b86a2f467bdedf66df06073f18       60
    guitar-acoustic   1.1.2    c62d7ee9d77a13379a93086c15bc03080b6cc299       25
    guitar-electric   1.1.1    f039a478cceeb9990c4ec8050619dfe76bd35225       27
    guitar-nylon      1.1.1    0c3263bae8cd836998c3a66470c41fde5df3bbd1       24
    harmonium         1.1.1    bc1769d809b65734027fd15e5e79834c682182f9       20
    harp              1.1.1    172e570db9044987d7839b1b0bb7f995f80d28d1       46
    organ             1.1.1    7db291ccb71ca877d21e78fe78ded782de668a99       19
    piano             1.1.2    3f4072fde6be8790ed16802411cebc6f037de346        0
    saxophone         1.1.2    0b79ff7112e161f88ef5648de4f5ca3e95511727       65
    trombone          1.1.2    fe18334b9f78d39f40cbf1ce9817e292624f7632       57
    trumpet           1.1.2    3a4734ca9dbf35e575a28395ae65fe934fb921ba       56
    tuba              1.1.2    ce6e20a2de41d218ce43843bd92b89c6dc9ec38b       58
    violin            1.1.1    f8730c3699b90d7bdba6e9d982b344724d5f2fa7       40
    xylophone         1.1.2    5ba15a754b884deee7333c02f433ab4c1eaa37e5       13
"""

PACKAGES = tuple(Package(name, version, sha1, int(program))
                 for name, version, sha1, program in map(str.split,
                                                         PACKAGE_TABLE.strip().splitlines()))


def sample_pitch(member: str) -> int | None:
    """The MIDI pitch of a sample file of a package (``package/As3.mp3`` -> 58), or None for
    any other file."""
    found = SAMPLE_NAME.match(member)
    if not found:
        return None
    return (12 * (int(found["octave"]) + 1) + LETTERS[found["letter"]]
            + (1 if found["sharp"] else 0))


def samples_in(tarball: Path) -> dict[int, str]:
    """Each sampled pitch of a package's tarball and the member that holds it."""
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
    return {pitch: member for member in sorted(members)
            if (pitch := sample_pitch(member)) is not None}


def playable_pitches(sampled, low: int, high: int) -> list[int]:
    """The pitches from ``low`` to ``high`` within :data:`MAX_SHIFT` of a sampled pitch."""
    sampled = sorted(sampled)
    return [p for p in range(low, high + 1) if any(abs(p - s) <= MAX_SHIFT for s in sampled)]


def nearest_sample(sampled, pitch: int) -> int:
    """The sampled pitch a note is played from (the lower one of two as near)."""
    return min(sorted(sampled), key=lambda s: abs(pitch - s))


def package_url(package: Package, base_url: str | None = None) -> str:
    """Where a package's tarball is: the npm registry, or ``base_url`` / ``INSTCLF_SAMPLES_URL``
    (a folder or URL that holds the tarballs by their file names)."""
    base = base_url or os.environ.get(URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{package.tarball}"
    return f"{REGISTRY}/{package.npm_name}/-/{package.tarball}"


def samples_dir() -> Path:
    """Where the packages are installed: ``INSTCLF_SAMPLES_DIR``, else the environment's
    ``share/instclf/samples``."""
    return Path(os.environ.get(DIR_ENV) or Path(sys.prefix) / "share" / "instclf" / "samples")


def is_fetched(package: Package, folder: Path) -> bool:
    """Whether ``folder`` holds the package's published tarball."""
    path = Path(folder) / package.tarball
    return path.is_file() and storage.file_digest(path) == package.sha1


def fetch_package(package: Package, folder: Path, base_url: str | None = None) -> Path:
    """The package's tarball in ``folder``, downloaded when missing; an error (and no file
    kept) when its SHA-1 is not the published one."""
    path = Path(folder) / package.tarball
    if is_fetched(package, folder):
        return path
    url = package_url(package, base_url)
    try:
        download.fetch(url, path)
    except (OSError, InstclfError) as error:
        raise InstclfError(f"could not fetch the samples of {package.name} from {url}: {error}; "
                           f"set {URL_ENV} to a folder holding {package.tarball}") from error
    if (found := storage.file_digest(path)) != package.sha1:
        path.unlink()
        raise InstclfError(f"{url} is not the published {package.tarball} (SHA-1 {found}, "
                           f"expected {package.sha1}); nothing was kept")
    return path


@lru_cache(maxsize=8)
def _decoded(tarball: str, member: str) -> tuple[np.ndarray, int]:
    with tarfile.open(tarball) as tar:
        data = tar.extractfile(member).read()
    y, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return y.mean(axis=1), rate


def lead_in(y: np.ndarray) -> int:
    """Samples before the first one within :data:`LEAD_IN_DB` of the peak."""
    loud = np.abs(y) > np.abs(y).max() * 10 ** (LEAD_IN_DB / 20)
    return int(np.argmax(loud))


def play_sample(y: np.ndarray, rate: int, shift: int) -> np.ndarray:
    """A 48 kHz note from a sample recorded at ``rate`` (from the end of its lead-in,
    :func:`lead_in`), ``shift`` semitones higher (played faster, as a sampler does): held :data:`render.HOLD_SECONDS`, then faded out over
    :data:`FADE_SECONDS`, silent to the end of the note."""
    import librosa  # what render's workers need only for this source

    played_rate = rate * 2 ** (shift / 12)
    y = y[lead_in(y):]
    y48 = librosa.resample(y.astype(np.float64), orig_sr=played_rate,
                           target_sr=render.RENDER_RATE, res_type="soxr_hq")
    seconds = render.HOLD_SECONDS + render.RELEASE_SECONDS
    note = np.zeros(seconds * render.RENDER_RATE)
    hold = render.HOLD_SECONDS * render.RENDER_RATE
    fade = int(FADE_SECONDS * render.RENDER_RATE)
    kept = min(len(y48), hold + fade)
    note[:kept] = y48[:kept]
    envelope = np.ones(hold + fade)
    envelope[hold:] = 0.5 * (1 + np.cos(np.linspace(0, np.pi, fade)))
    note[:hold + fade] *= envelope
    return level(note)


def render_instrument(inst: dict, root: Path) -> dict:
    """Render one package's notes that are not on disk yet (a render's worker)."""
    sampled = {int(p): m for p, m in inst["samples"].items()}

    def play(pitch: int, velocity: int) -> np.ndarray:
        nearest = nearest_sample(sampled, pitch)
        y, rate = _decoded(inst["tarball"], sampled[nearest])
        return play_sample(y, rate, pitch - nearest)

    return render.render_notes(inst, root, play)


def plan_instruments(source: "SampleLibrary", tarballs: dict[str, Path]) -> list[dict]:
    """Every package as an instrument, with its samples, held-out flag and notes;
    deterministic for the source's seed. Instrument ``k`` of a family is named
    ``<family>_<source>_<FIRST_INDEX + k>``."""
    by_family: dict[str, list[Package]] = {}
    for package in source.packages:
        by_family.setdefault(GM_PROGRAMS[package.program].family, []).append(package)
    plan = []
    for family, packages in by_family.items():
        flags = ([False] if len(packages) == 1 else
                 subsets.heldout_flags(len(packages), source.heldout_fraction, source.seed,
                                       family))
        for k, (package, heldout) in enumerate(zip(packages, flags)):
            program = GM_PROGRAMS[package.program]
            samples = samples_in(tarballs[package.name])
            if not samples:
                raise InstclfError(f"{tarballs[package.name]} holds no sample named like "
                                   "package/C4.mp3")
            inst = {
                "package": package.name, "version": package.version,
                "program": package.program, "family": family, "source": program.source,
                "heldout": heldout, "seed": source.seed,
                "instrument": (FIRST_INDEX + FAMILIES.index(family)) * 1000 + k,
                "instrument_str": f"{family}_{program.source}_{FIRST_INDEX + k}",
                "pitches": playable_pitches(samples, program.low, program.high),
                "samples": {str(p): m for p, m in samples.items()},
                "tarball": str(tarballs[package.name]),
            }
            inst["notes"] = render._choose_notes(inst, source)
            plan.append(inst)
    return plan


@dataclass(frozen=True)
class SampleLibrary(Source):
    """Every package of ``packages``, ``notes_per_instrument`` notes each (None: every
    playable pitch at every velocity); one dynamic was recorded, so ``velocities`` only
    name the notes."""

    packages: tuple[Package, ...] = PACKAGES
    notes_per_instrument: int | None = 24
    velocities: tuple[int, ...] = (100,)
    heldout_fraction: float = 0.2
    seed: int = 0

    kind = "samples"
    renders = True

    def stamp(self) -> dict:
        """What the rendered bytes depend on; stored as ``render.json`` beside the splits."""
        return {"samples_version": SAMPLES_VERSION,
                "packages": [[p.name, p.version, p.sha1, p.program] for p in self.packages],
                "notes_per_instrument": self.notes_per_instrument,
                "velocities": list(self.velocities), "heldout_fraction": self.heldout_fraction,
                "seed": self.seed}

    def is_ready(self, data_dir: Path) -> bool:
        return render.is_written(self.root(data_dir), self.stamp())

    def fetch(self, progress: bool = True, base_url: str | None = None) -> dict[str, Path]:
        """Install every package's tarball in :func:`samples_dir` (downloaded once);
        ``instclf data samples``. By instrument name."""
        folder = samples_dir()
        return {package.name: fetch_package(package, folder, base_url)
                for package in tqdm(self.packages, desc="fetching samples", unit="package",
                                    disable=not progress)}

    def installed(self) -> dict[str, Path]:
        """Every package's installed tarball, by instrument name; an error naming what is
        missing and the command that installs it."""
        folder = samples_dir()
        missing = [p.tarball for p in self.packages if not is_fetched(p, folder)]
        if missing:
            raise InstclfError(f"{len(missing)} sample package(s) not installed in {folder} "
                               f"(first: {missing[0]}); install them with: {FETCH_HINT}")
        return {p.name: folder / p.tarball for p in self.packages}

    def plan(self) -> list[dict]:
        return plan_instruments(self, self.installed())

    def render(self, data_dir: Path, workers: int | None = None, progress: bool = True,
               shard: tuple[int, int] | None = None) -> render.RenderReport:
        """Render (or resume rendering) into :meth:`root` from the installed packages."""
        return render.render_planned(self.plan(), self.stamp(), self.root(data_dir),
                                     render_one=render_instrument, keys=INSTRUMENT_KEYS,
                                     workers=workers, progress=progress, shard=shard)

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        return pd.Series(self.kind, index=notes.index)

    def settings(self) -> dict:
        return {**super().settings(), "packages": [asdict(p) for p in self.packages]}
