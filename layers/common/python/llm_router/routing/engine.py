"""The routing decision: pure, deterministic, no I/O.

`decide` picks the candidate chain for a request (rules by priority, then the route's strategy, then its
default); `plan` drops candidates that cannot serve it (capabilities, context window, residency) and says why.

Precedence:
1. Policy rules (`enforce: always`) of the request's route, or every policy when the request names a model
   directly, are evaluated first, all of them, by priority. A policy with an invalid edit keeps its last valid
   version; one with no valid version refuses the requests it covers (503 `policy_unavailable`).
2. A matching policy that rejects refuses the request. Otherwise every matching policy holds over the whole
   chain, fallbacks and degraded budget chains included: a candidate must lie in each one's `regions` and, where
   it names targets, be one of them. On a route, the first matching policy's action also picks the chain.
3. Then ordinary rules by priority, the route's strategy, its default; a named model brings its `fallbacks`.
4. When the policies leave no candidate, the request is refused (403 `policy_violation`, naming the rules),
   never answered elsewhere.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from llm_router.errors import InvalidRequestError, NotFoundError, PolicyUnavailableError, PolicyViolationError
from llm_router.routing.conditions import evaluate
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec, ThresholdStrategy
from llm_router.schemas.rules import Reject, Rule, SplitArm

DEFAULT_RULE = "default"
PINNED_RULE = "pinned"
THRESHOLD_RULE = "threshold"


class TraceStep(NamedTuple):
    """One rule looked at for a decision (a tuple: a request builds one per rule, up to hundreds)."""

    rule: str
    matched: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "matched": self.matched, "why": self.why}


@dataclass(frozen=True)
class PolicyHold:
    """A matching policy's bounds on the chain: allowed regions (patterns) and allowed models (its targets)."""

    rule: str
    regions: tuple[str, ...] | None
    models: frozenset[str] | None

    def refuses(self, model: ModelSpec) -> str | None:
        """Why this policy does not let `model` answer, or None when it does."""
        if self.regions is not None and not _region_allowed(model, self.regions):
            return f"region {model.region} outside {list(self.regions)} (policy {self.rule!r})"
        if self.models is not None and model.id not in self.models:
            return f"not among the models policy {self.rule!r} allows ({', '.join(sorted(self.models))})"
        return None


@dataclass(frozen=True)
class Decision:
    """Which models to try, in order, and why."""

    requested: str
    route: str | None
    rule: str
    candidates: tuple[str, ...]
    reject: Reject | None = None
    regions: tuple[str, ...] | None = None
    trace: tuple[TraceStep, ...] = ()
    arm: int | None = None
    baseline: str | None = None
    policies: tuple[PolicyHold, ...] = ()
    # The version of the route's adaptation that decided (threshold strategy), e.g. "v3"; None: the shipped model.
    adaptation: str | None = None

    def public(self) -> dict[str, Any]:
        """What any caller may see of the decision: no trace (rule conditions, keywords, PII found are for admin
        keys, through /v1/route)."""
        return {k: v for k, v in self.as_dict().items() if k != "trace"}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requested": self.requested,
            "route": self.route,
            "rule": self.rule,
            "candidates": list(self.candidates),
            "trace": [s.as_dict() for s in self.trace],
        }
        if self.reject is not None:
            out["reject"] = self.reject.model_dump()
        if self.regions is not None:
            out["regions"] = list(self.regions)
        if self.arm is not None:
            out["split_arm"] = self.arm
        if self.policies:
            out["policies"] = [p.rule for p in self.policies]
        if self.adaptation is not None:
            out["adaptation"] = self.adaptation
        return out


@dataclass
class Plan:
    """The candidates left after filtering, and those skipped with the reason."""

    models: list[ModelSpec]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def split_arm(arms: tuple[SplitArm, ...], rule_id: str, tenant: str, user: str) -> int:
    """Sticky weighted choice: the same tenant and user always land in the same arm of a rule."""
    digest = hashlib.sha256(f"{rule_id}\x00{tenant}\x00{user}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(a.weight for a in arms)
    for index, arm in enumerate(arms):
        point -= arm.weight
        if point < 0:
            return index
    return len(arms) - 1


def _apply(rule: Rule, route: RouteSpec | None, requested: str, features: Features, trace: list[TraceStep]) -> Decision:
    then = rule.then
    common: dict[str, Any] = {
        "requested": requested,
        "route": route.id if route else None,
        "rule": rule.id,
        "regions": rule.regions,
        "trace": tuple(trace),
        "baseline": route.baseline if route else None,
    }
    if then.reject is not None:
        return Decision(candidates=(), reject=then.reject, **common)
    if then.split is not None:
        arm = split_arm(then.split, rule.id, features.tenant, features.user)
        return Decision(candidates=then.split[arm].targets, arm=arm, **common)
    return Decision(candidates=then.targets or (), **common)


def decide(requested: str, features: Features, config: ConfigSnapshot, *, explain: bool = False) -> Decision:
    """The decision for a request whose `model` field is `requested` (a route or a catalog model id).

    Policies first, for every request (see the module docstring for the precedence). The trace lists the rules
    evaluated: with `explain`, every rule of the route, each with its reason; otherwise only those the rule index
    could not rule out (see `routing.index`), which decides the same way.
    """
    route = config.routes.get(requested)
    model = config.models.get(requested) if route is None else None
    if route is None and model is None:
        raise NotFoundError(
            f"The model or route {requested!r} does not exist. GET /v1/models lists what is available.",
            param="model",
        )
    route_id = route.id if route is not None else None
    broken = config.unenforceable_for(route_id)
    if broken:
        raise PolicyUnavailableError(
            f"The policy {', '.join(map(repr, broken))} has no valid version, so requests it covers are refused "
            "until an operator fixes it.",
            extra={"rule": broken[0]},
        )
    trace: list[TraceStep] = []
    matched: list[Rule] = []
    for rule in config.policies_for(route_id):
        ok, why = evaluate(rule.when, features)
        trace.append(TraceStep(rule.id, ok, why))
        if ok:
            if rule.then.reject is not None:
                return _apply(rule, route, requested, features, trace)
            matched.append(rule)
    holds = tuple(PolicyHold(r.id, r.regions, frozenset(r.then.model_ids()) or None) for r in matched)
    if model is not None:
        step = TraceStep(PINNED_RULE, True, f"model {requested!r} named directly: no routing rules evaluated")
        return Decision(
            requested, None, PINNED_RULE, (model.id, *model.fallbacks), trace=(*trace, step), policies=holds
        )
    assert route is not None
    if matched:
        decision = _apply(matched[0], route, requested, features, trace)
    else:
        decision = _route_decision(route, requested, features, config, trace, explain=explain)
    return replace(decision, policies=holds) if holds else decision


def _route_decision(
    route: RouteSpec, requested: str, features: Features, config: ConfigSnapshot, trace: list[TraceStep], *,
    explain: bool,
) -> Decision:  # fmt: skip
    """Ordinary rules by priority, then the route's strategy, then its default."""
    if explain:
        rules: Iterable[Rule] = config.rules_for(route.id)
    else:
        # Only the rules the request could match, in the same order: the same decision, fewer evaluations.
        index = config.index_for(route.id)
        rules = (index.rules[position] for position in index.candidates(features))
    for rule in rules:
        if rule.is_policy:
            continue  # evaluated first, above
        if not rule.enabled:
            trace.append(TraceStep(rule.id, False, "disabled"))
            continue
        matched, why = evaluate(rule.when, features)
        trace.append(TraceStep(rule.id, matched, why))
        if matched:
            return _apply(rule, route, requested, features, trace)

    strategy = route.strategy
    if strategy is not None:
        scored = _threshold_score(route, strategy, features, config)
        if scored is not None:
            score, threshold, version, note = scored
            strong = score >= threshold
            first, other = (strategy.strong, strategy.weak) if strong else (strategy.weak, strategy.strong)
            # Fallbacks follow the route's default order, so an easy prompt whose cheap model is unavailable goes
            # to the next cheapest model rather than straight to the strong one.
            rest = tuple(m for m in route.default if m != first)
            chain = (first, *rest) if other in rest else (first, *rest, other)
            shown = threshold if version is None else round(threshold, 4)
            name = "difficulty" if version is None else "adapted difficulty"
            why = f"{name}={score:.3f} {'>=' if strong else '<'} threshold {shown}{note}"
            trace.append(TraceStep(THRESHOLD_RULE, True, why))
            return Decision(
                requested, route.id, THRESHOLD_RULE, chain, trace=tuple(trace), baseline=route.baseline,
                adaptation=version,
            )  # fmt: skip
        trace.append(TraceStep(THRESHOLD_RULE, False, "no difficulty classifier installed"))

    trace.append(TraceStep(DEFAULT_RULE, True, f"no rule matched: route {route.id!r} default"))
    return Decision(requested, route.id, DEFAULT_RULE, route.default, trace=tuple(trace), baseline=route.baseline)


def _threshold_score(
    route: RouteSpec, strategy: ThresholdStrategy, features: Features, config: ConfigSnapshot
) -> tuple[float, float, str | None, str] | None:
    """(score, threshold, adaptation version, a note for the trace) for the threshold strategy, or None without a
    classifier. The route's active adaptation decides when it was fitted for the strategy's two models; otherwise
    (none, or a strategy edited to other models since) the shipped difficulty and the strategy's threshold do."""
    adaptation = config.adaptations.get(route.id)
    if adaptation is not None and adaptation.weak == strategy.weak and adaptation.strong == strategy.strong:
        values = features.outcome_features
        if values is None:
            return None
        return adaptation.score(values), adaptation.threshold, adaptation.version, f" (adaptation {adaptation.version})"
    score = features.difficulty
    if score is None:
        return None
    note = ""
    if adaptation is not None:
        note = f" (adaptation {adaptation.version} is for {adaptation.weak}/{adaptation.strong}: not used)"
    return score, strategy.threshold, None, note


def _region_allowed(model: ModelSpec, patterns: tuple[str, ...]) -> bool:
    return model.region is not None and any(fnmatch.fnmatchcase(model.region, p) for p in patterns)


def _policy_refusal(decision: Decision, model: ModelSpec) -> str | None:
    """Why a policy in force keeps `model` out of the chain, or None when every policy allows it."""
    for hold in decision.policies:
        why = hold.refuses(model)
        if why:
            return why
    return None


def residency_refusal(decision: Decision, model: ModelSpec) -> str | None:
    """Why the request's rule regions or policies keep `model` from receiving it at all, or None (what shadow
    evaluation checks before sending a prompt to a second model or a judge)."""
    if decision.regions is not None and not _region_allowed(model, decision.regions):
        return f"region {model.region} outside {list(decision.regions)}"
    return _policy_refusal(decision, model)


def plan(  # noqa: C901 - one filter per line; split, the reasons a model is skipped would scatter
    decision: Decision, features: Features, config: ConfigSnapshot, *, embeddings: bool = False
) -> Plan:
    """Candidates that can serve this request, in order; raises 400 when none can and says why. Embedding models
    serve `embeddings` requests only, and only they do."""
    request = features.request
    needs = [
        cap
        for cap, needed in (
            ("tools", features.has_tools),
            ("images", features.has_images),
            ("json", request.needs_json()),
            ("logprobs", bool(request.logprobs)),
        )
        if needed
    ]
    result = Plan(models=[])
    seen: set[str] = set()
    for model_id in decision.candidates:
        if model_id in seen:
            continue
        seen.add(model_id)
        model = config.models.get(model_id)
        if model is None:
            result.skipped.append((model_id, "not in the model catalog"))
            continue
        if ("embeddings" in model.capabilities) != embeddings:
            why = "is an embedding model" if not embeddings else "is not an embedding model"
            result.skipped.append((model_id, why))
            continue
        missing = [cap for cap in needs if cap not in model.capabilities]
        if missing:
            result.skipped.append((model_id, f"lacks capability {', '.join(missing)}"))
            continue
        if features.tokens > model.context_window:
            result.skipped.append((model_id, f"context window {model.context_window} < ~{features.tokens} tokens"))
            continue
        if decision.regions is not None and not _region_allowed(model, decision.regions):
            result.skipped.append((model_id, f"region {model.region} outside {list(decision.regions)}"))
            continue
        refusal = _policy_refusal(decision, model)
        if refusal is not None:
            result.skipped.append((model_id, refusal))
            continue
        result.models.append(model)
    if not result.models and decision.policies:
        reasons = "; ".join(f"{m}: {why}" for m, why in result.skipped) or "the chain is empty"
        rules = ", ".join(repr(p.rule) for p in decision.policies)
        raise PolicyViolationError(
            f"The policy {rules} allows no model of this request's chain ({reasons}).",
            extra={"rule": decision.policies[0].rule, "decision": decision.public()},
        )
    if not result.models:
        reasons = "; ".join(f"{m}: {why}" for m, why in result.skipped) or "the chain is empty"
        raise InvalidRequestError(
            f"No model can serve this request ({reasons}).",
            code="no_capable_model",
            extra={"decision": decision.public()},
        )
    return result
