"""Small archives in the official NSynth layout (``nsynth-<split>.jsonwav.tar.gz``), built by
the tests that download, verify and train on them (test_download, test_nsynth_profile)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

from instclf import nsynth
from instclf.config import FAMILIES, SOURCES

SPLIT = "valid"
NOTES = (
    "guitar_acoustic_000-060-100",
    "guitar_acoustic_000-062-075",
    "bass_synthetic_001-040-127",
    "flute_acoustic_002-072-050",
    "keyboard_electronic_003-055-025",
)


def wav_bytes(pitch: int, harmonics: int = 1) -> bytes:
    """A 4 s, 16 kHz note: a tone at ``pitch`` with ``harmonics`` harmonics, decaying."""
    t = np.arange(nsynth.NOTE_SAMPLES) / nsynth.SAMPLE_RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1)
            if f0 * k < nsynth.SAMPLE_RATE / 2)
    y = 0.8 * y / np.abs(y).max() * np.exp(-t)  # official notes peak at 0.57 to 1.0
    buffer = io.BytesIO()
    sf.write(buffer, y, nsynth.SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def example(name: str, index: int) -> dict:
    """The examples.json entry of a note, with every key the official files have."""
    info = nsynth.parse_note_str(name)
    return {
        "note": index, "note_str": name, "instrument": index,
        "instrument_str": info["instrument_str"], "pitch": info["pitch"],
        "velocity": info["velocity"], "sample_rate": nsynth.SAMPLE_RATE,
        "qualities": [0] * len(nsynth.QUALITIES), "qualities_str": [],
        "instrument_family": FAMILIES.index(info["family"]),
        "instrument_family_str": info["family"],
        "instrument_source": SOURCES.index(info["source"]),
        "instrument_source_str": info["source"],
    }


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind=tarfile.REGTYPE,
        link: str = "") -> None:
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.mtime = kind, link, 0
    member.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    member.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(member, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def build_archive(path: Path, split: str = SPLIT, listed=NOTES, wavs=NOTES,
                  extra=(), sound=None) -> Path:
    """An archive like the official one: nsynth-<split>/examples.json + audio/*.wav.

    ``sound(name) -> bytes`` makes each WAV (default: a sine at the note's pitch).
    """
    top = f"nsynth-{split}"
    examples = {name: example(name, i) for i, name in enumerate(listed)}
    sound = sound or (lambda name: wav_bytes(nsynth.parse_note_str(name)["pitch"]))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        add(tar, top, kind=tarfile.DIRTYPE)
        add(tar, f"{top}/examples.json", json.dumps(examples).encode())
        add(tar, f"{top}/audio", kind=tarfile.DIRTYPE)
        for name in wavs:
            add(tar, f"{top}/audio/{name}.wav", sound(name))
        for args in extra:
            add(tar, *args)
    return path
