"""Detectors for personal data in prompts: email, phone, credit card (Luhn), IBAN (mod 97), IP address.

Each detector finds candidates with a regular expression and confirms them with a checksum or parser where
one exists, so that order numbers and version strings do not count as personal data.

Every detector runs in time linear in the text: each pattern either has a bounded match length or can start only
at the beginning of a run of the characters it consumes (its look-behind excludes them all), so no character is
scanned from more than a bounded number of starting positions. tests/unit/test_pii_linear.py feeds each one
megabyte-long adversarial inputs under a time bound.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

# The look-behind covers every character of the local part, so a match starts only where a run of them starts: a
# long run without a valid address is scanned once, not once per position (`'%' * n + '@'` was quadratic).
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)")
# A phone number needs a leading + or separators between digit groups; a bare run of digits is not enough.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w-])")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{8,15}(?!\w)")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _emails(text: str) -> bool:
    return "@" in text and _EMAIL.search(text) is not None


def _cards(text: str) -> bool:
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def _phones(text: str) -> bool:
    if _PHONE_INTL.search(text):
        return True
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 9 <= len(digits) <= 15 and not (len(digits) >= 13 and luhn_valid(digits)):
            return True
    return False


def _ibans(text: str) -> bool:
    return any(iban_valid(m.group()) for m in _IBAN.finditer(text))


def _ipv4(text: str) -> bool:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
            return True
        except ValueError:
            continue
    return False


def _ipv6(text: str) -> bool:
    if "::" in text or text.count(":") >= 5:
        for match in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(match.group())
                return True
            except ValueError:
                continue
    return False


# (kind, the fewest digits a text needs before the detector can find anything, detector). Most prompts have few
# digits, and counting them is far cheaper than a regex scan that fails at every position. An IPv6 address may have
# no digits at all, so IP addresses have two detectors.
DETECTORS: tuple[tuple[str, int, Callable[[str], bool]], ...] = (
    ("email", 0, _emails),
    ("phone", 8, _phones),
    ("credit_card", 13, _cards),
    ("iban", 2, _ibans),
    ("ip_address", 4, _ipv4),
    ("ip_address", 0, _ipv6),
)


# Not a detector: what an image counts as under a PII policy (see `Features.pii`).
IMAGE_KIND = "image"


def detect_pii(text: str) -> frozenset[str]:
    """The kinds of personal data found in `text`."""
    digits = sum(map(text.count, "0123456789"))
    return frozenset(kind for kind, fewest, found in DETECTORS if digits >= fewest and found(text))
