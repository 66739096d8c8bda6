"""The examples in docs/python.md run as written and print what the doc says they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, framework

DOC = REPO / "docs" / "python.md"


def example(heading: str) -> tuple[str, str]:
    """The first ```python block after `heading`, and the ```text block after it."""
    text = DOC.read_text()
    rest = text[text.index(heading):]
    code = re.search(r"```python\n(.*?)```", rest, re.S)
    shown = re.search(r"```text\n(.*?)```", rest[code.end():], re.S)
    return code.group(1), shown.group(1)


@pytest.mark.parametrize("heading, module", [
    ("### LangChain example", "langchain_core"),
    ("### OpenAI Agents SDK", "agents"),
])
def test_doc_example_runs_as_written(tmp_path: Path, heading: str, module: str) -> None:
    framework(module)
    code, expected = example(heading)
    (tmp_path / "examples").symlink_to(REPO / "examples")  # "from the repository root"
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected, out.stdout
    assert "this never runs" not in out.stdout


def test_the_issue_one_liner() -> None:
    out = subprocess.run([sys.executable, "-c", "import warden; print(warden.Warden("
                          "policy=['examples/brief.yaml']).decide('execute_code'))"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('Decision(verdict="deny"'), out.stdout
    shown = re.search(r"# (Decision\(.*\))", DOC.read_text()).group(1)
    assert out.stdout.strip() == shown
