"""The exceptions the package raises. Defined in Python (the native module raises them) so they
have ordinary constructors and can be caught, subclassed and pickled like any other."""

from __future__ import annotations

from typing import Any


class WardenError(Exception):
    """Base of every exception Warden raises."""


class PolicyError(WardenError, ValueError):
    """The policies did not load. ``str(e)`` has one line per problem, ``file:line:col: message``
    (the lines ``warden policy validate`` prints); ``e.problems`` has them as dicts with
    ``file``, ``line``, ``column`` (None for a problem about a whole file), ``message`` and
    ``hint``."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[dict[str, Any]] = list(problems or [])

    def __reduce__(self):  # keep the problems across pickling (multiprocessing)
        return (type(self), (str(self), self.problems))


class AuditError(WardenError):
    """The audit log could not be opened, written or read. Nothing was decided without it."""


class Blocked(WardenError):
    """Base of :class:`Denied` and :class:`ApprovalRequired`: the action must not run now.
    ``e.decision`` is the :class:`warden.Decision`; ``e.reason`` its reason."""

    def __init__(self, decision: Any) -> None:
        super().__init__(f"{decision.verdict}: {decision.reason}")
        self.decision = decision
        self.reason: str = decision.reason

    def __reduce__(self):
        return (_Rebuilt, (type(self), str(self), self.reason))


class Denied(Blocked):
    """The action was denied."""


class ApprovalRequired(Blocked):
    """A person must approve the action first (approvals are not built yet: treat as deny)."""


def _Rebuilt(cls: type, message: str, reason: str) -> Blocked:
    # A decision does not cross process boundaries; its reason does.
    e = Exception.__new__(cls)
    Exception.__init__(e, message)
    e.decision = None
    e.reason = reason
    return e
