"""LangChain (langchain-core, pinned in requirements/main.in) with its own fake chat model."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest

import warden
from conftest import assert_audited, framework

framework("langchain_core")
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import InjectedToolCallId, StructuredTool, tool  # noqa: E402

from warden.integrations.langchain import WardenCallbackHandler, guard_tools  # noqa: E402


def make_tools(effects):
    return [
        StructuredTool.from_function(effects.read_notes, name="read_notes",
                                     description="Read the notes about a topic."),
        StructuredTool.from_function(effects.delete_notes, name="delete_notes",
                                     description="Delete the notes about a topic."),
    ]


def scripted_model(topic: str = "x") -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[
            {"name": "read_notes", "args": {"topic": topic}, "id": "call_1", "type": "tool_call"},
            {"name": "delete_notes", "args": {"topic": topic}, "id": "call_2", "type": "tool_call"},
        ]),
        AIMessage(content="done"),
    ]))


def agent_loop(model, tools) -> list:
    """The tool-calling loop langchain-core documents: the model asks, the tools answer."""
    by_name = {t.name: t for t in tools}
    messages: list = [HumanMessage("tidy my notes")]
    while True:
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            messages.append(by_name[call["name"]].invoke(call))


def test_agent_loop_allows_one_and_blocks_one(gate, effects) -> None:
    messages = agent_loop(scripted_model(), guard_tools(make_tools(effects), gate, agent="notes-bot"))
    assert effects.ran("read_notes") and not effects.ran("delete_notes")
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    assert results["call_1"].content == "notes about x"
    assert "deleting notes is not allowed" in results["call_2"].content
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"], framework="langchain")
    assert {r["agent"] for r in records} == {"notes-bot"}


@pytest.mark.parametrize("path", ["invoke", "batch", "stream", "ainvoke", "abatch", "astream"])
def test_every_entry_point_is_governed(gate, effects, path) -> None:
    read, delete = guard_tools(make_tools(effects), gate)
    ok = {"name": "read_notes", "args": {"topic": path}, "id": "c1", "type": "tool_call"}
    bad = {"name": "delete_notes", "args": {"topic": path}, "id": "c2", "type": "tool_call"}

    async def run_async():
        if path == "ainvoke":
            return [await read.ainvoke(ok), await delete.ainvoke(bad)]
        if path == "abatch":
            return [*(await read.abatch([ok])), *(await delete.abatch([bad, bad]))]
        return [c async for c in read.astream(ok)] + [c async for c in delete.astream(bad)]

    if path == "invoke":
        out = [read.invoke(ok), delete.invoke(bad)]
    elif path == "batch":
        out = read.batch([ok]) + delete.batch([bad, bad])
    elif path == "stream":
        out = list(read.stream(ok)) + list(delete.stream(bad))
    else:
        out = asyncio.run(run_async())
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert "not allowed" in out[-1].content
    assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"])


def test_plain_arguments_and_exceptions_in_tools(gate, effects) -> None:
    def boom(topic: str) -> str:
        raise RuntimeError("tool failed")

    tool = StructuredTool.from_function(boom, name="read_notes", description="explodes")
    (guarded,) = guard_tools([tool], gate)
    with pytest.raises(RuntimeError, match="tool failed"):
        guarded.invoke({"topic": "x"})  # allowed, so the tool's own error comes through
    (delete,) = guard_tools([make_tools(effects)[1]], gate)
    assert "not allowed" in delete.invoke({"topic": "x"})
    assert not effects.ran("delete_notes")


def test_injected_arguments_are_not_judged(gate, effects) -> None:
    """LangChain fills InjectedToolCallId itself; the decision sees the model's arguments only
    (an injected object has no JSON form and would otherwise deny every call)."""
    @tool
    def read_notes(topic: str, call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Read notes."""
        return effects.read_notes(topic) + f" ({call_id})"

    (guarded,) = guard_tools([read_notes], gate)
    out = guarded.invoke({"name": "read_notes", "args": {"topic": "inj"}, "id": "c7",
                          "type": "tool_call"})
    assert out.content == "notes about inj (c7)"
    assert gate.audit_query(tool="read_notes")[-1]["args"] == {"topic": "inj"}


def test_callback_handler_blocks_before_the_body(gate, effects) -> None:
    read, delete = make_tools(effects)
    handler = WardenCallbackHandler(gate)
    assert read.invoke({"topic": "cb"}, config={"callbacks": [handler]}) == "notes about cb"
    with pytest.raises(warden.Denied, match="not allowed"):
        delete.invoke({"topic": "cb"}, config={"callbacks": [handler]})
    with pytest.raises(warden.Denied):
        asyncio.run(delete.ainvoke({"topic": "cb"}, config={"callbacks": [handler]}))
    with pytest.raises(warden.Denied):
        delete.batch([{"topic": "cb"}], config={"callbacks": [handler]})
    assert effects.ran("read_notes", "cb") and not effects.ran("delete_notes", "cb")
    assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"])
