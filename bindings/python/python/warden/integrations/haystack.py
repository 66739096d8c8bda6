"""Haystack (``haystack-ai``): a guard on the tools the Agent invokes.

Haystack's Agent invokes every tool through ``Tool.invoke`` (sync runs and the parallel thread
pool) or ``Tool.invoke_async`` (``run_async``), and turns a ``ToolInvocationError`` into an error
result the model reads. ``guard_tools(tools, warden)`` returns the same tools (``Tool``,
``ComponentTool``, any subclass: their schema, ``inputs_from_state`` and ``outputs_to_state`` are
kept) with those two methods deciding first: a denied call raises ``ToolInvocationError`` with
the reason and the tool's function or component never runs. Arguments Haystack injects from the
agent's ``State`` are not sent to Warden (they are not the model's).
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from haystack.components.agents.state.state import State
from haystack.tools import Tool
from haystack.tools.errors import ToolInvocationError

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["guard_tool", "guard_tools"]

_classes: dict[type, type] = {}


def _model_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if not isinstance(v, State)}


def _guarded_class(base: type) -> type:
    """``base`` with ``invoke``/``invoke_async`` deciding first (one class per tool class)."""
    if base in _classes:
        return _classes[base]

    def invoke(self: Any, **kwargs: Any) -> Any:
        decision = self._warden_guard.decide(self.name, _model_args(kwargs))
        if not decision.allowed:
            raise ToolInvocationError(message(self.name, decision), tool_name=self.name)
        return base.invoke(self, **kwargs)

    async def invoke_async(self: Any, **kwargs: Any) -> Any:
        decision = await self._warden_guard.adecide(self.name, _model_args(kwargs))
        if not decision.allowed:
            raise ToolInvocationError(message(self.name, decision), tool_name=self.name)
        return await base.invoke_async(self, **kwargs)

    cls = type(f"Guarded{base.__name__}", (base,), {
        "invoke": invoke, "invoke_async": invoke_async, "__module__": __name__,
    })
    _classes[base] = cls
    return cls


def guard_tool(tool: Tool, warden: Warden, *, agent: str | None = None,
               action: ActionName = None, context: dict[str, Any] | None = None) -> Tool:
    """A copy of ``tool`` that asks ``warden`` before each invocation."""
    if getattr(tool, "_warden_guard", None) is not None:
        return tool
    guarded = copy.copy(tool)
    guarded.__class__ = _guarded_class(type(tool))
    guarded._warden_guard = Guard(warden, framework="haystack", agent=agent, action=action,
                                  context=context)
    return guarded


def guard_tools(tools: Sequence[Tool], warden: Warden, **options: Any) -> list[Tool]:
    """Every tool behind ``warden``."""
    return [guard_tool(t, warden, **options) for t in tools]
