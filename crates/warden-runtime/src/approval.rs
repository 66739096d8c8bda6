//! Approval requests: where a `require_approval` verdict goes, and how a person's answer comes
//! back to the action.
//!
//! When the policy says an action needs approval, Warden records a request in the Warden
//! database — the action in canonical form and its hash, the agent, the rule and its reason,
//! when it expires — and the decision carries the request's id. A person approves or denies it
//! (`warden approvals`, the operator HTTP endpoints). When the **same action** is asked again
//! (same hash: action, agent, tool, resource and arguments; the context is not part of it) and
//! the policy still says it needs approval by the same rule, an approved, unexpired, unused
//! request turns that one decision into an allow and is used up. Otherwise the pending request
//! for that action and rule is returned again (no duplicates), or a new one is made.
//!
//! Why it is built this way:
//! - a grant is bound to the rule that asked (policy and rule id): the context is not hashed,
//!   so the same action in another context can meet a stricter rule, whose reason the person
//!   who approved never read;
//! - a grant only lifts `require_approval`: if the policy (or the kill switch, the ring, a rate
//!   limit) would deny the action when it is asked again, the grant changes nothing;
//! - a grant is used in the same `BEGIN IMMEDIATE` transaction that finds it, so two processes
//!   asking at once cannot both use one approval;
//! - an agent can ask for many approvals, so pending requests are bounded — 100 per agent,
//!   10,000 in all (past either, `require_approval` is a deny: the table does not grow) — and
//!   each expires (default 15 minutes); an expired request can no longer be answered or used.
//!
//! | table | holds |
//! |---|---|
//! | `approvals` | one row per request: id, hash, the canonical action, agent, policy, rule, reason, created/expires, status, who decided and why, when it was used |

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::{Value, json};
use warden_core::{Action, Decision};

use crate::error::RuntimeError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id             TEXT PRIMARY KEY,
    hash           TEXT NOT NULL,
    action         TEXT NOT NULL,
    agent          TEXT,
    action_name    TEXT NOT NULL,
    policy         TEXT,
    rule           TEXT,
    reason         TEXT NOT NULL,
    created_ns     INTEGER NOT NULL,
    expires_ns     INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'answering', 'approved', 'denied')),
    claimed_ns     INTEGER,
    decided_by     TEXT,
    decided_reason TEXT,
    decided_ns     INTEGER,
    used_ns        INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS approvals_by_hash ON approvals (hash, status);
CREATE INDEX IF NOT EXISTS approvals_by_expiry ON approvals (expires_ns);
CREATE INDEX IF NOT EXISTS approvals_waiting ON approvals (status, agent, expires_ns);
";

/// How long a request waits for an answer unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// The most requests waiting for an answer at once (a full table denies new ones).
pub const MAX_PENDING: u64 = 10_000;
/// The most requests one agent may have waiting at once: an agent asking for approval of
/// action after action cannot crowd out everyone else's requests.
pub const MAX_PENDING_PER_AGENT: u64 = 100;
/// The most requests agents *without* a verified identity may have waiting at once, all
/// together: their names are their own claims, so one caller with many made-up names could
/// otherwise fill the whole table. Verified agents (DIDs, which only a credential can claim)
/// always keep the other half.
pub const MAX_PENDING_UNVERIFIED: u64 = MAX_PENDING / 2;
/// How long a settled request (answered, used or expired) is kept after it expired: the
/// audit log keeps the history; the table keeps what can still be waited on or shown.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an answer may be half given (claimed, its record being written) before another
/// answerer may take the request over (the first died between the two).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest reason or name kept with an answer.
const MAX_TEXT: usize = 1024;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// Approved and not used yet.
    Approved,
    /// Approved, and the action it covers was allowed once.
    Used,
    /// Denied by a person.
    Denied,
    /// Nobody answered in time (or it was approved and not used in time).
    Expired,
}

impl ApprovalStatus {
    /// The name shown and accepted in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Used => "used",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Whether a person's answer is in (or it can no longer come).
    pub fn is_settled(self) -> bool {
        self != ApprovalStatus::Pending
    }
}

/// One approval request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// The request's id (random, 128 bits, hex).
    pub id: String,
    /// Where it stands now.
    pub status: ApprovalStatus,
    /// BLAKE3 of the canonical action (what a grant must match).
    pub hash: String,
    /// The action as asked: `action`, `agent`, `tool`, `resource`, `args`.
    pub action: Value,
    /// The agent that asked.
    pub agent: Option<String>,
    /// The policy document that asked for approval.
    pub policy: Option<String>,
    /// Its rule.
    pub rule: Option<String>,
    /// The rule's reason.
    pub reason: String,
    /// When it was asked (ns since the epoch).
    pub created_ns: u64,
    /// When it stops being answerable and usable.
    pub expires_ns: u64,
    /// Who answered.
    pub decided_by: Option<String>,
    /// Why.
    pub decided_reason: Option<String>,
    /// When.
    pub decided_ns: Option<u64>,
    /// When the grant was used.
    pub used_ns: Option<u64>,
}

/// What asking for an action that needs approval came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// An approval for this exact action was found and used up: allow, this once.
    Granted(Box<Approval>),
    /// A request waits for a person (`created`: made just now).
    Pending {
        /// The request.
        id: String,
        /// Whether this call made it.
        created: bool,
    },
}

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No request with that id.
    #[error("no approval request `{0}`")]
    Unknown(String),
    /// Already answered, used or expired.
    #[error("approval request `{id}` is {status}: it can no longer be answered")]
    Settled {
        /// The request.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// Bad input (an empty name or reason).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The approval requests in a Warden database.
#[derive(Debug)]
pub struct Approvals {
    path: PathBuf,
    conn: Mutex<Connection>,
    ttl: Duration,
}

impl Approvals {
    /// Open (and, the first time, create) the requests in the Warden database at `path`;
    /// new requests expire after `ttl`.
    pub fn open(path: &Path, ttl: Duration) -> Result<Approvals, RuntimeError> {
        let conn = warden_audit::open_state(path, Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .map_err(RuntimeError::db(path, "cannot create the approvals table"))?;
        Ok(Approvals {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            ttl,
        })
    }

    /// How long a new request waits for an answer.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> RuntimeError {
        RuntimeError::db(&self.path, what)
    }

    /// The action as a grant must match it, and its hash.
    pub fn canonical(action: &Action) -> (Value, String) {
        let value = json!({
            "action": action.action,
            "agent": action.agent,
            "tool": action.tool,
            "resource": action.resource,
            "args": action.args,
        });
        let text = warden_audit::canonical_json(&value);
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        (value, hash)
    }

    /// The policy said `action` needs approval (`decision`): use a grant for it, or return
    /// the request that waits for one (making it if there is none).
    pub fn resolve(
        &self,
        action: &Action,
        decision: &Decision,
        now: u64,
    ) -> Result<Resolution, RuntimeError> {
        let (value, hash) = Approvals::canonical(action);
        // A grant lifts only the rule whose reason the person read: the context is not part
        // of the hash, so the same action asked in another context can meet another rule
        // (another reason, another bar), which needs its own answer.
        let (policy, rule) = (decision.policy.as_deref(), decision.rule.as_deref());
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        let granted: Option<String> = tx
            .query_row(
                "SELECT id FROM approvals WHERE hash = ?1 AND status = 'approved'
                   AND used_ns IS NULL AND expires_ns > ?2 AND policy IS ?3 AND rule IS ?4
                   ORDER BY created_ns LIMIT 1",
                params![hash, now as i64, policy, rule],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("cannot read the approvals"))?;
        if let Some(id) = granted {
            tx.execute(
                "UPDATE approvals SET used_ns = ?2 WHERE id = ?1",
                params![id, now as i64],
            )
            .map_err(self.err("cannot use the approval"))?;
            let approval = get(&tx, &id, now).map_err(self.err("cannot read the approval"))?;
            tx.commit()
                .map_err(self.err("cannot commit the approval"))?;
            return approval
                .map(|a| Resolution::Granted(Box::new(a)))
                .ok_or_else(|| RuntimeError::Invalid(format!("approval `{id}` vanished")));
        }
        let pending: Option<String> = tx
            .query_row(
                "SELECT id FROM approvals WHERE hash = ?1 AND status IN ('pending', 'answering')
                   AND expires_ns > ?2 AND policy IS ?3 AND rule IS ?4
                   ORDER BY created_ns LIMIT 1",
                params![hash, now as i64, policy, rule],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("cannot read the approvals"))?;
        if let Some(id) = pending {
            return Ok(Resolution::Pending { id, created: false });
        }
        let waiting: i64 = tx
            .query_row(
                "SELECT count(*) FROM approvals WHERE status IN ('pending', 'answering')
                   AND expires_ns > ?1",
                params![now as i64],
                |r| r.get(0),
            )
            .map_err(self.err("cannot count the approvals"))?;
        if waiting as u64 >= MAX_PENDING {
            return Err(RuntimeError::Invalid(format!(
                "{MAX_PENDING} approval requests are already waiting for an answer"
            )));
        }
        let verified = action
            .agent
            .as_deref()
            .is_some_and(|a| a.starts_with("did:"));
        if !verified {
            let unverified: i64 = tx
                .query_row(
                    "SELECT count(*) FROM approvals WHERE status IN ('pending', 'answering')
                       AND expires_ns > ?1 AND (agent IS NULL OR agent NOT LIKE 'did:%')",
                    params![now as i64],
                    |r| r.get(0),
                )
                .map_err(self.err("cannot count the approvals"))?;
            if unverified as u64 >= MAX_PENDING_UNVERIFIED {
                return Err(RuntimeError::Invalid(format!(
                    "{MAX_PENDING_UNVERIFIED} approval requests of agents without a verified identity are already waiting for an answer (verified agents keep room of their own)"
                )));
            }
        }
        let theirs: i64 = tx
            .query_row(
                "SELECT count(*) FROM approvals WHERE status IN ('pending', 'answering')
                   AND expires_ns > ?1 AND agent IS ?2",
                params![now as i64, action.agent],
                |r| r.get(0),
            )
            .map_err(self.err("cannot count the approvals"))?;
        if theirs as u64 >= MAX_PENDING_PER_AGENT {
            return Err(RuntimeError::Invalid(format!(
                "this agent already has {MAX_PENDING_PER_AGENT} approval requests waiting for an answer"
            )));
        }
        // Requests that expired more than a day ago go (the audit log keeps their story), so
        // the table holds what can still be waited on, answered or shown.
        let retention = u64::try_from(RETENTION.as_nanos()).unwrap_or(u64::MAX);
        tx.execute(
            "DELETE FROM approvals WHERE expires_ns < ?1",
            params![now.saturating_sub(retention) as i64],
        )
        .map_err(self.err("cannot forget old approval requests"))?;
        let id = random_id()?;
        let ttl = u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX);
        tx.execute(
            "INSERT INTO approvals (id, hash, action, agent, action_name, policy, rule, reason,
                 created_ns, expires_ns, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')",
            params![
                id,
                hash,
                warden_audit::canonical_json(&value),
                action.agent,
                action.action,
                policy,
                rule,
                &*decision.reason,
                now as i64,
                now.saturating_add(ttl).min(i64::MAX as u64) as i64,
            ],
        )
        .map_err(self.err("cannot record the approval request"))?;
        tx.commit()
            .map_err(self.err("cannot commit the approval request"))?;
        Ok(Resolution::Pending { id, created: true })
    }

    /// Approve (`approve`) or deny request `id`, as `by`, because `reason`. Only a pending,
    /// unexpired request can be answered.
    pub fn answer(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: &str,
        now: u64,
    ) -> Result<Approval, AnswerError> {
        check_answer(by, reason)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        let current = get(&tx, id, now)
            .map_err(self.err("cannot read the approval"))?
            .ok_or_else(|| AnswerError::Unknown(id.to_string()))?;
        if current.status != ApprovalStatus::Pending {
            return Err(AnswerError::Settled {
                id: id.to_string(),
                status: current.status.as_str(),
            });
        }
        tx.execute(
            "UPDATE approvals SET status = ?2, decided_by = ?3, decided_reason = ?4,
                 decided_ns = ?5 WHERE id = ?1 AND status = 'pending'",
            params![
                id,
                if approve { "approved" } else { "denied" },
                by,
                reason,
                now as i64
            ],
        )
        .map_err(self.err("cannot record the answer"))?;
        let after = get(&tx, id, now)
            .map_err(self.err("cannot read the approval"))?
            .ok_or_else(|| AnswerError::Unknown(id.to_string()))?;
        tx.commit().map_err(self.err("cannot commit the answer"))?;
        Ok(after)
    }

    /// [`Approvals::answer`], recorded first in `audit` as `warden.approval.approve` or
    /// `warden.approval.deny` (an answer whose record cannot be written is not given).
    pub fn answer_recorded(
        &self,
        id: &str,
        approve: bool,
        by: &crate::Operator,
        reason: &str,
        audit: Option<&warden_audit::AuditLog>,
        now: u64,
    ) -> Result<Approval, AnswerError> {
        // Bad input is refused before the record is written: the log must not hold an
        // answer that was never given.
        check_answer(by.name(), reason)?;
        let Some(log) = audit else {
            return self.answer(id, approve, by.name(), reason, now);
        };
        // Claimed first, so of two answerers at once only one writes a record; then the
        // record, committed; then the answer. A failed record gives the claim back.
        let current = self.claim(id, now)?;
        {
            let change = crate::record::Change {
                action: if approve {
                    "warden.approval.approve"
                } else {
                    "warden.approval.deny"
                },
                rule: "approval",
                resource: id.to_string(),
                reason: format!(
                    "approval {id} {} by {}: {reason}",
                    if approve { "approved" } else { "denied" },
                    by.name()
                ),
                args: json!({"approval": id, "hash": current.hash, "action": current.action,
                             "reason": reason}),
            };
            // Committed, not only queued: a buffered log could lose a queued record in a
            // crash while the answer below is already committed (an answer without its
            // record), or fail to write it without `append` ever saying so.
            change
                .record(log, by)
                .and_then(|_| log.flush())
                .map_err(|e| {
                    if let Err(back) = self.unclaim(id) {
                        tracing::error!("cannot give back the claim on approval {id}: {back}");
                    }
                    AnswerError::Runtime(RuntimeError::NotRecorded(e))
                })?;
        }
        self.settle(id, approve, by.name(), reason, now)
    }

    /// Mark pending request `id` as being answered (or take over a claim older than
    /// [`CLAIM_TIMEOUT`]): the request as it was.
    fn claim(&self, id: &str, now: u64) -> Result<Approval, AnswerError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        let current = get(&tx, id, now)
            .map_err(self.err("cannot read the approval"))?
            .ok_or_else(|| AnswerError::Unknown(id.to_string()))?;
        let stale = now.saturating_sub(u64::try_from(CLAIM_TIMEOUT.as_nanos()).unwrap_or(0));
        let claimed = tx
            .execute(
                "UPDATE approvals SET status = 'answering', claimed_ns = ?2
                 WHERE id = ?1 AND expires_ns > ?2
                   AND (status = 'pending' OR (status = 'answering' AND claimed_ns < ?3))",
                params![id, now as i64, stale as i64],
            )
            .map_err(self.err("cannot claim the approval"))?;
        if claimed == 0 {
            let status = match current.status {
                ApprovalStatus::Pending => "being answered by someone else",
                other => other.as_str(),
            };
            return Err(AnswerError::Settled {
                id: id.to_string(),
                status,
            });
        }
        tx.commit().map_err(self.err("cannot commit the claim"))?;
        Ok(current)
    }

    /// Give a claim back (its answer's record could not be written).
    fn unclaim(&self, id: &str) -> Result<(), RuntimeError> {
        self.conn()
            .execute(
                "UPDATE approvals SET status = 'pending', claimed_ns = NULL
                 WHERE id = ?1 AND status = 'answering'",
                params![id],
            )
            .map(drop)
            .map_err(self.err("cannot give back the claim"))
    }

    /// Turn this process's claim on `id` into the answer.
    fn settle(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: &str,
        now: u64,
    ) -> Result<Approval, AnswerError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        let done = tx
            .execute(
                "UPDATE approvals SET status = ?2, decided_by = ?3, decided_reason = ?4,
                     decided_ns = ?5, claimed_ns = NULL WHERE id = ?1 AND status = 'answering'",
                params![
                    id,
                    if approve { "approved" } else { "denied" },
                    by,
                    reason,
                    now as i64
                ],
            )
            .map_err(self.err("cannot record the answer"))?;
        if done == 0 {
            return Err(AnswerError::Settled {
                id: id.to_string(),
                status: "no longer claimed by this answer",
            });
        }
        let after = get(&tx, id, now)
            .map_err(self.err("cannot read the approval"))?
            .ok_or_else(|| AnswerError::Unknown(id.to_string()))?;
        tx.commit().map_err(self.err("cannot commit the answer"))?;
        Ok(after)
    }

    /// One request.
    pub fn get(&self, id: &str, now: u64) -> Result<Option<Approval>, RuntimeError> {
        let conn = self.conn();
        get(&conn, id, now).map_err(self.err("cannot read the approval"))
    }

    /// Requests, newest first: only those with `status` when given; at most `limit`.
    pub fn list(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<Approval>, RuntimeError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("{SELECT} ORDER BY created_ns DESC, id"))
            .map_err(self.err("cannot list the approvals"))?;
        let rows = stmt
            .query_map([], |r| row(r, now))
            .map_err(self.err("cannot list the approvals"))?;
        let mut out = Vec::new();
        for r in rows {
            let a = r.map_err(self.err("cannot list the approvals"))?;
            if status.is_none_or(|s| s == a.status) {
                out.push(a);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Who answers and why: each 1 to [`MAX_TEXT`] bytes, not blank, no control characters.
fn check_answer(by: &str, reason: &str) -> Result<(), AnswerError> {
    for (what, text) in [("who answers", by), ("the reason", reason)] {
        if text.trim().is_empty() || text.len() > MAX_TEXT || text.chars().any(char::is_control) {
            return Err(AnswerError::Invalid(format!(
                "{what} must be 1 to {MAX_TEXT} bytes without control characters"
            )));
        }
    }
    Ok(())
}

const SELECT: &str = "SELECT id, hash, action, agent, policy, rule, reason, created_ns, expires_ns,
    status, decided_by, decided_reason, decided_ns, used_ns FROM approvals";

fn get(conn: &Connection, id: &str, now: u64) -> rusqlite::Result<Option<Approval>> {
    conn.query_row(&format!("{SELECT} WHERE id = ?1"), params![id], |r| {
        row(r, now)
    })
    .optional()
}

fn row(r: &rusqlite::Row<'_>, now: u64) -> rusqlite::Result<Approval> {
    let stored: String = r.get(9)?;
    let expires = r.get::<_, i64>(8)? as u64;
    let used: Option<i64> = r.get(13)?;
    // A request being answered (claimed) still waits: to everyone else it is pending.
    let status = match (stored.as_str(), used) {
        ("approved", Some(_)) => ApprovalStatus::Used,
        ("denied", _) => ApprovalStatus::Denied,
        (_, _) if expires <= now => ApprovalStatus::Expired,
        ("approved", None) => ApprovalStatus::Approved,
        _ => ApprovalStatus::Pending,
    };
    let action: String = r.get(2)?;
    Ok(Approval {
        id: r.get(0)?,
        status,
        hash: r.get(1)?,
        action: serde_json::from_str(&action).unwrap_or(Value::Null),
        agent: r.get(3)?,
        policy: r.get(4)?,
        rule: r.get(5)?,
        reason: r.get(6)?,
        created_ns: r.get::<_, i64>(7)? as u64,
        expires_ns: expires,
        decided_by: r.get(10)?,
        decided_reason: r.get(11)?,
        decided_ns: r.get::<_, Option<i64>>(12)?.map(|n| n as u64),
        used_ns: used.map(|n| n as u64),
    })
}

fn random_id() -> Result<String, RuntimeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| RuntimeError::Invalid(format!("no random source for an approval id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Verdict;

    fn needs_approval() -> Decision {
        let mut d = Decision::deny("payments over 100 need a person");
        d.verdict = Verdict::RequireApproval;
        d.policy = Some("p".into());
        d.rule = Some("rules[0]".into());
        d
    }

    fn open() -> (tempfile::TempDir, Approvals) {
        let dir = tempfile::tempdir().unwrap();
        let a = Approvals::open(&dir.path().join("w.db"), Duration::from_secs(60)).unwrap();
        (dir, a)
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn one_request_per_action_one_use_per_approval() {
        let (_d, a) = open();
        let pay = Action::new("payments.send")
            .with_agent("bot")
            .with_arg("amount", 500);
        let Resolution::Pending { id, created: true } =
            a.resolve(&pay, &needs_approval(), S).unwrap()
        else {
            panic!("a new request")
        };
        // Asked again: the same request, not a second one.
        assert_eq!(
            a.resolve(&pay, &needs_approval(), 2 * S).unwrap(),
            Resolution::Pending {
                id: id.clone(),
                created: false
            }
        );
        // Another amount is another action.
        let other = Action::new("payments.send")
            .with_agent("bot")
            .with_arg("amount", 501);
        assert!(matches!(
            a.resolve(&other, &needs_approval(), 2 * S).unwrap(),
            Resolution::Pending { created: true, .. }
        ));
        let approved = a
            .answer(&id, true, "alice", "checked the invoice", 3 * S)
            .unwrap();
        assert_eq!(approved.status, ApprovalStatus::Approved);
        assert_eq!(approved.decided_by.as_deref(), Some("alice"));
        // The grant is used once, then the action needs a new approval.
        let Resolution::Granted(g) = a.resolve(&pay, &needs_approval(), 4 * S).unwrap() else {
            panic!("granted")
        };
        assert_eq!(g.id, id);
        assert_eq!(g.status, ApprovalStatus::Used);
        assert!(matches!(
            a.resolve(&pay, &needs_approval(), 5 * S).unwrap(),
            Resolution::Pending { created: true, .. }
        ));
        // An answered request cannot be answered again.
        assert!(matches!(
            a.answer(&id, false, "mallory", "no", 6 * S),
            Err(AnswerError::Settled { status: "used", .. })
        ));
    }

    #[test]
    fn denied_and_expired_requests_grant_nothing() {
        let (_d, a) = open();
        let act = Action::new("db.drop").with_agent("bot");
        let Resolution::Pending { id, .. } = a.resolve(&act, &needs_approval(), S).unwrap() else {
            panic!()
        };
        a.answer(&id, false, "alice", "never", 2 * S).unwrap();
        assert!(matches!(
            a.resolve(&act, &needs_approval(), 3 * S).unwrap(),
            Resolution::Pending { created: true, .. }
        ));
        assert_eq!(
            a.get(&id, 3 * S).unwrap().unwrap().status,
            ApprovalStatus::Denied
        );
        // Expiry: nobody answered within the ttl (60 s).
        let act2 = Action::new("db.drop").with_agent("bot2");
        let Resolution::Pending { id: late, .. } = a.resolve(&act2, &needs_approval(), S).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            a.get(&late, 62 * S).unwrap().unwrap().status,
            ApprovalStatus::Expired
        );
        assert!(matches!(
            a.answer(&late, true, "alice", "ok", 62 * S),
            Err(AnswerError::Settled {
                status: "expired",
                ..
            })
        ));
        // Approved in time but used too late: nothing.
        let act3 = Action::new("db.drop").with_agent("bot3");
        let Resolution::Pending { id: slow, .. } = a.resolve(&act3, &needs_approval(), S).unwrap()
        else {
            panic!()
        };
        a.answer(&slow, true, "alice", "ok", 2 * S).unwrap();
        assert!(matches!(
            a.resolve(&act3, &needs_approval(), 70 * S).unwrap(),
            Resolution::Pending { created: true, .. }
        ));
        assert!(matches!(
            a.answer("nope", true, "a", "b", S),
            Err(AnswerError::Unknown(_))
        ));
        assert!(matches!(
            a.answer(&slow, true, " ", "b", S),
            Err(AnswerError::Invalid(_))
        ));
    }

    /// Red team: the context is not hashed, so an agent could have a request approved in a
    /// context where a lenient rule asks ("staging payments need any developer"), then ask
    /// the same action in a context where a stricter rule asks ("production payments need
    /// the CFO") and have the first person's approval lift the second rule.
    #[test]
    fn a_grant_lifts_only_the_rule_that_asked_for_it() {
        let (_d, a) = open();
        let pay = Action::new("payments.send")
            .with_agent("bot")
            .with_arg("amount", 500);
        let lenient = needs_approval();
        let mut strict = needs_approval();
        strict.rule = Some("rules[1]".into());
        strict.reason = "production payments need the CFO".into();
        let Resolution::Pending { id, .. } = a.resolve(&pay, &lenient, S).unwrap() else {
            panic!("a new request")
        };
        a.answer(&id, true, "dev", "fine for staging", 2 * S)
            .unwrap();
        // The strict rule asks: a request of its own, the lenient grant untouched.
        let Resolution::Pending {
            id: strict_id,
            created: true,
        } = a.resolve(&pay, &strict, 3 * S).unwrap()
        else {
            panic!("the grant for another rule must not lift this one")
        };
        assert_ne!(strict_id, id);
        assert_eq!(
            a.get(&strict_id, 3 * S).unwrap().unwrap().reason,
            "production payments need the CFO"
        );
        assert_eq!(
            a.get(&id, 3 * S).unwrap().unwrap().status,
            ApprovalStatus::Approved
        );
        // The lenient rule asking again uses its own grant.
        assert!(matches!(
            a.resolve(&pay, &lenient, 4 * S).unwrap(),
            Resolution::Granted(g) if g.id == id
        ));
    }

    #[test]
    fn one_agent_cannot_crowd_out_the_others() {
        let (_d, a) = open();
        for i in 0..MAX_PENDING_PER_AGENT {
            let act = Action::new("pay").with_agent("greedy").with_arg("n", i);
            assert!(a.resolve(&act, &needs_approval(), S).is_ok());
        }
        let more = Action::new("pay").with_agent("greedy").with_arg("n", -1);
        let e = a.resolve(&more, &needs_approval(), S).unwrap_err();
        assert!(e.to_string().contains("already has 100"), "{e}");
        // Asking again for one it already has still returns it; others are not affected.
        let again = Action::new("pay").with_agent("greedy").with_arg("n", 3);
        assert!(matches!(
            a.resolve(&again, &needs_approval(), S).unwrap(),
            Resolution::Pending { created: false, .. }
        ));
        let other = Action::new("pay").with_agent("modest");
        assert!(a.resolve(&other, &needs_approval(), S).is_ok());
        // Expired requests no longer count.
        assert!(a.resolve(&more, &needs_approval(), 120 * S).is_ok());
    }

    /// Red team: the per-agent cap counts the agent *name*, which an agent chooses unless
    /// identity is verified: 100 made-up names × 100 requests reached the global cap, and
    /// then every other agent's `require_approval` was a deny until they expired. Agents
    /// without a verified identity now share half the table; verified agents (DIDs) keep
    /// the other half. (Among unverified agents the crowding remains: their names are
    /// claims. docs/approvals.md says so.)
    #[test]
    fn made_up_agent_names_cannot_crowd_out_verified_agents() {
        let (_d, a) = open();
        let per = MAX_PENDING_PER_AGENT;
        for n in 0..MAX_PENDING / per {
            for i in 0..per {
                let act = Action::new("pay")
                    .with_agent(format!("sock-{n}"))
                    .with_arg("n", i);
                let _ = a.resolve(&act, &needs_approval(), S);
            }
        }
        let waiting = a.list(None, usize::MAX, 2 * S).unwrap().len() as u64;
        assert_eq!(
            waiting, MAX_PENDING_UNVERIFIED,
            "made-up names stop at their half"
        );
        let verified = Action::new("pay").with_agent("did:key:z6Mkhonest");
        assert!(
            a.resolve(&verified, &needs_approval(), 2 * S).is_ok(),
            "one caller with made-up names denied a verified agent's approval request"
        );
        let another = Action::new("pay").with_agent("sock-new");
        assert!(a.resolve(&another, &needs_approval(), 2 * S).is_err());
    }

    /// Red team: only *pending* requests are capped; answered, used and expired rows are
    /// never removed, so one agent asking 100 times per TTL grows the table without bound
    /// (9,600 rows a day at the default TTL), and each new request counts the pending ones
    /// with a full scan of it while holding the database's write lock (which the audit log's
    /// appends wait on). Rows settled more than a day ago should go (the audit log keeps
    /// the history).
    #[test]
    fn settled_requests_do_not_pile_up_without_bound() {
        let (_d, a) = open();
        const DAY: u64 = 24 * 3600 * S;
        for round in 0..3 {
            // Each round days after the previous one's requests expired (ttl 60 s).
            let now = S + round * 2 * DAY;
            for i in 0..MAX_PENDING_PER_AGENT {
                let act = Action::new("pay").with_agent("bot").with_arg("n", i);
                a.resolve(&act, &needs_approval(), now).unwrap();
            }
        }
        let rows = a.list(None, usize::MAX, u64::MAX).unwrap().len() as u64;
        assert!(
            rows <= MAX_PENDING_PER_AGENT,
            "{rows} approval rows kept, though all but {MAX_PENDING_PER_AGENT} expired days ago"
        );
    }

    /// Red team: with a buffered audit log (`warden serve --audit-mode buffered`) the
    /// answer's record was only queued when the answer was committed: a crash within the
    /// flush interval left an approval with no record of who gave it.
    #[test]
    fn an_answer_is_given_only_once_its_record_is_committed_even_when_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let mut config = warden_audit::AuditConfig::default();
        config.mode = warden_audit::Mode::Buffered;
        config.flush_interval = Duration::from_secs(3600);
        let log = warden_audit::AuditLog::open(&db, config).unwrap();
        let a = Approvals::open(&db, DEFAULT_TTL).unwrap();
        let act = Action::new("deploy").with_agent("bot");
        let Resolution::Pending { id, .. } = a.resolve(&act, &needs_approval(), S).unwrap() else {
            panic!()
        };
        let alice = crate::Operator::new("alice", "test");
        a.answer_recorded(&id, true, &alice, "go", Some(&log), 2 * S)
            .unwrap();
        // Read as another process would (the log still open, nothing flushed by hand).
        let records = warden_audit::query(&db, &warden_audit::Filter::default()).unwrap();
        assert!(
            records
                .iter()
                .any(|r| r.action == "warden.approval.approve"),
            "the approval is committed, its record is not: {records:?}"
        );
    }

    /// Red team: `answer_recorded` reads the status, writes the record, then answers. Two
    /// operators answering at once (one approves, one denies, in two processes) both pass the
    /// read and both records are written, though only one answer is given: the log then says
    /// a request was approved by one person and denied by another.
    #[test]
    fn two_operators_answering_at_once_leave_one_answer_record() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let a = Approvals::open(&db, DEFAULT_TTL).unwrap();
        let ids: Vec<String> = (0..20)
            .map(|i| {
                let act = Action::new("deploy").with_agent("bot").with_arg("n", i);
                match a.resolve(&act, &needs_approval(), S).unwrap() {
                    Resolution::Pending { id, .. } => id,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        let given: usize = std::thread::scope(|s| {
            let handles: Vec<_> = [true, false]
                .into_iter()
                .map(|approve| {
                    let (db, ids) = (db.clone(), ids.clone());
                    s.spawn(move || {
                        let mine = Approvals::open(&db, DEFAULT_TTL).unwrap();
                        let log =
                            warden_audit::AuditLog::open(&db, warden_audit::AuditConfig::default())
                                .unwrap();
                        let who = crate::Operator::new(if approve { "alice" } else { "bob" }, "t");
                        ids.iter()
                            .filter(|id| {
                                mine.answer_recorded(id, approve, &who, "r", Some(&log), 2 * S)
                                    .is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(given, ids.len(), "each request is answered once");
        let records = warden_audit::query(&db, &warden_audit::Filter::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.action.starts_with("warden.approval."))
            .count();
        assert_eq!(records, given, "answer records for answers never given");
    }

    #[test]
    fn the_context_is_not_part_of_the_action_but_everything_else_is() {
        let base = Action::new("x").with_agent("a").with_arg("k", 1);
        let (_, h) = Approvals::canonical(&base);
        let (_, h_ctx) = Approvals::canonical(&base.clone().with_context("session", "s2"));
        assert_eq!(h, h_ctx);
        for changed in [
            base.clone().with_agent("b"),
            base.clone().with_arg("k", 2),
            base.clone().with_resource("r"),
            base.clone().with_tool("t"),
            Action::new("y").with_agent("a").with_arg("k", 1),
        ] {
            assert_ne!(Approvals::canonical(&changed).1, h);
        }
    }

    #[test]
    fn a_grant_is_used_by_one_of_two_processes_asking_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let a = Approvals::open(&db, DEFAULT_TTL).unwrap();
        let act = Action::new("deploy").with_agent("bot");
        let Resolution::Pending { id, .. } = a.resolve(&act, &needs_approval(), S).unwrap() else {
            panic!()
        };
        a.answer(&id, true, "alice", "go", 2 * S).unwrap();
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let db = db.clone();
                    let act = act.clone();
                    s.spawn(move || {
                        let mine = Approvals::open(&db, DEFAULT_TTL).unwrap();
                        matches!(
                            mine.resolve(&act, &needs_approval(), 3 * S).unwrap(),
                            Resolution::Granted(_)
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter(|_| true)
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(granted, 1);
    }
}
