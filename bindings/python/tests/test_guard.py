"""The adapters' shared Guard, without any framework: how a tool call becomes an action, and that
every failure on the way is a deny (a hook that raised would, in several frameworks, let the call
through)."""

from __future__ import annotations

import asyncio

import pytest

import warden
from warden.integrations._guard import Guard, message, plain_args


class Exploding:
    def model_dump(self, **kw):
        raise RuntimeError("boom")


def test_action_is_named_after_the_tool_by_default(gate) -> None:
    g = Guard(gate, framework="test", agent="a1", context={"env": "ci"})
    d = g.decide("delete_notes", {"topic": "x"}, agent="ignored", context={"session": "s"})
    assert d.denied and d.rule == "no-delete"
    rec = gate.audit_query()[-1]
    assert (rec["action"], rec["tool"], rec["agent"]) == ("delete_notes", "delete_notes", "a1")
    assert rec["context"] == {"framework": "test", "env": "ci", "session": "s"}


def test_action_name_can_be_fixed_or_computed(gate) -> None:
    assert Guard(gate, framework="t", action="read_notes").decide("anything", {}).allowed
    g = Guard(gate, framework="t", action=lambda tool, args: f"{tool}_notes")
    assert g.decide("read", {}).allowed and g.decide("delete", {}).denied


def test_failures_while_deciding_are_denies(gate) -> None:
    g = Guard(gate, framework="t")
    d = g.decide("read_notes", {"x": Exploding()})
    assert d.verdict == "deny" and "boom" in d.reason and not d.allowed
    d = asyncio.run(g.adecide("read_notes", {"x": Exploding()}))
    assert d.verdict == "deny" and "boom" in d.reason
    bad_name = Guard(gate, framework="t", action=lambda tool, args: 1 / 0)
    assert "ZeroDivisionError" in bad_name.decide("read_notes", {}).reason
    # Arguments that are not a dict at all: Warden's own deny, recorded.
    d = g.decide("read_notes", ["not", "a", "dict"])
    assert d.denied and "args must be a dict" in d.reason
    assert gate.audit_query()[-1]["verdict"] == "deny"


def test_a_closed_warden_denies(tmp_path, policy_file) -> None:
    w = warden.Warden(policy=policy_file)
    g = Guard(w, framework="t")
    w.close()
    assert g.decide("read_notes", {}).denied


def test_plain_args_and_messages() -> None:
    pydantic = pytest.importorskip("pydantic")

    class M(pydantic.BaseModel):
        n: int

    assert plain_args(M(n=1)) == {"n": 1}
    assert plain_args({"m": M(n=2)}) == {"m": {"n": 2}}
    assert plain_args(None) == {}

    class D:
        verdict, reason = "deny", "because"

    assert "was not run: because" in message("t", D())
    with pytest.raises(TypeError):
        Guard(object(), framework="t")
