"""Bad bodies get a 4xx in OpenAI's error format, never a 5xx: strict checks, then a bounded fuzz of the handler."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Router

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}
FUZZ_BODIES = 2000


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(response["body"])
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({**HELLO, "temperature": "1"}, "temperature"),
        ({**HELLO, "temperature": True}, "temperature"),
        ({**HELLO, "top_p": "0.5"}, "top_p"),
        ({**HELLO, "max_tokens": "10"}, "max_tokens"),
        ({**HELLO, "max_tokens": 10.5}, "max_tokens"),
        ({**HELLO, "stream": "true"}, "stream"),
        ({**HELLO, "stream": 1}, "stream"),
        ({**HELLO, "stream_options": {"include_usage": "yes"}}, "stream_options"),
        ({**HELLO, "model": 5}, "model"),
    ],
)
def test_numbers_and_booleans_are_not_coerced(router: Router, raw: dict[str, Any], param: str) -> None:
    response = router.call(raw)
    assert response["statusCode"] == 400, response["body"]
    assert error_of(response)["param"] == param


@pytest.mark.parametrize(
    "text",
    [
        '{"model": "auto", "messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}',
        '{"model": "auto", "messages": [{"role": "user", "content": "Hi"}], "presence_penalty": NaN}',
        '{"model": "auto", "messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"1": Infinity}}',
        '{"model": "auto", "messages": [{"role": "user", "content": "Hi", "weight": -Infinity}]}',
    ],
    ids=["read", "forwarded", "nested", "in-a-message"],
)
def test_nan_and_infinity_are_refused_even_in_forwarded_fields(router: Router, text: str) -> None:
    response = router.call(text)
    assert response["statusCode"] == 400, response["body"]
    assert error_of(response)["code"] in {"invalid_json", "invalid_request"}


def test_nan_inside_a_prompt_is_just_text(router: Router) -> None:
    response = router.chat("Is NaN equal to NaN, and is Infinity a number?")
    assert response["statusCode"] == 200, response["body"]


def test_a_body_that_is_not_utf8_is_a_400(router: Router) -> None:
    response = router.call(b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe"}]}')
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "invalid_json"


# -- fuzz ----------------------------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["user", "assistant", "system", "tool", "auto", "text", "image_url", "function", "nova-micro"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
FIELDS = ["model", "messages", "temperature", "top_p", "max_tokens", "stream", "stream_options", "tools",
          "tool_choice", "response_format", "n", "stop", "user", "metadata", "max_completion_tokens"]  # fmt: skip
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "bot"]) | values},
    optional={"content": values, "tool_calls": values, "tool_call_id": values, "name": values},
)
near_valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "nova-micro", "no-such-model", ""]) | values},
    optional={
        "messages": st.lists(message, max_size=3) | values,
        **{name: values for name in FIELDS[2:]},
    },
).map(lambda body: json.dumps(body).encode())
raw_bytes = st.binary(max_size=200)
json_text = values.map(lambda v: json.dumps(v).encode())
with_constants = near_valid.map(lambda b: b.replace(b"null", b"NaN", 1).replace(b"0.0", b"-Infinity", 1))
valid = st.fixed_dictionaries(
    {"model": st.just("auto"), "messages": st.just([{"role": "user", "content": "Hello!"}])},
    optional={"temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 4096),
              "user": st.text(max_size=10), "seed": st.integers(0, 2**31)},
).map(lambda body: json.dumps(body).encode())  # fmt: skip
bodies = st.one_of(valid, near_valid, near_valid, raw_bytes, json_text, with_constants)


def test_fuzzed_bodies_never_get_a_5xx(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    tally: Counter[int] = Counter()

    @settings(
        max_examples=FUZZ_BODIES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def one(body: bytes) -> None:
        response = router.call(body)
        status = response["statusCode"]
        tally[status] += 1
        assert status < 500, (body, response["body"])
        if status >= 400:
            error_of(response)

    one()
    assert sum(tally.values()) >= 2000
    with capsys.disabled():
        print(f"\n\nFuzzed request bodies: {sum(tally.values())} through the handler, no 5xx")
        for status, count in sorted(tally.items()):
            print(f"  {status}  {count:>6}")
        print()
