"""LlamaIndex (llama-index-core, pinned in requirements/main.in): a FunctionAgent driven by the
framework's own MockFunctionCallingLLM with a scripted response generator (no network), plus the
tool entry points themselves and a RetrieverTool whose retriever must never be reached."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("llama_index.core")
from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.llms import ChatMessage, MessageRole  # noqa: E402
from llama_index.core.llms.mock import MockFunctionCallingLLM  # noqa: E402
from llama_index.core.llms.llm import ToolSelection  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402
from llama_index.core.tools import FunctionTool, RetrieverTool  # noqa: E402

from warden.integrations.llama_index import guard_tools  # noqa: E402


def scripted(topic: str, seen: dict):
    def respond(messages, **kwargs):
        tool_msgs = [m for m in messages if m.role == MessageRole.TOOL]
        if not tool_msgs:
            return ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
                ToolSelection(tool_id="c1", tool_name="read_notes", tool_kwargs={"topic": topic}),
                ToolSelection(tool_id="c2", tool_name="delete_notes", tool_kwargs={"topic": topic}),
            ]})
        for m in tool_msgs:
            seen[m.additional_kwargs.get("tool_call_id")] = str(m.content)
        return ChatMessage(role="assistant", content="done")
    return respond


def make_tools(effects):
    return [FunctionTool.from_defaults(effects.read_notes, name="read_notes"),
            FunctionTool.from_defaults(effects.delete_notes, name="delete_notes")]


@pytest.mark.parametrize("streaming", [False, True])
def test_function_agent_allows_one_and_blocks_one(gate, effects, streaming) -> None:
    topic = "stream" if streaming else "run"
    seen: dict = {}
    llm = MockFunctionCallingLLM(response_generator=scripted(topic, seen), is_chat_model=True)
    agent = FunctionAgent(name="li-agent", tools=guard_tools(make_tools(effects), gate),
                          llm=llm, streaming=streaming)

    async def go():
        handler = agent.run("tidy")
        async for _ in handler.stream_events():
            pass
        return await handler

    out = asyncio.run(go())
    assert "done" in str(out)
    assert effects.ran("read_notes", topic) and not effects.ran("delete_notes", topic)
    assert seen["c1"] == f"notes about {topic}" and "not allowed" in seen["c2"]
    assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"], framework="llama_index")


def test_a_tool_that_wants_the_workflow_context_still_gets_it(gate, effects) -> None:
    from llama_index.core.workflow import Context

    got: list = []

    async def read_notes(ctx: Context, topic: str) -> str:
        got.append(ctx)
        return effects.read_notes(topic)

    # This module's annotations are strings (PEP 563); LlamaIndex looks for the class itself.
    read_notes.__annotations__ = {"ctx": Context, "topic": str, "return": str}

    seen: dict = {}
    tools = [FunctionTool.from_defaults(async_fn=read_notes, name="read_notes"),
             FunctionTool.from_defaults(effects.delete_notes, name="delete_notes")]
    guarded = guard_tools(tools, gate)
    assert isinstance(guarded[0], FunctionTool) and guarded[0].requires_context
    llm = MockFunctionCallingLLM(response_generator=scripted("ctx", seen), is_chat_model=True)
    agent = FunctionAgent(name="li-agent", tools=guarded, llm=llm)

    async def go():
        return await agent.run("tidy")

    asyncio.run(go())
    assert got and isinstance(got[0], Context)
    assert effects.ran("read_notes", "ctx") and not effects.ran("delete_notes", "ctx")
    rec = gate.audit_query(tool="read_notes")[-1]
    assert rec["args"] == {"topic": "ctx"}  # the Context is not the model's, and not judged


def test_tool_entry_points(gate, effects) -> None:
    read, delete = guard_tools(make_tools(effects), gate)
    assert read.call(topic="call").content == "notes about call"
    out = delete.call(topic="call")
    assert out.is_error and "not allowed" in out.content
    assert delete(topic="dunder").is_error
    assert asyncio.run(delete.acall(topic="acall")).is_error
    assert asyncio.run(read.acall(topic="acall")).content == "notes about acall"
    assert not any(effects.ran("delete_notes", t) for t in ("call", "dunder", "acall"))
    assert read.metadata.name == "read_notes" and read.metadata.description


class MarkerRetriever(BaseRetriever):
    def __init__(self, effects) -> None:
        super().__init__()
        self.effects = effects

    def _retrieve(self, query_bundle):
        (self.effects.root / "retrieve").write_text("ran")
        return [NodeWithScore(node=TextNode(text="secret"), score=1.0)]

    async def _aretrieve(self, query_bundle):
        (self.effects.root / "aretrieve").write_text("ran")
        return [NodeWithScore(node=TextNode(text="secret"), score=1.0)]


def test_denied_retriever_tool_never_retrieves(gate, effects) -> None:
    tool = RetrieverTool.from_defaults(MarkerRetriever(effects), name="delete_notes")
    (guarded,) = guard_tools([tool], gate)
    assert guarded.call("q").is_error
    assert asyncio.run(guarded.acall("q")).is_error
    assert effects.runs() == []  # neither retrieve nor aretrieve ran
