"""LangChain (``langchain-core``): a tool wrapper and a callback handler.

``guard_tools(tools, warden)`` wraps each ``BaseTool`` in a :class:`GuardedTool`: the same name,
description and argument schema, deciding before every run. LangChain sends every way of running a
tool — ``invoke``, ``ainvoke``, ``batch``, ``abatch``, ``stream``, ``astream``, a ``ToolCall`` or
plain arguments — through ``BaseTool.run``/``arun``, which call the wrapper's ``_run``/``_arun``;
so a denied call never reaches the wrapped tool on any path, and the model reads the reason as
the tool's result.

``WardenCallbackHandler(warden)`` is for tools you cannot wrap: pass it in ``callbacks`` (on the
tool, or in a run's config). LangChain calls ``on_tool_start`` before the tool body; the handler
raises :class:`warden.Denied` there (``raise_error = True``), so the body never runs and the
caller gets the exception.
"""

from __future__ import annotations

from typing import Any, Sequence

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from .. import ApprovalRequired, Denied, Warden
from ._guard import ActionName, Guard, message

__all__ = ["GuardedTool", "WardenCallbackHandler", "guard_tool", "guard_tools"]


def _context(run_manager: Any, config: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if run_manager is not None and getattr(run_manager, "run_id", None) is not None:
        ctx["run_id"] = str(run_manager.run_id)
    configurable = (config or {}).get("configurable") or {}
    if configurable.get("thread_id") is not None:
        ctx["session"] = str(configurable["thread_id"])
    return ctx


class GuardedTool(BaseTool):
    """``inner`` behind Warden. Build with :func:`guard_tool`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    guard: Any = None

    def _run(self, *args: Any, run_manager: Any = None, config: RunnableConfig | None = None,
             **kwargs: Any) -> Any:
        tool_input = _input(args, kwargs)
        decision = self.guard.decide(self.inner.name, tool_input, context=_context(run_manager, config))
        if not decision.allowed:
            return self._refused(decision)
        return self._deliver(self.inner.run(
            tool_input, callbacks=run_manager.get_child() if run_manager else None,
            tool_call_id=_INNER_ID if self.response_format == "content_and_artifact" else None,
        ))

    async def _arun(self, *args: Any, run_manager: Any = None,
                    config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        tool_input = _input(args, kwargs)
        decision = await self.guard.adecide(self.inner.name, tool_input,
                                            context=_context(run_manager, config))
        if not decision.allowed:
            return self._refused(decision)
        return self._deliver(await self.inner.arun(
            tool_input, callbacks=run_manager.get_child() if run_manager else None,
            tool_call_id=_INNER_ID if self.response_format == "content_and_artifact" else None,
        ))

    def _refused(self, decision: Any) -> Any:
        text = message(self.inner.name, decision)
        return (text, None) if self.response_format == "content_and_artifact" else text

    def _deliver(self, out: Any) -> Any:
        if self.response_format == "content_and_artifact":
            return (getattr(out, "content", out), getattr(out, "artifact", None))
        return out


_INNER_ID = "warden-inner-call"


def _input(args: tuple, kwargs: dict[str, Any]) -> Any:
    if args and not kwargs and len(args) == 1:
        return args[0] if isinstance(args[0], dict) else {"input": args[0]}
    if args:
        kwargs = {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
    return kwargs


def guard_tool(tool: BaseTool, warden: Warden, *, agent: str | None = None,
               action: ActionName = None, context: dict[str, Any] | None = None) -> GuardedTool:
    """``tool`` behind ``warden`` (see :class:`warden.integrations._guard.Guard` for the options)."""
    if isinstance(tool, GuardedTool):
        return tool
    return GuardedTool(
        name=tool.name, description=tool.description, args_schema=tool.args_schema,
        return_direct=tool.return_direct, response_format=tool.response_format,
        inner=tool,
        guard=Guard(warden, framework="langchain", agent=agent, action=action, context=context),
    )


def guard_tools(tools: Sequence[BaseTool], warden: Warden, **options: Any) -> list[GuardedTool]:
    """Every tool behind ``warden``."""
    return [guard_tool(t, warden, **options) for t in tools]


class WardenCallbackHandler(BaseCallbackHandler):
    """Raises :class:`warden.Denied` (or :class:`warden.ApprovalRequired`) from ``on_tool_start``,
    before the tool body runs. Runs inline, so async runs decide on the loop's thread (a decision
    with an audit log waits for its record: use :func:`guard_tools` in async code)."""

    raise_error = True
    run_inline = True

    def __init__(self, warden: Warden, *, agent: str | None = None, action: ActionName = None,
                 context: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.guard = Guard(warden, framework="langchain", agent=agent, action=action, context=context)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: Any = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        args = inputs if inputs is not None else {"input": input_str}
        ctx = {"run_id": str(run_id)} if run_id is not None else None
        decision = self.guard.decide(name, args, context=ctx)
        if decision.allowed:
            return
        if decision.verdict == "require_approval":
            raise ApprovalRequired(decision)
        raise Denied(decision)
