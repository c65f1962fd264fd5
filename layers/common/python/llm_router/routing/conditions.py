"""Evaluate a rule condition against request features: a boolean and a readable reason."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from llm_router.routing.features import Features
from llm_router.schemas.rules import Condition

Result = tuple[bool, str]


def as_tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _keywords(c: Condition, f: Features) -> Result:
    # A keyword whose words are not all among the text's words cannot match: with many keyword rules, set
    # look-ups rule most of them out without scanning the text (or compiling a pattern) once per rule. Exact for
    # ASCII text and keywords (IGNORECASE then equals lower-casing); anything else goes straight to the pattern.
    words, wanted = f.words, c.keyword_words
    if words is not None and wanted is not None and not any(w <= words for w in wanted):
        return False, _no_keyword(c.keywords or ())
    assert c.keyword_pattern is not None
    match = c.keyword_pattern.search(f.text)
    if match:
        return True, f"keyword {match.group()!r} found"
    return False, _no_keyword(c.keywords or ())


# Most rules fail, each with the same reason every time: formatted once per rule, not once per request.
@lru_cache(maxsize=4096)
def _no_keyword(keywords: tuple[str, ...]) -> str:
    return f"none of the keywords {list(keywords)} found"


@lru_cache(maxsize=4096)
def _no_regex_match(regex: str) -> str:
    return f"regex {regex!r} did not match"


def _regex(c: Condition, f: Features) -> Result:
    # A text without any string every match must contain cannot match: `in` rules it out without a regex scan.
    literals = c.regex_literals
    if literals is not None and not any(literal in f.text for literal in literals):
        return False, _no_regex_match(c.regex or "")
    assert c.regex_pattern is not None
    match = c.regex_pattern.search(f.text)
    if match:
        return True, f"regex {c.regex!r} matched {match.group()[:40]!r}"
    return False, _no_regex_match(c.regex or "")


def _min_chars(c: Condition, f: Features) -> Result:
    return f.chars >= (c.min_chars or 0), f"{f.chars} chars (min {c.min_chars})"


def _max_chars(c: Condition, f: Features) -> Result:
    return f.chars <= (c.max_chars or 0), f"{f.chars} chars (max {c.max_chars})"


def _min_tokens(c: Condition, f: Features) -> Result:
    return f.tokens >= (c.min_tokens or 0), f"~{f.tokens} tokens (min {c.min_tokens})"


def _max_tokens(c: Condition, f: Features) -> Result:
    return f.tokens <= (c.max_tokens or 0), f"~{f.tokens} tokens (max {c.max_tokens})"


def _metadata(c: Condition, f: Features) -> Result:
    for key, expected in (c.metadata or {}).items():
        actual = f.metadata.get(key)
        if actual is None or actual not in as_tuple(expected):
            return False, f"metadata {key}={actual!r} not in {list(as_tuple(expected))}"
    return True, f"metadata matches {c.metadata}"


def _tenant(c: Condition, f: Features) -> Result:
    allowed = as_tuple(c.tenant or ())
    return f.tenant in allowed, f"tenant {f.tenant!r} {'in' if f.tenant in allowed else 'not in'} {list(allowed)}"


def _has_tools(c: Condition, f: Features) -> Result:
    return f.has_tools is c.has_tools, f"has_tools={f.has_tools}"


def _has_images(c: Condition, f: Features) -> Result:
    return f.has_images is c.has_images, f"has_images={f.has_images}"


def _pii(c: Condition, f: Features) -> Result:
    found = f.pii
    if c.pii is True:
        return bool(found), f"PII found: {sorted(found)}" if found else "no PII found"
    if c.pii is False:
        return not found, "no PII found" if not found else f"PII found: {sorted(found)}"
    wanted = set(c.pii or ())
    hits = sorted(found & wanted)
    return bool(hits), f"PII found: {hits}" if hits else f"no PII of kinds {sorted(wanted)}"


def _domain_check(labels: tuple[str, ...], minimum: float, f: Features) -> Result:
    scores = f.domain_scores
    if not scores:
        return False, "no domain classifier installed"
    best = max(labels, key=lambda label: scores.get(label, 0.0))
    score = scores.get(best, 0.0)
    return score >= minimum, f"domain {best}={score:.2f} (min {minimum})"


def _domain(c: Condition, f: Features) -> Result:
    assert c.domain is not None
    return _domain_check(c.domain.in_, c.domain.min, f)


def _classifier(c: Condition, f: Features) -> Result:
    assert c.classifier is not None
    return _domain_check((c.classifier.label,), c.classifier.min, f)


def _difficulty(c: Condition, f: Features) -> Result:
    assert c.difficulty is not None
    score = f.difficulty
    if score is None:
        return False, "no difficulty classifier installed"
    low, high = c.difficulty.min, c.difficulty.max
    ok = (low is None or score >= low) and (high is None or score <= high)
    return ok, f"difficulty={score:.2f} (min {low}, max {high})"


def _all(c: Condition, f: Features) -> Result:
    reasons = []
    for sub in c.all or ():
        ok, why = evaluate(sub, f)
        if not ok:
            return False, why
        reasons.append(why)
    return True, " and ".join(reasons) or "all: empty"


def _any(c: Condition, f: Features) -> Result:
    reasons = []
    for sub in c.any or ():
        ok, why = evaluate(sub, f)
        if ok:
            return True, why
        reasons.append(why)
    return False, "; ".join(reasons) or "any: empty"


def _not(c: Condition, f: Features) -> Result:
    assert c.not_ is not None
    ok, why = evaluate(c.not_, f)
    return not ok, f"not ({why})"


# Cheap checks first, so a condition fails before paying for PII scanning or classifier scores.
_CHECKS: tuple[tuple[str, Callable[[Condition, Features], Result]], ...] = (
    ("tenant", _tenant),
    ("metadata", _metadata),
    ("has_tools", _has_tools),
    ("has_images", _has_images),
    ("min_chars", _min_chars),
    ("max_chars", _max_chars),
    ("min_tokens", _min_tokens),
    ("max_tokens", _max_tokens),
    ("keywords", _keywords),
    ("regex", _regex),
    ("all", _all),
    ("any", _any),
    ("not_", _not),
    ("pii", _pii),
    ("domain", _domain),
    ("classifier", _classifier),
    ("difficulty", _difficulty),
)


@lru_cache(maxsize=1024)
def _checks_for(keys: frozenset[str]) -> tuple[Callable[[Condition, Features], Result], ...]:
    """The checks of a condition that sets `keys`, in `_CHECKS` order (few distinct key sets exist)."""
    return tuple(check for name, check in _CHECKS if name in keys)


def evaluate(condition: Condition, features: Features) -> Result:
    """True when every key of `condition` holds; the reason names what decided it."""
    reasons = []
    for check in _checks_for(condition.checked_keys):
        ok, why = check(condition, features)
        if not ok:
            return False, why
        reasons.append(why)
    return True, " and ".join(reasons) if reasons else "always (empty condition)"
