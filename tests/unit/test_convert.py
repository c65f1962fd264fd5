"""`llm-router data convert`: shared outcome data -> the eval format, with the held-out split and costs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llm_router.cli.main import main
from llm_router.ml.convert import PRICES, convert
from llm_router.ml.datasets import ROUTELLM_STRONG, ROUTELLM_WEAK, is_heldout

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "routing"
ROUTELLM = FIXTURES / "routellm"
DCROUTER = FIXTURES / "dcrouter"


def _even(prompt: str) -> bool:
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest(), 16) % 2 == 0


def test_heldout_half_is_the_sha256_even_prompts() -> None:
    prompts = [f"prompt {i}" for i in range(50)]
    assert [is_heldout(p) for p in prompts] == [_even(p) for p in prompts]
    assert 10 < sum(map(is_heldout, prompts)) < 40


def test_mmlu_splits_partition_the_prompts_and_drop_contaminated_ones() -> None:
    every = list(convert("routellm-mmlu", ROUTELLM, "all"))
    test = list(convert("routellm-mmlu", ROUTELLM, "test"))
    train = list(convert("routellm-mmlu", ROUTELLM, "train"))
    contaminated = json.loads((ROUTELLM / "mmlu" / "contaminated_prompts.jsonl").read_text())["eval_prompt"]
    assert len(every) == 6 and contaminated not in {r["prompt"] for r in every}
    assert all(_even(r["prompt"]) for r in test) and not any(_even(r["prompt"]) for r in train)
    assert sorted(r["id"] for r in test + train) == sorted(r["id"] for r in every)


def test_outcomes_keep_the_sources_model_names_and_carry_costs() -> None:
    record = next(iter(convert("routellm-mmlu", ROUTELLM, "all")))
    assert set(record["outcomes"]) == {ROUTELLM_WEAK, ROUTELLM_STRONG}
    strong = record["outcomes"][ROUTELLM_STRONG]
    tokens = -(-len(record["prompt"]) // 4)
    price_in, price_out = PRICES[ROUTELLM_STRONG]
    assert strong["score"] == 1.0
    assert strong["cost_usd"] == pytest.approx((tokens * price_in + 1 * price_out) / 1e6)


def test_gsm8k_prices_the_output_each_model_actually_wrote() -> None:
    records = list(convert("routellm-gsm8k", ROUTELLM, "all"))
    assert len(records) == 4
    weak, strong = records[0]["outcomes"][ROUTELLM_WEAK], records[0]["outcomes"][ROUTELLM_STRONG]
    tokens = -(-len(records[0]["prompt"]) // 4)
    assert weak["cost_usd"] == pytest.approx((tokens * 0.45 + 10 * 0.70) / 1e6)
    assert strong["cost_usd"] == pytest.approx((tokens * 10.0 + 100 * 30.0) / 1e6)
    assert [r["outcomes"][ROUTELLM_WEAK]["score"] for r in records] == [1.0, 0.0, 1.0, 1.0]


def test_dcrouter_uses_its_own_files_and_price_list() -> None:
    test = list(convert("dcrouter", DCROUTER, "test"))
    assert [r["prompt"] for r in test] == ["Write a python function to reverse a list.", "who painted the mona lisa"]
    assert len(list(convert("dcrouter", DCROUTER, "all"))) == 5
    small = test[0]["outcomes"]["small-7b"]
    assert small["score"] == 1.0 and small["cost_usd"] == pytest.approx((11 * 0.2 + 200 * 0.2) / 1e6)


def test_cli_convert_writes_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gsm8k-test.jsonl"
    code = main(["data", "convert", "--from", "routellm-gsm8k", "--split", "test", str(ROUTELLM), str(out)])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and f"wrote {len(lines)} records" in capsys.readouterr().out
    assert lines and all(_even(line["prompt"]) for line in lines)


def test_cli_convert_reports_a_missing_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "convert", "--from", "dcrouter", str(tmp_path / "nope"), str(tmp_path / "out.jsonl")])
    assert code == 2 and "not a folder" in capsys.readouterr().err
