"""The clients people use, against the local server as a user starts it: the openai SDK (sync, async, concurrent,
streaming, tools, structured output, embeddings, models), LangChain's ChatOpenAI and the Anthropic SDK."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import anthropic
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, Field

from tests.e2e.conftest import Served

KEY = "sk-local-dev"


class Step(BaseModel):
    explanation: str
    output: str


class MathAnswer(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float = Field(ge=0, le=1)
    kind: Literal["arithmetic", "algebra"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.base_url}/v1", api_key=KEY, max_retries=0)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- openai SDK ----------------------------------------------------------------------------------------------
def test_openai_sync_answer(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="auto", messages=user("Hello!"))

    assert completion.choices[0].message.content
    assert completion.choices[0].message.refusal is None


def test_openai_async_answers_concurrently(served: Served) -> None:
    async def ask_all() -> list[str]:
        async with AsyncOpenAI(base_url=f"{served.base_url}/v1", api_key=KEY, max_retries=0) as aclient:
            answers = await asyncio.gather(
                *(aclient.chat.completions.create(model="auto", messages=user(f"Question {i}")) for i in range(6))
            )
        return [a.choices[0].message.content or "" for a in answers]

    texts = asyncio.run(ask_all())

    assert len(texts) == 6 and all(texts)
    assert len(set(texts)) > 1  # each prompt got its own answer


def test_openai_concurrent_threads(client: OpenAI) -> None:
    def ask(i: int) -> str:
        return client.chat.completions.create(model="auto", messages=user(f"Thread {i}")).id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(ask, range(12)))

    assert len(set(ids)) == 12


def test_openai_stream_with_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=user("Hello!"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_tool_call_has_arguments_matching_the_schema_and_round_trips(client: OpenAI) -> None:
    first = client.chat.completions.create(model="auto", messages=user("Weather in Paris?"), tools=[WEATHER_TOOL])  # type: ignore[list-item]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    history = [
        *user("Weather in Paris?"),
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    second = client.chat.completions.create(model="auto", messages=history, tools=[WEATHER_TOOL])  # type: ignore[list-item]

    assert first.choices[0].finish_reason == "tool_calls"
    assert isinstance(arguments["city"], str) and 1 <= arguments["days"] <= 7
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_openai_parse_fills_a_pydantic_model(client: OpenAI) -> None:
    completion = client.chat.completions.parse(model="auto", messages=user("What is 2+2?"), response_format=MathAnswer)

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, MathAnswer)
    assert parsed.steps and parsed.kind == "arithmetic"


def test_openai_embeddings_and_model_lookup(client: OpenAI) -> None:
    embedded = client.embeddings.create(model="titan-embed", input=["one", "two"])  # the SDK asks for base64
    model = client.models.retrieve("titan-embed")
    listed = {m.id for m in client.models.list()}

    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 256
    assert embedded.data[0].embedding != embedded.data[1].embedding
    assert model.id == "titan-embed" and "titan-embed" in listed


def test_openai_responses_text_tools_and_stream(client: OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": True,
        }
    ]
    text = client.responses.create(model="auto", input="Hello!", instructions="Be brief.")
    called = client.responses.create(model="auto", input="Weather in Paris?", tools=tools)
    with client.responses.stream(model="auto", input="Hello!") as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()

    assert text.output_text.startswith("[simulated ")
    assert called.output[0].type == "function_call" and json.loads(called.output[0].arguments)["city"]
    assert streamed and final.output_text == streamed


def test_openai_responses_stored_continued_retrieved_and_deleted(client: OpenAI) -> None:
    import openai

    first = client.responses.create(model="auto", input="Name a river in France.", store=True)
    follow = client.responses.create(model="auto", input="How long is it?", previous_response_id=first.id)
    retrieved = client.responses.retrieve(first.id)

    assert follow.previous_response_id == first.id and follow.output_text.startswith("[simulated ")
    assert retrieved.id == first.id and retrieved.output_text == first.output_text
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="auto", input="And then?", previous_response_id=first.id)


# -- LangChain -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat(served: Served) -> ChatOpenAI:
    return ChatOpenAI(model="auto", base_url=f"{served.base_url}/v1", api_key=KEY, max_retries=0)


@tool
def get_weather(city: str, days: int) -> str:
    """The weather forecast for a city."""
    return f"Sunny in {city} for {days} days"


def test_langchain_invoke_and_stream(chat: ChatOpenAI) -> None:
    answer = chat.invoke("Hello!")
    pieces = [str(chunk.content) for chunk in chat.stream("Hello!")]

    assert str(answer.content).startswith("[simulated ")
    assert "".join(pieces) == answer.content


def test_langchain_bind_tools_round_trip(chat: ChatOpenAI) -> None:
    with_tools = chat.bind_tools([get_weather])
    first = with_tools.invoke([HumanMessage("Weather in Paris?")])
    call = first.tool_calls[0]
    result = get_weather.invoke(call["args"])
    second = with_tools.invoke([HumanMessage("Weather in Paris?"), first, ToolMessage(result, tool_call_id=call["id"])])

    assert call["name"] == "get_weather" and isinstance(call["args"]["days"], int)
    assert second.content and not second.tool_calls


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(chat: ChatOpenAI, method: Any) -> None:
    structured = chat.with_structured_output(MathAnswer, method=method)

    answer = structured.invoke("What is 2+2?")

    assert isinstance(answer, MathAnswer) and answer.kind == "arithmetic"


# -- Anthropic SDK ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def claude(served: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.base_url, api_key=KEY, max_retries=0)


def test_anthropic_messages(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="auto", max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "Hello!"}]
    )

    assert message.content[0].type == "text" and message.content[0].text.startswith("[simulated ")
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0


def test_anthropic_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="auto", max_tokens=200, messages=[{"role": "user", "content": "Hello!"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"


def test_anthropic_tools(claude: anthropic.Anthropic) -> None:
    tools: Any = [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    message = claude.messages.create(
        model="auto", max_tokens=200, tools=tools, messages=[{"role": "user", "content": "Weather in Paris?"}]
    )

    use = message.content[-1]
    assert message.stop_reason == "tool_use"
    assert use.type == "tool_use" and use.name == "get_weather" and isinstance(use.input["city"], str)


def test_anthropic_errors_become_sdk_exceptions(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
