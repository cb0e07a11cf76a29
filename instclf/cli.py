"""The ``instclf`` command: ``instclf data render|info|validate|download``, ``instclf evaluate``.

Every user-facing error ends as one line on stderr (``instclf: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config, nsynth
from .config import InstclfError


def _data_render(args) -> int:
    from . import render

    profile = config.get_profile(args.profile)
    if render.is_rendered(profile) and not args.force:
        print(f"{profile.dataset_dir} is already rendered for profile {profile.name}")
        return 0
    report = render.render_dataset(profile, workers=args.workers, progress=not args.quiet)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _dataset_root(args) -> Path:
    return Path(args.root) if args.root else config.get_profile(args.profile).dataset_dir


def _data_info(args) -> int:
    import pandas as pd

    notes = nsynth.read_dataset(_dataset_root(args), splits=args.splits)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(nsynth.summarize(notes).to_string())
    print(f"\n{len(notes)} notes, {notes['instrument_str'].nunique()} instruments")
    return 0


def _data_validate(args) -> int:
    root, status = _dataset_root(args), 0
    for split in args.splits:
        problems = nsynth.validate_split(nsynth.split_folder(root, split))
        print(f"{split}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  {problem}")
        status = status or (1 if problems else 0)
    return status


def _data_download(args) -> int:
    from . import download

    root = Path(args.root) if args.root else config.data_dir() / "nsynth-official"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instclf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="render, inspect, validate or download datasets")
    actions = data.add_subparsers(dest="action", required=True)

    def add(name, handler, help_text, root=True):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("--profile", help="smoke, default or full (default: $INSTCLF_PROFILE)")
        if root:
            sub.add_argument("--root", help="dataset root holding nsynth-<split>/ folders")
            sub.add_argument("--splits", nargs="+", default=list(config.SPLITS),
                             choices=config.SPLITS)
        sub.set_defaults(handler=handler)
        return sub

    render = add("render", _data_render, "render the embedded dataset with FluidSynth", root=False)
    render.add_argument("--workers", type=int, help="processes (default: up to 2)")
    render.add_argument("--force", action="store_true", help="render even if up to date")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
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
