"""`llm-router adapt --data` and `llm-router eval --adapted` end to end, on a generated outcome file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from llm_router.cli.main import main
from llm_router.cli.ml import SHIPPED_THRESHOLD
from llm_router.routing.adaptation import Adaptation
from llm_router.routing.classifier import DEFAULT_WEIGHTS

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no classifier weights installed")
PAIR = ["--weak", "tiny-model", "--strong", "huge-model"]
TOPICS = ["the weather", "a poem about cats", "the capital of France", "a greeting", "a recipe for soup"]


def _write(path: Path, n: int, seed: int) -> Path:
    """Prompts whose need for the strong model grows with the numbers in them: short chit-chat the tiny model
    answers, multi-step arithmetic it fails; the huge model answers both, with some noise."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            hard = rng.random() < 0.5
            if hard:
                numbers = ", ".join(str(rng.randint(100, 99999)) for _ in range(rng.randint(3, 8)))
                prompt = f"Compute the sum and the product of {numbers}, then divide by {rng.randint(3, 97)}."
            else:
                prompt = f"Tell me about {rng.choice(TOPICS)}, please."
            tiny = float(rng.random() < (0.2 if hard else 0.9))
            huge = float(rng.random() < 0.95)
            record = {
                "id": f"r{i}",
                "prompt": prompt,
                "outcomes": {
                    "tiny-model": {"score": tiny, "cost_usd": 0.0001},
                    "huge-model": {"score": huge, "cost_usd": 0.002},
                    "other": {"score": 0.5},
                },
            }
            handle.write(json.dumps(record) + "\n")
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_adapt_then_eval_with_the_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.jsonl", 300, 1)
    test = _write(tmp_path / "test.jsonl", 300, 2)
    out = tmp_path / "adapted" / "auto.json"
    capsys.readouterr()
    assert main(["adapt", "--data", str(train), *PAIR, "--target-quality", "0.95", "--out", str(out), "--json"]) == 0
    summary = _json(capsys)
    assert summary["promoted"] is True
    adaptation = Adaptation.from_dict(json.loads(out.read_text()))
    assert (adaptation.weak, adaptation.strong, adaptation.version) == ("tiny-model", "huge-model", "offline")
    assert adaptation.metadata["samples"] == 300 and adaptation.metadata["target_quality"] == 0.95

    assert main(["eval", "--data", str(test), *PAIR, "--adapted", str(out), "--json"]) == 0
    adapted = _json(capsys)
    point = adapted["operating_point"]
    assert isinstance(point, dict)
    assert point["threshold"] == round(adaptation.threshold, 6)
    # The promise holds on fresh prompts, without sending everything to the strong model.
    assert point["quality_ratio"] >= 0.93
    assert point["strong_share"] < 0.95
    assert set(adapted) >= {"apgr", "cpt50", "random_apgr", "n"}

    assert main(["eval", "--data", str(test), *PAIR, "--json"]) == 0
    shipped = _json(capsys)
    assert shipped["operating_point"]["threshold"] == SHIPPED_THRESHOLD  # type: ignore[index]
    # On this traffic, the adjusted score ranks better than the shipped one.
    assert adapted["apgr"] > shipped["apgr"]  # type: ignore[operator]


def test_eval_reads_the_shipped_model_at_a_given_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = _write(tmp_path / "test.jsonl", 60, 3)
    capsys.readouterr()
    assert main(["eval", "--data", str(test), *PAIR, "--threshold", "0", "--json"]) == 0
    assert _json(capsys)["operating_point"] == {"threshold": 0.0, "strong_share": 1.0, "quality_ratio": 1.0}
    assert main(["eval", "--data", str(test), *PAIR, "--threshold", "1", "--json"]) == 0
    point = _json(capsys)["operating_point"]
    assert isinstance(point, dict) and point["strong_share"] == 0.0


def test_eval_prints_the_operating_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = _write(tmp_path / "test.jsonl", 60, 4)
    assert main(["eval", "--data", str(test), *PAIR]) == 0
    assert f"operating point (threshold {SHIPPED_THRESHOLD})" in capsys.readouterr().out


def test_adapt_refuses_too_few_outcomes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.jsonl", 40, 5)
    out = tmp_path / "a.json"
    assert main(["adapt", "--data", str(train), *PAIR, "--out", str(out), "--min-samples", "100"]) == 2
    assert "40 usable outcomes" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weak", "nope", "--strong", "huge-model"], "nope"),
        (["--weak", "tiny-model"], "--strong"),
        ([*PAIR, "--target-quality", "1.5"], "--target-quality"),
        ([*PAIR, "auto"], "takes no route"),
    ],
)
def test_adapt_bad_arguments_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    train = _write(tmp_path / "train.jsonl", 120, 6)
    assert main(["adapt", "--data", str(train), "--out", str(tmp_path / "a.json"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_eval_refuses_an_artifact_for_another_pair_or_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = _write(tmp_path / "test.jsonl", 30, 7)
    other = Adaptation(None, "a", "b", "offline", 0.5, 0.0, {}, 1.0, {})
    artifact = tmp_path / "other.json"
    artifact.write_text(json.dumps(other.to_dict()))
    assert main(["eval", "--data", str(test), *PAIR, "--adapted", str(artifact)]) == 2
    assert "a -> b" in capsys.readouterr().err
    artifact.write_text("{not json")
    assert main(["eval", "--data", str(test), *PAIR, "--adapted", str(artifact)]) == 2
    assert "other.json" in capsys.readouterr().err
    assert main(["eval", "--data", str(test), *PAIR, "--adapted", str(artifact), "--threshold", "0.5"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_the_shipped_threshold_is_the_example_configs() -> None:
    config = yaml.safe_load((DEFAULT_WEIGHTS.parent / "example-config.yaml").read_text())
    thresholds = [
        r["strategy"]["threshold"]
        for r in config["routes"]
        if isinstance(r.get("strategy"), dict) and r["strategy"].get("strategy") == "threshold"
    ]
    assert thresholds == [SHIPPED_THRESHOLD]
