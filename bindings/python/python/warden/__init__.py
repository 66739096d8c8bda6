"""Warden from Python: allow, deny or require approval for every action an AI agent takes.

    import warden
    w = warden.Warden(policy=["policy.yaml"], db="warden.db")
    d = w.decide("execute_code", agent="coder", args={"code": "print(1)"})
    d.verdict, d.reason, d.allowed

The decision is made by the same Rust engine, builder and audit log as the ``warden`` CLI; the GIL
is released while it runs. ``w.check(...)`` raises :class:`Denied` or :class:`ApprovalRequired`
unless the action is allowed; ``await w.adecide(...)`` never blocks the event loop. Adapters for
agent frameworks live in ``warden.integrations.<framework>``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Mapping

from . import _native
from ._errors import (
    ApprovalRequired,
    AuditError,
    Blocked,
    Denied,
    PolicyError,
    WardenError,
)
from ._native import Action, Decision, Explanation, Finding, VerifyResult, scan_text

__all__ = [
    "Action",
    "ApprovalRequired",
    "AuditError",
    "Blocked",
    "Decision",
    "Denied",
    "Explanation",
    "Finding",
    "PolicyError",
    "VerifyResult",
    "Warden",
    "WardenError",
    "query_audit",
    "scan_text",
    "verify_audit",
]

__version__: str = _native.__version__

#: Bounds on one action's ``args`` plus ``context`` (beyond them the action is denied).
MAX_DEPTH: int = _native.MAX_DEPTH
MAX_VALUES: int = _native.MAX_VALUES
MAX_TEXT_BYTES: int = _native.MAX_TEXT_BYTES

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Warden's own small pool for decisions that wait on I/O: the loop's default executor may be
    busy with a framework's blocking tools, and a decision must not queue behind them."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=min(8, (os.cpu_count() or 1) + 2),
                    thread_name_prefix="warden-decide",
                )
    return _pool


# A Warden built before a fork belongs to the parent: its audit writer thread does not exist in
# the child, where an append would wait forever. Every live Warden is told, in the child, to
# deny from then on (with a reason that says to build a new one); Warden's thread pool is
# started afresh.
_live: "weakref.WeakSet[Warden]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _pool
    _pool = None
    for w in list(_live):
        w._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def query_audit(
    db: str | os.PathLike[str],
    *,
    agent: str | None = None,
    action: str | None = None,
    tool: str | None = None,
    rule: str | None = None,
    verdict: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Records of the audit log at ``db`` matching every filter given, oldest first. ``agent``,
    ``action``, ``tool`` and ``rule`` take ``*``/``?`` patterns; ``since``/``until`` an aware
    ``datetime`` or RFC 3339 text; ``limit`` keeps the last N."""
    return _native.query_audit(
        db, agent=agent, action=action, tool=tool, rule=rule, verdict=verdict,
        since=since, until=until, limit=limit,
    )


def verify_audit(db: str | os.PathLike[str], *, key: str | None = None) -> VerifyResult:
    """Check the audit log's hash chain and signed checkpoints; ``key`` pins the signer's public
    key (64 hex digits or a ``.pub`` file)."""
    return _native.verify_audit(db, key=key)


class Warden(_native.Warden):
    """The gate: ``Warden(policy, *, db=None, audit_mode="durable", signing_key=None,
    allow_tampered_log=False, protect=None)``.

    ``policy`` is a policy file or directory, or a list of them (combined, deny overriding).
    ``db`` records every decision in a hash-chained SQLite audit log (created if missing);
    ``audit_mode="buffered"`` returns before the record is committed (within 10 ms).
    ``signing_key`` signs its checkpoints (default ``<db>.key``). ``protect`` adds files no
    action may change (the policies, the log and its key are always protected). Policy problems
    raise :class:`PolicyError`; audit log problems :class:`AuditError`.

    Decisions: ``decide`` (returns a :class:`Decision`, never raises for what the agent sent),
    ``check`` (raises :class:`Denied`/:class:`ApprovalRequired`), ``explain``, and the async
    ``adecide``/``acheck``. Use as a context manager, or call ``close()``, to commit a buffered
    log deterministically.
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # built by the native __new__
        _live.add(self)

    def adecide(
        self,
        action: str | Action,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> Awaitable[Decision]:
        """``decide`` for async code: ``await w.adecide(...)``. A decision that may wait on I/O (its
        audit record, the file system) runs on a worker thread; the rest (about a microsecond) run
        inline. The arguments are read when ``adecide`` is called, not when the result is awaited,
        so changing them in between changes nothing."""
        return self._adecide(self._action(action, agent, tool, args, context, resource))

    def acheck(
        self,
        action: str | Action,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> Awaitable[Decision]:
        """``check`` for async code (see ``adecide``): raises :class:`Denied` or
        :class:`ApprovalRequired` unless allowed."""
        return self._acheck(self._action(action, agent, tool, args, context, resource))

    @staticmethod
    def _action(action: Any, agent: Any, tool: Any, args: Any, context: Any,
                resource: Any) -> Action:
        if isinstance(action, Action):
            if any(x is not None for x in (agent, tool, args, context, resource)):
                raise TypeError("give either an Action or an action name with keywords, not both")
            return action
        return Action(action, agent=agent, tool=tool, args=args, context=context, resource=resource)

    async def _adecide(self, action: Action) -> Decision:
        if not self._may_wait(action):
            return self.decide(action)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_executor(), self.decide, action)

    async def _acheck(self, action: Action) -> Decision:
        d = await self._adecide(action)
        if d.verdict == "deny":
            raise Denied(d)
        if d.verdict == "require_approval":
            raise ApprovalRequired(d)
        return d

    def audit_query(self, **filters: Any) -> list[dict[str, Any]]:
        """``query_audit`` on this Warden's log (after committing what is queued)."""
        if self.db is None:
            raise WardenError("this Warden has no audit log (give db=)")
        self.flush()
        return query_audit(self.db, **filters)

    def audit_verify(self, *, key: str | None = None) -> VerifyResult:
        """``verify_audit`` on this Warden's log (after committing what is queued)."""
        if self.db is None:
            raise WardenError("this Warden has no audit log (give db=)")
        self.flush()
        return verify_audit(self.db, key=key)

    def __enter__(self) -> "Warden":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
