"""The dashboard end to end in headless Chromium against a real `warden serve` on loopback:
log in, watch a decision arrive live, approve a pending request by clicking while a real
`warden check --wait` process waits on the same database, set and lift a kill switch, verify
the audit chain — and the attacker's side: a wrong token, a request without the CSRF header,
and a cross-site page posting to the approve endpoint."""

import http.server
import json
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from conftest import ROOT, WARDEN, shot


def decide(warden, agent, action, **args):
    body = json.dumps({"agent": agent, "action": action, "args": args}).encode()
    req = urllib.request.Request(
        warden.url + "/v1/decide", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer decision-secret"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def approval(warden, id):
    req = urllib.request.Request(
        f"{warden.url}/v1/approvals/{id}", headers={"Authorization": "Bearer decision-secret"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def login(page, warden, token="operator-secret"):
    page.goto(warden.url + "/")
    page.fill("#token", token)
    page.click("#login-form button")


def logged_in(page, warden):
    login(page, warden)
    expect(page.locator("#tabs")).to_be_visible()
    expect(page.locator("#stream-state")).to_have_text("live")


def test_a_wrong_token_cannot_log_in(page, warden):
    page.goto(warden.url + "/")
    shot(page, "login")
    for wrong in ["decision-secret", "operator-secre"]:
        login(page, warden, wrong)
        expect(page.locator("#login-error")).to_contain_text("wrong operator token")
        expect(page.locator("#tabs")).to_be_hidden()
    cookies = page.context.cookies()
    assert not [c for c in cookies if c["name"] == "warden_session"], cookies


def test_the_session_cookie_is_http_only_and_strict(page, warden):
    logged_in(page, warden)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "warden_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    # Page scripts cannot read it.
    assert "warden_session" not in page.evaluate("document.cookie")


def test_a_decision_appears_live(page, warden):
    logged_in(page, warden)
    decide(warden, "live-bot", "files.read", path="/tmp/x")
    row = page.locator("#decision-rows tr", has_text="live-bot")
    expect(row).to_contain_text("files.read")
    expect(row).to_contain_text("allow")
    decide(warden, "live-bot", "payments.send", amount=3)
    asked = page.locator("#decision-rows tr", has_text="payments.send")
    expect(asked.first).to_contain_text("payments need a person")
    expect(asked.first).to_contain_text("rules[0]")
    # The verdict filter hides the others.
    page.select_option("#f-verdict", "require_approval")
    expect(page.locator("#decision-rows tr:visible", has_text="files.read")).to_have_count(0)
    page.select_option("#f-verdict", "")
    shot(page, "decisions")


def test_an_agent_name_is_text_not_markup(page, warden):
    logged_in(page, warden)
    hostile = '<img src=x onerror="window.pwned=1">'
    decide(warden, hostile, "files.read")
    expect(page.locator("#decision-rows tr", has_text=hostile)).to_be_visible()
    assert page.locator("#decision-rows img").count() == 0
    assert page.evaluate("window.pwned") is None


def test_a_click_approves_and_the_waiting_check_is_allowed(page, warden):
    logged_in(page, warden)
    check = subprocess.Popen(
        [WARDEN, "check", "-p", "p.yaml", "--db", "w.db", "-a", "payments.send",
         "--agent", "bot", "--arg", "amount=500", "--wait", "60s"],
        cwd=warden.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        page.click("nav button[data-tab=approvals]")
        row = page.locator("#approval-rows tr", has_text='"amount":500')
        expect(row).to_be_visible()
        shot(page, "approvals")
        row.locator("input.reason").fill("invoice checked")
        # Another request arrives while the reason is being typed: the list refreshes,
        # and what was typed stays.
        decide(warden, "bot", "payments.send", amount=777)
        expect(page.locator("#approval-rows tr", has_text='"amount":777')).to_be_visible()
        expect(row.locator("input.reason")).to_have_value("invoice checked")
        id = row.get_attribute("data-id")
        row.locator("button.approve").click()
        out, err = check.communicate(timeout=60)
    finally:
        if check.poll() is None:
            check.kill()
    assert check.returncode == 0, out + err
    assert "allowed once by approval" in out, out
    expect(row).to_have_count(0)
    answered = approval(warden, id)
    assert answered["decided_by"] == "dashboard" and answered["decided_reason"] == "invoice checked"


def test_a_request_without_the_csrf_token_is_refused(page, warden):
    id = decide(warden, "bot", "payments.send", amount=601)["approval_id"]
    logged_in(page, warden)
    status = page.evaluate(
        """async (id) => (await fetch(`/v1/approvals/${id}/approve`, {
               method: "POST", headers: {"Content-Type": "application/json"},
               body: JSON.stringify({reason: "no csrf"})})).status""",
        id,
    )
    assert status == 403
    # The decision token cannot answer, even from the logged-in page.
    status = page.evaluate(
        """async (id) => (await fetch(`/v1/approvals/${id}/approve`, {
               method: "POST", credentials: "omit",
               headers: {"Content-Type": "application/json", "Authorization": "Bearer decision-secret"},
               body: JSON.stringify({reason: "agent approving itself"})})).status""",
        id,
    )
    assert status == 401
    assert approval(warden, id)["status"] == "pending"


class Evil(http.server.BaseHTTPRequestHandler):
    """A page on another origin (same host, other port: the same *site*, so the browser
    does send the SameSite=Strict cookie) that posts to the dashboard's approve endpoint."""

    target = ""

    def do_GET(self):
        page = f"""<!doctype html><body>
<form id=f method=POST action="{self.target}" enctype="text/plain">
<input name='{{"reason":"forged","x":"' value='"}}'></form>
<script>
fetch("{self.target}", {{method: "POST", credentials: "include", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{reason: "forged"}})}})
  .finally(() => document.getElementById("f").submit());
</script></body>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args):
        pass


def test_a_cross_site_post_cannot_approve(page, warden):
    id = decide(warden, "bot", "payments.send", amount=602)["approval_id"]
    logged_in(page, warden)
    Evil.target = f"{warden.url}/v1/approvals/{id}/approve"
    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        refused = []
        page.on("response", lambda r: refused.append(r.status) if "/approve" in r.url else None)
        page.goto(f"http://127.0.0.1:{evil.server_port}/")
        page.wait_for_url(f"{warden.url}/v1/approvals/{id}/approve")
        body = json.loads(page.locator("body").inner_text())
        assert body["verdict"] == "deny", body
        assert refused and all(s in (403, 415) for s in refused), refused
    finally:
        evil.shutdown()
    assert approval(warden, id)["status"] == "pending"


def test_agents_kill_and_revive(page, warden):
    logged_in(page, warden)
    decide(warden, "kill-me", "files.read")
    page.click("nav button[data-tab=agents]")
    row = page.locator("#agent-rows tr", has_text="kill-me")
    expect(row).to_contain_text("supervisor")
    decide(warden, "sandboxed-1", "files.read")
    expect(page.locator("#agent-rows tr", has_text="sandboxed-1")).to_contain_text("untrusted")
    row.get_by_role("button", name="Kill").click()
    expect(page.locator("#kill-rows tr", has_text="kill-me")).to_be_visible()
    assert decide(warden, "kill-me", "files.read")["verdict"] == "deny"
    shot(page, "agents")
    page.locator("#kill-rows tr", has_text="kill-me").get_by_role("button", name="Revive").click()
    expect(page.locator("#kill-rows tr", has_text="kill-me")).to_have_count(0)
    assert decide(warden, "kill-me", "files.read")["verdict"] == "allow"


def test_mcp_findings_of_a_proxy_on_the_same_database(page, warden):
    # A real `warden mcp proxy` in front of the repository's poisoned test server, writing to
    # the dashboard server's database: the tool it withholds shows on the findings page.
    server = ROOT / "crates/warden-mcp/tests/peers/malicious_server.js"
    gateway = ROOT / "crates/warden-mcp/tests/fixtures/gateway.yaml"
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "browser-test", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    out = subprocess.run(
        [WARDEN, "mcp", "proxy", "-p", str(gateway), "--db", str(warden.dir / "w.db"),
         "--", "node", str(server)],
        input="".join(json.dumps(m) + "\n" for m in lines), capture_output=True, text=True,
        timeout=60,
    )
    assert '"id":2' in out.stdout, out.stderr
    logged_in(page, warden)
    page.click("nav button[data-tab=findings]")
    row = page.locator("#finding-rows tr", has_text="mcp.tools/list").first
    expect(row).to_contain_text("deny")
    expect(row.locator("code")).not_to_be_empty()
    shot(page, "mcp-findings")


def test_audit_policy_and_latency(page, warden):
    logged_in(page, warden)
    decide(warden, "bot", "files.read")
    page.click("nav button[data-tab=health]")
    expect(page.locator("#policy")).to_contain_text("version")
    expect(page.locator("#audit")).to_contain_text("w.db")
    page.click("#verify")
    expect(page.locator("#verify-result")).to_contain_text("intact")
    shot(page, "audit-and-policy")
    page.click("nav button[data-tab=latency]")
    expect(page.locator("#latency-total")).to_contain_text("decisions, mean")
    shot(page, "latency")


def test_logging_out_ends_the_session(page, warden):
    logged_in(page, warden)
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    page.reload()
    expect(page.locator("#login")).to_be_visible()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(warden.url + "/dashboard/state", timeout=10)
