"""Refuses regular expressions that can backtrack catastrophically, before a rule holding one is accepted.

Python's `re` backtracks: a pattern such as `^(a+)+$` takes time exponential in the text, and a 30-character
prompt can hold a router thread for seconds. An admin regex is therefore checked when its rule is validated, and
refused when it has one of the shapes that cause that blow-up:

- a quantifier inside a repeated group (`(a+)+`, `(\\w+\\s?)*`, `(a{1,3})+`), unless the inner part is atomic or
  possessive (`(?>a+)+`, `(a++)+`), which cannot give characters back;
- alternatives under repetition that can start with the same character or match nothing (`(a|ab)*`,
  `(\\w|\\d)+`, `(x|)+`), so the engine has several ways to split the same text;
- backreferences (`(a)\\1`, `(?(1)a|b)`), which no linear-time engine supports.

The check is conservative: classes that share no character are told apart only when both list plain characters
or ranges; a class with `\\w`, `\\d`, `.` or negation is assumed to overlap everything. What remains possible
(polynomial backtracking such as `.*a.*b`) is bounded by the prefix of the text a regex condition sees.
A linear-time engine (RE2) would need a native wheel in the Lambda layer, which ships only pure-Python packages.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

Ranges = tuple[tuple[int, int], ...] | None  # None: any character (a category, a negated class, `.`)
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)


def unsafe_reason(pattern: str) -> str | None:
    """Why `pattern` can backtrack catastrophically, or None when it has none of the refused shapes."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None  # compiling reports it
    folded = bool(parsed.state.flags & re.IGNORECASE)
    return _walk(list(parsed), in_repeat=False, folded=folded)


def _walk(items: list[tuple[Any, Any]], *, in_repeat: bool, folded: bool) -> str | None:  # noqa: C901
    for op, av in items:
        reason: str | None = None
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return "a backreference"
        if op in _REPEATS:
            _, most, body = av
            repeats = most > 1
            if repeats and in_repeat:
                return "a quantifier inside a repeated group (nested quantifiers)"
            if repeats and _ambiguous(list(body), folded):
                return "alternatives under repetition that can match the same text"
            reason = _walk(list(body), in_repeat=in_repeat or repeats, folded=folded)
        elif op == sre.POSSESSIVE_REPEAT:
            reason = _walk(list(av[2]), in_repeat=False, folded=folded)
        elif op == sre.ATOMIC_GROUP:
            reason = _walk(list(av), in_repeat=False, folded=folded)
        elif op == sre.SUBPATTERN:
            reason = _walk(list(av[3]), in_repeat=in_repeat, folded=folded)
        elif op == sre.BRANCH:
            reason = next((r for alt in av[1] if (r := _walk(list(alt), in_repeat=in_repeat, folded=folded))), None)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            reason = _walk(list(av[1]), in_repeat=in_repeat, folded=folded)
        if reason is not None:
            return reason
    return None


def _ambiguous(items: list[tuple[Any, Any]], folded: bool) -> bool:
    """Whether a repeated body holds an alternation whose branches can start alike (or match nothing)."""
    for op, av in items:
        if op == sre.BRANCH:
            firsts = [_first(list(alt), folded) for alt in av[1]]
            for i, (ranges_a, nullable_a) in enumerate(firsts):
                for ranges_b, nullable_b in firsts[i + 1 :]:
                    if nullable_a or nullable_b or _overlap(ranges_a, ranges_b):
                        return True
            if any(_ambiguous(list(alt), folded) for alt in av[1]):
                return True
        elif op == sre.SUBPATTERN and _ambiguous(list(av[3]), folded):
            return True
    return False


def _first(items: list[tuple[Any, Any]], folded: bool) -> tuple[Ranges, bool]:
    """The characters a sequence can start with, and whether it can match the empty string."""
    collected: list[tuple[int, int]] = []
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        ranges, nullable = _first_of(op, av, folded)
        if ranges is None:
            return None, False
        collected.extend(ranges)
        if not nullable:
            return tuple(collected), False
    return tuple(collected), True


def _first_of(op: Any, av: Any, folded: bool) -> tuple[Ranges, bool]:
    if op == sre.LITERAL:
        return _literal(av, folded), False
    if op == sre.IN:
        return _class_ranges(av, folded), False
    if op == sre.SUBPATTERN:
        return _first(list(av[3]), folded)
    if op == sre.ATOMIC_GROUP:
        return _first(list(av), folded)
    if op in (*_REPEATS, sre.POSSESSIVE_REPEAT):
        least, _, body = av
        ranges, nullable = _first(list(body), folded)
        return ranges, nullable or least == 0
    if op == sre.BRANCH:
        out: list[tuple[int, int]] = []
        any_nullable = False
        for alt in av[1]:
            ranges, nullable = _first(list(alt), folded)
            if ranges is None:
                return None, False
            out.extend(ranges)
            any_nullable = any_nullable or nullable
        return tuple(out), any_nullable
    return None, False  # ANY, NOT_LITERAL, CATEGORY and anything else: assume any character


def _class_ranges(entries: list[tuple[Any, Any]], folded: bool) -> Ranges:
    out: list[tuple[int, int]] = []
    for op, av in entries:
        if op == sre.LITERAL:
            out.extend(_literal(av, folded))
        elif op == sre.RANGE and not folded:
            out.append(av)
        else:
            return None
    return tuple(out)


def _literal(code: int, folded: bool) -> tuple[tuple[int, int], ...]:
    if not folded:
        return ((code, code),)
    char = chr(code)
    return tuple((ord(c), ord(c)) for c in {char, char.lower(), char.upper()} if len(c) == 1)


def _overlap(a: Ranges, b: Ranges) -> bool:
    if a is None or b is None:
        return True
    return any(lo_a <= hi_b and lo_b <= hi_a for lo_a, hi_a in a for lo_b, hi_b in b)
