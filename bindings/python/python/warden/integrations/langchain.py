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

import inspect
import typing
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

    def _model_args(self, tool_input: Any) -> Any:
        """The arguments the model chose: LangChain's injected ones (state, runtime, the tool
        call id — filled in by the framework, not by the model) are left out of the decision."""
        if not isinstance(tool_input, dict):
            return tool_input
        try:
            injected = set(_fields(self.inner.get_input_schema())) - set(
                _fields(self.inner.tool_call_schema))
        except Exception:  # no schema to tell them apart: judge everything
            return tool_input
        return {k: v for k, v in tool_input.items() if k not in injected}

    # `config: RunnableConfig` exactly: LangChain passes the run's config only to a parameter
    # annotated with that type.
    def _run(self, *args: Any, run_manager: Any = None,
             config: RunnableConfig = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        decision = self.guard.decide(self.inner.name, self._model_args(_input(args, kwargs)),
                                     context=_context(run_manager, config))
        if not decision.allowed:
            return self._refused(decision)
        # The input is already parsed against the same schema (injected arguments filled in):
        # hand it to the wrapped tool's own body, as BaseTool.run would.
        inner = self.inner._run
        return inner(*args, **_extras(inner, run_manager, config), **kwargs)

    async def _arun(self, *args: Any, run_manager: Any = None,
                    config: RunnableConfig = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        decision = await self.guard.adecide(self.inner.name,
                                            self._model_args(_input(args, kwargs)),
                                            context=_context(run_manager, config))
        if not decision.allowed:
            return self._refused(decision)
        inner = self.inner._arun
        return await inner(*args, **_extras(inner, run_manager, config), **kwargs)

    def _refused(self, decision: Any) -> Any:
        text = message(self.inner.name, decision)
        return (text, None) if self.response_format == "content_and_artifact" else text


def _extras(body: Any, run_manager: Any, config: Any) -> dict[str, Any]:
    """The run manager and config for a tool body that declares them (as BaseTool.run does)."""
    params = inspect.signature(body).parameters
    extra: dict[str, Any] = {}
    if "run_manager" in params:
        extra["run_manager"] = run_manager
    try:
        hints = typing.get_type_hints(body)
    except Exception:
        hints = {}
    for name, hint in hints.items():
        if hint is RunnableConfig:
            extra[name] = config if config is not None else {}
    return extra


def _fields(schema: Any) -> Any:
    if isinstance(schema, dict):
        return (schema.get("properties") or {}).keys()
    return schema.model_fields.keys()


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
        handle_tool_error=tool.handle_tool_error,
        handle_validation_error=tool.handle_validation_error,
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
