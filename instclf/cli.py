"""The ``instclf`` command (also ``python -m instclf``): ``data render|info|validate|download``,
``features``, ``evaluate``, ``predict``, ``results``, ``train`` and ``app``.

Every user-facing error ends as one line on stderr (``instclf: error: ...``) and exit status 2.
The library reports through :mod:`logging` (logger ``instclf``); the command shows its INFO
lines on stderr.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from pathlib import Path

from . import config, nsynth, profiles, storage
from .config import InstclfError


def _data_render(args) -> int:
    profile = profiles.get_profile(args.profile)
    shard = config.parse_shard(args.shard) if args.shard else None
    made = [source for source in profile.sources if source.renders]
    for source in profile.sources:
        if not source.renders:
            print(f"{source.name}: not rendered here ({source.kind}); "
                  f"{source.root(profile.data_dir)}")
        elif source.is_ready(profile.data_dir) and not args.force:
            print(f"{source.root(profile.data_dir)} is already rendered for profile {profile.name}")
        else:
            report = source.render(profile.data_dir, workers=args.workers,
                                   progress=not args.quiet, shard=shard)
            print(json.dumps(report.as_dict(), indent=2))
    if shard and made:
        print(f"shard {args.shard} rendered; once every shard is done, run `instclf data render"
              f" --profile {profile.name}` to write the metadata", file=sys.stderr)
    return 0


def _profile_notes(args):
    """The notes of ``--root`` (one NSynth-format dataset root) or of the profile's sources."""
    from .sources.base import read_notes

    if args.root:
        return nsynth.read_dataset(Path(args.root), args.splits).assign(origin="root",
                                                                        lineage="root")
    profile = profiles.get_profile(args.profile)
    return read_notes(profile.sources, profile.data_dir, ensure=False)


def _data_info(args) -> int:
    import pandas as pd

    notes = _profile_notes(args)
    notes = notes[notes["split"].isin(args.splits)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(nsynth.summarize(notes).to_string())
    print(f"\n{len(notes)} notes, {notes['instrument_str'].nunique()} instruments")
    if notes["origin"].nunique() > 1 or notes["lineage"].nunique() > 1:
        print(notes.groupby(["origin", "lineage"]).size().rename("notes").to_string())
    return 0


def _data_roots(args) -> list[Path]:
    if args.root:
        return [Path(args.root)]
    profile = profiles.get_profile(args.profile)
    return list(profile.source_roots().values())


def _data_validate(args) -> int:
    status = 0
    for root in _data_roots(args):
        for split in args.splits:
            folder = nsynth.split_folder(root, split)
            if not folder.is_dir() and not args.root:
                continue  # a source without this split
            problems = nsynth.validate_split(folder)
            print(f"{folder}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            for problem in problems:
                print(f"  {problem}")
            status = status or (1 if problems else 0)
    return status


def _data_download(args) -> int:
    from . import download

    from .sources.official import OfficialNSynth

    splits = download.chosen_splits(args.splits)  # never the 22 GB training split by default
    root = Path(args.root) if args.root else OfficialNSynth().root(config.data_dir())
    for split in splits:
        folder = download.download_split(split, root, base_url=args.base_url,
                                         progress=not args.quiet)
        print(f"{split}: {folder}")
    return 0


def _data_samples(args) -> int:
    from .sources.samples import SampleLibrary, samples_dir

    fetched = SampleLibrary(name="samples").fetch(progress=not args.quiet,
                                                  base_url=args.base_url)
    print(f"{len(fetched)} sample packages installed in {samples_dir()}")
    return 0


def _evaluate(args) -> int:
    import pandas as pd

    from . import evaluate, storage

    table, metrics = evaluate.evaluate_folder(args.model, args.data, progress=not args.quiet)
    low, high = metrics["accuracy_ci95"]
    print(f"{metrics['notes']} notes from {metrics['instruments']} instruments in {args.data}")
    print(f"accuracy {metrics['accuracy']:.3f} (95% interval over instruments {low:.3f}-"
          f"{high:.3f}), balanced {metrics['balanced_accuracy']:.3f}, "
          f"top-2 {metrics['top2_accuracy']:.3f}")
    with pd.option_context("display.width", 120):
        print(evaluate.per_family(table).round(3).fillna("absent").to_string())
    for name, reason in metrics["refused"].items():  # as instclf predict refuses them
        print(f"instclf: left out {name}: {reason}", file=sys.stderr)
    out = Path(args.out or Path(args.data) / "predictions.csv")
    try:
        with storage.atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
    except OSError as error:
        raise InstclfError(f"cannot write the predictions table {out} ({error.strerror}); "
                           "give --out PATH in a folder you can write") from None
    print(f"predictions table: {out}")
    return 0


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3")


def _audio_files(names: list[str]) -> list[str]:
    """The files named, each folder replaced by the audio files under it (sorted); a folder
    without any stays, and predict reports it as a folder."""
    found = []
    for name in names:
        if Path(name).is_dir():
            found += sorted(str(p) for p in Path(name).rglob("*")
                            if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()) or [name]
        else:
            found.append(name)
    return found


def _prediction(file: str, heard, top: int, notes: bool) -> dict:
    """One file's answer as plain data (the JSON, JSON lines and CSV outputs)."""
    from . import predict

    result = {"file": file, "probabilities": heard.probabilities.round(6).to_dict(),
              "top": [[family, round(p, 6)] for family, p in
                      predict.top_families(heard.probabilities, top)],
              "not_sure": predict.doubt(heard.probabilities, heard.y)}
    if notes:
        result["notes"] = heard.notes[["start_s", "stop_s", "family", "probability", "weight"]
                                      ].round(3).to_dict("records")
    return result


def _csv_row(result: dict) -> list:
    p = result.get("probabilities", {})
    family, probability = result["top"][0] if "top" in result else ("", "")
    notes = " ".join(f"{n['start_s']:.2f}:{n['family']}" for n in result.get("notes", []))
    return [result["file"], family, probability, *(p.get(f, "") for f in config.FAMILIES),
            notes, result.get("error", "")]


def _print_text(result: dict) -> None:
    print(result["file"])
    for family, p in result["top"]:
        print(f"  {family:<11} {p:6.3f}")
    if result.get("not_sure"):
        print(f"  {result['not_sure']}")
    for note in result.get("notes", []):
        print(f"    note at {note['start_s']:6.2f} s: {note['family']:<11} "
              f"{note['probability']:.3f} (weight {note['weight']:.2f})")


def _predict(args) -> int:
    import csv

    from . import phrases, predict

    if not 1 <= args.top <= len(config.FAMILIES):
        raise InstclfError(f"--top {args.top}: give a number from 1 to {len(config.FAMILIES)}")
    output = "json" if args.json else args.format
    predictor = predict.load_predictor(args.model, args.profile)
    files = _audio_files(args.files)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if output == "csv":
        writer.writerow(["file", "family", "probability",
                         *(f"p_{f}" for f in config.FAMILIES), "notes", "error"])
    results, failed = [], 0
    for file, heard in phrases.predict_many(files, predictor, raise_errors=False,
                                            progress=len(files) > 1 and sys.stderr.isatty()):
        if isinstance(heard, InstclfError):  # this file only: report it, go on with the others
            print(f"instclf: error: {heard}", file=sys.stderr)
            result = {"file": file, "error": str(heard)}
            failed += 1
        else:
            result = _prediction(file, heard, args.top, args.notes)
        results.append(result)
        if output == "csv":
            writer.writerow(_csv_row(result))
        elif output == "jsonl":
            print(json.dumps(result), flush=True)
        elif output == "text" and "error" not in result:
            _print_text(result)
    if output == "json":
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def _export(args) -> int:
    from . import export, models

    path = args.model or models.best_model_path(profiles.get_profile(args.profile))
    if path is None:
        raise InstclfError("no trained model to export; give one with --model PATH")
    print(export.export_model(path))
    return 0


def _features(args) -> int:
    profile = profiles.get_profile(args.profile)
    shard = config.parse_shard(args.shard) if args.shard else None
    from . import backbones, features, sources  # keras: imported after the cheap checks

    front_end = backbones.get_backbone(args.backbone).front_end
    for source in profile.sources:
        source.ensure(profile.data_dir, progress=not args.quiet)
    found = features.dataset_features(profile, front_end, shard=shard, progress=not args.quiet)
    print(f"{len(found)} notes, features {found.X.shape[1:]} ({front_end.name}): {found.path}")
    if shard:
        print(f"shard {args.shard} done; once all {shard[1]} shards are in {found.path.parent}, "
              f"run `instclf features --profile {profile.name} --backbone {args.backbone}` "
              "to assemble them", file=sys.stderr)
    return 0


def _results(args) -> int:
    from . import report

    profile = profiles.get_profile(args.profile)
    gathered = {"lineages": (report.LINEAGES_FILE, report.lineage_results, report.lineages_markdown),
                "sources": (report.SOURCES_FILE, report.source_results, report.sources_markdown)}
    for flag, (name, gather, markdown) in gathered.items():
        if getattr(args, flag):
            path = config.PROJECT_ROOT / "figures" / name
            storage.write_json(path, gather(profile))
            print(markdown(report.read_results(path)))
            print(f"written: {path}")
            return 0
    if args.comparisons:
        path = report.comparisons_path(profile)
        storage.write_json(path, report.comparison_results(profile))
        print(report.comparisons_markdown(report.read_results(path)))
        print(f"written: {path}")
        return 0
    results = report.read_results(Path(args.file) if args.file else report.results_path(profile))
    print(report.results_markdown(results))
    if args.readme:
        root = Path(args.readme).resolve().parent
        blocks = report.readme_blocks(results, root / "notebooks",
                                      root / "benchmarks" / "results" / "table.md",
                                      root / "figures" / report.LINEAGES_FILE,
                                      root / "figures" / report.COMPARISONS_FILE,
                                      root / "figures" / report.SOURCES_FILE)
        changed = report.update_readme(Path(args.readme), blocks)
        print(f"{args.readme}: results table {'rewritten' if changed else 'already up to date'}")
    return 0


def _train(args) -> int:
    from . import experiments

    if args.list:
        shown = experiments.EXPERIMENTS.values()
        name_width = max(len(e.name) for e in shown)
        label_width = max(len(e.label) for e in shown)
        for e in shown:
            print(f"{e.name:<{name_width}}  {e.label:<{label_width}}  {e.description}")
        return 0
    if not args.name:
        raise InstclfError("name the experiment to train (instclf train --list shows them)")
    experiment = experiments.get_experiment(args.name)
    profile = profiles.get_profile(args.profile)
    experiments.ensure_available(experiment)
    if args.lineages and args.sources:
        raise InstclfError("--lineages or --sources, not both")
    if args.lineages:
        return _train_lineages(profile, experiment, args.quiet, args.seeds)
    if args.sources:
        return _train_sources(profile, experiment, args.quiet, args.seeds)
    return _train_seeds(profile, experiment, args.quiet, args.seeds)


def _train_seeds(profile, experiment, quiet: bool, seeds: int) -> int:
    from . import comparisons  # keras: imported after the cheap checks

    data_cache = {}
    for seed in range(seeds):
        result = comparisons.run_seed(
            profile, experiment.name, seed, data_cache=data_cache,
            progress=None if quiet else lambda line: print(f"{experiment.name}: {line}",
                                                           flush=True))
        path = comparisons.write_summary(profile, result)
        print(f"{experiment.label} ({profile.name} profile, seed {seed}): "
              f"{result['stages_completed']} stages, {result['epochs']} epochs, "
              f"{result['training_seconds']:.0f} s of training")
        print(f"model: {result['model']}")
        for split, what in (("unseen", "unseen instruments"), ("seen", "seen instruments")):
            found = result[split]
            low, high = found["accuracy_ci95"]
            print(f"{what}: accuracy {found['accuracy']:.1%} (95% interval over instruments "
                  f"{low:.1%}-{high:.1%}), {found['notes']} notes of {found['instruments']} "
                  "instruments")
        print(f"results: {path}")
    return 0


def _train_lineages(profile, experiment, quiet: bool, seeds: int) -> int:
    from . import experiments, lineages

    for seed in range(seeds):
        result = experiments.leave_one_lineage_out(profile, experiment.name, seed=seed,
                                                   progress=_line_printer(experiment, quiet))
        print(f"{experiment.label} ({profile.name} profile, seed {seed}), "
              "leave-one-lineage-out:")
        for lineage, fold in result["per_lineage"].items():
            print(f"  without {lineage}: {_accuracy_line(fold)}, {fold['notes']} notes")
        print(f"mean over {len(result['per_lineage'])} lineages: "
              f"{result['mean_accuracy']:.1%}, lowest {result['lowest_accuracy']:.1%}")
        print(f"results: {lineages.summary_path(profile, experiment.name, seed)}")
    return 0


def _train_sources(profile, experiment, quiet: bool, seeds: int) -> int:
    from . import experiments, lineages

    for seed in range(seeds):
        result = experiments.compare_sources(profile, experiment.name, seed=seed,
                                             progress=_line_printer(experiment, quiet))
        print(f"{experiment.label} ({profile.name} profile, seed {seed}), trained on each mix "
              f"of sources, tested on {result['tested']}:")
        for mix, found in result["per_mix"].items():
            print(f"  {mix} ({found['fit_notes']} notes): {_accuracy_line(found)}")
        print(f"results: {lineages.sources_summary_path(profile, experiment.name, seed)}")
    return 0


def _line_printer(experiment, quiet: bool):
    """Progress lines of a long run, each named by its experiment (None when quiet)."""
    return None if quiet else lambda line: print(f"{experiment.name}: {line}", flush=True)


def _accuracy_line(found: dict) -> str:
    low, high = found["accuracy_ci95"]
    return (f"accuracy {found['accuracy']:.1%} (95% interval over instruments "
            f"{low:.1%}-{high:.1%})")


def _app(args) -> int:
    from . import app

    if args.profile:
        profiles.get_profile(args.profile)  # an unknown name fails here, in one line
        os.environ["INSTCLF_PROFILE"] = args.profile
    return app.main(["serve", "--port", str(args.port),
                     *(["--model", args.model] if args.model else [])])


def version() -> str:
    """The installed package's version (``instclf --version``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("instclf")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from . import __version__
        return __version__


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (tests swap it)."""

    stream = property(lambda self: sys.stderr, lambda self, value: None)


def configure_logging(level: int = logging.INFO) -> None:
    """Show the library's log lines (logger ``instclf``) on stderr, once (the command)."""
    logger = logging.getLogger("instclf")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("instclf: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


PROFILE_NAMES = ", ".join(profiles.PROFILES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="instclf", description="Tell which of NSynth's eleven instrument families plays a "
        "single musical note: make or download the notes, train, evaluate, predict, serve the "
        "upload page.", epilog="Start with `instclf data render`, then `instclf train --list`. "
        "Each command has its own --help.")
    parser.add_argument("--version", action="version", version=f"instclf {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = commands.add_parser("data", help="render, inspect, validate or download datasets")
    actions = data.add_subparsers(dest="action", required=True)

    def add(name, handler, help_text, root=True, all_splits=True):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("--profile", help=f"{PROFILE_NAMES} (default: $INSTCLF_PROFILE)")
        if root:
            sub.add_argument("--root", help="a dataset root holding nsynth-<split>/ folders "
                             "(default: the profile's sources)")
            sub.add_argument("--splits", nargs="+", default=list(config.SPLITS) if all_splits
                             else None, choices=config.SPLITS,
                             help="which splits (default: all)" if all_splits else
                             "which splits to download (required: train alone is 22 GB)")
        sub.set_defaults(handler=handler)
        return sub

    render = add("render", _data_render, "render the profile's rendered sources (FluidSynth)",
                 root=False)
    render.add_argument("--workers", type=int, help="processes (default: up to 2)")
    render.add_argument("--force", action="store_true", help="render even if up to date")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.add_argument("--shard", metavar="I/N", help="render only shard I of N (from 0); "
                        "a final run without --shard writes the metadata")
    add("info", _data_info, "notes, instruments and sources per family and split")
    add("validate", _data_validate, "check every entry, file and WAV format of a dataset")
    download = add("download", _data_download, "download the official NSynth splits you name",
                   all_splits=False)
    download.add_argument("--base-url", help="mirror holding nsynth-<split>.jsonwav.tar.gz")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    samples = add("samples", _data_samples, "install the sampled source's packages (npm)",
                  root=False)
    samples.add_argument("--base-url", help="a folder or URL holding the packages' tarballs "
                         "(default: $INSTCLF_SAMPLES_URL, else the npm registry)")
    samples.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = commands.add_parser("evaluate", help="a saved model on an NSynth-format folder")
    evaluate.add_argument("--model", required=True, help="a .keras file saved by instclf")
    evaluate.add_argument("--data", required=True, help="a folder with examples.json + audio/")
    evaluate.add_argument("--out", help="predictions CSV (default: <data>/predictions.csv)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_evaluate)
    predict = commands.add_parser("predict", help="the instrument family of your own recordings")
    predict.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG or MP3 files,"
                         " or folders of them")
    predict.add_argument("--model", help="a .keras file saved by instclf (default: the "
                         "profile's trained model with the lowest validation loss)")
    predict.add_argument("--profile", help="whose best model (default: $INSTCLF_PROFILE)")
    predict.add_argument("--top", type=int, default=3, help="families shown per file (default 3)")
    predict.add_argument("--json", action="store_true",
                         help="one JSON document: file, probabilities and top, or file and error")
    predict.add_argument("--format", choices=("text", "json", "jsonl", "csv"), default="text",
                         help="text (default); json (as --json); jsonl or csv: one line per "
                         "file as it is done")
    predict.add_argument("--notes", action="store_true",
                         help="also each note found in the recording: its time and family")
    predict.set_defaults(handler=_predict)
    exporter = commands.add_parser("export", help="a trained model for fast prediction (LiteRT)"
                                   ", beside its .keras file; instclf predict then uses it")
    exporter.add_argument("--model", help="a .keras file saved by instclf (default: the "
                          "profile's trained model with the lowest validation loss)")
    exporter.add_argument("--profile", help="whose best model (default: $INSTCLF_PROFILE)")
    exporter.set_defaults(handler=_export)
    feats = commands.add_parser("features", help="cache the features of the whole dataset")
    feats.add_argument("--profile", help=f"{PROFILE_NAMES} (default: $INSTCLF_PROFILE)")
    feats.add_argument("--backbone", default="musicnn_vgg", help="whose front end "
                       "(default: musicnn_vgg)")
    feats.add_argument("--shard", metavar="I/N", help="only every N-th note from note I (from 0);"
                       " a final run without --shard assembles the shards")
    feats.add_argument("--quiet", action="store_true", help="no progress bar")
    feats.set_defaults(handler=_features)
    results = commands.add_parser("results", help="the results table (and the README's copy)")
    results.add_argument("--profile", help="whose results file (default: $INSTCLF_PROFILE)")
    results.add_argument("--file", help="a results JSON (default: the profile's, figures/results.json)")
    results.add_argument("--readme", help="rewrite this README's generated blocks (results, "
                         "notebooks, benchmarks, comparisons, lineages, sources) from the files")
    results.add_argument("--lineages", action="store_true", help="gather the profile's "
                         "leave-one-lineage-out results into figures/lineages.json (make "
                         "experiments)")
    results.add_argument("--sources", action="store_true", help="gather the profile's "
                         "comparison of training sources into figures/sources.json (make "
                         "experiments)")
    results.add_argument("--comparisons", action="store_true", help="gather the profile's "
                         "results over seeds (instclf train NAME --seeds N) into its figures "
                         "folder's comparisons.json (figures/ on the default profile; make "
                         "experiments)")
    results.set_defaults(handler=_results)
    train = commands.add_parser("train", help="train (or load) one experiment of the registry")
    train.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    train.add_argument("--list", action="store_true", help="the experiments: name, label and "
                       "what each varies")
    train.add_argument("--profile", help=f"{PROFILE_NAMES} (default: $INSTCLF_PROFILE)")
    train.add_argument("--lineages", action="store_true", help="leave-one-lineage-out: train "
                       "the recipe once per lineage without it, test on it (make experiments)")
    train.add_argument("--sources", action="store_true", help="train the recipe on each mix of "
                       "sources at equal size, without the real instruments, and test it on "
                       "them (make experiments)")
    train.add_argument("--seeds", type=int, default=1, metavar="N",
                       help="train from seeds 0 to N-1 (default: 1), each seed's results "
                       "recorded for instclf results --comparisons; with --lineages, the "
                       "folds; with --sources, the mixes")
    train.add_argument("--quiet", action="store_true", help="no progress bar, no line per stage")
    train.set_defaults(handler=_train)
    page = commands.add_parser("app", help="serve the upload page in the browser (make app)",
                               description="Serve the upload page (Voila) on "
                               "http://127.0.0.1:PORT/ until Ctrl-C. It uses the profile's best "
                               "trained model, training one first only if there is none.")
    page.add_argument("--port", type=int, default=8866, help="the port (default: 8866)")
    page.add_argument("--model", help="a .keras file saved by instclf (default: "
                      "$INSTCLF_MODEL, else the profile's best trained model)")
    page.add_argument("--profile", help=f"whose best model: {PROFILE_NAMES} "
                      "(default: $INSTCLF_PROFILE)")
    page.set_defaults(handler=_app)
    return parser


def _os_error(error: OSError) -> str:
    """One line for an operating-system error: what could not be done, where, and the fix."""
    where = error.filename or "a file"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"{where}: {error.strerror} (a read-only data root?); point INSTCLF_DATA_DIR "
                "at a folder you can write, or give yourself write access to this one")
    return f"{where}: {error.strerror or error}; check the path, the disk and its free space"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return args.handler(args)
    except InstclfError as error:
        print(f"instclf: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a read-only data root, a full disk: no traceback
        print(f"instclf: error: {_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instclf: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
