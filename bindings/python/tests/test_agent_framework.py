"""Microsoft Agent Framework (agent-framework-core, pinned in requirements/main.in): an Agent on a
scripted chat client (BaseChatClient with the framework's own function-invocation and middleware
layers; no network), run and run(stream=True)."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("agent_framework")
from agent_framework import (  # noqa: E402
    Agent,
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
    tool,
)

from warden.integrations.agent_framework import WardenMiddleware  # noqa: E402


class ScriptedClient(FunctionInvocationLayer, ChatMiddlewareLayer, BaseChatClient):
    """Asks for both functions, then answers."""

    def __init__(self, topic: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.seen: dict[str, str] = {}

    def _contents(self, messages) -> list:
        results = [c for m in messages for c in m.contents if c.type == "function_result"]
        if not results:
            args = {"topic": self.topic}
            return [Content.from_function_call("c1", "read_notes", arguments=args),
                    Content.from_function_call("c2", "delete_notes", arguments=args)]
        for c in results:
            self.seen[c.call_id] = str(c.result)
        return [Content.from_text("done")]

    def _inner_get_response(self, *, messages, stream, options, **kwargs):
        contents = self._contents(messages)
        if not stream:
            async def respond():
                return ChatResponse(messages=[Message(role="assistant", contents=contents)])
            return respond()

        async def updates():
            yield ChatResponseUpdate(role="assistant", contents=contents)

        return ResponseStream(updates(), finalizer=ChatResponse.from_updates)


@pytest.mark.parametrize("path", ["run", "stream"])
def test_agent_allows_one_and_blocks_one(gate, effects, path) -> None:
    client = ScriptedClient(path)

    @tool(name="read_notes", description="Read notes")
    def read_notes(topic: str) -> str:
        return effects.read_notes(topic)

    @tool(name="delete_notes", description="Delete notes")
    def delete_notes(topic: str) -> str:
        return effects.delete_notes(topic)

    agent = Agent(client=client, name="af-agent", tools=[read_notes, delete_notes],
                  middleware=[WardenMiddleware(gate, agent="af-agent")])

    async def go():
        if path == "run":
            return (await agent.run("tidy")).text
        text = ""
        async for update in agent.run("tidy", stream=True):
            text += update.text or ""
        return text

    assert "done" in asyncio.run(go())
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert f"notes about {path}" in client.seen["c1"] and "not allowed" in client.seen["c2"]
    assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                   framework="agent_framework")
