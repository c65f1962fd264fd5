"""`llm-router config export|import`: the whole configuration, tenants included, round-trips through one file;
`--dry-run` shows each changed field and `--prune` deletes what the file no longer has."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_router.cli.main import main
from llm_router.schemas.tenants import TenantSpec
from llm_router.settings import DEFAULT_CONFIG_TABLE
from llm_router.stores.tenant_store import TenantStore
from tests.integration.conftest import Router


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def tenants(router: Router) -> TenantStore:
    return TenantStore(DEFAULT_CONFIG_TABLE, dynamodb=router.clients.get("dynamodb"))


def test_export_includes_tenants_and_import_restores_them(
    router: Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenants(router).put(TenantSpec(id="team-a", daily_budget_usd=5.0, models=("nova-micro",)))
    path = tmp_path / "config.yaml"
    assert run(capsys, "config", "export", str(path))[0] == 0
    tenants(router).delete("team-a")

    code, out = run(capsys, "config", "import", str(path))

    assert code == 0, out
    assert "+ tenant team-a" in out
    restored = tenants(router).read("team-a")
    assert restored is not None and restored.daily_budget_usd == 5.0 and restored.models == ("nova-micro",)


def test_dry_run_shows_changed_fields_and_writes_nothing(
    router: Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    run(capsys, "config", "export", str(path))
    doc = yaml.safe_load(path.read_text())
    route = next(r for r in doc["routes"] if r["id"] == "auto")
    route["baseline"] = "claude-haiku"
    path.write_text(yaml.safe_dump(doc))

    code, out = run(capsys, "config", "import", str(path), "--dry-run")

    assert code == 0
    assert "~ route auto" in out
    assert 'baseline: "claude-sonnet" -> "claude-haiku"' in out
    assert "= model nova-micro" in out
    assert router.admin.get("route", "auto")["baseline"] == "claude-sonnet"  # type: ignore[index]


def test_prune_deletes_what_the_file_does_not_have(
    router: Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    run(capsys, "config", "export", str(path))
    doc = yaml.safe_load(path.read_text())
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "code-to-haiku"]
    path.write_text(yaml.safe_dump(doc))

    plain = run(capsys, "config", "import", str(path))[1]
    still_there = router.admin.get("rule", "code-to-haiku")
    code, pruned = run(capsys, "config", "import", str(path), "--prune")

    assert "code-to-haiku" not in plain and still_there is not None
    assert code == 0 and "- rule code-to-haiku" in pruned
    assert router.admin.get("rule", "code-to-haiku") is None
    assert router.admin.get("rule", "pii-stays-in-eu") is not None


def test_a_tenant_naming_an_unknown_model_is_refused(
    router: Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"tenants": [{"id": "t", "models": ["no-such-model"]}]}))

    code, out = run(capsys, "config", "validate", str(path))

    assert code == 1 and "tenant t: unknown model 'no-such-model'" in out
