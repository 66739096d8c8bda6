"""Microsoft Agent Framework (``agent-framework-core``): function middleware.

``WardenMiddleware(warden)`` is a ``FunctionMiddleware``: the framework runs every function
(tool) invocation of an agent through its function middleware pipeline — ``agent.run``, streaming
runs, parallel calls, each iteration of the function-calling loop. On deny the middleware sets
the result to the reason and does not call ``call_next``, so the function never runs and the
model reads the reason as its result. Add it before other middleware that should only see allowed
calls, after any that repairs arguments.

    agent = Agent(client=client, tools=[...], middleware=[WardenMiddleware(warden)])
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from agent_framework import FunctionInvocationContext, FunctionMiddleware

from .. import Warden
from ._guard import ActionName, Guard, message

__all__ = ["WardenMiddleware"]


class WardenMiddleware(FunctionMiddleware):
    """Decides each function invocation before it runs."""

    def __init__(self, warden: Warden, *, agent: str | None = None, action: ActionName = None,
                 context: dict[str, Any] | None = None) -> None:
        self.guard = Guard(warden, framework="agent_framework", agent=agent, action=action,
                           context=context)

    async def process(self, context: FunctionInvocationContext,
                      call_next: Callable[[], Awaitable[None]]) -> None:
        name = getattr(context.function, "name", None) or "function"
        args = context.arguments
        if hasattr(args, "model_dump"):
            args = args.model_dump(mode="json")
        extra: dict[str, Any] = {}
        session = getattr(context, "session", None)
        sid = getattr(session, "session_id", None) or getattr(session, "id", None)
        if sid:
            extra["session"] = str(sid)
        decision = await self.guard.adecide(name, args, context=extra)
        if not decision.allowed:
            context.result = message(name, decision)
            return
        await call_next()
