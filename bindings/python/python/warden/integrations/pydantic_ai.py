"""PydanticAI: a toolset wrapper.

``WardenToolset(toolset, warden)`` wraps any toolset (a ``FunctionToolset``, an MCP server, a
combined one) and decides in ``call_tool``, the one method PydanticAI calls to execute a tool —
from ``run``, ``run_sync``, ``run_stream``, ``iter`` and parallel tool calls, and on every retry.
A denied call never reaches the wrapped toolset; the model gets the reason as the tool's return
value. Put tools in the wrapped toolset (``Agent(model, toolsets=[WardenToolset(...)])``): tools
registered with ``@agent.tool`` live in the agent's own toolset, which this does not wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["WardenToolset", "guard_toolset"]


@dataclass
class WardenToolset(WrapperToolset[Any]):
    """``wrapped`` behind ``guard`` (build with :func:`guard_toolset`)."""

    guard: Guard = field(default=None)  # type: ignore[assignment]

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any],
                        tool: Any) -> Any:
        extra: dict[str, Any] = {}
        if getattr(ctx, "run_id", None):
            extra["session"] = str(ctx.run_id)
        if getattr(ctx, "tool_call_id", None):
            extra["tool_call_id"] = ctx.tool_call_id
        if getattr(ctx, "retry", 0):
            extra["retry"] = ctx.retry
        agent = getattr(getattr(ctx, "agent", None), "name", None)
        decision = await self.guard.adecide(name, tool_args, agent=agent, context=extra)
        if not decision.allowed:
            return message(name, decision)
        return await self.wrapped.call_tool(name, tool_args, ctx, tool)


def guard_toolset(toolset: AbstractToolset[Any], warden: Warden, *, agent: str | None = None,
                  action: ActionName = None, context: dict[str, Any] | None = None) -> WardenToolset:
    """``toolset`` behind ``warden``."""
    return WardenToolset(toolset, guard=Guard(warden, framework="pydantic_ai", agent=agent,
                                              action=action, context=context))
