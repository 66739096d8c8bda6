"""PydanticAI (pydantic-ai-slim, pinned in requirements/main.in) with its own FunctionModel (a
scripted model; no network): run, run_sync, run_stream and iter."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("pydantic_ai")
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel  # noqa: E402
from pydantic_ai.toolsets import FunctionToolset  # noqa: E402

from warden.integrations.pydantic_ai import guard_toolset  # noqa: E402


def tool_returns(messages) -> dict[str, str]:
    return {p.tool_name: str(p.content) for m in messages for p in getattr(m, "parts", [])
            if isinstance(p, ToolReturnPart)}


def make_agent(gate, effects, topic: str, seen: dict):
    def model(messages, info: AgentInfo) -> ModelResponse:
        if not tool_returns(messages):
            return ModelResponse(parts=[
                ToolCallPart("read_notes", {"topic": topic}, tool_call_id="c1"),
                ToolCallPart("delete_notes", {"topic": topic}, tool_call_id="c2"),
            ])
        seen.update(tool_returns(messages))
        return ModelResponse(parts=[TextPart("done")])

    async def stream(messages, info: AgentInfo):
        if not tool_returns(messages):
            yield {0: DeltaToolCall("read_notes", f'{{"topic": "{topic}"}}', tool_call_id="c1"),
                   1: DeltaToolCall("delete_notes", f'{{"topic": "{topic}"}}', tool_call_id="c2")}
            return
        seen.update(tool_returns(messages))
        yield "done"

    tools = FunctionToolset([effects.read_notes, effects.delete_notes])
    return Agent(FunctionModel(model, stream_function=stream), name="pyd-agent",
                 toolsets=[guard_toolset(tools, gate)])


@pytest.mark.parametrize("path", ["run", "run_sync", "run_stream", "iter"])
def test_agent_allows_one_and_blocks_one(gate, effects, path) -> None:
    seen: dict = {}
    agent = make_agent(gate, effects, path, seen)
    if path == "run":
        out = asyncio.run(agent.run("tidy")).output
    elif path == "run_sync":
        out = agent.run_sync("tidy").output
    elif path == "run_stream":
        async def go():
            async with agent.run_stream("tidy") as r:
                return await r.get_output()
        out = asyncio.run(go())
    else:
        async def go():
            async with agent.iter("tidy") as run:
                async for _ in run:
                    pass
            return run.result.output
        out = asyncio.run(go())
    assert out == "done"
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert seen["read_notes"] == f"notes about {path}"
    assert "not allowed" in seen["delete_notes"]
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                             framework="pydantic_ai")
    assert {r["agent"] for r in records} == {"pyd-agent"}


def test_retries_are_governed(gate, effects) -> None:
    """A tool asks for a retry (ModelRetry); on the retried turn the model also asks for the denied
    tool. Each call passes call_tool again; the retried call carries its retry count."""
    from pydantic_ai import ModelRetry

    attempts: list[str] = []

    def read_notes(topic: str) -> str:
        attempts.append(topic)
        if len(attempts) == 1:
            raise ModelRetry("the notes were busy, try again")
        return effects.read_notes(topic)

    def model(messages, info: AgentInfo) -> ModelResponse:
        turn = sum(1 for m in messages if getattr(m, "kind", "") == "response")
        if turn == 0:
            return ModelResponse(parts=[ToolCallPart("read_notes", {"topic": "r"}, tool_call_id="c1")])
        if turn == 1:
            return ModelResponse(parts=[
                ToolCallPart("read_notes", {"topic": "r"}, tool_call_id="c2"),
                ToolCallPart("delete_notes", {"topic": "r"}, tool_call_id="c3"),
            ])
        return ModelResponse(parts=[TextPart("done")])

    tools = FunctionToolset([read_notes, effects.delete_notes], max_retries=2)
    agent = Agent(FunctionModel(model), toolsets=[guard_toolset(tools, gate)])
    assert agent.run_sync("tidy").output == "done"
    assert len(attempts) == 2 and effects.ran("read_notes", "r") and not effects.ran("delete_notes", "r")
    reads = gate.audit_query(tool="read_notes")
    assert [r["verdict"] for r in reads] == ["allow", "allow"]
    assert (reads[1]["context"] or {}).get("retry") == 1
    assert [r["verdict"] for r in gate.audit_query(tool="delete_notes")] == ["deny"]
