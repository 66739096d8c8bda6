//! Deciding what a side asks for, before it reaches the other side.
//!
//! | request | action | about |
//! |---|---|---|
//! | `tools/call` (client) | `mcp.tools/call` | `tool` = `params.name`, `args` = `params.arguments` |
//! | `resources/read` (client) | `mcp.resources/read` | `resource` = `params.uri` |
//! | `prompts/get` (client) | `mcp.prompts/get` | `tool` = `params.name`, `args` = `params.arguments` |
//! | `sampling/createMessage` (server) | `mcp.sampling/createMessage` | `context.findings`: what the text detector (and the model, on what the rules passed) found in the messages |
//! | `tools/call` of a memory-write tool (client) | `memory.write`, then `mcp.tools/call` | `args.content` = every string of the arguments, `context.source` (see [`super::memory`]) |
//!
//! Anything but allow is answered by the proxy with a JSON-RPC error; the request never
//! reaches the other side. A client request that needs approval is held while its approval
//! request waits for a person (`ProxyConfig::approval_wait`), then let through or refused. A refusal Warden's policy never saw (a withheld tool, a look-alike
//! method) is recorded in the audit log here, so every refusal is on the record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::memory::PendingProvenance;
use warden::{Action, ApprovalStatus, Decision, Verdict};

/// How often a held request looks at its approval request.
const APPROVAL_POLL: Duration = Duration::from_millis(100);
/// How often a held request that carries a `progressToken` tells its client it is still
/// waiting (the first one goes out at once), so clients that reset their timeout on
/// progress keep waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
use super::argument_case::{CaseVariant, MAX_STEPS, case_variant};
use super::gateway::{Gateway, Inbound, lock};
use super::hold::{HELD, Held, HoldTicket, MAX_HELD, Refused, progress_token};
use super::method::{self, Special};
use super::results::{
    MODEL_ERROR, MODEL_PARTIAL, MODEL_TEXT, decision_error, joined_text, text_findings,
};
use crate::jsonrpc::{self, code};

impl Gateway {
    /// Decide a client request the gateway treats specially. `Ok(target)` lets it through
    /// (the tool, resource or prompt it is about), with a memory write's provenance to
    /// record once the server answers it with success; `Err` refuses or holds it.
    pub(super) fn decide_request(
        &self,
        special: Option<Special>,
        id: &Value,
        msg: &Value,
    ) -> Result<(Option<String>, Option<PendingProvenance>), Refused> {
        let params = msg.get("params").unwrap_or(&Value::Null);
        if special == Some(Special::ToolsCall) {
            return self
                .decide_call(id, params)
                .map(|(tool, pending)| (Some(tool), pending));
        }
        self.decide_other(special, id, params).map(|t| (t, None))
    }

    fn decide_other(
        &self,
        special: Option<Special>,
        id: &Value,
        params: &Value,
    ) -> Result<Option<String>, Refused> {
        match special {
            Some(Special::ResourcesRead) => {
                let uri = string_param(id, params, "uri", "resources/read")?;
                let action = self
                    .action("mcp.resources/read")
                    .with_resource(uri)
                    .with_arg("uri", uri);
                self.decide_or_refuse(id, &action, &format!("reading `{uri}`"), Some(uri))?;
                Ok(Some(uri.to_string()))
            }
            Some(Special::PromptsGet) => {
                let name = string_param(id, params, "name", "prompts/get")?;
                let mut action = self.action("mcp.prompts/get").with_tool(name);
                action.args = object_param(id, params, "arguments")?;
                self.decide_or_refuse(id, &action, &format!("prompt `{name}`"), Some(name))?;
                Ok(Some(name.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// Decide a `tools/call`; `Ok(tool)` lets it through (with a memory write's provenance
    /// to record once it succeeds).
    fn decide_call(
        &self,
        id: &Value,
        params: &Value,
    ) -> Result<(String, Option<PendingProvenance>), Refused> {
        let tool = string_param(id, params, "name", "tools/call")?;
        let args = object_param(id, params, "arguments")?;
        let (refusal, schema) = {
            let s = lock(&self.state);
            // Every listed tool is either verified or withheld.
            let listed = s.verified.contains(tool) || s.withheld.contains_key(tool);
            let variant = s.known.get(&method::fold(tool)).filter(|_| !listed);
            let refusal = if let Some(listed) = variant {
                Some((
                    format!(
                        "the server has no tool `{}`; it listed `{listed}` (tool names are exact)",
                        tool.escape_debug()
                    ),
                    "warden-mcp.tool-variant",
                    code::INVALID_PARAMS,
                ))
            } else if let Some(reason) = s.withheld.get(tool) {
                Some((reason.clone(), "warden-mcp.withheld", code::TOOL_WITHHELD))
            } else if s.require_verified && !s.verified.contains(tool) {
                Some((
                    "the tool has not been listed and checked against the lock file yet; list the tools first".into(),
                    "warden-mcp.withheld",
                    code::TOOL_WITHHELD,
                ))
            } else {
                None
            };
            (
                refusal,
                s.schemas.get(tool).map(|(schema, _)| schema.clone()),
            )
        };
        // Outside the gateway's lock: the check's cost is the call's and the schema's size.
        let refusal = refusal.or_else(|| {
            let variant = case_variant(&args, schema.as_deref()?)?;
            let reason = match variant {
                CaseVariant::Key(given, param) => format!(
                    "the argument `{}` differs only in case from the tool's parameter `{}`: \
                     a server that reads keys without regard to case (Go's encoding/json) \
                     would take it for that parameter, which the policy did not judge; \
                     spell it as listed",
                    given.escape_debug(),
                    param.escape_debug(),
                ),
                CaseVariant::TooMuch => format!(
                    "the arguments are too large to check against the tool's parameters \
                     (over {MAX_STEPS} steps)"
                ),
            };
            Some((reason, "warden-mcp.argument-case", code::INVALID_PARAMS))
        });
        let mut action = self.action("mcp.tools/call").with_tool(tool);
        action.args = args;
        if let Some((reason, rule, code)) = refusal {
            tracing::warn!("refused a call to `{tool}`: {reason}");
            self.record_refusal(&action, &reason, rule);
            let message = if code == code::TOOL_WITHHELD {
                format!("Warden withheld tool `{tool}`: {reason}")
            } else {
                format!("Warden refused the call: {reason}")
            };
            return Err(Refused::Answer(jsonrpc::error(
                id,
                code,
                &message,
                Some(json!({"verdict": "deny", "reason": reason, "rule": rule})),
            )));
        }
        let pending = if self.writes_memory(tool) {
            self.decide_memory_write(id, tool, &action.args, params)?
        } else {
            None
        };
        // Refused: the signed record is dropped with `pending` (nothing was written). Held:
        // it waits with the call, and is recorded only if the call is let through and the
        // server answers it with success.
        match self.decide_or_refuse(id, &action, &format!("`{tool}`"), Some(tool)) {
            Ok(()) => Ok((tool.to_string(), pending)),
            Err(Refused::Hold(mut ticket)) => {
                ticket.provenance = pending;
                Err(Refused::Hold(ticket))
            }
            Err(refused) => Err(refused),
        }
    }

    /// Decide a server's `sampling/createMessage`: the text it wants the client's model to
    /// read goes through the detector, and policy decides with the findings in context.
    pub(super) fn decide_sampling(&self, id: &Value, msg: &Value) -> Result<(), Value> {
        let mut params = msg.get("params").cloned().unwrap_or(Value::Null);
        let mut findings = text_findings(&mut params, Some(Special::CreateMessage));
        // The text goes before the client's model like a result does: the model reads what
        // the rules passed, and what it did not read (or could not) is not clean.
        if findings.is_empty()
            && let Some(classifier) = &self.config.classifier
        {
            let (text, _) = joined_text(&mut params, Some(Special::CreateMessage));
            match classifier.score_text(&text) {
                Ok(v) if v.flagged => findings.push(MODEL_TEXT),
                Ok(v) if v.truncated => findings.push(MODEL_PARTIAL),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("the model could not score a sampling request: {e}");
                    findings.push(MODEL_ERROR);
                }
            }
        }
        let action = self
            .action("mcp.sampling/createMessage")
            .with_context("findings", json!(findings));
        self.decide_or_refuse(id, &action, "the server's sampling request", None)
            .map_err(|r| match r {
                Refused::Answer(answer) => answer,
                // INVARIANT: without a target nothing is held.
                Refused::Hold(t) => {
                    let d = Decision::deny("denied: a server request cannot be held");
                    decision_error(id, code::DENIED, &format!("Warden refused {}", t.what), &d)
                }
            })
    }

    /// An allowed `tools/call` starts: it counts against the agent's ring's `max_concurrent`
    /// until its answer comes back (or it is cancelled). Over the limit, the refusal is
    /// recorded and answered like a deny.
    pub(super) fn begin_call(
        &self,
        id: &Value,
        tool: &str,
    ) -> Result<Option<std::sync::Arc<warden::CallPermit>>, Value> {
        let action = self.action("mcp.tools/call").with_tool(tool);
        match self.warden.begin_call(&action) {
            Ok(permit) => Ok(permit.map(std::sync::Arc::new)),
            Err(d) => {
                tracing::warn!("refused a call to `{tool}`: {}", d.reason);
                self.record_refusal(&action, &d.reason, d.rule.as_deref().unwrap_or("ring-gate"));
                Err(decision_error(
                    id,
                    code::DENIED,
                    &format!("Warden denied `{tool}`: {}", d.reason),
                    &d,
                ))
            }
        }
    }

    /// Ask Warden; anything but allow becomes the error answer. A client request that needs
    /// a person's approval (`hold` names what it is about) is held instead when the proxy
    /// holds requests (`approval_wait`): the transport waits for the answer off its reading
    /// thread ([`Gateway::settle`]).
    pub(super) fn decide_or_refuse(
        &self,
        id: &Value,
        action: &Action,
        what: &str,
        hold: Option<&str>,
    ) -> Result<(), Refused> {
        let d = self.warden.decide(action);
        tracing::info!("{} {what}: {} ({})", action.action, d.verdict, d.reason);
        if d.verdict == Verdict::RequireApproval
            && let Some(approval) = d.approval_id.clone()
            && let Some(target) = hold
            && !self.config.approval_wait.is_zero()
            && self.warden.approvals().is_some()
        {
            if let Some(place) = HELD.take() {
                tracing::warn!(
                    "holding {what} for up to {:?}: approval {approval} must be answered (`warden approvals approve {approval}`)",
                    self.config.approval_wait
                );
                return Err(Refused::Hold(Box::new(HoldTicket {
                    action: action.clone(),
                    approval,
                    what: what.to_string(),
                    target: target.to_string(),
                    provenance: None,
                    _place: place,
                })));
            }
            tracing::warn!("not holding {what}: {MAX_HELD} calls are already held for approval");
        }
        refusal(id, &d, what).map_err(Refused::Answer)
    }

    /// Wait for the answer to a held request's approval request — sending the client
    /// progress notifications when it asked for them — then let the request through
    /// ([`Inbound::Forward`]) or answer it with the refusal. A request its client cancels
    /// while held is dropped (a cancelled request gets no answer).
    pub fn settle(&self, held: Held, notify: &dyn Fn(&Value)) -> Inbound {
        let Held {
            ticket,
            id,
            msg,
            special,
            cancelled,
        } = held;
        let d = match self.await_approval(&ticket, &msg, &cancelled, notify) {
            Some(d) => d,
            None => return Inbound::Dropped(format!("{} was cancelled while held", ticket.what)),
        };
        if d.verdict == Verdict::Allow {
            let permit = if special == Some(Special::ToolsCall) {
                match self.begin_call(&id, &ticket.target) {
                    Ok(permit) => permit,
                    Err(answer) => {
                        if !lock(&self.state).from_client.abandon(&id, &cancelled) {
                            return Inbound::Dropped(format!(
                                "{} was cancelled while held",
                                ticket.what
                            ));
                        }
                        return Inbound::Answer(answer);
                    }
                }
            } else {
                None
            };
            return if lock(&self.state)
                .from_client
                .release(&id, &cancelled, permit)
            {
                Inbound::Forward(msg)
            } else {
                Inbound::Dropped(format!("{} was cancelled while held", ticket.what))
            };
        }
        if !lock(&self.state).from_client.abandon(&id, &cancelled) {
            // Cancelled while its approval was being answered: a cancelled request gets
            // no answer (one with its id would now read as a new request's).
            return Inbound::Dropped(format!("{} was cancelled while held", ticket.what));
        }
        match refusal(&id, &d, &ticket.what) {
            Err(answer) => Inbound::Answer(answer),
            // INVARIANT: `d` is not an allow here.
            Ok(()) => Inbound::Answer(decision_error(&id, code::DENIED, "denied", &d)),
        }
    }

    /// Do not hold `held` after all: answer it at once with its refusal (approval required,
    /// the request's id named), as without `approval_wait`. For a conversation the proxy
    /// cannot keep (an HTTP session it does not know), where a later cancel or a duplicate
    /// id would not find the hold.
    pub fn refuse_held(&self, held: Held, why: &str) -> Inbound {
        let Held {
            ticket,
            id,
            cancelled,
            ..
        } = held;
        if !lock(&self.state).from_client.abandon(&id, &cancelled) {
            return Inbound::Dropped(format!("{} was cancelled", ticket.what));
        }
        let mut d = Decision::deny(String::new());
        d.verdict = Verdict::RequireApproval;
        d.reason = format!(
            "approval {} is needed; the call was not held: {why}",
            ticket.approval
        )
        .into();
        d.approval_id = Some(ticket.approval.clone());
        match refusal(&id, &d, &ticket.what) {
            Err(answer) => Inbound::Answer(answer),
            Ok(()) => Inbound::Dropped(String::new()),
        }
    }

    /// Poll the approval request until it is answered, expires or the wait ends; the
    /// decision it leads to (the action decided again, or a deny naming why), or `None`
    /// when the client cancelled the request.
    fn await_approval(
        &self,
        ticket: &HoldTicket,
        msg: &Value,
        cancelled: &AtomicBool,
        notify: &dyn Fn(&Value),
    ) -> Option<Decision> {
        let (action, approval, what) = (&ticket.action, &*ticket.approval, &ticket.what);
        let Some(store) = self.warden.approvals() else {
            return Some(Decision::deny("denied: no approval store to wait on"));
        };
        let token = progress_token(msg).cloned();
        let started = Instant::now();
        let deadline = started + self.config.approval_wait;
        let mut next_progress = started;
        let mut progress = 0u64;
        loop {
            if cancelled.load(Ordering::Acquire) {
                tracing::info!("{what} was cancelled by the client while held");
                return None;
            }
            if let Some(token) = &token
                && Instant::now() >= next_progress
            {
                progress += 1;
                notify(&json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {
                        "progressToken": token,
                        "progress": progress,
                        "message": format!(
                            "Warden holds {what} until a person answers approval {approval} (`warden approvals approve {approval}`), at most {}s",
                            self.config.approval_wait.as_secs()
                        ),
                    }
                }));
                next_progress += PROGRESS_EVERY;
            }
            let now = warden_audit::Timestamp::now_unix_ns();
            let status = match store.get(approval, now) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    return Some(Decision::deny(format!(
                        "denied: approval {approval} vanished"
                    )));
                }
                Err(e) => {
                    return Some(Decision::deny(format!(
                        "denied: approval {approval} could not be read: {e}"
                    )));
                }
            };
            let why = match status.status {
                ApprovalStatus::Approved => {
                    let again = self.warden.decide(action);
                    tracing::info!(
                        "{} {what} after approval: {} ({})",
                        action.action,
                        again.verdict,
                        again.reason
                    );
                    return Some(again);
                }
                ApprovalStatus::Pending if Instant::now() < deadline => {
                    std::thread::sleep(APPROVAL_POLL);
                    continue;
                }
                ApprovalStatus::Pending => format!(
                    "nobody answered approval {approval} within {:?}",
                    self.config.approval_wait
                ),
                ApprovalStatus::Denied => format!(
                    "approval {approval} was denied by {}: {}",
                    status.decided_by.as_deref().unwrap_or("?"),
                    status.decided_reason.as_deref().unwrap_or("")
                ),
                ApprovalStatus::Expired => format!("approval {approval} expired unanswered"),
                ApprovalStatus::Used => {
                    format!("approval {approval} was already used by another call")
                }
            };
            let mut deny = Decision::deny(format!("denied: {why}"));
            deny.approval_id = Some(approval.into());
            return Some(deny);
        }
    }

    /// Record a refusal the policy never saw, so every refusal reaches the audit log.
    pub(super) fn record_refusal(&self, action: &Action, reason: &str, rule: &str) {
        let Some(audit) = self.warden.audit() else {
            return;
        };
        let mut d = Decision::deny(format!("refused by warden-mcp: {reason}"));
        d.rule = Some(rule.into());
        if let Err(e) = audit.append(warden_audit::Entry::new(action, &d)) {
            tracing::error!("could not record a refusal in the audit log: {e}");
        }
    }
}

fn string_param<'a>(
    id: &Value,
    params: &'a Value,
    key: &str,
    method: &str,
) -> Result<&'a str, Value> {
    params.get(key).and_then(Value::as_str).ok_or_else(|| {
        jsonrpc::error(
            id,
            code::INVALID_PARAMS,
            &format!("{method} needs `params.{key}` (a string)"),
            None,
        )
    })
}

fn object_param(id: &Value, params: &Value, key: &str) -> Result<Value, Value> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(jsonrpc::error(
            id,
            code::INVALID_PARAMS,
            &format!("`params.{key}` must be an object"),
            None,
        )),
    }
}

/// A decision as the proxy answers it: `Ok` for an allow, else the error answer.
pub(in crate::proxy) fn refusal(id: &Value, d: &Decision, what: &str) -> Result<(), Value> {
    match d.verdict {
        Verdict::Allow => Ok(()),
        Verdict::Deny => Err(decision_error(
            id,
            code::DENIED,
            &format!("Warden denied {what}: {}", d.reason),
            d,
        )),
        Verdict::RequireApproval => Err(decision_error(
            id,
            code::APPROVAL_REQUIRED,
            &format!("Warden requires approval for {what}: {}", d.reason),
            d,
        )),
    }
}
