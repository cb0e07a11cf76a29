"""The ``instclf`` command: ``data render|info|validate|download``, ``features``, ``evaluate``,
``predict``, ``results`` and ``train``.

Every user-facing error ends as one line on stderr (``instclf: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config, nsynth, profiles
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
    from . import sources

    if args.root:
        return nsynth.read_dataset(Path(args.root), args.splits).assign(origin="root",
                                                                        lineage="root")
    profile = profiles.get_profile(args.profile)
    return sources.read_notes(profile.sources, profile.data_dir, ensure=False)


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

    root = Path(args.root) if args.root else OfficialNSynth().root(config.data_dir())
    for split in args.splits:
        folder = download.download_split(split, root, base_url=args.base_url,
                                         progress=not args.quiet)
        print(f"{split}: {folder}")
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
    out = Path(args.out or Path(args.data) / "predictions.csv")
    with storage.atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"predictions table: {out}")
    return 0


def _predict(args) -> int:
    from . import predict

    if not 1 <= args.top <= len(config.FAMILIES):
        raise InstclfError(f"--top {args.top}: give a number from 1 to {len(config.FAMILIES)}")
    predictor = predict.load_predictor(args.model, args.profile)
    results, failed = [], 0
    for file in args.files:
        try:
            probabilities = predict.predict_audio(file, predictor)
        except InstclfError as error:  # this file only: report it and go on with the others
            print(f"instclf: error: {error}", file=sys.stderr)
            results.append({"file": file, "error": str(error)})
            failed += 1
            continue
        top = predict.top_families(probabilities, args.top)
        results.append({"file": file, "probabilities": probabilities.round(6).to_dict(),
                        "top": [[family, round(p, 6)] for family, p in top]})
        if not args.json:
            print(file)
            for family, p in top:
                print(f"  {family:<11} {p:6.3f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


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
    results = report.read_results(Path(args.file) if args.file else report.results_path(profile))
    print(report.results_markdown(results))
    if args.readme:
        root = Path(args.readme).resolve().parent
        blocks = report.readme_blocks(results, root / "notebooks",
                                      root / "benchmarks" / "results" / "table.md")
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
    from . import evaluate  # keras: imported after the cheap checks

    data = experiments.training_data(profile, experiment, progress=not args.quiet)
    trained = experiments.train_experiment(
        profile, experiment.name, data=data,
        progress=None if args.quiet else lambda line: print(f"{experiment.name}: {line}",
                                                            flush=True))
    meta = trained.meta
    print(f"{experiment.label} ({profile.name} profile): {meta['stages_completed']} stages, "
          f"{meta['epochs']} epochs, {meta['training_seconds']:.0f} s of training")
    print(f"model: {trained.path}")
    for split, what in (("test", "unseen instruments"), ("seen", "seen instruments")):
        table = evaluate.cached_predictions(trained, data[split], split)
        low, high = evaluate.bootstrap_accuracy(table)
        print(f"{what}: accuracy {evaluate.accuracy(table):.1%} (95% interval over instruments "
              f"{low:.1%}-{high:.1%}), {len(table)} notes of "
              f"{table['instrument_str'].nunique()} instruments")
    return 0


PROFILE_NAMES = ", ".join(profiles.PROFILES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instclf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="render, inspect, validate or download datasets")
    actions = data.add_subparsers(dest="action", required=True)

    def add(name, handler, help_text, root=True):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("--profile", help=f"{PROFILE_NAMES} (default: $INSTCLF_PROFILE)")
        if root:
            sub.add_argument("--root", help="a dataset root holding nsynth-<split>/ folders "
                             "(default: the profile's sources)")
            sub.add_argument("--splits", nargs="+", default=list(config.SPLITS),
                             choices=config.SPLITS)
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
    download = add("download", _data_download, "download official NSynth splits")
    download.add_argument("--base-url", help="mirror holding nsynth-<split>.jsonwav.tar.gz")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = commands.add_parser("evaluate", help="a saved model on an NSynth-format folder")
    evaluate.add_argument("--model", required=True, help="a .keras file saved by instclf")
    evaluate.add_argument("--data", required=True, help="a folder with examples.json + audio/")
    evaluate.add_argument("--out", help="predictions CSV (default: <data>/predictions.csv)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_evaluate)
    predict = commands.add_parser("predict", help="the instrument family of your own recordings")
    predict.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG or MP3 files")
    predict.add_argument("--model", help="a .keras file saved by instclf (default: the "
                         "profile's trained model with the lowest validation loss)")
    predict.add_argument("--profile", help="whose best model (default: $INSTCLF_PROFILE)")
    predict.add_argument("--top", type=int, default=3, help="families shown per file (default 3)")
    predict.add_argument("--json", action="store_true",
                         help="one JSON document: file, probabilities and top, or file and error")
    predict.set_defaults(handler=_predict)
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
                         "notebooks, benchmarks) from the files")
    results.set_defaults(handler=_results)
    train = commands.add_parser("train", help="train (or load) one experiment of the registry")
    train.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    train.add_argument("--list", action="store_true", help="the experiments: name, label and "
                       "what each varies")
    train.add_argument("--profile", help=f"{PROFILE_NAMES} (default: $INSTCLF_PROFILE)")
    train.add_argument("--quiet", action="store_true", help="no progress bar, no line per stage")
    train.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InstclfError as error:
        print(f"instclf: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instclf: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
