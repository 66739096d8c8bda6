"""LangGraph: a guard around the tool node.

``tool_node(tools, warden)`` is LangGraph's own ``ToolNode`` with Warden in its
``wrap_tool_call``/``awrap_tool_call`` hooks — the place LangGraph gives for intercepting tool
execution. Every call the node runs (sync or async graph, ``invoke``/``stream``/``batch``, parallel
calls in one message, retries of the node) passes the hook first; a denied call never reaches the
tool, and the model gets a ``ToolMessage`` with ``status="error"`` carrying the reason. The thread
id from the run's config is recorded as the session.

Already building your own ``ToolNode``? Pass ``**wrappers(warden)`` to it.
"""

from __future__ import annotations

from typing import Any, Sequence

from langchain_core.messages import ToolMessage
from langgraph.prebuilt import ToolNode

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["tool_node", "wrappers"]


def _call(request: Any) -> tuple[str, Any, dict[str, Any]]:
    call = request.tool_call
    ctx: dict[str, Any] = {}
    runtime = getattr(request, "runtime", None)
    config = getattr(runtime, "config", None) or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    if thread is not None:
        ctx["session"] = str(thread)
    if call.get("id"):
        ctx["tool_call_id"] = call["id"]
    return call["name"], call.get("args") or {}, ctx


def _refused(request: Any, name: str, decision: Any) -> ToolMessage:
    return ToolMessage(content=message(name, decision), name=name,
                       tool_call_id=request.tool_call.get("id") or "", status="error")


def wrappers(warden: Warden, *, agent: str | None = None, action: ActionName = None,
             context: dict[str, Any] | None = None) -> dict[str, Any]:
    """``wrap_tool_call`` and ``awrap_tool_call`` for a ``ToolNode``."""
    guard = Guard(warden, framework="langgraph", agent=agent, action=action, context=context)

    def wrap_tool_call(request: Any, execute: Any) -> Any:
        name, args, ctx = _call(request)
        decision = guard.decide(name, args, context=ctx)
        if not decision.allowed:
            return _refused(request, name, decision)
        return execute(request)

    async def awrap_tool_call(request: Any, execute: Any) -> Any:
        name, args, ctx = _call(request)
        decision = await guard.adecide(name, args, context=ctx)
        if not decision.allowed:
            return _refused(request, name, decision)
        return await execute(request)

    return {"wrap_tool_call": wrap_tool_call, "awrap_tool_call": awrap_tool_call}


def tool_node(tools: Sequence[Any], warden: Warden, *, agent: str | None = None,
              action: ActionName = None, context: dict[str, Any] | None = None,
              **tool_node_options: Any) -> ToolNode:
    """A ``ToolNode`` running ``tools`` behind ``warden``."""
    return ToolNode(list(tools), **tool_node_options,
                    **wrappers(warden, agent=agent, action=action, context=context))
