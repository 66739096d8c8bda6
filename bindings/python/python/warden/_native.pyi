"""Type stubs for the native half of the ``warden`` package (built from bindings/python/src)."""

import os
from datetime import datetime
from typing import Any, Literal, Mapping, Sequence, final

_Path = str | os.PathLike[str]
Verdict = Literal["allow", "deny", "require_approval"]

__version__: str
MAX_DEPTH: int
MAX_VALUES: int
MAX_TEXT_BYTES: int

@final
class Action:
    """One action to judge, converted from Python once. Arguments without a JSON form (or past
    the bounds) do not raise: the action is then judged a deny naming the problem."""

    def __init__(
        self,
        action: str,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> None: ...
    @property
    def action(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def tool(self) -> str | None: ...
    @property
    def error(self) -> str | None:
        """Why ``args``/``context`` could not be read (the action is then denied), or None."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Decision:
    """The answer to one action."""

    @property
    def verdict(self) -> Verdict: ...
    @property
    def allowed(self) -> bool:
        """True only for an allow."""
    @property
    def denied(self) -> bool: ...
    @property
    def requires_approval(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def policy(self) -> str | None: ...
    @property
    def obligations(self) -> tuple[str, ...]: ...
    @property
    def policy_version(self) -> int: ...
    @property
    def audit_seq(self) -> int | None: ...
    @property
    def approval_id(self) -> str | None: ...
    @property
    def elapsed_ns(self) -> int: ...
    @property
    def is_default(self) -> bool:
        """True when no rule applied and a document's default decided."""
    def to_dict(self) -> dict[str, Any]: ...
    def __bool__(self) -> bool:
        """Raises TypeError: use ``.allowed``."""

@final
class Explanation:
    @property
    def decision(self) -> Decision: ...
    @property
    def rules(self) -> list[dict[str, Any]]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class VerifyResult:
    @property
    def intact(self) -> bool: ...
    @property
    def status(self) -> Literal["intact", "tampered"]: ...
    @property
    def summary(self) -> dict[str, Any] | None: ...
    @property
    def tampering(self) -> dict[str, Any] | None: ...
    @property
    def exit_code(self) -> int: ...

@final
class Finding:
    id: str
    category: str
    severity: Literal["info", "low", "medium", "high", "critical"]
    start: int
    end: int
    excerpt: str
    why: str

class Warden:
    def __new__(
        cls,
        policy: _Path | Sequence[_Path],
        *,
        db: _Path | None = None,
        audit_mode: Literal["durable", "buffered"] = "durable",
        signing_key: _Path | None = None,
        allow_tampered_log: bool = False,
        protect: Sequence[_Path] | None = None,
    ) -> Warden: ...
    def decide(
        self,
        action: str | Action,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> Decision: ...
    def check(
        self,
        action: str | Action,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> Decision: ...
    def explain(
        self,
        action: str | Action,
        *,
        agent: str | None = None,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        resource: str | None = None,
    ) -> Explanation: ...
    def _may_wait(self, action: Action) -> bool: ...
    def _after_fork(self) -> None: ...
    def reload(self) -> int: ...
    @property
    def policy_version(self) -> int: ...
    @property
    def db(self) -> str | None: ...
    @property
    def policy_paths(self) -> list[str]: ...
    @property
    def closed(self) -> bool: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

def query_audit(
    db: _Path,
    *,
    agent: str | None = None,
    action: str | None = None,
    tool: str | None = None,
    rule: str | None = None,
    verdict: Verdict | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]: ...
def verify_audit(db: _Path, *, key: str | None = None) -> VerifyResult: ...
def scan_text(text: str) -> list[Finding]: ...
