"""Every training run of notebooks 03 to 05, by name: the one registry of experiments.

An experiment is a backbone trained under one recipe (blocks unfrozen, augmentation, sound
sources). Notebooks 03 to 05 train and show these runs, notebook 05 writes their results
under these names, the README's results table and findings take their labels and
comparisons from here, and ``instclf train NAME`` trains any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .augment import Augmentation
from .config import InstclfError

if TYPE_CHECKING:
    from .profiles import Profile
    from .train import Schedule

# what an experiment varies, in the order the notebooks take them up
ASPECTS = ("schedule", "backbone", "checkpoint", "clip", "head", "normalisation",
           "augmentation", "sources", "ensemble")


def _vgg19_weights():
    from . import backbones

    return backbones.vgg19_weights_path()


@dataclass(frozen=True)
class Experiment:
    """One training run: what it trains, how, and what it is compared against.

    ``max_unfrozen_blocks``: None for the profile's. ``sources``: None for every source of
    the profile, else the sound sources (soundfonts or lineages) it trains on.
    ``compared_with`` names the experiment it differs from by ``change`` (the README's
    "Effect of ..." finding). ``requires`` raises :class:`InstclfError` when something the
    run needs, which the project never downloads, is absent. ``until_converged``: its one
    stage gets :data:`UNTIL_CONVERGED` times the profile's epoch bound and patience.
    ``members``: an ensemble, the mean of these experiments' probabilities, trained as its
    members and saved as one model (:func:`instclf.train.ensemble_model`), measured
    leave-one-lineage-out from its members' folds (``backbone`` then names its first
    member's, whose front end they all share). ``head="block_statistics"``: no network
    trained, the head alone on the frozen top blocks' statistics
    (:func:`instclf.embeddings.block_statistics_model`) of ``backbone`` and of every backbone
    of ``also_frozen`` (one front end).
    """

    name: str
    label: str  # shown in tables and figures
    backbone: str
    description: str  # one line: what it varies
    varies: str  # one of ASPECTS
    notebook: str  # the notebook that introduces it
    max_unfrozen_blocks: int | None = None
    augmentation: Augmentation | None = None
    sources: tuple[str, ...] | None = None
    head: str = "average"
    until_converged: bool = False
    compared_with: str | None = None
    change: str = ""
    requires: Callable[[], object] | None = None
    members: tuple[str, ...] = ()
    also_frozen: tuple[str, ...] = ()

    @property
    def frozen_backbones(self) -> tuple[str, ...]:
        """The backbones a block-statistics head reads, in the order it reads them."""
        return (self.backbone, *self.also_frozen)


# musicnn's architecture keeps time unpooled below its back-end: unfreezing a mid-end layer
# would cache 0.7 MB of frozen activations per note (15 GB for the lineages profile)
MUSICNN_ARCH_UNFROZEN = 1

EXPERIMENTS = {e.name: e for e in (
    Experiment("musicnn_vgg_head", "musicnn_vgg (head only)", "musicnn_vgg",
               "the head alone on the frozen musicnn tagger (MTT checkpoint)", "schedule", "03",
               max_unfrozen_blocks=0),
    Experiment("musicnn_vgg", "musicnn_vgg", "musicnn_vgg",
               "the head, then the top blocks unfrozen one by one", "schedule", "04",
               compared_with="musicnn_vgg_head",
               change="unfreezing the top blocks after the head"),
    Experiment("scratch_cnn", "scratch_cnn", "scratch_cnn",
               "a small CNN trained from random weights: the baseline", "backbone", "04",
               until_converged=True),
    Experiment("musicnn_vgg_msd", "musicnn_vgg_msd", "musicnn_vgg_msd",
               "musicnn's Million Song Dataset checkpoint instead of MagnaTagATune",
               "checkpoint", "04", compared_with="musicnn_vgg",
               change="the MSD checkpoint instead of MTT"),
    Experiment("musicnn_vgg_msd_whole", "musicnn_vgg_msd_whole", "musicnn_vgg_msd_whole",
               "the MSD checkpoint shown the whole 4 s note instead of the first 3 s", "clip",
               "04", compared_with="musicnn_vgg_msd",
               change="the whole 4 s note instead of the first 3 s"),
    Experiment("vgg19", "vgg19", "vgg19",
               "the study's ImageNet VGG19 on its spectrogram images (weights by hand)",
               "backbone", "04", compared_with="musicnn_vgg",
               change="the study's ImageNet VGG19 instead of musicnn's VGG",
               requires=_vgg19_weights),
    Experiment("musicnn_vgg_msd_clipnorm", "musicnn_vgg_msd + per-clip normalisation",
               "musicnn_vgg_msd_clipnorm",
               "each clip standardised at the input of the MSD checkpoint", "normalisation",
               "04", compared_with="musicnn_vgg_msd", change="per-clip input normalisation"),
    Experiment("musicnn_vgg_msd_whole_statistics", "musicnn_vgg_msd_whole + statistics head",
               "musicnn_vgg_msd_whole",
               "the head pools the mean and the maximum of the top block, not the mean alone "
               "(compared leave-one-lineage-out: make experiments)",
               "head", "05", head="statistics", compared_with="musicnn_vgg_msd_whole",
               change="statistics pooling (mean and maximum) in the head"),
    Experiment("musicnn_msd", "musicnn_msd (musicnn architecture)", "musicnn_msd",
               "musicnn's own architecture (musically motivated filters, MSD checkpoint) on "
               "the whole note, its back-end's penultimate layer the top block (compared "
               "leave-one-lineage-out: make experiments)",
               "backbone", "05", compared_with="musicnn_vgg_msd_whole",
               change="musicnn's own architecture instead of its VGG",
               max_unfrozen_blocks=MUSICNN_ARCH_UNFROZEN),
    Experiment("musicnn_mtt", "musicnn_mtt (musicnn architecture)", "musicnn_mtt",
               "musicnn's own architecture with its MagnaTagATune checkpoint on the whole "
               "note (compared leave-one-lineage-out: make experiments)",
               "backbone", "05", compared_with="musicnn_vgg_msd_whole",
               change="musicnn's own architecture (MTT checkpoint) instead of the MSD VGG",
               max_unfrozen_blocks=MUSICNN_ARCH_UNFROZEN),
    Experiment("ensemble_vgg_statistics_musicnn_msd",
               "musicnn_vgg_msd_whole + statistics head, with musicnn_msd", "musicnn_vgg_msd_whole",
               "the mean of two recipes' probabilities: musicnn's VGG with statistics pooling "
               "and musicnn's own architecture (compared leave-one-lineage-out: make "
               "experiments)", "ensemble", "05",
               compared_with="musicnn_vgg_msd_whole_statistics",
               change="averaging it with musicnn_msd",
               members=("musicnn_vgg_msd_whole_statistics", "musicnn_msd")),
    Experiment("musicnn_vgg_msd_whole_block_statistics",
               "musicnn_vgg_msd_whole frozen, top blocks' statistics and descriptors",
               "musicnn_vgg_msd_whole",
               "a logistic regression alone on the mean and the maximum of each of the frozen "
               "backbone's top three blocks and the note's descriptors (compared "
               "leave-one-lineage-out: make experiments)",
               "head", "05", head="block_statistics", max_unfrozen_blocks=0,
               compared_with="musicnn_vgg_msd_whole_statistics",
               change="a head alone on the frozen top blocks' statistics and the descriptors"),
    Experiment("musicnn_vgg_msd_whole_with_mtt_block_statistics",
               "musicnn_vgg_msd_whole and musicnn_mtt frozen, top blocks' statistics and "
               "descriptors", "musicnn_vgg_msd_whole",
               "a logistic regression alone on the mean and the maximum of the top three blocks "
               "of two frozen backbones, musicnn's MSD VGG and musicnn's own architecture "
               "(MTT checkpoint), and the note's descriptors (the page's model; compared "
               "leave-one-lineage-out: make experiments)",
               "head", "05", head="block_statistics", max_unfrozen_blocks=0,
               also_frozen=("musicnn_mtt",),
               compared_with="musicnn_vgg_msd_whole_block_statistics",
               change="musicnn_mtt's top blocks' statistics beside the VGG's"),
    Experiment("musicnn_vgg_msd_whole_statistics_with_blocks",
               "musicnn_vgg_msd_whole + statistics head, with the frozen blocks' head",
               "musicnn_vgg_msd_whole",
               "the mean of two models' probabilities: the fine-tuned statistics recipe and the "
               "head on the frozen top blocks' statistics and descriptors, one network trained "
               "(notebook 04; compared leave-one-lineage-out: make experiments)", "ensemble",
               "05", compared_with="musicnn_vgg_msd_whole_statistics",
               change="averaging it with the head on the frozen top blocks and descriptors",
               members=("musicnn_vgg_msd_whole_statistics",
                        "musicnn_vgg_msd_whole_block_statistics")),
    Experiment("musicnn_vgg_msd_augmented", "musicnn_vgg_msd + augmentation", "musicnn_vgg_msd",
               "one augmented copy of every fitted note (gain, equaliser, shift, masks)",
               "augmentation", "04", augmentation=Augmentation(copies=1),
               compared_with="musicnn_vgg_msd", change="augmentation (one copy)"),
)}

BASELINE = "scratch_cnn"  # the run every transfer result is held against


def networks_trained(experiment: Experiment) -> int:
    """How many networks the experiment trains beyond a head on frozen features: its
    members' sum for an ensemble. What ``make reproduce`` can afford for the page's model
    (:data:`instclf.models.BEST_EXPERIMENT`): one."""
    if experiment.members:
        return sum(networks_trained(EXPERIMENTS[m]) for m in experiment.members)
    return 0 if experiment.max_unfrozen_blocks == 0 else 1


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (``instclf train NAME``, notebooks 03 to 05)."""
    if name not in EXPERIMENTS:
        raise InstclfError(f"unknown experiment {name!r}; use one of {', '.join(EXPERIMENTS)} "
                           "(instclf train --list)")
    return EXPERIMENTS[name]


def label(name: str) -> str:
    """The label of a run in tables and figures: the registry's, else the name itself."""
    return EXPERIMENTS[name].label if name in EXPERIMENTS else name


def introduced_in(notebook: str, *varies: str) -> list[Experiment]:
    """The experiments a notebook introduces (optionally only those varying ``varies``)."""
    return [e for e in EXPERIMENTS.values()
            if e.notebook == notebook and (not varies or e.varies in varies)]


def unavailable_reason(experiment: Experiment) -> str | None:
    """Why the experiment cannot run on this machine (a missing weights file), or None."""
    if experiment.requires is None:
        return None
    try:
        experiment.requires()
    except InstclfError as missing:
        return str(missing)
    return None


def available(experiment: Experiment) -> bool:
    """Whether everything the experiment needs is present (notebooks skip it otherwise)."""
    return unavailable_reason(experiment) is None


def ensure_available(experiment: Experiment) -> None:
    """Fail with :func:`unavailable_reason` before any work (``instclf train``)."""
    reason = unavailable_reason(experiment)
    if reason:
        raise InstclfError(f"experiment {experiment.name} cannot run: {reason}")


def training_data(profile: Profile, experiment: Experiment, cache: dict | None = None,
                  progress: bool = True) -> dict:
    """The profile's ``fit``/``seen``/``valid``/``test`` data through the experiment's front
    end (and only its sources, if it names some); ``cache`` (a dict) shares it between
    experiments of one front end and sources (notebooks 04, 05, ``instclf train``).
    """
    from . import backbones, train

    front_end = backbones.get_backbone(experiment.backbone).front_end
    key = (front_end.key, experiment.sources)
    if cache is not None and key in cache:
        return cache[key]
    data = train.training_data(profile, front_end, progress=progress, sources=experiment.sources)
    if cache is not None:
        cache[key] = data
    return data


# --- seeds (instclf.comparisons) -------------------------------------------------------------

# A network trained from random weights learns for longer than a pretrained one, and its
# validation loss is noisier: its one stage gets this many times the profile's epoch bound and
# patience, so that early stopping, not the bound, ends it (notebook 04).
UNTIL_CONVERGED = {"head_epochs": 4, "patience": 3}


def schedule(profile: Profile, experiment: Experiment, seed: int = 0) -> Schedule:
    """The experiment's schedule on the profile, its weights drawn and its batches shuffled
    from ``profile.seed + seed``: seed 0 is the run ``make reproduce`` trains."""
    from . import train

    found = train.schedule_for(profile, experiment.max_unfrozen_blocks)
    if experiment.until_converged:
        found = replace(found, **{k: factor * getattr(found, k)
                                  for k, factor in UNTIL_CONVERGED.items()})
    return replace(found, seed=found.seed + seed)


def models_dir(profile: Profile, seed: int = 0) -> Path:
    """Where runs from ``seed`` live: seed 0 among the profile's models, later seeds apart
    (``seeds/seed<k>/``), so the profile's best model is always a seed-0 run."""
    return profile.models_dir if seed == 0 else profile.models_dir / "seeds" / f"seed{seed}"


def model_path(profile: Profile, name: str, data: dict, seed: int = 0) -> Path:
    """Where the experiment's model from ``seed`` is (or will be) saved (notebook 05)."""
    from . import train

    experiment = get_experiment(name)
    return train.saved_model_path(profile, experiment.backbone,
                                  schedule(profile, experiment, seed), data,
                                  experiment.augmentation, experiment.head,
                                  models_dir(profile, seed))


def train_experiment(profile: Profile, name: str, progress=None, data: dict | None = None,
                     seed: int = 0):
    """The experiment's model on the profile from ``seed`` (a
    :class:`instclf.train.TrainedModel`), trained or resumed as needed, else loaded from disk
    (``instclf train``, notebooks 03 and 04, :mod:`instclf.comparisons`).

    ``data``: the plain data of :func:`training_data`, computed when not given.
    """
    from . import embeddings, train

    experiment = get_experiment(name)
    ensure_available(experiment)
    if data is None:
        data = training_data(profile, experiment, progress=progress is not None)
    if experiment.members:
        members = [train_experiment(profile, member, progress, data, seed)
                   for member in experiment.members]
        return train.ensemble_model(profile, name, members, data["valid"], progress,
                                    models_dir(profile, seed))
    if experiment.head == train.BLOCK_STATISTICS:
        return embeddings.block_statistics_model(profile, experiment.frozen_backbones, data,
                                                 schedule(profile, experiment, seed), progress,
                                                 models_dir(profile, seed), experiment=name)
    return train.trained_model(profile, experiment.backbone, data=data, progress=progress,
                               augmentation=experiment.augmentation, experiment=name,
                               head=experiment.head,
                               schedule=schedule(profile, experiment, seed),
                               models_dir=models_dir(profile, seed))


def leave_one_lineage_out(profile: Profile, name: str, progress=None, seed: int = 0) -> dict:
    """The experiment's recipe in every leave-one-lineage-out fold, trained from ``seed``, its
    results recorded (``instclf train NAME --lineages``, notebook 05); see
    :mod:`instclf.lineages`."""
    from . import lineages, train

    experiment = get_experiment(name)
    ensure_available(experiment)
    frozen_head = experiment.head == train.BLOCK_STATISTICS
    if experiment.augmentation is not None or (experiment.max_unfrozen_blocks == 0
                                               and not frozen_head):
        raise InstclfError(f"experiment {name} is not a recipe the folds train (they unfreeze "
                           "one block, without augmentation); choose another")
    if experiment.members:
        result = lineages.ensemble_out(profile, experiment.members, seed)
    elif frozen_head:
        result = lineages.block_statistics_out(profile, experiment.frozen_backbones, progress,
                                               seed)
    else:
        result = lineages.leave_one_lineage_out(profile, experiment.backbone, progress=progress,
                                                head=experiment.head, seed=seed)
    lineages.write_summary(profile, name, result)
    return result


def compare_sources(profile: Profile, name: str, progress=None, seed: int = 0) -> dict:
    """The experiment's recipe trained on each mix of sources at equal size, tested on the
    real instruments it never heard, from ``seed``, its results recorded (``instclf train
    NAME --sources``, notebook 04); see :func:`instclf.lineages.compare_sources`."""
    from . import lineages

    experiment = get_experiment(name)
    ensure_available(experiment)
    if experiment.members or experiment.augmentation is not None or experiment.max_unfrozen_blocks == 0:
        raise InstclfError(f"experiment {name} is not a recipe the folds train (one network, "
                           "one block unfrozen, without augmentation); choose another")
    result = lineages.compare_sources(profile, experiment.backbone, head=experiment.head,
                                      seed=seed, progress=progress)
    lineages.write_summary(profile, name, result,
                           lineages.sources_summary_path(profile, name, seed))
    return result


def best_model(profile: Profile, progress=None):
    """The model the later notebooks, ``instclf predict`` and the web page use (05 to 07):
    :func:`instclf.models.best_model_path`, or, when the profile has no trained model yet,
    :data:`instclf.models.BEST_EXPERIMENT` trained first, so each of those notebooks runs on
    its own."""
    from . import models, train

    path = models.best_model_path(profile)
    if path is None:
        return train_experiment(profile, models.BEST_EXPERIMENT, progress=progress)
    if progress:
        progress(f"best model loaded from cache ({path})")
    return train.load_trained(path)
