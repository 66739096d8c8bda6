"""Haystack (haystack-ai, pinned in requirements/main.in): a real Agent with a scripted chat
generator component (no network), run and run_async, and both tool invoke paths."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("haystack")
from haystack import component  # noqa: E402
from haystack.components.agents import Agent  # noqa: E402
from haystack.dataclasses import ChatMessage, ToolCall  # noqa: E402
from haystack.tools import Tool, create_tool_from_function  # noqa: E402
from haystack.tools.errors import ToolInvocationError  # noqa: E402

from warden.integrations.haystack import guard_tools  # noqa: E402


@component
class ScriptedChatGenerator:
    """Asks for both tools, then answers with what it read."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seen: list[str] = []

    def _reply(self, messages: list[ChatMessage]) -> dict:
        results = [m for m in messages if m.tool_call_results]
        if not results:
            calls = [ToolCall(tool_name=n, arguments={"topic": self.topic}, id=f"c{i}")
                     for i, n in enumerate(["read_notes", "delete_notes"], 1)]
            return {"replies": [ChatMessage.from_assistant(tool_calls=calls)]}
        self.seen = [str(r.result) for m in results for r in m.tool_call_results]
        return {"replies": [ChatMessage.from_assistant("done")]}

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], tools: list[Tool] | None = None, **kwargs) -> dict:
        return self._reply(messages)

    @component.output_types(replies=list[ChatMessage])
    async def run_async(self, messages: list[ChatMessage], tools: list[Tool] | None = None,
                        **kwargs) -> dict:
        return self._reply(messages)


def make_tools(effects):
    return [create_tool_from_function(effects.read_notes, name="read_notes"),
            create_tool_from_function(effects.delete_notes, name="delete_notes")]


@pytest.mark.parametrize("path", ["run", "run_async"])
def test_agent_allows_one_and_blocks_one(gate, effects, path) -> None:
    gen = ScriptedChatGenerator(path)
    agent = Agent(chat_generator=gen, tools=guard_tools(make_tools(effects), gate))
    msgs = [ChatMessage.from_user("tidy")]
    out = agent.run(msgs) if path == "run" else asyncio.run(agent.run_async(msgs))
    assert out["messages"][-1].text == "done"
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert any(f"notes about {path}" in s for s in gen.seen)
    assert any("not allowed" in s for s in gen.seen)
    assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"], framework="haystack")


def test_invoke_paths_raise_the_framework_error(gate, effects) -> None:
    read, delete = guard_tools(make_tools(effects), gate)
    assert read.invoke(topic="i") == "notes about i"
    with pytest.raises(ToolInvocationError, match="not allowed"):
        delete.invoke(topic="i")
    with pytest.raises(ToolInvocationError, match="not allowed"):
        asyncio.run(delete.invoke_async(topic="ia"))
    assert not effects.ran("delete_notes", "i") and not effects.ran("delete_notes", "ia")
    assert type(read).__name__ == "GuardedTool" and isinstance(read, Tool)
