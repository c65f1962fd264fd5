"""Request features computed once per request; the expensive ones (PII, classifier scores) only on demand."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from llm_router.routing.adaptation import outcome_features
from llm_router.routing.pii import IMAGE_KIND, detect_pii
from llm_router.schemas.openai import ChatCompletionRequest

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
# How much of the text a `regex` condition searches (settings: REGEX_SCAN_CHARS).
REGEX_SCAN_CHARS = 16_384


_NON_WORD_TO_SPACE = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")})


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate (about four characters a token for English text and code)."""
    return -(-len(text) // CHARS_PER_TOKEN)


class Features:
    """What conditions look at. `computed` records which lazy features were actually paid for."""

    def __init__(
        self,
        request: ChatCompletionRequest,
        tenant: str,
        *,
        classifier: Any = None,
        regex_scan_chars: int = REGEX_SCAN_CHARS,
    ) -> None:
        self.request = request
        self.tenant = tenant
        self.user = request.user or ""
        self.metadata: dict[str, str] = request.metadata or {}
        self.has_tools = request.uses_tools()
        self.has_images = request.has_images()
        self._classifier = classifier
        self.regex_scan_chars = regex_scan_chars
        self.computed: list[str] = []

    @cached_property
    def text(self) -> str:
        return "\n".join(m.text() for m in self.request.messages)

    @cached_property
    def regex_text(self) -> str:
        """The prefix of the text that `regex` conditions search."""
        return self.text[: self.regex_scan_chars]

    @cached_property
    def words(self) -> frozenset[str] | None:
        """The lower-case words of an ASCII text, so keyword rules can be ruled out without a scan; else None."""
        text = self.text
        # For ASCII text, `\w` is [A-Za-z0-9_]: mapping every other character to a space and splitting gives
        # the same words as `WORD.findall`, several times faster.
        return frozenset(text.lower().translate(_NON_WORD_TO_SPACE).split()) if text.isascii() else None

    @cached_property
    def chars(self) -> int:
        return len(self.text)

    @cached_property
    def tokens(self) -> int:
        return estimate_tokens(self.text) + TOKENS_PER_MESSAGE * len(self.request.messages)

    @cached_property
    def last_user_text(self) -> str:
        for message in reversed(self.request.messages):
            if message.role == "user":
                return message.text()
        return self.text

    @cached_property
    def upstream_text(self) -> str:
        """Every string a provider may receive (see `ChatCompletionRequest.upstream_strings`), one per line."""
        return "\n".join(self.request.upstream_strings())

    @cached_property
    def pii(self) -> frozenset[str]:
        """The kinds of personal data in anything that goes upstream; an image counts as possible personal data
        (kind `image`), since no detector reads it: a PII policy fails closed unless it lists the kinds it means."""
        self.computed.append("pii")
        found = detect_pii(self.upstream_text)
        return found | {IMAGE_KIND} if self.has_images else found

    def _get_classifier(self) -> Any:
        if self._classifier is None:
            from llm_router.routing.classifier import default_classifier

            self._classifier = default_classifier()
        return self._classifier

    @cached_property
    def domain_scores(self) -> dict[str, float]:
        """Probability per domain label of the last user message (empty when no classifier is installed)."""
        self.computed.append("domain")
        clf = self._get_classifier()
        return clf.domain_scores(self.last_user_text) if clf is not None else {}

    @cached_property
    def difficulty(self) -> float | None:
        """Probability that the strong model is needed (None when no classifier is installed)."""
        self.computed.append("difficulty")
        clf = self._get_classifier()
        return clf.difficulty(self.last_user_text) if clf is not None else None

    @cached_property
    def outcome_features(self) -> dict[str, float] | None:
        """What an adaptation scores (and an outcome record keeps): computed once per request from the last user
        message, as the shipped difficulty is; None when no classifier is installed."""
        self.computed.append("outcome_features")
        clf = self._get_classifier()
        if clf is None:
            return None
        return outcome_features(self.last_user_text, clf)

    def scores(self) -> dict[str, Any]:
        """The classifier scores computed so far, for the trace."""
        out: dict[str, Any] = {}
        if "domain" in self.computed:
            out["domain"] = {k: round(v, 4) for k, v in self.domain_scores.items()}
        if "difficulty" in self.computed and self.difficulty is not None:
            out["difficulty"] = round(self.difficulty, 4)
        if "pii" in self.computed:
            out["pii"] = sorted(self.pii)
        return out
