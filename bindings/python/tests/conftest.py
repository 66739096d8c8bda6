"""Shared fixtures: a policy that allows one tool and denies another, a Warden with an audit log,
and tools whose only effect is a marker file on disk — so a test can prove a body ran or did not."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

import warden

REPO = Path(__file__).resolve().parents[3]
BRIEF = REPO / "examples" / "brief.yaml"

# Both tools take a path argument; the policy decides on the tool (= action) name.
POLICY = """\
name: adapters
rules:
  - id: allow-read
    action: read_notes
    allow: true
  - id: no-delete
    action: delete_notes
    allow: false
    reason: deleting notes is not allowed for agents
"""


def framework(module: str):
    """Import a framework, or skip — unless WARDEN_REQUIRE_FRAMEWORKS=1 (CI), where a missing
    framework is a failure: a test that silently does not run proves nothing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("WARDEN_REQUIRE_FRAMEWORKS") == "1":
            raise
        pytest.skip(f"{module} not installed: {e}")


class Effects:
    """Tool bodies that leave a file behind when (and only when) they run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_notes(self, topic: str) -> str:
        (self.root / f"read_notes-{topic}").write_text("ran")
        return f"notes about {topic}"

    def delete_notes(self, topic: str) -> str:
        (self.root / f"delete_notes-{topic}").write_text("ran")
        return f"deleted notes about {topic}"

    def ran(self, tool: str, topic: str = "x") -> bool:
        return (self.root / f"{tool}-{topic}").exists()

    def runs(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


@pytest.fixture
def effects(tmp_path: Path) -> Effects:
    d = tmp_path / "effects"
    d.mkdir()
    return Effects(d)


@pytest.fixture
def gate(tmp_path: Path, policy_file: Path):
    w = warden.Warden(policy=[policy_file], db=tmp_path / "audit.db")
    yield w
    w.close()


def assert_audited(w: warden.Warden, *, allowed: list[str], denied: list[str],
                   framework: str | None = None) -> list[dict]:
    """Every named tool's decision is in the log with the right verdict (and the log verifies)."""
    records = w.audit_query()
    by_tool: dict[str, set[str]] = {}
    for r in records:
        by_tool.setdefault(r.get("tool"), set()).add(r["verdict"])
        if framework is not None:
            assert (r.get("context") or {}).get("framework") == framework, r
    for t in allowed:
        assert by_tool.get(t) == {"allow"}, (t, records)
    for t in denied:
        assert by_tool.get(t) == {"deny"}, (t, records)
        rec = next(r for r in records if r.get("tool") == t)
        assert rec["rule"] == "no-delete", rec
    assert w.audit_verify().intact
    return records
