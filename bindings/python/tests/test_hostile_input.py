"""The attacker's inputs: what an agent (or a framework passing along what an agent sent) can put
in an action. None of it may crash or hang the interpreter, and none of it may be allowed by a
guess: every one is a deny whose reason names the problem, recorded in the audit log."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

import warden

ALLOW_ALL = "rules:\n  - action: '*'\n    allow: true\n"


@pytest.fixture
def w(tmp_path: Path):
    p = tmp_path / "open.yaml"
    p.write_text(ALLOW_ALL)  # everything well-formed is allowed: only the input can deny
    g = warden.Warden(policy=p, db=tmp_path / "audit.db")
    yield g
    g.close()


def denied(w: warden.Warden, match: str, **kw) -> warden.Decision:
    d = w.decide("tool_call", **kw)
    assert d.verdict == "deny", d
    assert match in d.reason, d.reason
    return d


def test_well_formed_input_is_allowed(w) -> None:
    d = w.decide("tool_call", args={"a": [1, 2.5, True, None, "x", {"b": (1, 2)}], "n": -(2**63)},
                 context={"session": "s"})
    assert d.allowed and d.audit_seq == 1
    assert w.decide("tool_call", args={"big": 2**64 - 1}).allowed


def test_self_referencing_dict_and_list(w) -> None:
    d: dict = {}
    d["me"] = d
    denied(w, "nested deeper than 64", args=d)
    lst: list = []
    lst.append(lst)
    denied(w, "nested deeper than 64", args={"l": lst})
    ctx: dict = {"x": {}}
    ctx["x"]["y"] = ctx
    denied(w, "context", context=ctx)


def test_deep_but_acyclic_nesting(w) -> None:
    deep: dict = {}
    cur = deep
    for _ in range(100_000):  # far past Python's recursion limit: we stop at 64
        cur["d"] = {}
        cur = cur["d"]
    denied(w, "nested deeper than 64", args=deep)
    ok: dict = {}
    cur = ok
    for _ in range(10):
        cur["d"] = {}
        cur = cur["d"]
    assert w.decide("tool_call", args=ok).allowed
    # Deeper than self-protection reads paths (16) but within the conversion bound (64): the
    # engine's own deny, not a crash.
    cur = ok
    for _ in range(40):
        cur["d"] = {}
        cur = cur["d"]
    assert w.decide("tool_call", args=ok).rule == "self-protection"


def test_huge_inputs_are_bounded(w) -> None:
    denied(w, f"more than {warden.MAX_VALUES} values", args={"xs": list(range(5_000_000))})
    denied(w, f"more than {warden.MAX_VALUES} values",
           args={str(i): i for i in range(warden.MAX_VALUES + 5)})
    denied(w, f"more than {warden.MAX_TEXT_BYTES} bytes", args={"s": "x" * (warden.MAX_TEXT_BYTES + 1)})
    denied(w, "bytes of text", args={"a": "x" * (warden.MAX_TEXT_BYTES // 2),
                                     "b": "y" * (warden.MAX_TEXT_BYTES // 2 + 1)})


@pytest.mark.parametrize("value, match", [
    ({1, 2}, "a set has no JSON form"),
    (frozenset(), "a frozenset has no JSON form"),
    (b"bytes", "a bytes has no JSON form"),
    (float("nan"), "NaN has no JSON form"),
    (math.inf, "inf has no JSON form"),
    (2**64, "outside the 64-bit range"),
    (-(2**63) - 1, "outside the 64-bit range"),
    (1 + 2j, "a complex has no JSON form"),
    (object(), "object of type object"),
    ("\ud800", "not valid Unicode"),
])
def test_values_without_a_json_form(w, value, match) -> None:
    denied(w, match, args={"v": value})


def test_keys_of_the_other_type(w) -> None:
    denied(w, "a key that is an int", args={1: "one"})
    denied(w, "a key that is an object of type NoneType", args={None: 1})
    denied(w, "a key that is a tuple", args={(1, 2): 1})
    # "1" and 1 must not collide into one JSON key.
    denied(w, "a key that is an int", args={"1": "a", 1: "b"})


def test_args_of_the_other_json_type(w) -> None:
    denied(w, "args must be a dict", args=["not", "an", "object"])
    denied(w, "args must be a dict", args="rm -rf /")
    denied(w, "context must be a dict", context=42)


class EvilDict(dict):
    def __iter__(self):
        raise RuntimeError("iterated!")

    def items(self):
        raise RuntimeError("items!")

    def keys(self):
        raise RuntimeError("keys!")


class EvilList(list):
    def __iter__(self):
        return iter(["a", "b", "c"])  # lies about its contents

    def __len__(self):
        raise RuntimeError("len!")


class EvilStr(str):
    def __str__(self):
        return "innocent"


def test_subclasses_are_read_for_what_they_hold(w) -> None:
    """No Python code of the agent's objects runs while converting: a dict or list subclass is
    read through the C API, so it cannot lie about its contents or run side effects."""
    d = w.decide("tool_call", args=EvilDict(path="/etc/shadow", items=EvilList(["x"])))
    assert d.allowed
    rec = w.audit_query()[-1]
    assert rec["args"] == {"path": "/etc/shadow", "items": ["x"]}
    assert w.decide("tool_call", args={"s": EvilStr("rm -rf /")}).allowed
    assert w.audit_query()[-1]["args"] == {"s": "rm -rf /"}


def test_bad_input_denies_are_recorded(w) -> None:
    d = w.decide("tool_call", agent="mallory", tool="shell", args={"x": {1, 2}})
    assert d.denied and d.audit_seq is not None
    rec = w.audit_query(agent="mallory")[-1]
    assert rec["verdict"] == "deny" and rec["tool"] == "shell" and "set" in rec["reason"]
    assert w.audit_verify().intact


def test_action_fields_of_the_wrong_type_raise(w) -> None:
    with pytest.raises(TypeError):
        w.decide(42)
    with pytest.raises(TypeError):
        w.decide("x", agent=7)
    with pytest.raises(TypeError):
        w.decide(warden.Action("x"), args={"a": 1})
    assert w.decide("   ").denied  # a blank name is the engine's deny
    # A name with a hidden character prints like another and would slip past a kill switch
    # or a rule written for that name: denied (and recorded as sent), whatever the policy.
    d = w.decide("tool_call\0hidden")
    assert d.denied and "U+0000" in d.reason
    assert w.audit_query()[-1]["action"] == "tool_call\0hidden"


def test_check_raises_denied_for_bad_input(w) -> None:
    with pytest.raises(warden.Denied, match="set has no JSON form"):
        w.check("tool_call", args={"s": {1}})


def test_prepared_action_snapshot(w) -> None:
    args = {"path": "/tmp/ok"}
    a = warden.Action("tool_call", args=args)
    args["path"] = "/etc/shadow"
    assert w.decide(a).allowed
    assert w.audit_query()[-1]["args"] == {"path": "/tmp/ok"}
    bad = warden.Action("tool_call", args={"s": {1}})
    assert bad.error and "set" in bad.error and w.decide(bad).denied


def test_many_threads_at_once(w) -> None:
    errors: list[BaseException] = []
    verdicts: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            d = w.decide("tool_call", args={"i": i} if i % 2 else {"i": {i}})
            with lock:
                verdicts.append(d.verdict)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and sorted(verdicts) == ["allow"] * 32 + ["deny"] * 32
    assert len(w.audit_query()) == 64 and w.audit_verify().intact


async def test_a_deny_inside_async_and_gather(w) -> None:
    import asyncio
    ds = await asyncio.gather(
        w.adecide("tool_call", args={"ok": 1}),
        w.adecide("tool_call", args={"bad": {1}}),
        w.acheck("tool_call", args={"bad": b"x"}),
        return_exceptions=True,
    )
    assert ds[0].allowed and ds[1].denied and isinstance(ds[2], warden.Denied)


def test_a_warden_used_across_fork_denies_instead_of_hanging(tmp_path: Path) -> None:
    """A forked child inherits the Warden but not its audit writer thread: an append there would
    wait forever. The child gets a deny that says what to do; a new Warden in the child works; the
    parent is unaffected."""
    import os
    import subprocess
    import sys

    code = f"""
import os, sys, warden
w = warden.Warden(policy={str(tmp_path / 'open.yaml')!r}, db={str(tmp_path / 'audit.db')!r})
assert w.decide("tool_call").allowed
pid = os.fork()
if pid == 0:
    d = w.decide("tool_call")
    fresh = warden.Warden(policy={str(tmp_path / 'open.yaml')!r}, db={str(tmp_path / 'child.db')!r})
    import asyncio
    a = asyncio.run(fresh.adecide("tool_call"))
    print(d.verdict, "|", d.reason, "|", a.verdict, flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
assert w.decide("tool_call").audit_seq == 2
"""
    (tmp_path / "open.yaml").write_text(ALLOW_ALL)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    verdict, reason, fresh = [p.strip() for p in out.stdout.split("|")]
    assert verdict == "deny" and "before the process forked" in reason and fresh == "allow"
    assert os.path.exists(tmp_path / "child.db")
