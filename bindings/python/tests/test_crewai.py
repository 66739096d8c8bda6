"""CrewAI (pinned in requirements/crewai.in, its own venv) with a scripted ``BaseLLM`` (CrewAI's
own LLM interface; no network, no API key) driving the ReAct loop: kickoff, kickoff_async and
kickoff_for_each."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from conftest import assert_audited, framework  # noqa: E402

framework("crewai")
from crewai import Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402

from warden.integrations.crewai import install  # noqa: E402


class ScriptedLLM(BaseLLM):
    """Reads its conversation and asks for read_notes, then delete_notes, then answers."""

    def call(self, messages, tools=None, callbacks=None, available_functions=None,
             from_task=None, from_agent=None, response_model=None, **kwargs):
        text = messages if isinstance(messages, str) else "\n".join(
            str(m.get("content", "")) for m in messages)
        topic = re.search(r"TOPIC=(\w+)", text).group(1)
        if f"notes about {topic}" not in text:
            return f'Thought: read first\nAction: read_notes\nAction Input: {{"topic": "{topic}"}}'
        if "Warden blocked" not in text and "deleted notes" not in text:
            return f'Thought: now delete\nAction: delete_notes\nAction Input: {{"topic": "{topic}"}}'
        verdict = "blocked" if "Warden blocked" in text else "deleted"
        return f"Thought: I know the answer\nFinal Answer: {verdict}"

    async def acall(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def supports_function_calling(self) -> bool:
        return False

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192


@pytest.fixture
def crew(gate, effects):
    @tool("read_notes")
    def read_notes(topic: str) -> str:
        """Read the saved notes of one topic."""
        return effects.read_notes(topic)

    @tool("delete_notes")
    def delete_notes(topic: str) -> str:
        """Remove the saved notes of one topic."""
        return effects.delete_notes(topic)

    agent = Agent(role="notes-keeper", goal="keep notes tidy", backstory="careful",
                  llm=ScriptedLLM(model="scripted"), tools=[read_notes, delete_notes],
                  allow_delegation=False, max_iter=6, verbose=False)
    task = Task(description="Tidy the TOPIC={topic} folder.", expected_output="a word",
                agent=agent)
    with install(gate):
        yield Crew(agents=[agent], tasks=[task], verbose=False)


@pytest.mark.parametrize("path", ["kickoff", "kickoff_async", "kickoff_for_each",
                                  "kickoff_for_each_async"])
def test_crew_allows_one_and_blocks_one(crew, gate, effects, path) -> None:
    if path == "kickoff":
        outs = [crew.kickoff(inputs={"topic": "a"})]
        topics = ["a"]
    elif path == "kickoff_async":
        outs = [asyncio.run(crew.kickoff_async(inputs={"topic": "a"}))]
        topics = ["a"]
    elif path == "kickoff_for_each":
        outs = crew.kickoff_for_each(inputs=[{"topic": "a"}, {"topic": "b"}])
        topics = ["a", "b"]
    else:
        outs = asyncio.run(crew.kickoff_for_each_async(inputs=[{"topic": "a"}, {"topic": "b"}]))
        topics = ["a", "b"]
    for topic in topics:
        assert effects.ran("read_notes", topic) and not effects.ran("delete_notes", topic)
    # The model read Warden's reason as the tool result and said so.
    assert all(str(o.raw).strip() == "blocked" for o in outs), [str(o.raw) for o in outs]
    records = assert_audited(gate, allowed=["read_notes"], denied=["delete_notes"],
                             framework="crewai")
    assert {r["agent"] for r in records} == {"notes-keeper"}


def test_uninstalled_hook_no_longer_decides(gate, effects) -> None:
    from crewai.hooks.tool_hooks import get_before_tool_call_hooks

    before = len(get_before_tool_call_hooks())
    with install(gate):
        assert len(get_before_tool_call_hooks()) == before + 1
    assert len(get_before_tool_call_hooks()) == before
