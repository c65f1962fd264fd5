"""PII detectors: regex candidates confirmed by checksums, so look-alikes do not count."""

from __future__ import annotations

import pytest

from llm_router.routing.pii import detect_pii, iban_valid, luhn_valid


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+billing@example.co.uk today", "email"),
        ("call me on +44 20 7946 0958", "phone"),
        ("my number is (555) 123-4567", "phone"),
        ("reach me at +4915112345678", "phone"),
        ("card 4111 1111 1111 1111 exp 12/29", "credit_card"),
        ("card 5500-0000-0000-0004", "credit_card"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "iban"),
        ("GB82WEST12345698765432", "iban"),
        ("server 192.168.10.1 is down", "ip_address"),
        ("ipv6 2001:db8::8a2e:370:7334 too", "ip_address"),
    ],
)
def test_detects_each_kind(text: str, kind: str) -> None:
    assert kind in detect_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails the Luhn check",
        "version 1.2.3 released in 2024",
        "the ratio is 300.1.2.999",
        "meet at 10:30:00 tomorrow",
        "order 12345 shipped",
        "python decorators like @property are handy",
    ],
)
def test_look_alikes_are_not_personal_data(text: str) -> None:
    assert detect_pii(text) == frozenset()


def test_iban_with_a_wrong_checksum_is_not_an_iban() -> None:
    assert "iban" not in detect_pii("IBAN DE89 3704 0044 0532 0130 01 has a wrong checksum")


def test_luhn_and_iban_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("NL91ABNA0417164300") and not iban_valid("NL91ABNA0417164301")
