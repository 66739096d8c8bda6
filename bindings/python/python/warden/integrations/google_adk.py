"""Google ADK (``google-adk``): a before-tool callback.

``before_tool_callback(warden)`` is an ADK ``before_tool_callback``: ADK calls it before every
tool an ``LlmAgent`` runs (``Runner.run``, ``run_async``, live/streaming runs, parallel calls), and
when it returns a dict ADK skips the tool and hands that dict to the model as the tool's response.
A denied call returns ``{"error": reason}``; an allowed one returns ``None`` and the tool runs.
The agent's name, the session id and the invocation id go into the action.

    agent = LlmAgent(..., before_tool_callback=before_tool_callback(warden))
"""

from __future__ import annotations

from typing import Any

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["before_tool_callback"]


def before_tool_callback(warden: Warden, *, agent: str | None = None, action: ActionName = None,
                         context: dict[str, Any] | None = None) -> Any:
    """An async ``before_tool_callback`` asking ``warden``."""
    guard = Guard(warden, framework="google_adk", agent=agent, action=action, context=context)

    async def warden_before_tool(tool: Any, args: dict[str, Any], tool_context: Any) -> dict | None:
        name = getattr(tool, "name", None) or "tool"
        extra: dict[str, Any] = {}
        session = getattr(tool_context, "session", None)
        if getattr(session, "id", None):
            extra["session"] = session.id
        if getattr(tool_context, "invocation_id", None):
            extra["invocation_id"] = tool_context.invocation_id
        if getattr(tool_context, "function_call_id", None):
            extra["tool_call_id"] = tool_context.function_call_id
        decision = await guard.adecide(name, args, agent=getattr(tool_context, "agent_name", None),
                                       context=extra)
        if decision.allowed:
            return None
        return {"error": message(name, decision), "warden_verdict": decision.verdict}

    return warden_before_tool
