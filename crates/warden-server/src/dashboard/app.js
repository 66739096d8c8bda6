// Warden's dashboard. Plain JavaScript, no dependencies. Every value from the server is put on
// the page with textContent (never as HTML), and the page's Content-Security-Policy allows no
// inline script, so an agent name or a reason cannot run code here.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;
let stream = null;
const MAX_ROWS = 500;
const agents = new Map(); // name -> {count, verdict} from the live stream
let kills = [];
let known = new Map(); // name -> {ring, placement, trust, killed} from /dashboard/agents
let agentInfo = { rings: false, trust: false };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function nsTime(ns) { return ns ? new Date(ns / 1e6).toLocaleString() : ""; }

function showError(msg) { $("error").textContent = msg || ""; }

// Every API call: same-origin cookie, JSON, and the session's CSRF token in a header.
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Warden-CSRF": csrf || "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({ error: "the answer was not JSON" }));
  if (res.status === 401) { showLogin(); throw new Error(data.error || "not logged in"); }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function showLogin() {
  csrf = null;
  if (stream) { stream.close(); stream = null; }
  $("tabs").hidden = true;
  $("logout").hidden = true;
  for (const s of document.querySelectorAll(".tab")) s.hidden = true;
  $("login").hidden = false;
}

function showApp() {
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  selectTab(location.hash.slice(1) || "decisions");
  openStream();
  refresh();
}

function selectTab(name) {
  if (!$(name) || !$(name).classList.contains("tab")) name = "decisions";
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== name;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === name);
  if (location.hash.slice(1) !== name) history.replaceState(null, "", "#" + name);
}

// ---- live decisions --------------------------------------------------------------------------

function matches(d) {
  const a = $("f-agent").value.trim(), act = $("f-action").value.trim(), v = $("f-verdict").value;
  return (!a || (d.agent || "").includes(a)) && (!act || d.action.includes(act)) && (!v || d.verdict === v);
}

function addDecision(d) {
  const tr = row([
    new Date(d.at).toLocaleTimeString(), d.agent || "", d.action,
    el("span", d.verdict, "verdict-" + d.verdict), d.rule || "", d.reason, d.elapsed_us,
  ]);
  tr.dataset.d = JSON.stringify(d);
  tr.hidden = !matches(d);
  const body = $("decision-rows");
  body.insertBefore(tr, body.firstChild);
  while (body.children.length > MAX_ROWS) body.removeChild(body.lastChild);
  if (d.agent) {
    const a = agents.get(d.agent) || { count: 0 };
    a.count += 1; a.verdict = d.verdict;
    agents.set(d.agent, a);
    renderAgents();
  }
  if (d.verdict === "require_approval") refreshApprovals();
}

function refilter() {
  for (const tr of $("decision-rows").children) tr.hidden = !matches(JSON.parse(tr.dataset.d));
}

function openStream() {
  if (stream) stream.close();
  stream = new EventSource("/dashboard/events");
  stream.onopen = () => { $("stream-state").textContent = "live"; };
  stream.onerror = () => { $("stream-state").textContent = "reconnecting…"; };
  stream.onmessage = (m) => { try { addDecision(JSON.parse(m.data)); } catch (e) { /* ignore a bad frame */ } };
}

// ---- approvals -------------------------------------------------------------------------------

async function answer(id, approve, reason) {
  try {
    await api("POST", `/v1/approvals/${encodeURIComponent(id)}/${approve ? "approve" : "deny"}`,
      { reason: reason || (approve ? "approved in the dashboard" : "denied in the dashboard"), by: "dashboard" });
    showError("");
  } catch (e) { showError(e.message); }
  refreshApprovals();
}

async function refreshApprovals() {
  if (!csrf) return;
  let list;
  try { list = await api("GET", "/v1/approvals"); } catch (e) { $("approvals-note").textContent = e.message; return; }
  $("approvals-note").textContent = list.length ? "" : "Nothing waits for an answer.";
  $("pending-count").textContent = list.length ? String(list.length) : "";
  // Rows are kept by id between refreshes, so a reason being typed is not wiped.
  const body = $("approval-rows");
  const want = new Set(list.map((a) => a.id));
  for (const tr of [...body.children]) if (!want.has(tr.dataset.id)) tr.remove();
  const have = new Set([...body.children].map((tr) => tr.dataset.id));
  for (const a of list) {
    if (have.has(a.id)) continue;
    const reason = el("input"); reason.placeholder = "reason"; reason.className = "reason";
    const yes = el("button", "Approve", "approve"); yes.onclick = () => answer(a.id, true, reason.value);
    const no = el("button", "Deny", "deny"); no.onclick = () => answer(a.id, false, reason.value);
    const cell = el("div"); cell.append(reason, " ", yes, " ", no);
    const tr = row([el("code", a.id.slice(0, 12)), a.agent || "", a.action.action,
      el("code", JSON.stringify(a.action.args || {})), `${a.rule || ""} ${a.reason}`, nsTime(a.expires_ns), cell]);
    tr.dataset.id = a.id;
    body.appendChild(tr);
  }
}

// ---- agents and kill switches ----------------------------------------------------------------

function killOf(agent) { return kills.find((k) => k.scope === "agent" && k.target === agent); }

async function setKill(agent, kill, reason) {
  try {
    await api("POST", kill ? "/v1/kill" : "/v1/revive", { agent, reason: reason || (kill ? "killed in the dashboard" : "revived in the dashboard"), by: "dashboard" });
    showError("");
  } catch (e) { showError(e.message); }
  refreshKills();
}

function ringCell(k) {
  if (!k || !k.ring) return "";
  const span = el("span", k.ring, "ring");
  span.title = k.placement || "";
  return span;
}

function trustCell(k) {
  if (!k || !k.trust) return "";
  return `${k.trust.score} (${k.trust.tier})${k.trust.revoked ? " revoked" : ""}`;
}

function renderAgents() {
  const body = $("agent-rows");
  body.replaceChildren();
  const names = new Set([...agents.keys(), ...known.keys()]);
  for (const name of [...names].sort()) {
    const a = agents.get(name) || { count: 0 };
    const info = known.get(name);
    const k = killOf(name);
    const b = el("button", k ? "Revive" : "Kill", k ? "" : "danger");
    b.onclick = () => setKill(name, !k);
    const tr = row([name, ringCell(info), trustCell(info), a.count, a.verdict ? el("span", a.verdict, "verdict-" + a.verdict) : "",
      k ? "killed: " + k.reason : "", b]);
    tr.dataset.agent = name;
    body.appendChild(tr);
  }
  const notes = [];
  if (!agentInfo.rings) notes.push("no rings: in the policy");
  if (!agentInfo.trust) notes.push("no trust scores kept (serve with --db and --trust-root)");
  $("agents-note").textContent = notes.length ? "This server has " + notes.join("; ") + "." : "";
}

async function refreshAgents() {
  if (!csrf) return;
  let r;
  try { r = await api("GET", "/dashboard/agents"); } catch (e) { return; }
  known = new Map(r.agents.map((a) => [a.agent, a]));
  agentInfo = { rings: r.rings, trust: r.trust };
  renderAgents();
}

// ---- MCP findings ----------------------------------------------------------------------------

async function refreshFindings() {
  if (!csrf) return;
  let r;
  try { r = await api("GET", "/dashboard/findings"); } catch (e) { $("findings-note").textContent = e.message; return; }
  const body = $("finding-rows");
  body.replaceChildren();
  for (const f of r.findings) {
    const ids = f.findings.length ? f.findings.map((x) => typeof x === "string" ? x : JSON.stringify(x)).join(", ") : (f.rule || "");
    body.appendChild(row([f.ts, f.server || "", f.action, f.tool || "", el("span", f.verdict, "verdict-" + f.verdict), el("code", ids), f.reason]));
  }
  $("findings-note").textContent = r.findings.length ? "" : "Nothing found yet.";
}

async function refreshKills() {
  if (!csrf) return;
  try { kills = await api("GET", "/v1/kills"); } catch (e) { return; }
  const body = $("kill-rows");
  body.replaceChildren();
  for (const k of kills) {
    const b = el("button", "Revive");
    b.onclick = () => api("POST", "/v1/revive", k.scope === "all" ? { all: true, reason: "revived in the dashboard", by: "dashboard" }
      : { [k.scope]: k.target, reason: "revived in the dashboard", by: "dashboard" }).then(refreshKills, (e) => showError(e.message));
    body.appendChild(row([k.scope, k.target || "", k.reason, k.by, nsTime(k.at_ns), b]));
  }
  renderAgents();
}

// ---- policy, audit, latency ------------------------------------------------------------------

function fill(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) { dl.append(el("dt", k), el("dd", v)); }
}

function fmtBound(le) {
  if (le === null) return "> 100 ms";
  return le < 0.001 ? `≤ ${Math.round(le * 1e6)} µs` : `≤ ${le * 1e3} ms`;
}

async function refreshState() {
  if (!csrf) return;
  let s;
  try { s = await api("GET", "/dashboard/state"); } catch (e) { return; }
  const r = s.last_reload;
  fill($("policy"), [
    ["version", s.policy_version],
    ["last reload", r ? `${r.ok ? "ok" : "rejected"} (${r.trigger}) at ${new Date(r.at).toLocaleString()}` : "none since start"],
    ["last reload error", r && r.error ? r.error : ""],
    ["reloads / rejected", `${s.reloads} / ${s.reload_failures}`],
    ["decisions", `${s.decisions.allow} allowed, ${s.decisions.deny} denied, ${s.decisions.require_approval} asked`],
  ]);
  fill($("audit"), s.audit ? [
    ["file", s.audit.path],
    ["committed", s.audit.stats.committed],
    ["queue depth", s.audit.stats.queue_depth],
    ["checkpoints signed here", s.audit.stats.checkpoints],
    ["writing", s.audit.stats.failing ? "FAILING: " + (s.audit.stats.last_error || "") : "ok"],
  ] : [["file", "no audit log (started without a database)"]]);
  const total = s.latency.buckets.reduce((n, b) => n + b.count, 0);
  const max = Math.max(1, ...s.latency.buckets.map((b) => b.count));
  $("latency-total").textContent = total ? `${total} decisions, mean ${(s.latency.sum_seconds / total * 1e6).toFixed(1)} µs (request start to decision)` : "No decisions yet.";
  const h = $("histogram");
  h.replaceChildren();
  for (const b of s.latency.buckets) {
    const bar = el("div", null, "bar"); bar.style.width = (100 * b.count / max) + "%";
    const wrap = el("div"); wrap.appendChild(bar);
    h.append(el("span", fmtBound(b.le)), wrap, el("span", b.count, "num"));
  }
}

async function verify() {
  fill($("verify-result"), [["status", "verifying…"]]);
  try {
    const v = await api("GET", "/dashboard/audit/verify");
    const s = v.summary || {};
    fill($("verify-result"), [
      ["chain", v.status],
      ["records", s.records ?? ""],
      ["last checkpoint", s.last_checkpoint ?? "none"],
      ["head", s.head_hash ? s.head_hash.slice(0, 16) + "…" : ""],
      ["unanchored records", s.unanchored ?? ""],
      ["finding", v.tampering ? `${v.tampering.kind} at ${v.tampering.seq}: ${v.tampering.detail}` : v.error || "none"],
    ]);
  } catch (e) { fill($("verify-result"), [["error", e.message]]); }
}

function refresh() { refreshApprovals(); refreshKills(); refreshState(); refreshAgents(); refreshFindings(); }

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  for (const b of document.querySelectorAll("nav button")) b.onclick = () => selectTab(b.dataset.tab);
  for (const id of ["f-agent", "f-action", "f-verdict"]) $(id).addEventListener("input", refilter);
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    const res = await fetch("/dashboard/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
    });
    const data = await res.json().catch(() => ({}));
    $("token").value = "";
    if (!res.ok) { $("login-error").textContent = data.error || "login failed"; return; }
    csrf = data.csrf;
    showApp();
  });
  $("logout").onclick = async () => { try { await api("POST", "/dashboard/logout"); } catch (e) { /* gone already */ } showLogin(); };
  $("kill-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setKill($("kill-agent").value.trim(), true, $("kill-reason").value.trim());
  });
  $("verify").onclick = verify;
  setInterval(refresh, 2000);
  const res = await fetch("/dashboard/session", { credentials: "same-origin" });
  if (res.ok) { csrf = (await res.json()).csrf; showApp(); } else { showLogin(); }
});
