"""Incremental parser for OpenAI-style Server-Sent Events streams.

vLLM, llm-d-inference-sim and every OpenAI-compatible server stream
``data: {json}`` events separated by blank lines and end with ``data: [DONE]``.
Bytes arrive in arbitrary pieces (an event may be split across reads, or
several events may share one read), so the parser buffers until a full line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DONE = "[DONE]"


@dataclass
class SSEParser:
    """Feed raw bytes; get back the JSON payload of every complete ``data:`` event."""

    _buffer: bytes = b""
    done: bool = False

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        events: list[dict[str, Any]] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            line = self._buffer[:newline].rstrip(b"\r")
            self._buffer = self._buffer[newline + 1 :]
            if not line.startswith(b"data:"):
                continue  # blank separators, comments (":"), `event:`/`id:` fields
            payload = line[5:].strip()
            if payload == DONE.encode():
                self.done = True
                continue
            if payload:
                events.append(json.loads(payload))
        return events


def delta_text(event: dict[str, Any]) -> str:
    """Generated text carried by one chunk (chat ``delta.content`` or completions ``text``)."""
    text = ""
    for choice in event.get("choices") or []:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text += delta.get("content") or delta.get("reasoning_content") or ""
        else:
            text += choice.get("text") or ""
    return text


@dataclass
class StreamAccumulator:
    """Timestamps of content-bearing chunks and the final usage block of one streamed response.

    ``token_times`` holds the arrival time (seconds, any monotonic clock) of each
    chunk that carried generated text: the first is the TTFT point, the gaps
    between consecutive ones are the inter-token latencies (ITL) as
    ``vllm bench serve`` defines them.
    """

    token_times: list[float] = field(default_factory=list)
    text: str = ""
    usage: dict[str, Any] | None = None
    error: str | None = None

    def add(self, event: dict[str, Any], now: float) -> None:
        if "error" in event and not event.get("choices"):
            self.error = str(event["error"])
            return
        if event.get("usage"):
            self.usage = event["usage"]
        piece = delta_text(event)
        if piece:
            self.text += piece
            self.token_times.append(now)
