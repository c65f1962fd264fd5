"""Strings every match of a regular expression must contain, read with a small parser of our own.

Checking such a string with `in` is far cheaper than a regex scan that fails, which is what most regex rules do,
and it lets the rule index skip a regex rule for texts without it. The parser is deliberately conservative: it
only has to be right when it names a string, never complete. Whatever it is unsure of (an escape with a letter or
digit, a class, a group, a quantified character) ends a run of plain characters, and anything that could change
how literals match (inline flags such as `(?i)` or `(?x)`) gives no answer at all.
"""

from __future__ import annotations

import re

# Global inline flags anywhere (`(?i)`, `(?ix)`): case folding or verbose mode change what a literal matches.
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_QUANTIFIERS = frozenset("*+?{")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings of which every match of `pattern` contains at least one; None when that cannot be told.

    The longest run of plain characters of the pattern, or one such run from each branch of a top-level
    alternation (None when any branch has none).
    """
    if _GLOBAL_FLAGS.search(pattern):
        return None
    runs = tuple(_longest_run(_atoms(branch)) for branch in _top_level_branches(pattern))
    return runs if runs and all(runs) else None


def _skip_escape(pattern: str, i: int) -> int:
    """The position after the escape starting at `pattern[i]` (a backslash), with its arguments."""
    letter = pattern[i + 1] if i + 1 < len(pattern) else ""
    i += 2
    if letter in ("x", "u", "U"):
        while i < len(pattern) and pattern[i] in _HEX_DIGITS:
            i += 1
    elif letter == "N" and pattern.startswith("{", i):
        close = pattern.find("}", i)
        i = len(pattern) if close < 0 else close + 1
    elif letter.isdigit():
        while i < len(pattern) and pattern[i].isdigit():
            i += 1
    return i


def _skip_class(pattern: str, i: int) -> int:
    """The position after the character class starting at `pattern[i]` (`[`)."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1  # a leading `]` is a member, not the end
    while i < len(pattern) and pattern[i] != "]":
        i = _skip_escape(pattern, i) if pattern[i] == "\\" else i + 1
    return i + 1


def _skip_group(pattern: str, i: int) -> int:
    """The position after the group starting at `pattern[i]` (`(`), nested groups and classes included."""
    depth = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _skip_escape(pattern, i)
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _skip_quantifier(pattern: str, i: int) -> int:
    """The position after the quantifier starting at `pattern[i]`, a lazy or possessive mark included."""
    if pattern[i] == "{":
        i += 1
        while i < len(pattern) and (pattern[i].isdigit() or pattern[i] in ", "):
            i += 1
        if pattern.startswith("}", i):
            i += 1
    else:
        i += 1
    if i < len(pattern) and pattern[i] in "?+":
        i += 1
    return i


def _top_level_branches(pattern: str) -> list[str]:
    """`pattern` split at the `|` that are outside groups and classes."""
    branches, start, i = [], 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _skip_escape(pattern, i)
        elif char == "[":
            i = _skip_class(pattern, i)
        elif char == "(":
            i = _skip_group(pattern, i)
        else:
            if char == "|":
                branches.append(pattern[start:i])
                start = i + 1
            i += 1
    branches.append(pattern[start:i])
    return branches


def _atoms(branch: str) -> list[str | None]:
    """One entry per item of `branch`: the character it matches exactly once, or None for anything else."""
    atoms: list[str | None] = []
    i = 0
    while i < len(branch):
        char = branch[i]
        if char in _QUANTIFIERS:
            if atoms:
                atoms[-1] = None  # a quantified character may be absent or repeated
            atoms.append(None)
            i = _skip_quantifier(branch, i)
            continue
        if char == "\\":
            following = branch[i + 1 : i + 2]
            end = _skip_escape(branch, i)
            atoms.append(following if following and not following.isalnum() and following.isascii() else None)
            i = end
        elif char == "[":
            atoms.append(None)
            i = _skip_class(branch, i)
        elif char == "(":
            atoms.append(None)
            i = _skip_group(branch, i)
        else:
            atoms.append(None if char in ".^$" else char)
            i += 1
    return atoms


def _longest_run(atoms: list[str | None]) -> str:
    best, run = "", ""
    for atom in atoms:
        if atom is None:
            best, run = max(best, run, key=len), ""
        else:
            run += atom
    return max(best, run, key=len)
