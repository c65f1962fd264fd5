"""`llm-router train | calibrate | eval | adapt --data | data convert`: build, adapt and measure the learned routing
classifiers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llm_router.cli.common import CliError, print_json, print_table

DEFAULT_DATA = Path("../shared/data/routing")
# The threshold `eval` reads the shipped model at when no adaptation is given: the example config's `threshold`
# strategy (data/example-config.yaml), i.e. what a route starts with before it adapts.
SHIPPED_THRESHOLD = 0.58


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
    evaluate.add_argument("--adapted", type=Path, help="score with this adaptation (from `adapt --data`) instead")
    evaluate.add_argument(
        "--threshold",
        type=float,
        help=f"operating point of the shipped model without --adapted (default {SHIPPED_THRESHOLD}, the example "
        "config's threshold)",
    )
    evaluate.set_defaults(handler=handle_eval)

    _register_adapt(subparsers)

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
    if args.adapted is not None and args.threshold is not None:
        raise CliError("--threshold applies to the shipped model: an adaptation carries its own")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise CliError("--threshold must be between 0 and 1")
    scorer, threshold = clf.difficulty, SHIPPED_THRESHOLD if args.threshold is None else args.threshold
    if args.adapted is not None:
        adaptation = _adaptation(args.adapted, args.weak, args.strong)
        scorer, threshold = _adapted_scorer(adaptation, clf), adaptation.threshold
    try:
        report = evaluate(records, args.weak, args.strong, scorer)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    point = _operating_point(records, args.weak, args.strong, scorer, threshold)
    if args.plot is not None:
        plot({args.title or args.data.stem: report}, args.plot)
    if args.json:
        print_json({**report.summary(), "operating_point": point})
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
    print(
        f"operating point (threshold {point['threshold']}): {100 * point['strong_share']:.1f}% to {args.strong}, "
        f"{100 * point['quality_ratio']:.1f}% of its quality"
    )
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0


def _adaptation(path: Path, weak: str, strong: str) -> Any:
    import json

    from llm_router.routing.adaptation import Adaptation

    if not path.exists():
        raise CliError(f"adaptation file not found: {path}")
    try:
        adaptation = Adaptation.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:  # includes malformed JSON
        raise CliError(f"{path}: {exc}") from None
    if (adaptation.weak, adaptation.strong) != (weak, strong):
        raise CliError(
            f"{path} adapts {adaptation.weak} -> {adaptation.strong}, not {weak} -> {strong}: pass the same pair"
        )
    return adaptation


def _adapted_scorer(adaptation: Any, clf: Any) -> Any:
    from llm_router.routing.adaptation import outcome_features

    return lambda prompt: adaptation.score(outcome_features(prompt, clf))


def _operating_point(records: Any, weak: str, strong: str, scorer: Any, threshold: float) -> dict[str, float]:
    """Where the route runs: the share sent to the strong model at `threshold`, and the share of the strong model's
    quality the chosen models keep."""
    chosen = strong_total = 0.0
    sent = 0
    for record in records:
        to_strong = scorer(record.prompt) >= threshold
        sent += to_strong
        chosen += float(record.outcomes[strong if to_strong else weak]["score"])
        strong_total += float(record.outcomes[strong]["score"])
    return {
        "threshold": round(threshold, 6),
        "strong_share": round(sent / len(records), 4),
        "quality_ratio": round(chosen / strong_total, 4) if strong_total else 0.0,
    }


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


def _register_adapt(subparsers: Any) -> None:
    """`adapt --data FILE` is the offline form. The online forms (`adapt ROUTE`, `adapt rollback ROUTE`,
    `adapt list ROUTE`) share this one parser: their arguments and handler come from cli/adapt.py when installed."""
    adapt = subparsers.add_parser("adapt", help="fit an adaptation of the difficulty score to graded outcomes")
    adapt.add_argument("--data", type=Path, help="offline: JSONL of graded prompts (the `eval` format)")
    adapt.add_argument("--weak", help="offline: the cheap model's name in the outcomes")
    adapt.add_argument("--strong", help="offline: the strong model's name in the outcomes")
    adapt.add_argument("--target-quality", type=float, default=0.95, help="share of the strong model's quality to keep")
    adapt.add_argument("--out", type=Path, help="offline: adaptation file to write (JSON)")
    adapt.add_argument("--weights", type=Path, help="classifier weights file (default: the shipped one)")
    adapt.add_argument("--min-samples", type=int, default=100, help="refuse to fit on fewer outcomes (default 100)")
    adapt.add_argument("--seed", type=int, default=0, help="folds and bootstrap draws (default 0)")
    adapt.add_argument("--json", action="store_true", help="print one JSON object")
    try:
        from llm_router.cli.adapt import add_online_arguments
    except ModuleNotFoundError:
        adapt.add_argument("words", nargs="*", metavar="ROUTE", help=argparse.SUPPRESS)
    else:
        add_online_arguments(adapt)
    adapt.set_defaults(handler=handle_adapt)


def handle_adapt(args: argparse.Namespace) -> int:
    if args.data is None:
        try:
            from llm_router.cli.adapt import run_online
        except ModuleNotFoundError:
            raise CliError("adapt needs --data OUTCOMES.jsonl (this installation has no online adapt)") from None
        return int(run_online(args) or 0)
    if getattr(args, "words", None):
        raise CliError("adapt --data is the offline form: it takes no route")
    return _adapt_offline(args)


def _adapt_offline(args: argparse.Namespace) -> int:
    from llm_router.ml.adapt import fit
    from llm_router.routing.adaptation import outcome_features

    missing = [
        name for name, value in (("--weak", args.weak), ("--strong", args.strong), ("--out", args.out)) if not value
    ]
    if missing:
        raise CliError(f"adapt --data needs {', '.join(missing)}")
    if not 0 < args.target_quality <= 1:
        raise CliError("--target-quality must be in (0, 1]")
    if args.weak == args.strong:
        raise CliError("--weak and --strong must name two different models")
    if args.min_samples < 1:
        raise CliError("--min-samples must be at least 1")
    clf = _scorer(args.weights)
    records = _records(args.data)
    samples = [_sample(record, outcome_features(record.prompt, clf)) for record in records]
    for model in (args.weak, args.strong):
        if not any(model in s.scores for s in samples):
            known = sorted({m for s in samples for m in s.scores})
            raise CliError(f"model {model!r} has no outcome in {args.data} (models: {', '.join(known)})")
    result = fit(
        samples,
        weak=args.weak,
        strong=args.strong,
        target_quality=args.target_quality,
        min_samples=args.min_samples,
        seed=args.seed,
    )
    if result.adaptation is None:
        raise CliError(result.reason)
    import json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result.adaptation.to_dict(), indent=2) + "\n", encoding="utf-8")
    summary = {
        "promoted": result.promoted,
        "reason": result.reason,
        "threshold": round(result.adaptation.threshold, 6),
        "out": str(args.out),
        "report": result.report,
    }
    if args.json:
        print_json(summary)
        return 0
    print(result.reason)
    print(f"threshold {summary['threshold']}; adaptation written to {args.out}")
    if not result.promoted:
        print("warning: the held-out check did not pass; an online adapt would not promote this version")
    return 0


def _sample(record: Any, features: dict[str, float]) -> Any:
    from llm_router.ml.adapt import Sample

    scores, costs = {}, {}
    for model, outcome in record.outcomes.items():
        try:
            scores[model] = float(outcome["score"])
        except (KeyError, TypeError, ValueError):
            raise CliError(f"record {record.id}: model {model!r} has no numeric score") from None
        if "cost_usd" in outcome:
            costs[model] = float(outcome["cost_usd"])
    return Sample(features, scores, costs)
