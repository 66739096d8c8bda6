"""LlamaIndex (``llama-index-core``): a tool wrapper.

``guard_tools(tools, warden)`` returns each tool (``FunctionTool``, ``QueryEngineTool``,
``RetrieverTool``, any ``BaseTool``) as a copy of the same class whose entry points decide first
(so the agent still treats it as what it is: a ``FunctionTool`` that wants the workflow
``Context`` still gets it; the context is not sent to Warden). Agents and
workflows run tools through ``call``/``acall`` (or ``__call__``); the wrapper decides first on each,
so a denied call never reaches the tool — nor its query engine or retriever (``query``/``aquery``,
``retrieve``/``aretrieve``) — and the agent gets a ``ToolOutput`` with ``is_error=True`` and the
reason as its content.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from llama_index.core.tools import ToolOutput
from llama_index.core.tools.types import AsyncBaseTool, BaseTool

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["guard_tool", "guard_tools"]


def _args(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    if len(args) == 1 and not kwargs:
        return args[0] if isinstance(args[0], dict) else {"input": args[0]}
    out = {f"arg{i}": a for i, a in enumerate(args)}
    out.update(kwargs)
    return out


_classes: dict[type, type] = {}


def _guarded_class(base: type) -> type:
    """``base`` with ``call``/``acall``/``__call__`` deciding first (one class per tool class).
    A subclass rather than a wrapper, so the agent still sees what the tool is — a
    ``FunctionTool`` that wants the workflow ``Context`` still gets it."""
    if base in _classes:
        return _classes[base]
    async_base = issubclass(base, AsyncBaseTool)

    def call(self: Any, *args: Any, **kwargs: Any) -> ToolOutput:
        a = _decided_args(self, args, kwargs)
        decision = self._warden_guard.decide(_name(self), a)
        if not decision.allowed:
            return _refused(self, a, decision)
        return base.call(self, *args, **kwargs)

    async def acall(self: Any, *args: Any, **kwargs: Any) -> ToolOutput:
        a = _decided_args(self, args, kwargs)
        decision = await self._warden_guard.adecide(_name(self), a)
        if not decision.allowed:
            return _refused(self, a, decision)
        return await base.acall(self, *args, **kwargs)

    def dunder_call(self: Any, *args: Any, **kwargs: Any) -> ToolOutput:
        if async_base:  # AsyncBaseTool.__call__ is self.call: decided there, once
            return base.__call__(self, *args, **kwargs)
        a = _decided_args(self, args, kwargs)
        decision = self._warden_guard.decide(_name(self), a)
        if not decision.allowed:
            return _refused(self, a, decision)
        return base.__call__(self, *args, **kwargs)

    namespace: dict[str, Any] = {"__call__": dunder_call, "__module__": __name__}
    if hasattr(base, "call"):
        namespace["call"] = call
    if hasattr(base, "acall"):
        namespace["acall"] = acall
    cls = type(f"Guarded{base.__name__}", (base,), namespace)
    _classes[base] = cls
    return cls


def _name(tool: Any) -> str:
    return tool.metadata.name or "tool"


def _decided_args(tool: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    a = _args(args, kwargs)
    ctx_param = getattr(tool, "ctx_param_name", None)  # the workflow Context, not the model's
    if ctx_param:
        a = {k: v for k, v in a.items() if k != ctx_param}
    return a


def _refused(tool: Any, args: dict[str, Any], decision: Any) -> ToolOutput:
    text = message(_name(tool), decision)
    return ToolOutput(content=text, tool_name=_name(tool), raw_input=args, raw_output=text,
                      is_error=True)


def guard_tool(tool: BaseTool, warden: Warden, *, agent: str | None = None,
               action: ActionName = None, context: dict[str, Any] | None = None) -> BaseTool:
    """A copy of ``tool`` (same class, plus the guard) that asks ``warden`` first."""
    if getattr(tool, "_warden_guard", None) is not None:
        return tool
    guarded = copy.copy(tool)
    guarded.__class__ = _guarded_class(type(tool))
    guarded._warden_guard = Guard(warden, framework="llama_index", agent=agent, action=action,
                                  context=context)
    return guarded


def guard_tools(tools: Sequence[BaseTool], warden: Warden, **options: Any) -> list[BaseTool]:
    """Every tool behind ``warden``."""
    return [guard_tool(t, warden, **options) for t in tools]
