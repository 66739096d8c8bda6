"""Google ADK (google-adk, pinned in requirements/main.in): an LlmAgent on an InMemoryRunner with
a scripted ``BaseLlm`` (ADK's own model interface; no network, no API key), run_async (plain and
SSE streaming) and the sync run."""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_audited, framework

framework("google.adk")
from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.agents.run_config import RunConfig, StreamingMode  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402

from warden.integrations.google_adk import before_tool_callback  # noqa: E402


class ScriptedLlm(BaseLlm):
    topic: str = "x"
    seen: dict = {}

    async def generate_content_async(self, llm_request, stream: bool = False):
        responses = [p.function_response for c in llm_request.contents for p in (c.parts or [])
                     if p.function_response is not None]
        if not responses:
            yield LlmResponse(content=types.Content(role="model", parts=[
                types.Part(function_call=types.FunctionCall(id="c1", name="read_notes",
                                                            args={"topic": self.topic})),
                types.Part(function_call=types.FunctionCall(id="c2", name="delete_notes",
                                                            args={"topic": self.topic})),
            ]))
            return
        for r in responses:
            self.seen[r.name] = r.response
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="done")]))


def run(gate, effects, path: str) -> dict:
    llm = ScriptedLlm(model="scripted", topic=path, seen={})
    agent = LlmAgent(name="adk_agent", model=llm, instruction="tidy notes",
                     tools=[effects.read_notes, effects.delete_notes],
                     before_tool_callback=before_tool_callback(gate))
    runner = InMemoryRunner(agent=agent, app_name="warden-test")
    msg = types.Content(role="user", parts=[types.Part(text="tidy")])

    async def session():
        return await runner.session_service.create_session(app_name="warden-test", user_id="u")

    if path == "run":
        s = asyncio.run(session())
        events = list(runner.run(user_id="u", session_id=s.id, new_message=msg))
    else:
        async def go():
            s = await session()
            cfg = RunConfig(streaming_mode=StreamingMode.SSE if path == "sse" else StreamingMode.NONE)
            return [e async for e in runner.run_async(user_id="u", session_id=s.id,
                                                      new_message=msg, run_config=cfg)]
        events = asyncio.run(go())
    texts = [p.text for e in events if e.content for p in (e.content.parts or []) if p.text]
    assert "done" in texts
    return llm.seen


@pytest.mark.parametrize("path", ["run_async", "sse", "run"])
def test_agent_allows_one_and_blocks_one(gate, effects, path) -> None:
    seen = run(gate, effects, path)
    assert effects.ran("read_notes", path) and not effects.ran("delete_notes", path)
    assert seen["read_notes"] == {"result": f"notes about {path}"}
    assert "not allowed" in seen["delete_notes"]["error"]
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                             framework="google_adk")
    assert {r["agent"] for r in records} == {"adk_agent"}
    assert all((r["context"] or {}).get("session") for r in records)
