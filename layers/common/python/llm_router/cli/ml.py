"""`llm-router train | calibrate | eval | data convert`: build and measure the learned routing classifiers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llm_router.cli.common import CliError, print_json, print_table

DEFAULT_DATA = Path("../shared/data/routing")


def register(subparsers: Any) -> None:
    train = subparsers.add_parser("train", help="rebuild the classifier weights from the shared outcome data")
    train.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA, help=f"routing data folder (default {DEFAULT_DATA})"
    )
    train.add_argument("--out", type=Path, help="weights file to write (default: the one the library ships)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--embed-dims", type=int, help="dimensions of the distilled term embeddings (0: none)")
    train.add_argument("--embed-scale", type=float, help="weight of the term embeddings against the sparse terms")
    train.add_argument(
        "--cv-only", action="store_true", help="print the cross-validated figures only (model selection); write nothing"
    )
    train.set_defaults(handler=handle_train)

    calibrate = subparsers.add_parser("calibrate", help="the difficulty threshold that meets a quality or cost target")
    _add_eval_inputs(calibrate)
    target = calibrate.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-quality", type=float, help="share of the strong model's quality to keep, e.g. 0.95")
    target.add_argument("--target-strong-share", type=float, help="share of prompts to send to the strong model")
    calibrate.add_argument("--json", action="store_true", help="print one JSON object")
    calibrate.set_defaults(handler=handle_calibrate)

    evaluate = subparsers.add_parser("eval", help="benchmark the difficulty classifier as a two-model router")
    _add_eval_inputs(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object with the summary metrics")
    evaluate.add_argument("--plot", type=Path, help="also write a PNG of the quality curves (needs matplotlib)")
    evaluate.add_argument("--title", help="plot title (default: the data file name)")
    evaluate.set_defaults(handler=handle_eval)

    data = subparsers.add_parser("data", help="prepare evaluation data")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    convert = data_commands.add_parser("convert", help="convert shared outcome data into the eval format (JSONL)")
    convert.add_argument(
        "--from", dest="source", required=True, choices=["routellm-mmlu", "routellm-gsm8k", "dcrouter"]
    )
    convert.add_argument(
        "--split",
        default="test",
        choices=["train", "test", "all"],
        help="RouteLLM: test = prompts whose sha256 is even; dcrouter: its own files (default test)",
    )
    convert.add_argument("src_dir", type=Path, help="a folder shaped like shared/data/routing/routellm or .../dcrouter")
    convert.add_argument("out", type=Path, help="JSONL file to write")
    convert.set_defaults(handler=handle_convert)


def _add_eval_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="JSONL from `llm-router data convert`")
    parser.add_argument("--weak", required=True, help="the cheap model's name in the outcomes")
    parser.add_argument("--strong", required=True, help="the strong model's name in the outcomes")
    parser.add_argument("--weights", type=Path, help="classifier weights file (default: the shipped one)")


def _scorer(weights: Path | None) -> Any:
    from llm_router.routing.classifier import default_classifier, load_classifier

    if weights is not None:
        if not weights.exists():
            raise CliError(f"weights file not found: {weights}")
        return load_classifier(weights)
    clf = default_classifier()
    if clf is None:
        raise CliError("no classifier weights installed: run `make train` or pass --weights")
    return clf


def _records(path: Path) -> Any:
    from llm_router.ml.evaluate import read_records

    if not path.exists():
        raise CliError(f"data file not found: {path}")
    try:
        records = read_records(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not records:
        raise CliError(f"{path} has no records")
    return records


def handle_train(args: argparse.Namespace) -> int:
    try:
        from llm_router.ml.train import TrainConfig, train
    except ImportError as exc:
        raise CliError(f"training needs the `train` extra (pip install -e '.[train]'): {exc}") from None
    from llm_router.routing.classifier import DEFAULT_WEIGHTS

    if not (args.data_dir / "routellm").is_dir() or not (args.data_dir / "dcrouter").is_dir():
        raise CliError(f"{args.data_dir} needs routellm/ and dcrouter/ folders")
    overrides: dict[str, Any] = {"cv_only": args.cv_only}
    if args.embed_dims is not None:
        overrides["embed_dims"] = args.embed_dims
    if args.embed_scale is not None:
        overrides["embed_scale"] = args.embed_scale
    train(TrainConfig(data_dir=args.data_dir, out=args.out or DEFAULT_WEIGHTS, seed=args.seed, **overrides))
    return 0


def handle_eval(args: argparse.Namespace) -> int:
    from llm_router.ml.evaluate import evaluate, plot

    clf = _scorer(args.weights)
    records = _records(args.data)
    try:
        report = evaluate(records, args.weak, args.strong, clf.difficulty)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.plot is not None:
        plot({args.title or args.data.stem: report}, args.plot)
    if args.json:
        print_json(report.summary())
        return 0
    cost_unit = "USD/prompt" if report.costs_known else "strong calls/prompt (no costs in the data)"
    print(f"{report.n} prompts; weak {args.weak}: quality {report.weak_quality:.4f}, cost {report.weak_cost:.6g}")
    print(f"strong {args.strong}: quality {report.strong_quality:.4f}, cost {report.strong_cost:.6g} ({cost_unit})")
    rows = [
        {
            "threshold": f"{p.threshold:.4f}" if p.threshold is not None else "",
            "strong_calls": f"{100 * p.strong_share:.1f}%",
            "quality": f"{p.quality:.4f}",
            "cost": f"{p.cost:.6g}",
        }
        for p in report.router
    ]
    print_table(rows, ["threshold", "strong_calls", "quality", "cost"])
    for key, value in report.summary().items():
        shown = f"{100 * value:.1f}%" if key.startswith(("cpt", "savings")) and value is not None else value
        print(f"{key}: {shown}")
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0


def handle_calibrate(args: argparse.Namespace) -> int:
    from llm_router.ml.evaluate import calibrate, outcomes_for

    for name, value in (("--target-quality", args.target_quality), ("--target-strong-share", args.target_strong_share)):
        if value is not None and not 0 <= value <= 1:
            raise CliError(f"{name} must be between 0 and 1")
    clf = _scorer(args.weights)
    records = _records(args.data)
    try:
        outcomes, _ = outcomes_for(records, args.weak, args.strong)
        result = calibrate(
            outcomes,
            [clf.difficulty(r.prompt) for r in records],
            target_quality=args.target_quality,
            target_strong_share=args.target_strong_share,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    summary = {
        "threshold": result.threshold,
        "strong_share": round(result.strong_share, 4),
        "quality": round(result.quality, 4),
        "quality_vs_strong": round(result.quality_vs_strong, 4),
        "cost_vs_strong": None if result.cost_vs_strong is None else round(result.cost_vs_strong, 4),
        "n": len(records),
    }
    if args.json:
        print_json(summary)
        return 0
    print(f"threshold: {result.threshold}")
    print(
        f"on {len(records)} prompts: {100 * result.strong_share:.1f}% to {args.strong}, quality {result.quality:.4f} "
        f"({100 * result.quality_vs_strong:.1f}% of the strong model's)"
        + (f", cost {100 * result.cost_vs_strong:.1f}% of always-strong" if result.cost_vs_strong is not None else "")
    )
    print(
        f'route strategy: {{"strategy": "threshold", "weak": WEAK_MODEL, "strong": STRONG_MODEL, '
        f'"threshold": {result.threshold}}}'
    )
    return 0


def handle_convert(args: argparse.Namespace) -> int:
    from llm_router.ml.convert import convert, write_jsonl

    if not args.src_dir.is_dir():
        raise CliError(f"not a folder: {args.src_dir}")
    try:
        count = write_jsonl(convert(args.source, args.src_dir, args.split), args.out)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {count} records to {args.out}")
    return 0
