"""The incremental server-sent-events parser: events must come out the same however the bytes are cut."""

from __future__ import annotations

import gc
import gzip
import io

import pytest
import urllib3

from llm_router.providers.base import Deadline
from llm_router.providers.http import EventSource, ServerSentEvent, SSEParser

STREAM = (
    b": keep-alive comment\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"event: content_block_delta\n"
    b'data: {"text": "caf\xc3\xa9"}\n'
    b"\n"
    b"data: first line\r"
    b"data:second line\r"
    b"\r"
    b"id: 7\n"
    b"retry: 100\n"
    b"data: [DONE]\n"
    b"\n"
)
EXPECTED = [
    ServerSentEvent("message", '{"a": 1}'),
    ServerSentEvent("content_block_delta", '{"text": "café"}'),
    ServerSentEvent("message", "first line\nsecond line"),
    ServerSentEvent("message", "[DONE]"),
]


def parse(reads: list[bytes]) -> list[ServerSentEvent]:
    parser = SSEParser()
    events = [event for read in reads for event in parser.feed(read)]
    return events + parser.close()


def test_one_read_gives_every_event_in_order() -> None:
    assert parse([STREAM]) == EXPECTED


def test_reads_of_one_byte_give_the_same_events() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_cut_into_two_reads_gives_the_same_events(cut: int) -> None:
    assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_a_crlf_split_across_reads_is_one_line_end_not_two() -> None:
    parser = SSEParser()

    first = parser.feed(b"data: x\r")
    second = parser.feed(b"\ndata: y\r\n\r\n")

    assert first == [] and second == [ServerSentEvent("message", "x\ny")]


def test_an_event_is_not_given_before_its_blank_line() -> None:
    parser = SSEParser()

    assert parser.feed(b'data: {"partial": true}\n') == []
    assert parser.feed(b"\n") == [ServerSentEvent("message", '{"partial": true}')]


def test_comments_and_blank_lines_alone_give_no_events() -> None:
    assert parse([b": ping\n\n\n: another\r\n\r\n"]) == []


def test_a_last_event_without_its_blank_line_still_counts_when_the_body_ends() -> None:
    assert parse([b"data: [DONE]"]) == [ServerSentEvent("message", "[DONE]")]


def test_the_event_name_applies_to_one_event_only() -> None:
    events = parse([b"event: ping\ndata: {}\n\ndata: {}\n\n"])

    assert [e.event for e in events] == ["ping", "message"]


LF_ONLY = STREAM.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


@pytest.mark.parametrize("cut", range(1, len(LF_ONLY)))
def test_line_feeds_only_cut_anywhere_give_the_same_events(cut: int) -> None:
    assert parse([LF_ONLY[:cut], LF_ONLY[cut:]]) == EXPECTED


@pytest.mark.parametrize("encoding", [None, "identity", "gzip"])
def test_an_event_stream_is_read_as_sent_or_decompressed_when_the_server_compressed_it(encoding: str | None) -> None:
    body = gzip.compress(LF_ONLY) if encoding == "gzip" else LF_ONLY
    headers = {"content-type": "text/event-stream"} | ({"content-encoding": encoding} if encoding else {})
    response = urllib3.HTTPResponse(io.BytesIO(body), headers=headers, status=200, preload_content=False)

    events = EventSource(response, Deadline(5), label="m", idle_seconds=5)

    assert list(events) == EXPECTED


def test_the_youngest_generation_is_collected_after_the_request_and_before_the_first_read() -> None:
    collected_before_read: list[int] = []
    collections: list[int] = []

    class Body(io.BytesIO):
        def read1(self, size: int | None = -1, /) -> bytes:
            collected_before_read.append(len(collections))
            return super().read1(size)

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    response = urllib3.HTTPResponse(Body(LF_ONLY), headers={}, status=200, preload_content=False)
    events = iter(EventSource(response, Deadline(5), label="m", idle_seconds=5))
    was_enabled = gc.isenabled()
    gc.disable()  # no collection but the one asked for
    gc.callbacks.append(seen)
    try:
        first = next(events)
    finally:
        gc.callbacks.remove(seen)
        if was_enabled:
            gc.enable()

    assert first == EXPECTED[0]
    assert collections == [0] and collected_before_read[0] == 1
