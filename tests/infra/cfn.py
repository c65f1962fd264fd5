"""Reading a synthesized CloudFormation template (a dict) in the infra tests."""

from __future__ import annotations

from typing import Any


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every resource of `resource_type`."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """The one resource of `resource_type` whose logical id starts with `prefix`."""
    found = [(k, r) for k, r in resources(template, resource_type).items() if k.startswith(prefix)]
    assert len(found) == 1, f"expected one {resource_type} {prefix!r}, found {[k for k, _ in found]}"
    return found[0]


def role_statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to the role whose logical id starts with `role_prefix`."""
    role_id, _ = only(template, "AWS::IAM::Role", role_prefix)
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function(template: dict[str, Any], prefix: str) -> dict[str, Any]:
    return only(template, "AWS::Lambda::Function", prefix)[1]["Properties"]
