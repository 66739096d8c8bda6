"""LlamaIndex (``llama-index-core``): a tool wrapper.

``guard_tools(tools, warden)`` wraps each tool (``FunctionTool``, ``QueryEngineTool``,
``RetrieverTool``, any ``BaseTool``) in a :class:`GuardedTool` with the same metadata. Agents and
workflows run tools through ``call``/``acall`` (or ``__call__``); the wrapper decides first on each,
so a denied call never reaches the tool — nor its query engine or retriever (``query``/``aquery``,
``retrieve``/``aretrieve``) — and the agent gets a ``ToolOutput`` with ``is_error=True`` and the
reason as its content.
"""

from __future__ import annotations

from typing import Any, Sequence

from llama_index.core.tools import ToolOutput
from llama_index.core.tools.types import AsyncBaseTool, BaseTool, ToolMetadata, adapt_to_async_tool

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["GuardedTool", "guard_tool", "guard_tools"]


def _args(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    if len(args) == 1 and not kwargs:
        return args[0] if isinstance(args[0], dict) else {"input": args[0]}
    out = {f"arg{i}": a for i, a in enumerate(args)}
    out.update(kwargs)
    return out


class GuardedTool(AsyncBaseTool):
    """``inner`` behind Warden; build with :func:`guard_tool`."""

    def __init__(self, inner: BaseTool, guard: Guard) -> None:
        self._inner = adapt_to_async_tool(inner)
        self._guard = guard

    @property
    def metadata(self) -> ToolMetadata:
        return self._inner.metadata

    @property
    def inner(self) -> AsyncBaseTool:
        return self._inner

    def _refused(self, args: dict[str, Any], decision: Any) -> ToolOutput:
        text = message(self.metadata.name or "tool", decision)
        return ToolOutput(content=text, tool_name=self.metadata.name or "tool",
                          raw_input=args, raw_output=text, is_error=True)

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        a = _args(args, kwargs)
        decision = self._guard.decide(self.metadata.name or "tool", a)
        if not decision.allowed:
            return self._refused(a, decision)
        return self._inner.call(*args, **kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        a = _args(args, kwargs)
        decision = await self._guard.adecide(self.metadata.name or "tool", a)
        if not decision.allowed:
            return self._refused(a, decision)
        return await self._inner.acall(*args, **kwargs)


def guard_tool(tool: BaseTool, warden: Warden, *, agent: str | None = None,
               action: ActionName = None, context: dict[str, Any] | None = None) -> GuardedTool:
    """``tool`` behind ``warden``."""
    if isinstance(tool, GuardedTool):
        return tool
    return GuardedTool(tool, Guard(warden, framework="llama_index", agent=agent, action=action,
                                   context=context))


def guard_tools(tools: Sequence[BaseTool], warden: Warden, **options: Any) -> list[GuardedTool]:
    """Every tool behind ``warden``."""
    return [guard_tool(t, warden, **options) for t in tools]
