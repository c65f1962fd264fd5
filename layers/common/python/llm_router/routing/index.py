"""Which rules a request can possibly match, found with set look-ups instead of evaluating every rule.

Each rule's condition gets a *guard*: a set of facts of which a request must show at least one for the rule to
have any chance of matching, such as "the text contains the word `mortgage`", "the tenant is `acme`", "metadata
`team` is `search`", "the request uses tools" or "the text contains the string `ORD-`". Each condition type
derives its own guard (`routing.conditions`); a rule whose condition offers none (an empty condition, `pii`,
`not`, a length or classifier check) is always a candidate.

Guards only ever rule a rule *out* when it cannot match, so evaluating the candidates in priority order decides
exactly as evaluating every rule would; the test suite checks this against the full evaluation on generated rules
and prompts. With hundreds of rules, a request evaluates the handful that share a word, tenant or tag with it.
Word facts hold for ASCII text only: for other text, every rule guarded by a word is a candidate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_router.routing.conditions import Fact, condition_words, guard_of
from llm_router.routing.features import Features
from llm_router.schemas.rules import Rule


def _by_generality(words: Counter[str]) -> Callable[[str], tuple[int, int, str]]:
    """Rank a keyword's words for its guard: the word fewest rules use first (a word many rules share, such as
    `region` in `region-7`, says little about a text), then the longest."""
    return lambda word: (words[word], -len(word), word)


def _group_by_prefix(
    by_literal: dict[str, list[int]],
) -> tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...]:
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for literal, positions in by_literal.items():
        groups.setdefault(literal[:2], []).append((literal, tuple(positions)))
    return tuple((prefix, tuple(group)) for prefix, group in groups.items())


@dataclass(frozen=True)
class RuleIndex:
    """The rules of one route, with their guards indexed by fact."""

    rules: tuple[Rule, ...]
    always: frozenset[int]  # positions of enabled rules without a guard
    by_word: dict[str, tuple[int, ...]]
    by_fact: dict[Fact, tuple[int, ...]]  # tenant, metadata and flag facts
    # Literals grouped by their first two characters: a text without those skips the whole group.
    by_literal: tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...]
    word_guarded: frozenset[int]  # every rule with a word fact: candidates when the text's words are unknown
    words: frozenset[str]

    @classmethod
    def build(cls, rules: Sequence[Rule]) -> RuleIndex:
        always: set[int] = set()
        by_word: dict[str, list[int]] = {}
        by_fact: dict[Fact, list[int]] = {}
        by_literal: dict[str, list[int]] = {}
        rank = _by_generality(Counter(w for rule in rules if rule.enabled for w in set(condition_words(rule.when))))
        for position, rule in enumerate(rules):
            if not rule.enabled:
                continue  # never a candidate
            guard = guard_of(rule.when, rank)
            if guard is None:
                always.add(position)
                continue
            for fact in guard:
                kind = fact[0]
                if kind == "word":
                    by_word.setdefault(str(fact[1]), []).append(position)
                elif kind == "lit":
                    by_literal.setdefault(str(fact[1]), []).append(position)
                else:
                    by_fact.setdefault(fact, []).append(position)
        return cls(
            rules=tuple(rules),
            always=frozenset(always),
            by_word={w: tuple(p) for w, p in by_word.items()},
            by_fact={f: tuple(p) for f, p in by_fact.items()},
            by_literal=_group_by_prefix(by_literal),
            word_guarded=frozenset(p for positions in by_word.values() for p in positions),
            words=frozenset(by_word),
        )

    def candidates(self, features: Features) -> list[int]:
        """Positions of the rules `features` might match, in evaluation order."""
        found = set(self.always)
        words = features.words
        if words is None:
            found |= self.word_guarded
        elif self.by_word:
            for word in self.words & words:
                found.update(self.by_word[word])
        if self.by_fact:
            self._add_fact_matches(features, found)
        if self.by_literal:
            self._add_literal_matches(features.text, found)
        return sorted(found)

    def _add_fact_matches(self, features: Features, found: set[int]) -> None:
        facts: list[Fact] = [("tenant", features.tenant)]
        facts += [("meta", key, value) for key, value in features.metadata.items()]
        facts += [("flag", "has_tools", features.has_tools), ("flag", "has_images", features.has_images)]
        for fact in facts:
            positions = self.by_fact.get(fact)
            if positions:
                found.update(positions)

    def _add_literal_matches(self, text: str, found: set[int]) -> None:
        for prefix, group in self.by_literal:
            if prefix in text:
                for literal, positions in group:
                    if literal in text:
                        found.update(positions)
