"""cdk-nag and cfn-lint over the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import Synth


def _acknowledgements(outdir: Path) -> dict[str, str]:
    """Rule id -> reason, for every acknowledgement recorded in the cloud assembly."""
    found: dict[str, str] = {}
    for metadata_file in outdir.glob("*.metadata.json"):
        for entries in json.loads(metadata_file.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        found[rule.removeprefix("Annotation::")] = reason
    return found


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_every_acknowledgement_gives_a_specific_reason(synth: Synth) -> None:
    acknowledged = _acknowledgements(synth.outdir)
    assert acknowledged, "the acknowledgements were not recorded"
    assert {"AwsSolutions-APIG4", "AwsSolutions-SMG4", "AwsSolutions-APIG3", "AwsSolutions-IAM5[Resource::*]"} <= set(
        acknowledged
    )
    reasons = list(acknowledged.values())
    assert len(set(reasons)) == len(reasons), "each finding needs its own reason"
    for rule, reason in acknowledged.items():
        assert len(reason) >= 80, f"{rule}: say why it is safe here"


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_sqs as sqs

    from infra.stack import add_checks

    # Given an app with the same checks and a queue that neither is encrypted nor refuses plain HTTP
    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "Queue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    add_checks(app)
    # When it is synthesized, then cdk-nag stops it
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS4" in report


def test_templates_pass_cfn_lint(synth: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    templates = sorted(synth.outdir.glob("*.template.json"))
    assert len(templates) == 3
    for template in templates:
        # W3005 (a DependsOn that is also implied) is what CDK itself writes.
        matches = lint_file(template, ManualArgs(ignore_checks=["W3005"]))
        assert [str(m) for m in matches] == [], template.name
