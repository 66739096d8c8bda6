"""OpenAI Agents SDK (``openai-agents``): a tool input guardrail.

``guardrail(warden)`` is a ``ToolInputGuardrail``; ``guard_tools(tools, warden)`` attaches it to
every ``FunctionTool`` (``tool_input_guardrails``). The SDK runs a tool's input guardrails before
the function on every path that executes function tools — ``Runner.run``, ``run_sync``,
``run_streamed``, parallel calls, handoffs to agents that share the tools — and on
``reject_content`` it skips the function and sends the message to the model as the tool's output.
Hosted tools (web search, code interpreter) run on OpenAI's side and are not function tools:
govern them with the SDK's approval settings or keep them out of the agent.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from agents import FunctionTool
from agents.tool_guardrails import (
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
)

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["guard_tools", "guardrail"]


def guardrail(warden: Warden, *, agent: str | None = None, action: ActionName = None,
              context: dict[str, Any] | None = None) -> ToolInputGuardrail[Any]:
    """A tool input guardrail that asks ``warden`` before each call."""
    guard = Guard(warden, framework="openai_agents", agent=agent, action=action, context=context)

    async def warden_guardrail(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        tc = data.context
        try:
            args = json.loads(tc.tool_arguments or "{}")
        except ValueError as e:
            args = UnparseableArguments(e)
        ctx: dict[str, Any] = {"tool_call_id": tc.tool_call_id}
        run_config = getattr(tc, "run_config", None)
        if run_config is not None and getattr(run_config, "group_id", None):
            ctx["session"] = run_config.group_id
        decision = await guard.adecide(tc.tool_name, args, agent=getattr(data.agent, "name", None),
                                       context=ctx)
        if decision.allowed:
            return ToolGuardrailFunctionOutput.allow(output_info={"warden": decision.verdict})
        return ToolGuardrailFunctionOutput.reject_content(
            message(tc.tool_name, decision),
            output_info={"warden": decision.verdict, "reason": decision.reason},
        )

    return ToolInputGuardrail(guardrail_function=warden_guardrail, name="warden")


class UnparseableArguments:
    """Arguments that are not JSON: Warden denies them, naming the type."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def guard_tools(tools: Sequence[Any], warden: Warden, **options: Any) -> list[Any]:
    """The same tools, each ``FunctionTool`` with the Warden guardrail first in its list."""
    g = guardrail(warden, **options)
    for t in tools:
        if isinstance(t, FunctionTool):
            existing = list(t.tool_input_guardrails or [])
            if not any(getattr(x, "name", None) == "warden" for x in existing):
                t.tool_input_guardrails = [g, *existing]
    return list(tools)
