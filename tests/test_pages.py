"""The static pages of make reproduce (instclf.pages): sounds as MP3, plots kept, and the README
links a page for each notebook."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import soundfile as sf
from IPython.display import Audio
from nbconvert import HTMLExporter

from instclf import pages

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
TONE = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 2) / RATE)  # half a second of A4
AUDIO_URI = re.compile(r'src="data:(audio/[\w-]+);base64,([A-Za-z0-9+/=]+)" type="(audio/[\w-]+)"')


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()


def png_base64() -> str:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot(TONE[:200])
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return base64.b64encode(out.getvalue()).decode("ascii")


def assert_is_the_tone(mp3: bytes) -> None:
    samples, rate = sf.read(io.BytesIO(mp3))
    assert sf.info(io.BytesIO(mp3)).format == "MP3" and rate == RATE
    assert len(samples) == len(TONE)
    assert np.corrcoef(samples, TONE)[0, 1] > 0.99


@pytest.fixture
def notebook(tmp_path) -> nbformat.NotebookNode:
    """A notebook as a run leaves it: IPython's Audio from an array (audio/wav) and from a file
    (audio/x-wav), and a matplotlib PNG."""
    (tmp_path / "tone.wav").write_bytes(wav_bytes(TONE))
    sounds = [Audio(TONE, rate=RATE), Audio(filename=str(tmp_path / "tone.wav"))]
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": sound._repr_html_()})
               for sound in sounds]
    outputs.append(nbformat.v4.new_output("display_data", data={"image/png": png_base64()}))
    cell = nbformat.v4.new_code_cell("display(Audio(tone, rate=16000)); plt.plot(tone)",
                                     outputs=outputs, execution_count=1)
    return nbformat.v4.new_notebook(cells=[cell])


def test_a_page_holds_its_sounds_as_mp3_and_its_plot_as_png(notebook, tmp_path):
    path = tmp_path / "01_tone.ipynb"
    nbformat.write(notebook, path)
    assert pages.main([str(path)]) == 0
    page = (tmp_path / "01_tone.html").read_text()
    plain = HTMLExporter(template_name="lab").from_notebook_node(notebook)[0]

    wavs, mp3s = AUDIO_URI.findall(plain), AUDIO_URI.findall(page)
    assert {(uri, kind) for uri, _, kind in wavs} == {("audio/wav",) * 2, ("audio/x-wav",) * 2}
    assert [(uri, kind) for uri, _, kind in mp3s] == [("audio/mpeg", "audio/mpeg")] * 2
    for _, data, _ in mp3s:
        assert_is_the_tone(base64.b64decode(data))
        assert len(data) < len(wavs[0][1]) / 4
    png = notebook.cells[0].outputs[2].data["image/png"]
    assert f"data:image/png;base64,{png}" in page
    assert len(page) < len(plain)
    assert "audio/wav" in notebook.cells[0].outputs[0].data["text/html"]  # the input is untouched


def test_a_saved_audio_widget_becomes_mp3():
    value = {"data": base64.b64encode(wav_bytes(TONE)).decode("ascii"), "encoding": "base64",
             "path": ["value"]}
    widgets = {pages.WIDGET_STATE: {"state": {
        "a": {"model_name": "AudioModel", "state": {"format": "wav"}, "buffers": [value]},
        "b": {"model_name": "ImageModel", "state": {"format": "png"}, "buffers": []}}}}
    pages.compress_widget_audio(widgets)
    state = widgets[pages.WIDGET_STATE]["state"]
    assert state["a"]["state"]["format"] == "mp3" and state["b"]["state"]["format"] == "png"
    assert_is_the_tone(base64.b64decode(state["a"]["buffers"][0]["data"]))


def test_the_readme_links_the_page_of_each_notebook_make_reproduce_writes():
    makefile = (ROOT / "Makefile").read_text()
    assert "NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))" in makefile
    assert "-m instclf.pages $(REPORTS)/$$(basename $$nb)" in makefile  # NN_slug.html
    written = {path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    linked = re.findall(r"\]\(reports/(\d\d_\w+)\.html\)", (ROOT / "README.md").read_text())
    assert sorted(linked) == sorted(written), "README's page links differ from the notebooks"
    missing = [stem for stem in linked if not (ROOT / "reports" / f"{stem}.html").is_file()]
    assert not missing, f"pages not in reports/ (run make reproduce, commit them): {missing}"
