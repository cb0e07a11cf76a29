"""The static pages of the executed notebooks: ``reports/NN_slug.html`` (make reproduce).

A page is nbconvert's HTML export of an executed notebook (``reports/NN_slug.ipynb``), with
every sound that ``IPython.display.Audio`` embeds as WAV re-encoded to MP3 (libsndfile's LAME,
variable bit rate, same sample rate and length: about a tenth of the size), which every current
browser plays. Images stay PNG. The pages are small enough to keep in the repository, so a
reader sees every plot and hears every note without installing anything.
``make reproduce`` runs ``python -m instclf.pages reports/NN_slug.ipynb ...``;
``tests/test_pages.py`` exports through the same functions.
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import sys
from pathlib import Path

import nbformat
import soundfile as sf
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor

from . import storage
from .config import InstclfError

# the <source> element of IPython.display.Audio's HTML output (audio/x-wav: made from a file)
WAV_SOURCE = re.compile(
    r'src="data:audio/(?:x-)?wav;base64,([A-Za-z0-9+/=]+)" type="audio/(?:x-)?wav"')
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"  # a notebook's saved widgets


def mp3(wav: bytes) -> bytes:
    """A WAV file's sound as MP3 at the same sample rate and length."""
    if "MP3" not in sf.available_formats():
        raise InstclfError(f"libsndfile {sf.__libsndfile_version__} writes no MP3: install "
                           "soundfile>=0.12 from its wheel (it bundles a libsndfile that does)")
    samples, rate = sf.read(io.BytesIO(wav))
    out = io.BytesIO()
    sf.write(out, samples, rate, format="MP3")
    return out.getvalue()


def mp3_base64(wav: str) -> str:
    """:func:`mp3` between base64 strings, as data URIs and saved widget buffers hold them."""
    return base64.b64encode(mp3(base64.b64decode(wav))).decode("ascii")


def compress_audio(html: str) -> str:
    """An output's HTML with each embedded WAV source (``IPython.display.Audio``) as MP3."""
    return WAV_SOURCE.sub(
        lambda match: f'src="data:audio/mpeg;base64,{mp3_base64(match[1])}" type="audio/mpeg"',
        html)


def compress_widget_audio(widgets: dict) -> None:
    """Each saved ``ipywidgets.Audio`` in a notebook's widget state (notebook 07) as MP3."""
    for model in widgets.get(WIDGET_STATE, {}).get("state", {}).values():
        if model["model_name"] == "AudioModel" and model["state"].get("format") == "wav":
            model["state"]["format"] = "mp3"
            for buffer in model.get("buffers", []):  # its value, base64
                if buffer["data"]:
                    buffer["data"] = mp3_base64(buffer["data"])


class CompressAudio(Preprocessor):
    """nbconvert preprocessor: every sound of the notebook as MP3 (:func:`compress_audio`,
    :func:`compress_widget_audio`)."""

    def preprocess(self, nb, resources):
        compress_widget_audio(nb.metadata.get("widgets", {}))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text/html" in output.get("data", {}):
                output.data["text/html"] = compress_audio(output.data["text/html"])
        return cell, resources


def page(notebook: nbformat.NotebookNode) -> str:
    """The static page of an executed notebook: nbconvert's HTML, every sound as MP3."""
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(CompressAudio, enabled=True)
    return exporter.from_notebook_node(notebook)[0]


def write_page(notebook: Path) -> Path:
    """Write an executed notebook's page beside it: ``NN_slug.ipynb`` to ``NN_slug.html``."""
    path = Path(notebook).with_suffix(".html")
    storage.write_bytes(path, page(nbformat.read(notebook, as_version=4)).encode("utf-8"))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m instclf.pages NOTEBOOK...`` (``make reproduce``)."""
    parser = argparse.ArgumentParser(prog="python -m instclf.pages",
                                     description="Write each executed notebook's static page "
                                                 "beside it (NN_slug.html), its sounds as MP3.")
    parser.add_argument("notebooks", nargs="+", type=Path, help="executed .ipynb files")
    notebooks = parser.parse_args(argv).notebooks
    try:
        for notebook in notebooks:
            if not notebook.is_file():
                raise InstclfError(f"no notebook {notebook}")
            path = write_page(Path(notebook))
            print(f"   static page: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    except InstclfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
