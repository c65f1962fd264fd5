"""The chunked-body reader under event streams: HTTP/1.1 chunked framing undone from bytes as they arrive, split
anywhere (a size line, a chunk's data, its CRLF, the trailers), and what it does with framing it cannot read."""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import ProtocolError

from llm_router.providers.http import MAX_CHUNK_LINE, ChunkedBody


class Arrivals(io.RawIOBase):
    """A connection whose bytes arrive in the given pieces: each read returns at most what one piece has left."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [p for p in pieces if p]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pieces:
            return 0
        piece = self.pieces[0]
        n = min(len(buffer), len(piece))
        buffer[:n] = piece[:n]
        self.pieces[0] = piece[n:]
        if not self.pieces[0]:
            self.pieces.pop(0)
        return n


class Source:
    """What ChunkedBody reads from: `http.client`'s response, of which it uses the file and the chunk state."""

    def __init__(self, fp: Any) -> None:
        self.fp, self.chunked, self.chunk_left, self.closed = fp, True, None, False

    def close(self) -> None:
        self.closed = True


class Response:
    def __init__(self, fp: Any) -> None:
        self._fp = Source(fp)


def body_of(pieces: list[bytes]) -> ChunkedBody:
    reader = ChunkedBody.of(Response(io.BufferedReader(Arrivals(pieces))))
    assert reader is not None
    return reader


def read_all(reader: ChunkedBody) -> list[bytes]:
    out = []
    while data := reader.read():
        out.append(data)
    return out


def framed(chunks: list[bytes], trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"


def test_each_read_returns_one_chunk_as_it_arrived() -> None:
    chunks = [b'data: {"a":1}\n\n', b'data: {"b":2}\n\n', b"data: [DONE]\n\n"]

    assert read_all(body_of([framed(chunks)])) == chunks


def test_extensions_and_trailers_are_passed_over_and_the_body_ends_after_them() -> None:
    wire = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\nNEXT"
    fp = io.BufferedReader(Arrivals([wire]))
    reader = ChunkedBody.of(Response(fp))
    assert reader is not None

    assert read_all(reader) == [b"hello", b" world"]
    assert fp.read() == b"NEXT"  # nothing of the next response was taken


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=40),
)
def test_however_the_bytes_are_split_the_body_is_the_chunks_in_order(chunks: list[bytes], cuts: list[int]) -> None:
    wire = framed(chunks, b"Trailer: x\r\n")
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]

    assert b"".join(read_all(body_of(pieces))) == b"".join(chunks)


def test_data_is_handed_on_before_the_rest_of_its_chunk_arrives() -> None:
    writer, reading = socket.socketpair()
    reader = ChunkedBody.of(Response(reading.makefile("rb")))
    assert reader is not None
    writer.sendall(b"a\r\nhello")  # a 10-byte chunk, half of it here

    assert reader.read() == b"hello"

    threading.Timer(0.05, lambda: writer.sendall(b"world\r\n0\r\n\r\n")).start()
    started = time.monotonic()
    assert reader.read() == b"world" and time.monotonic() - started >= 0.04
    assert reader.read() == b""
    writer.close()
    reading.close()


def test_the_crlf_after_a_chunk_is_not_waited_for_before_its_data_is_handed_on() -> None:
    writer, reading = socket.socketpair()
    reader = ChunkedBody.of(Response(reading.makefile("rb")))
    assert reader is not None
    writer.sendall(b"5\r\nfirst")  # the CRLF and the next chunk come later

    assert reader.read() == b"first"
    writer.sendall(b"\r\n6\r\nsecond\r\n0\r\n\r\n")
    assert read_all(reader) == [b"second"]
    writer.close()
    reading.close()


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"zz\r\nhello\r\n", "not a chunk size"),
        (b"5\r\nhel", "closed inside a chunk"),
        (b"5\r\nhello\r\n", "closed inside the chunked framing"),
        (b"5", "closed inside the chunked framing"),
        (b"1" * (MAX_CHUNK_LINE + 10), "too long"),
    ],
)
def test_framing_it_cannot_read_is_a_protocol_error(wire: bytes, message: str) -> None:
    reader = body_of([wire])

    with pytest.raises(ProtocolError, match=message):
        read_all(reader)


def test_finish_closes_the_response_object_not_the_connection() -> None:
    response = Response(io.BufferedReader(Arrivals([framed([b"x"])])))
    reader = ChunkedBody.of(response)
    assert reader is not None
    read_all(reader)

    reader.finish()

    assert response._fp.closed


@pytest.mark.parametrize(
    "change",
    [
        {"chunked": False},  # a body with a length, or one that ends with the connection
        {"chunk_left": 3},  # something already read through http.client
        {"fp": None},  # closed
    ],
)
def test_a_response_it_cannot_take_over_is_left_to_urllib3(change: dict[str, Any]) -> None:
    response = Response(io.BufferedReader(Arrivals([framed([b"x"])])))
    for name, value in change.items():
        setattr(response._fp, name, value)

    assert ChunkedBody.of(response) is None
