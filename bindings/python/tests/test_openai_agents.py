"""OpenAI Agents SDK (openai-agents, pinned in requirements/main.in): a real Runner loop with a
scripted ``Model`` (the SDK's own model interface; no network, no API key), run, run_sync and
run_streamed."""

from __future__ import annotations

import asyncio
import json

import pytest

from conftest import assert_audited, framework

framework("agents")
from agents import Agent, ModelResponse, RunConfig, Runner, Usage, function_tool  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from openai.types.responses import (  # noqa: E402
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from warden.integrations.openai_agents import guard_tools  # noqa: E402


class ScriptedModel(Model):
    """Asks for read_notes and delete_notes in one turn, then answers."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.turn = 0
        self.seen_outputs: list[str] = []

    def _output(self, input) -> list:
        self.turn += 1
        if self.turn == 1:
            args = json.dumps({"topic": self.topic})
            return [
                ResponseFunctionToolCall(type="function_call", call_id="c1", name="read_notes",
                                         arguments=args, id="fc1", status="completed"),
                ResponseFunctionToolCall(type="function_call", call_id="c2", name="delete_notes",
                                         arguments=args, id="fc2", status="completed"),
            ]
        self.seen_outputs = [i.get("output") for i in input
                             if isinstance(i, dict) and i.get("type") == "function_call_output"]
        return [ResponseOutputMessage(
            id="m1", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text="done", annotations=[])])]

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema,
                           handoffs, tracing, *args, **kwargs):
        return ModelResponse(output=self._output(input), usage=Usage(), response_id=None)

    async def stream_response(self, system_instructions, input, model_settings, tools,
                              output_schema, handoffs, tracing, *args, **kwargs):
        output = self._output(input)
        yield ResponseCompletedEvent(
            type="response.completed", sequence_number=0,
            response=Response(id=f"r{self.turn}", created_at=0, model="scripted", object="response",
                              output=output, parallel_tool_calls=True, tool_choice="auto",
                              tools=[]),
        )


def make_agent(gate, effects, model):
    read = function_tool(effects.read_notes, name_override="read_notes")
    delete = function_tool(effects.delete_notes, name_override="delete_notes")
    return Agent(name="notes-agent", instructions="tidy notes", model=model,
                 tools=guard_tools([read, delete], gate))


@pytest.mark.parametrize("path", ["run", "run_sync", "run_streamed"])
def test_runner_allows_one_and_blocks_one(gate, effects, path) -> None:
    model = ScriptedModel(path)
    agent = make_agent(gate, effects, model)
    cfg = RunConfig(tracing_disabled=True, group_id=f"group-{path}")
    if path == "run":
        result = asyncio.run(Runner.run(agent, "tidy", run_config=cfg))
    elif path == "run_sync":
        result = Runner.run_sync(agent, "tidy", run_config=cfg)
    else:
        async def go():
            r = Runner.run_streamed(agent, "tidy", run_config=cfg)
            async for _ in r.stream_events():
                pass
            return r
        result = asyncio.run(go())
    assert result.final_output == "done"
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert f"notes about {path}" in model.seen_outputs[0]
    assert "not allowed" in model.seen_outputs[1]
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                             framework="openai_agents")
    assert {r["agent"] for r in records} == {"notes-agent"}
    assert {(r["context"] or {}).get("session") for r in records} == {f"group-{path}"}


@pytest.mark.parametrize("arguments, why", [
    ("{not json", "UnparseableArguments"),      # the model's arguments do not parse
    ('["read", "notes"]', "args must be a dict"),  # JSON of the other type
    ('{"topic": {"deep": ' * 70 + "1" + "}" * 140, "nested deeper"),
])
def test_guardrail_rejects_arguments_it_cannot_read(gate, arguments, why) -> None:
    """Arguments that are not a JSON object are rejected (not passed through) with the reason."""
    from agents.tool_context import ToolContext
    from agents.tool_guardrails import ToolInputGuardrailData

    from warden.integrations.openai_agents import guardrail

    g = guardrail(gate)
    ctx = ToolContext(context=None, tool_name="read_notes", tool_call_id="c9",
                      tool_arguments=arguments)
    out = asyncio.run(g.run(ToolInputGuardrailData(context=ctx, agent=Agent(name="a"))))
    assert out.behavior["type"] == "reject_content", out.behavior
    assert why in out.behavior["message"], out.behavior["message"]
    assert gate.audit_query(tool="read_notes")[-1]["verdict"] == "deny"
