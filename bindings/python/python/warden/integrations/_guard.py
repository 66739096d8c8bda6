"""What every adapter shares: turning one tool call into a Warden ``Action``, deciding it (sync or
async), and the text a model gets back when a call is refused.

An adapter only knows where its framework's tool calls pass; everything about *deciding* is here,
so the nine adapters cannot drift apart. Deciding fails closed: any exception while building or
judging the action (a hostile object in the arguments, a closed Warden) is a deny whose reason
names it — the tool body never runs on an error.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping

from .. import Action, Decision, Warden

log = logging.getLogger("warden.integrations")

#: How an adapter names a call's action: a fixed name, or ``f(tool_name, args) -> name``.
ActionName = str | Callable[[str, Mapping[str, Any]], str] | None


class _Refusal:
    """A deny made without Warden's engine (an exception before the decision). Has the parts of a
    Decision that adapters read."""

    verdict = "deny"
    allowed = False
    rule = None
    audit_seq = None

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Refusal(reason={self.reason!r})"


class Guard:
    """Decides tool calls for one adapter.

    ``agent`` names the agent when the framework does not (a framework's own agent name wins
    unless ``agent`` is given). ``action`` names the action: by default the tool's name, so a
    policy rule ``action: execute_code`` governs a tool called ``execute_code``; give a string
    (e.g. ``"tool_call"``, then match on ``tool:``) or a function of (tool, args). ``context``
    is added to every action's context (the framework's run/session ids are added too).
    """

    def __init__(
        self,
        warden: Warden,
        *,
        framework: str,
        agent: str | None = None,
        action: ActionName = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(warden, Warden):
            raise TypeError(f"expected a warden.Warden, not {type(warden).__name__}")
        self.warden = warden
        self.framework = framework
        self.agent = agent
        self.action = action
        self.context = dict(context or {})

    def _build(self, tool: str, args: Any, agent: str | None, context: Mapping[str, Any] | None) -> Action:
        args = plain_args(args)
        if callable(self.action):
            name = self.action(tool, args)
        else:
            name = self.action or tool
        ctx: dict[str, Any] = {"framework": self.framework}
        ctx.update(self.context)
        if context:
            ctx.update({k: v for k, v in context.items() if v is not None})
        return Action(name, agent=self.agent or agent, tool=tool, args=args, context=ctx)

    def decide(self, tool: str, args: Any, *, agent: str | None = None,
               context: Mapping[str, Any] | None = None) -> Decision | _Refusal:
        """The decision on one call; never raises."""
        try:
            return self.warden.decide(self._build(tool, args, agent, context))
        except Exception as e:  # fail closed: the tool never runs on an error
            log.warning("warden: deciding %s failed: %r", tool, e)
            return _Refusal(f"denied: the call could not be judged ({type(e).__name__}: {e})")

    async def adecide(self, tool: str, args: Any, *, agent: str | None = None,
                      context: Mapping[str, Any] | None = None) -> Decision | _Refusal:
        """``decide`` for async paths: never blocks the event loop, never raises."""
        try:
            return await self.warden.adecide(self._build(tool, args, agent, context))
        except Exception as e:
            log.warning("warden: deciding %s failed: %r", tool, e)
            return _Refusal(f"denied: the call could not be judged ({type(e).__name__}: {e})")


def message(tool: str, decision: Decision | _Refusal) -> str:
    """What the model reads instead of the tool's result."""
    if decision.verdict == "require_approval":
        return f"Warden: the call to `{tool}` needs a person's approval and was not run: {decision.reason}"
    return f"Warden blocked the call to `{tool}`; it was not run: {decision.reason}"


def plain_args(args: Any) -> Any:
    """Tool arguments as plain data: pydantic models and dataclasses become dicts; anything else
    is left for Warden to refuse (its reason names what could not be read)."""
    if args is None:
        return {}
    if hasattr(args, "model_dump") and callable(args.model_dump):
        return args.model_dump(mode="json")
    if dataclasses.is_dataclass(args) and not isinstance(args, type):
        return dataclasses.asdict(args)
    if isinstance(args, Mapping) and not isinstance(args, dict):
        args = dict(args)
    if isinstance(args, dict):
        out = {}
        for k, v in args.items():
            if hasattr(v, "model_dump") and callable(v.model_dump):
                v = v.model_dump(mode="json")
            out[k] = v
        return out
    return args
