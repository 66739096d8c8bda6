"""Fixtures for the dashboard's browser tests: a real `warden serve` on loopback and Debian's
Chromium driven by Playwright (no browser download: `executable_path` points at the system
binary). Screenshots go to target/dashboard-screenshots/ (git-ignored)."""

import os
import pathlib
import subprocess
import tempfile

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
WARDEN = os.environ.get("WARDEN_BIN", str(ROOT / "target" / "debug" / "warden"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "target" / "dashboard-screenshots"

POLICY = """rules:
  - action: payments.send
    effect: require_approval
    reason: payments need a person
  - action: "*"
    allow: true
rings:
  default: supervisor
  agents: {"sandboxed-*": untrusted}
"""

# Without the background-networking flags Chromium keeps calling home, which floods a
# closed network with failing requests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Warden:
    """A running `warden serve` and the files it uses."""

    def __init__(self, dir):
        self.dir = pathlib.Path(dir)
        (self.dir / "p.yaml").write_text(POLICY)
        (self.dir / "op.token").write_text("operator-secret\n")
        (self.dir / "dec.token").write_text("decision-secret\n")
        self.proc = subprocess.Popen(
            [WARDEN, "serve", "--listen", "127.0.0.1:0", "-p", "p.yaml", "--db", "w.db",
             "--operator-token-file", "op.token", "--token-file", "dec.token"],
            cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line + self.proc.stderr.read()
        self.url = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def warden():
    with tempfile.TemporaryDirectory() as d:
        w = Warden(d)
        yield w
        w.stop()


@pytest.fixture(scope="session")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # Playwright starts every launch with a fresh, temporary user-data directory.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
