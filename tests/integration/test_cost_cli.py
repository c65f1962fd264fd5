"""`llm-router prices|tenants|usage` against the tables under moto, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_router.cli.main import main
from llm_router.settings import DEFAULT_CONFIG_TABLE
from llm_router.stores.tenant_store import TenantStore
from tests.helpers import header
from tests.integration.conftest import Router


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prices_list_shows_every_model_with_its_source_and_date(
    router: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "prices", "list", "--json")

    rows = {row["model"]: row for row in json.loads(out)}
    assert code == 0
    assert set(rows) == {"nova-micro", "claude-haiku", "claude-sonnet", "eu-nova-lite", "gpt-4o-mini", "titan-embed"}
    assert rows["claude-haiku"] == {
        "model": "claude-haiku",
        "input": 1.0,
        "output": 5.0,
        "cache_read": 0.1,
        "cache_write": 1.25,
        "source": "aws.amazon.com/bedrock/pricing",
        "as_of": "2026-11-01",
    }


def test_prices_set_changes_what_the_next_answer_costs(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "prices",
        "set",
        "claude-haiku",
        "--input",
        "0.8",
        "--output",
        "4",
        "--source",
        "test",
        "--as-of",
        "2026-11-29",
    )
    response = router.chat("Why does my Python script raise KeyError?")

    usage = router.json(response)["usage"]
    assert code == 0 and "input 1.0 -> 0.8" in out and "output 5.0 -> 4.0" in out
    assert header(response, "x-router-model") == "claude-haiku"
    expected = (usage["prompt_tokens"] * 0.8 + usage["completion_tokens"] * 4) / 1e6
    assert float(header(response, "x-router-cost-usd") or 0) == pytest.approx(expected, abs=1e-8)
    price = (router.admin.get("model", "claude-haiku") or {})["price"]
    assert price == {"input_per_mtok": 0.8, "output_per_mtok": 4, "source": "test", "as_of": "2026-11-29"}


def test_prices_set_refuses_an_unknown_model(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "prices", "set", "gpt-9", "--input", "1", "--output", "2", "--source", "s")

    assert code == 2 and "no model 'gpt-9'" in err


def test_prices_import_applies_a_file_and_skips_models_not_in_the_catalog(
    router: Router, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text(
        "prices:\n"
        "  nova-micro: {input_per_mtok: 0.04, output_per_mtok: 0.16, source: example.com, as_of: 2026-11-28}\n"
        "  claude-sonnet: {input_per_mtok: 3.0, output_per_mtok: 15.0, cache_read_per_mtok: 0.3,"
        " cache_write_per_mtok: 3.75, source: aws.amazon.com/bedrock/pricing, as_of: '2026-11-01'}\n"
        "  llama-9: {input_per_mtok: 1, output_per_mtok: 1, source: example.com}\n"
    )

    dry_code, dry_out, _ = run(capsys, "prices", "import", str(file), "--dry-run")
    unchanged = (router.admin.get("model", "nova-micro") or {})["price"]["input_per_mtok"]
    code, out, _ = run(capsys, "prices", "import", str(file))

    assert dry_code == 0 and "dry run: nothing written" in dry_out and unchanged == 0.035
    assert code == 0
    assert "~ nova-micro: input 0.035 -> 0.04, output 0.14 -> 0.16, as of 2026-11-28 from example.com" in out
    assert "= claude-sonnet: unchanged" in out
    assert "- llama-9: not in the catalog, skipped" in out
    assert "updated 1 of 6 models" in out
    assert (router.admin.get("model", "nova-micro") or {})["price"]["as_of"] == "2026-11-28"


def test_prices_import_refuses_a_file_without_sources(
    router: Router, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text("prices:\n  nova-micro: {input_per_mtok: 0.04, output_per_mtok: 0.16}\n")

    code, _, err = run(capsys, "prices", "import", str(file))

    assert code == 2 and "nova-micro: source is required" in err
    assert (router.admin.get("model", "nova-micro") or {})["price"]["input_per_mtok"] == 0.035


def test_shipped_price_file_matches_the_seeded_example_catalog(
    router: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "prices", "import")

    assert code == 0 and "updated 0 of 6 models" in out


def test_tenants_set_then_list(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.chat("Hello!")

    set_code, set_out, _ = run(
        capsys,
        "tenants",
        "set",
        "local",
        "--daily-budget",
        "5",
        "--monthly-budget",
        "100",
        "--models",
        "nova-micro,claude-haiku",
        "--on-exceed",
        "degrade",
        "--soft-limit",
        "0.5",
    )
    code, out, _ = run(capsys, "tenants", "list", "--json")

    [row] = json.loads(out)
    assert set_code == 0 and set_out.startswith("created tenant local")
    assert code == 0
    assert row["tenant"] == "local" and row["daily_budget"] == 5.0 and row["monthly_budget"] == 100.0
    assert row["models"] == "nova-micro,claude-haiku" and row["on_exceed"] == "degrade" and row["soft_limit"] == 0.5
    assert row["spent_today"] > 0 and row["spent_month"] == row["spent_today"]


def test_tenants_set_changes_only_what_it_is_given(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tenants", "set", "local", "--daily-budget", "5", "--models", "nova-micro")

    code, out, _ = run(capsys, "tenants", "set", "local", "--daily-budget", "off", "--monthly-budget", "20")

    spec = TenantStore(DEFAULT_CONFIG_TABLE).read("local")
    assert code == 0 and out.startswith("updated tenant local")
    assert spec is not None
    assert (spec.daily_budget_usd, spec.monthly_budget_usd, spec.models) == (None, 20.0, ("nova-micro",))


def test_tenants_set_refuses_unknown_models_and_writes_nothing(
    router: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "tenants", "set", "local", "--models", "nova-micro,gpt-9")

    assert code == 2 and "unknown model(s): gpt-9" in err
    assert TenantStore(DEFAULT_CONFIG_TABLE).read("local") is None


def test_tenants_delete_removes_the_limits(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tenants", "set", "local", "--daily-budget", "0")
    assert router.chat("Hello!")["statusCode"] == 429

    code, _, _ = run(capsys, "tenants", "delete", "local")

    assert code == 0 and router.chat("Hello!")["statusCode"] == 200


def test_usage_json_breaks_spend_and_savings_down_by_tenant_model_and_route(
    router: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    responses = [router.chat("Hello!"), router.chat("Why does my Python script raise KeyError?")]
    other, _ = router.keys.create("team-b")
    router.call({"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}, key=other)

    code, out, _ = run(capsys, "usage", "--json", "--since", "2d")

    data = json.loads(out)
    assert code == 0 and "not the AWS bill" in data["note"]
    tenants = {row["tenant"]: row for row in data["tenants"]}
    assert set(tenants) == {"local", "team-b"}
    cost = sum(float(header(r, "x-router-cost-usd") or 0) for r in responses)
    assert tenants["local"]["requests"] == 2 and tenants["local"]["cost_usd"] == pytest.approx(cost, abs=1e-7)
    assert tenants["local"]["saved_usd"] > 0 and tenants["local"]["saved_pct"] > 50
    models = {(row["tenant"], row["model"]): row["requests"] for row in data["models"]}
    assert models == {("local", "nova-micro"): 1, ("local", "claude-haiku"): 1, ("team-b", "nova-micro"): 1}
    assert {(row["tenant"], row["route"]) for row in data["routes"]} == {("local", "auto"), ("team-b", "auto")}
    assert data["total"]["requests"] == 3


def test_usage_of_one_tenant_as_a_table(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.chat("Hello!")

    code, out, _ = run(capsys, "usage", "--tenant", "local")

    assert code == 0
    assert "Usage of tenant local" in out and "not the AWS bill" in out
    assert "TENANT  MODEL" in out and "nova-micro" in out and "TENANT  ROUTE" in out


def test_usage_of_a_tenant_without_usage_says_so(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "usage", "--tenant", "nobody", "--since", "30d")

    assert code == 0 and "no usage recorded" in out
