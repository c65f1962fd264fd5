"""The gateway's use of the response cache with scripted providers and an in-memory cache: a live stream is kept only
when it ends whole, and closing it (even unread) still closes and accounts the stream under it."""

from __future__ import annotations

from llm_router.cache import CachedAnswer
from llm_router.gateway import Answered, Gateway, RequestContext, StreamEnd, Streaming
from llm_router.metrics import MetricsRecorder
from llm_router.providers.base import RetryableError, StreamDelta
from llm_router.runtime.deferred import Deferred
from llm_router.schemas.catalog import CacheSpec, RouteSpec
from tests.helpers import chat, snapshot
from tests.unit.test_gateway_stream import FixedConfig, Providers, RecordingAccounting, ScriptedProvider, priced, words


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedAnswer] = {}

    def get(self, key: str, tenant: str) -> CachedAnswer | None:
        entry = self.entries.get(key)
        return entry if entry is not None and entry.tenant == tenant else None

    def put(self, key: str, entry: CachedAnswer, ttl_seconds: int) -> None:
        self.entries[key] = entry


class CachingHarness:
    def __init__(self, provider: ScriptedProvider, deferred: Deferred | None = None) -> None:
        route = RouteSpec(id="auto", default=("a",), cache=CacheSpec(ttl_seconds=60))
        self.cache = MemoryCache()
        self.accounting = RecordingAccounting()
        self.provider = provider
        self.gateway = Gateway(
            FixedConfig(snapshot(models=[priced("a")], routes=[route])),
            Providers(a=provider),
            MetricsRecorder(None),
            sleep=lambda seconds: None,
            accounting=self.accounting,
            cache=self.cache,
            defer=deferred.defer if deferred is not None else None,
        )

    def serve(self, stream: bool = True) -> Streaming | Answered:
        outcome = self.gateway.serve(chat("Hello!", stream=stream), RequestContext(tenant="t"), b"{}")
        assert isinstance(outcome, Streaming | Answered)
        return outcome


def test_a_stream_read_to_its_end_is_kept_and_the_next_request_is_a_hit() -> None:
    h = CachingHarness(ScriptedProvider(words("one", " two")))

    live = h.serve()
    assert isinstance(live, Streaming) and live.cache == "miss"
    *_, end = list(live.events)

    assert isinstance(end, StreamEnd) and end.error is None
    assert [e.content for e in h.cache.entries.values()] == ["one two"]
    again = h.serve(stream=False)
    assert isinstance(again, Answered) and again.cache == "hit"
    assert again.answer.completion.choices[0].message.content == "one two"
    assert h.provider.calls == 1


def test_a_stream_closed_before_it_was_read_is_not_kept_and_still_closes_and_accounts_the_upstream() -> None:
    h = CachingHarness(ScriptedProvider(words("one", " two")))

    live = h.serve()
    assert isinstance(live, Streaming)
    live.events.close()  # type: ignore[attr-defined]

    assert h.provider.closed == 1 and len(h.accounting.answers) == 1
    assert h.cache.entries == {}


def test_a_stream_left_midway_is_not_kept() -> None:
    h = CachingHarness(ScriptedProvider(words("one", " two", " three")))

    live = h.serve()
    assert isinstance(live, Streaming)
    assert next(live.events) == StreamDelta(content="one")
    live.events.close()  # type: ignore[attr-defined]

    assert h.provider.closed == 1 and len(h.accounting.answers) == 1
    assert h.cache.entries == {}


def test_a_stream_the_model_broke_off_is_not_kept() -> None:
    h = CachingHarness(ScriptedProvider([StreamDelta(content="one"), RetryableError("cut", kind="connection")]))

    live = h.serve()
    assert isinstance(live, Streaming)
    *_, end = list(live.events)

    assert isinstance(end, StreamEnd) and end.error is not None
    assert h.cache.entries == {}


def test_with_a_deferred_write_the_answer_goes_out_first_and_the_entry_is_kept_once_the_work_runs() -> None:
    # Given a gateway whose cache writes wait until the response is out (as the router function's)
    deferred = Deferred()
    h = CachingHarness(ScriptedProvider(words("one", " two"), words("one", " two")), deferred)

    # When a miss is streamed to its end
    first = h.serve()
    assert isinstance(first, Streaming) and first.cache == "miss"
    *_, end = list(first.events)
    assert isinstance(end, StreamEnd) and end.error is None

    # Then nothing is kept until the deferred work runs: the same request meanwhile is another miss
    assert h.cache.entries == {} and len(deferred) == 1
    again = h.serve()
    assert isinstance(again, Streaming) and again.cache == "miss"
    list(again.events)
    assert h.provider.calls == 2
    # And once it has run, the entry is there and the next request is a hit, without a model call
    assert deferred.run_pending() == 2
    assert [e.content for e in h.cache.entries.values()] == ["one two"]
    hit = h.serve(stream=False)
    assert isinstance(hit, Answered) and hit.cache == "hit" and h.provider.calls == 2
