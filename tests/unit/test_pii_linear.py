"""Every built-in PII detector runs in time linear in the text: megabyte-long adversarial inputs, a time bound.

The bound is generous (a linear scan of 1 MB takes well under a tenth of it); the quadratic e-mail pattern this
replaces needed 16 s for 120 kB of `%` followed by `@`.
"""

from __future__ import annotations

import time

import pytest

from llm_router.routing.pii import DETECTORS, detect_pii

MB = 1_000_000
ADVERSARIAL = {
    "percent run then at": "%" * MB + "@",
    "dot run then at": "." * MB + "@",
    "dash run then at": "-" * MB + "@",
    "plus run then at": "+" * MB + "@",
    "letters then at": "a" * MB + "@",
    "local parts and ats": "a@" * (MB // 2),
    "labels without a tld": "x@" + "a." * (MB // 2) + "_",
    "digits": "7" * MB,
    "digits and spaces": "1 " * (MB // 2),
    "digits and dashes": "1-" * (MB // 2),
    "digits and dots": "1." * (MB // 2),
    "parenthesised groups": "(1) " * (MB // 4),
    "plus then digits": "+" * (MB // 2) + "1" * (MB // 2),
    "colons": ":" * MB,
    "hex and colons": "ab:" * (MB // 3),
    "iban-like": "DE12" + "A" * MB,
    "upper and digits": "AB12 " * (MB // 5),
    "unicode letters then at": "é" * MB + "@",
    "unicode digits": "٣" * MB,
}
BOUND_SECONDS = 3.0


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_every_detector_handles_a_megabyte_of_adversarial_text_in_linear_time(name: str) -> None:
    text = ADVERSARIAL[name]
    for kind, _, detector in DETECTORS:
        started = time.perf_counter()
        detector(text)
        elapsed = time.perf_counter() - started
        assert elapsed < BOUND_SECONDS, f"{kind} ({detector.__name__}) took {elapsed:.2f} s on {name!r}"


def test_the_email_detector_still_finds_addresses_after_long_runs() -> None:
    assert "email" in detect_pii("%" * 10_000 + " jane.doe@example.com")
    assert "email" in detect_pii("x%y@example.org")
