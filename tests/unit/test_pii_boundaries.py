"""The PII detectors at their edges: lengths, digit thresholds, the IPv6 pre-check, a bad match before a good one."""

from __future__ import annotations

import pytest

from llm_router.routing.pii import detect_pii, iban_valid, luhn_valid


def with_check_digits(body: str) -> str:
    """An IBAN-shaped string (`XX` country, any length) whose mod-97 check digits are right."""
    rearranged = body + "XX00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"XX{98 - number % 97:02d}{body}"


def luhn_number(length: int, start: str = "4") -> str:
    """A number of `length` digits that passes the Luhn check."""
    stem = (start + "0123456789" * 3)[: length - 1]
    return next(stem + d for d in "0123456789" if luhn_valid(stem + d))


@pytest.mark.parametrize(("length", "valid"), [(14, False), (15, True), (34, True), (35, False)])
def test_iban_length_bounds(length: int, valid: bool) -> None:
    iban = with_check_digits("1" * (length - 4))
    assert len(iban) == length
    assert iban_valid(iban) is valid


def test_the_shortest_real_iban_counts() -> None:
    assert iban_valid("NO9386011117947") and "iban" in detect_pii("pay to NO9386011117947 today")


@pytest.mark.parametrize("length", [13, 16, 19])
def test_cards_of_every_length_from_13_to_19_count(length: int) -> None:
    number = luhn_number(length)
    assert "credit_card" in detect_pii(f"card {number} please")


def test_a_number_that_fails_luhn_is_no_card() -> None:
    number = luhn_number(16)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert "credit_card" not in detect_pii(f"card {wrong} please")


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("call 1234 5678 now", False),  # 8 digits: too few for a phone number
        ("call 123 456 789 now", True),  # 9
        ("call 123 456 789 012 346 now", True),  # 15, not a Luhn number
        ("call 1234 5678 9012 3457 now", False),  # 16: too many
    ],
)
def test_phone_digit_thresholds(text: str, phone: bool) -> None:
    assert ("phone" in detect_pii(text)) is phone


def test_a_luhn_number_in_phone_shape_is_a_card_not_a_phone() -> None:
    thirteen = luhn_number(13)
    grouped = " ".join([thirteen[:4], thirteen[4:8], thirteen[8:10], thirteen[10:]])
    assert "phone" not in detect_pii(f"number {grouped} here")
    twelve = luhn_number(12)
    grouped = " ".join([twelve[:4], twelve[4:8], twelve[8:]])
    assert "phone" in detect_pii(f"number {grouped} here")  # below 13 digits a Luhn pass proves nothing


def test_an_invalid_ipv4_before_a_valid_one() -> None:
    assert "ip_address" in detect_pii("not 999.1.1.1 but 10.0.0.1")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("loopback ::1 here", True),  # two colons, but `::`
        ("fe80::1", True),
        ("first 1::2::3 then ::1", True),  # an invalid candidate before a valid one
        ("a full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 address", True),  # seven colons, no `::`
        ("times 10:30:00 and 11:45", False),
    ],
)
def test_ipv6_candidates(text: str, found: bool) -> None:
    assert ("ip_address" in detect_pii(text)) is found
