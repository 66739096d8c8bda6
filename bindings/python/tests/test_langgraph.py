"""LangGraph (pinned in requirements/main.in): a real StateGraph — fake chat model node, Warden-
guarded ToolNode, tools_condition — run sync, async, streamed and batched."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("langgraph")
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import StructuredTool  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import tools_condition  # noqa: E402

from warden.integrations.langgraph import tool_node  # noqa: E402


def build(gate, effects, topic: str):
    tools = [
        StructuredTool.from_function(effects.read_notes, name="read_notes", description="read"),
        StructuredTool.from_function(effects.delete_notes, name="delete_notes", description="delete"),
    ]
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[
            {"name": "read_notes", "args": {"topic": topic}, "id": "c1", "type": "tool_call"},
            {"name": "delete_notes", "args": {"topic": topic}, "id": "c2", "type": "tool_call"},
        ]),
        AIMessage(content="done"),
    ]))

    def call_model(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("model", call_model)
    g.add_node("tools", tool_node(tools, gate, agent="graph-bot"))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    return g.compile()


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream", "batch"])
def test_graph_allows_one_and_blocks_one(gate, effects, path) -> None:
    graph = build(gate, effects, path)
    inp = {"messages": [HumanMessage("tidy up")]}
    cfg = {"configurable": {"thread_id": f"thread-{path}"}}
    if path == "invoke":
        out = graph.invoke(inp, cfg)
    elif path == "ainvoke":
        out = asyncio.run(graph.ainvoke(inp, cfg))
    elif path == "stream":
        out = list(graph.stream(inp, cfg, stream_mode="values"))[-1]
    elif path == "astream":
        async def go():
            return [s async for s in graph.astream(inp, cfg, stream_mode="values")][-1]
        out = asyncio.run(go())
    else:
        out = graph.batch([inp], [cfg])[0]
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    tool_msgs = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert tool_msgs["c1"].content == f"notes about {path}"
    assert tool_msgs["c2"].status == "error" and "not allowed" in tool_msgs["c2"].content
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                             framework="langgraph")
    assert {(r["context"] or {}).get("session") for r in records} == {f"thread-{path}"}


def test_node_retries_are_governed_each_time(gate, effects) -> None:
    """The tool node fails once (the allowed tool raises) and LangGraph's RetryPolicy runs it
    again: both attempts pass the guard, the denied call never runs in either."""
    from langgraph.types import RetryPolicy

    attempts = []

    def flaky_read(topic: str) -> str:
        attempts.append(topic)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return effects.read_notes(topic)

    tools = [
        StructuredTool.from_function(flaky_read, name="read_notes", description="read"),
        StructuredTool.from_function(effects.delete_notes, name="delete_notes", description="delete"),
    ]
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[
            {"name": "read_notes", "args": {"topic": "retry"}, "id": "c1", "type": "tool_call"},
            {"name": "delete_notes", "args": {"topic": "retry"}, "id": "c2", "type": "tool_call"},
        ]),
        AIMessage(content="done"),
    ]))
    g = StateGraph(MessagesState)
    g.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    g.add_node("tools", tool_node(tools, gate, handle_tool_errors=False),
               retry_policy=RetryPolicy(max_attempts=2, retry_on=RuntimeError, initial_interval=0.01))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    out = g.compile().invoke({"messages": [HumanMessage("tidy up")]})
    assert len(attempts) == 2 and effects.ran("read_notes", "retry")
    assert not effects.ran("delete_notes", "retry")
    assert out["messages"][-1].content == "done"
    denies = gate.audit_query(tool="delete_notes")
    assert [r["verdict"] for r in denies] == ["deny", "deny"]  # decided on each attempt
