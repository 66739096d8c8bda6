"""CrewAI: a before-tool-call hook.

``install(warden)`` registers Warden as a global ``before_tool_call`` hook — CrewAI's own
extension point, which every agent, crew and flow runs before each tool call (``kickoff``,
``kickoff_async``, ``kickoff_for_each`` and its async form, native function calling and the
ReAct text loop alike). A denied call returns ``False`` from the hook, so CrewAI does not run the
tool; an ``after_tool_call`` hook then replaces CrewAI's generic "blocked by hook" text with
Warden's reason, which the model reads as the tool's result.

The hooks are process-wide, like CrewAI's own: ``install`` returns a handle whose ``uninstall()``
removes them (it is also a context manager).
"""

from __future__ import annotations

import contextvars
from typing import Any

from crewai.hooks.tool_hooks import (
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["Installed", "install"]

# The last refusal in this context: (the call's tool_input object, the text for the model).
_refused: contextvars.ContextVar[tuple[Any, str] | None] = contextvars.ContextVar(
    "warden_crewai_refused", default=None)


class Installed:
    """The registered hooks; ``uninstall()`` removes them."""

    def __init__(self, before: Any, after: Any) -> None:
        self.before, self.after = before, after

    def uninstall(self) -> None:
        unregister_before_tool_call_hook(self.before)
        unregister_after_tool_call_hook(self.after)

    def __enter__(self) -> "Installed":
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def install(warden: Warden, *, agent: str | None = None, action: ActionName = None,
            context: dict[str, Any] | None = None) -> Installed:
    """Govern every CrewAI tool call in this process with ``warden``."""
    guard = Guard(warden, framework="crewai", agent=agent, action=action, context=context)

    def warden_before_tool_call(ctx: Any) -> bool | None:
        try:
            role = getattr(getattr(ctx, "agent", None), "role", None)
            extra: dict[str, Any] = {}
            crew = getattr(ctx, "crew", None)
            if crew is not None and getattr(crew, "id", None) is not None:
                extra["session"] = str(crew.id)
            task = getattr(ctx, "task", None)
            if task is not None and getattr(task, "id", None) is not None:
                extra["task"] = str(task.id)
            decision = guard.decide(ctx.tool_name, ctx.tool_input, agent=role, context=extra)
            if decision.allowed:
                return None
            _refused.set((ctx.tool_input, message(ctx.tool_name, decision)))
            return False
        except Exception:  # a hook error must never let the call through
            return False

    def warden_after_tool_call(ctx: Any) -> str | None:
        refused = _refused.get()
        if refused is not None and refused[0] is ctx.tool_input:
            _refused.set(None)
            return refused[1]
        return None

    register_before_tool_call_hook(warden_before_tool_call)
    register_after_tool_call_hook(warden_after_tool_call)
    return Installed(warden_before_tool_call, warden_after_tool_call)
