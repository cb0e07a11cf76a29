"""The widgets of notebook 07 and its web page (``make app``): thin wrappers over ``predict``.

:func:`handle_upload` is the whole of what happens to an uploaded file (bytes in, chart and
message out); the upload panel only wires a ``FileUpload`` to it, so notebook 07 runs the same
code headless. DOM elements carry stable CSS classes (``instclf-upload``, ``instclf-chart``,
``instclf-spectrogram``, ``instclf-prediction``, ``instclf-family``, ``instclf-not-sure``,
``instclf-error``) for the browser test.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import NamedTuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import phrases, plots, predict
from .config import InstclfError

ACCEPT = "audio/*,.wav,.flac,.ogg,.oga,.mp3"


class Result(NamedTuple):
    """What one prediction shows: probabilities, chart and spectrogram, or an error message."""

    probabilities: pd.Series | None
    figure: plt.Figure | None
    message: str
    spectrogram: plt.Figure | None = None  # the features the model heard
    doubt: str | None = None  # why the answer is "not sure" (predict.doubt), or None
    waveform: plt.Figure | None = None  # the recording with its notes and their families

    @property
    def ok(self) -> bool:
        return self.probabilities is not None


def handle_upload(content: bytes, name: str | None, predictor: predict.Predictor,
                  true_family: str | None = None) -> Result:
    """Bytes of a file -> probabilities, bar chart, spectrogram and a one-line message
    (notebook 07, the page).

    What the upload widget calls; a file that is not usable audio gives ``ok == False`` and
    the reason as the message, never an exception.
    """
    try:
        heard = phrases.hear(bytes(content), predictor, name=name)
    except InstclfError as error:
        return Result(None, None, str(error))
    probabilities, X = heard.probabilities, heard.X
    family, p = predict.top_families(probabilities, k=1)[0]
    unsure = predict.doubt(probabilities, heard.y)
    figure = plots.plot_family_probabilities(probabilities, title=f"What the model hears: {name}",
                                             true_family=true_family)
    spectrogram = plots.plot_spectrogram(X, predictor.front_end, title=(
        f"The clip as the model hears it ({predictor.front_end.name} front end)"))
    message = f"predicted family: {family} ({p:.0%})" + (f"; {unsure}" if unsure else "")
    return Result(probabilities, figure, message, spectrogram, unsure, waveform_figure(heard))


def waveform_figure(heard: phrases.Heard) -> plt.Figure:
    """The recording's waveform with each note found shaded and labelled with its family."""
    figure, ax = plt.subplots(figsize=(8, 2.2))
    ax.plot(np.arange(len(heard.y)) / phrases.SR, heard.y, lw=0.4, color="0.3")
    for k, note in heard.notes.iterrows():
        ax.axvspan(note.start_s, note.stop_s, color=f"C{k % 10}", alpha=0.2)
        ax.text(note.start_s, 1.02, f"{note.family} {note.probability:.0%}", fontsize=8,
                transform=ax.get_xaxis_transform(), va="bottom")
    ax.set(xlabel="time (s)", yticks=[], title=f"{len(heard.notes)} note(s) found")
    figure.tight_layout()
    return figure


def handle_note(note: pd.Series, predictor: predict.Predictor) -> Result:
    """One row of a note table -> :func:`handle_upload` of its WAV, true family marked (07)."""
    return handle_upload(Path(note["path"]).read_bytes(), note["note_str"], predictor,
                         true_family=str(note["family"]))


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _image(css_class: str) -> widgets.Image:
    layout = widgets.Layout(display="none", width="640px")
    return widgets.Image(format="png", layout=layout).add_class(css_class)


def _result_view() -> tuple[widgets.HTML, widgets.HTML, widgets.Image, widgets.Image,
                            widgets.Image]:
    prediction = widgets.HTML().add_class("instclf-prediction")
    error = widgets.HTML().add_class("instclf-error")
    return (prediction, error, _image("instclf-chart"), _image("instclf-spectrogram"),
            _image("instclf-waveform"))


def _show(result: Result, prediction: widgets.HTML, error: widgets.HTML,
          *images: widgets.Image) -> None:
    """Puts a :class:`Result` into the output widgets: prediction, chart and spectrogram, or
    the error."""
    figures = (result.figure, result.spectrogram, result.waveform)
    for image, figure in zip(images, figures):
        if figure is not None:
            image.value = _png(figure)
        image.layout.display = None if figure is not None else "none"
    if result.ok:
        family, p = predict.top_families(result.probabilities, k=1)[0]
        prediction.value = (f"Predicted family: <b class='instclf-family'>{family}</b> "
                            f"({p:.0%} probability)" + (
                                f"<br><i class='instclf-not-sure'>{html.escape(result.doubt)}"
                                "</i>" if result.doubt else ""))
        error.value = ""
    else:
        prediction.value = ""
        error.value = (f"<span style='color:#b00020'>Cannot predict this file: "
                       f"{html.escape(result.message)}</span>")


def upload_panel(predictor: predict.Predictor) -> widgets.VBox:
    """A file upload button and, for each file uploaded, its answer, chart and spectrogram,
    or its error (notebook 07, the page)."""
    upload = widgets.FileUpload(accept=ACCEPT, multiple=False, description="Upload a recording",
                                layout=widgets.Layout(width="240px"))
    status = widgets.HTML().add_class("instclf-status")
    prediction, error, *images = _result_view()

    def on_upload(change):
        if not change["new"]:
            return
        file = change["new"][0]
        prediction.value = error.value = ""
        for image in images:
            image.layout.display = "none"
        # the status names the file only once the old result is cleared (the browser test
        # waits for the name, then for the new prediction or error)
        status.value = f"{html.escape(file['name'])}: {len(file['content']):,} bytes"
        _show(handle_upload(file["content"], file["name"], predictor), prediction, error, *images)

    upload.observe(on_upload, names="value")
    help_text = widgets.HTML(
        "A single note works best: wav, flac, ogg or mp3, up to "
        f"{predict.MAX_BYTES // 2**20} MB. It is mixed to mono, resampled to 16 kHz, cut at "
        "its onset to a 4 s clip and normalised, as the training notes were.")
    panel = widgets.VBox([help_text, upload.add_class("instclf-upload-button"), status,
                          prediction, error, *images])
    return panel.add_class("instclf-upload")


def dataset_explorer(notes: pd.DataFrame, predictor: predict.Predictor) -> widgets.VBox:
    """Pick a note of the dataset by family, instrument, pitch and velocity; hear it and see
    what the model predicts beside its true family (notebook 07)."""
    family = widgets.Dropdown(options=sorted(notes["family"].astype(str).unique()),
                              description="family")
    instrument = widgets.Dropdown(options=[""], description="instrument")
    pitch = widgets.SelectionSlider(options=[60], description="pitch (MIDI)")
    velocity = widgets.ToggleButtons(options=[100], description="velocity")
    audio = widgets.Audio(format="wav", autoplay=False, loop=False)
    info = widgets.HTML().add_class("instclf-explorer-note")
    prediction, error, *images = _result_view()
    updating = False

    def set_options(selector, options) -> None:
        """New options, keeping the value chosen (or the nearest pitch or velocity)."""
        previous = selector.value
        selector.options = options
        if previous in options:
            selector.value = previous
        elif isinstance(previous, int):
            selector.value = min(options, key=lambda option: abs(option - previous))

    def chosen(level: int) -> pd.DataFrame:
        """The notes matching the first ``level`` + 1 choices."""
        keep = notes["family"] == family.value
        for column, selector in (("instrument_str", instrument), ("pitch", pitch),
                                 ("velocity", velocity))[:level]:
            keep &= notes[column] == selector.value
        return notes[keep]

    def refresh(level: int) -> None:
        """After choice ``level`` changed (0 family ... 3 velocity): narrow the later choices,
        then play and predict the note they pick."""
        nonlocal updating
        if updating:
            return
        updating = True
        try:
            for depth, (column, selector) in enumerate((("instrument_str", instrument),
                                                        ("pitch", pitch),
                                                        ("velocity", velocity))):
                if depth >= level:
                    set_options(selector, sorted(chosen(depth)[column].unique().tolist()))
        finally:
            updating = False
        note = chosen(3).iloc[0]
        audio.value = Path(note["path"]).read_bytes()
        split = f", {note['split']} split" if "split" in note else ""
        info.value = (f"<b>{note['note_str']}</b>: true family <b>{note['family']}</b>"
                      f" ({note['source']}{split})")
        _show(handle_note(note, predictor), prediction, error, *images)

    for level, selector in enumerate((family, instrument, pitch, velocity)):
        selector.observe(lambda _, level=level: refresh(level), names="value")
    refresh(0)
    controls = widgets.VBox([family, instrument, pitch, velocity])
    return widgets.VBox([controls, audio, info, prediction, error, *images]).add_class(
        "instclf-explorer")
