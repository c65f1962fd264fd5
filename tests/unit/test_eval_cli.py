"""`llm-router eval` and `llm-router calibrate` on converted fixture data with the shipped classifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_router.cli.main import main
from llm_router.ml.datasets import ROUTELLM_STRONG, ROUTELLM_WEAK

ROUTELLM = Path(__file__).resolve().parent.parent / "fixtures" / "routing" / "routellm"
PAIR = ["--weak", ROUTELLM_WEAK, "--strong", ROUTELLM_STRONG]


@pytest.fixture
def mmlu(tmp_path: Path) -> Path:
    out = tmp_path / "mmlu.jsonl"
    assert main(["data", "convert", "--from", "routellm-mmlu", "--split", "all", str(ROUTELLM), str(out)]) == 0
    return out


def test_eval_json_has_exactly_the_documented_keys(mmlu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", "--data", str(mmlu), *PAIR, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary) == [
        "apgr",
        "cpt50",
        "cpt80",
        "aiq",
        "savings_at_95",
        "random_apgr",
        "oracle_apgr",
        "n",
        "operating_point",
    ]
    assert list(summary["operating_point"]) == ["threshold", "strong_share", "quality_ratio"]
    assert summary["n"] == 6


def test_eval_prints_the_curve_and_writes_a_plot(
    mmlu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "curve.png"
    assert main(["eval", "--data", str(mmlu), *PAIR, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "STRONG_CALLS" in out and "apgr:" in out and png.stat().st_size > 0


def test_calibrate_prints_a_threshold_for_a_strong_share(mmlu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["calibrate", "--data", str(mmlu), *PAIR, "--target-strong-share", "0.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["threshold"] <= 1 and result["strong_share"] <= 0.5 and result["n"] == 6


def test_eval_names_a_model_the_data_lacks(mmlu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(mmlu), "--weak", "nope", "--strong", ROUTELLM_STRONG]) == 2
    assert "nope" in capsys.readouterr().err
