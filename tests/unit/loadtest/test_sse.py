"""SSE parsing of OpenAI-style streams, however the bytes are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.loadtest.sse import SSEParser, StreamAccumulator, delta_text

CHAT_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"choices":[{"index":0,"delta":{"content":" world"}}]}\r\n\r\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n"
)


def _collect(pieces: list[bytes]) -> tuple[SSEParser, StreamAccumulator]:
    parser, acc = SSEParser(), StreamAccumulator()
    for i, piece in enumerate(pieces):
        for event in parser.feed(piece):
            acc.add(event, float(i))
    return parser, acc


def test_chat_stream_yields_text_usage_and_done() -> None:
    parser, acc = _collect([CHAT_STREAM])
    assert parser.done
    assert acc.text == "Hello world"
    assert acc.usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert len(acc.token_times) == 2  # role-only and empty chunks carry no token


@given(st.lists(st.integers(min_value=1, max_value=len(CHAT_STREAM) - 1), max_size=30, unique=True))
def test_any_split_of_the_bytes_parses_the_same(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(CHAT_STREAM)]
    pieces = [CHAT_STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    parser, acc = _collect(pieces)
    assert parser.done and acc.text == "Hello world" and acc.usage is not None


def test_token_times_are_arrival_times_of_content_chunks() -> None:
    parser, acc = SSEParser(), StreamAccumulator()
    lines = CHAT_STREAM.split(b"\n")
    for t, line in enumerate(lines):
        for event in parser.feed(line + b"\n"):
            acc.add(event, float(t))
    assert acc.token_times == [2.0, 6.0]  # the lines carrying "Hello" and " world"


def test_completions_chunks_use_text_field() -> None:
    assert delta_text({"choices": [{"index": 0, "text": "abc"}]}) == "abc"


def test_error_event_is_reported() -> None:
    _, acc = _collect([b'data: {"error": {"message": "overloaded", "code": 503}}\n\n'])
    assert acc.error is not None and "overloaded" in acc.error


def test_malformed_json_raises() -> None:
    with pytest.raises(json.JSONDecodeError):
        SSEParser().feed(b"data: {not json}\n")
