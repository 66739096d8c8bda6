//! Where a saga and its steps stand, as the journal writes them, and the clock it writes with.

use serde::Serialize;

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Its steps are running.
    Running,
    /// A step failed; earlier steps are being undone.
    Compensating,
    /// Every step succeeded.
    Completed,
    /// A step failed and everything that may have taken effect was undone.
    Compensated,
    /// A compensation kept failing: a person must look (`warden saga resume ID` retries).
    Escalated,
}

impl SagaStatus {
    /// The name in the journal and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Compensating => "compensating",
            SagaStatus::Completed => "completed",
            SagaStatus::Compensated => "compensated",
            SagaStatus::Escalated => "escalated",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => SagaStatus::Running,
            "compensating" => SagaStatus::Compensating,
            "completed" => SagaStatus::Completed,
            "compensated" => SagaStatus::Compensated,
            "escalated" => SagaStatus::Escalated,
            _ => return None,
        })
    }

    /// Whether nothing more will happen without a person.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Escalated
        )
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt is running (or was, when its runner died).
    Running,
    /// It succeeded.
    Done,
    /// It failed without taking effect (denied, or exited with an error): nothing to undo.
    Failed,
    /// It was cut off (timeout, kill switch, crash) and may have taken effect.
    Interrupted,
    /// Its compensation is running (or was, when its runner died).
    Compensating,
    /// Its compensation succeeded.
    Compensated,
    /// Its compensation kept failing.
    CompensationFailed,
}

impl StepStatus {
    /// The name in the journal and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Interrupted => "interrupted",
            StepStatus::Compensating => "compensating",
            StepStatus::Compensated => "compensated",
            StepStatus::CompensationFailed => "compensation_failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => StepStatus::Pending,
            "running" => StepStatus::Running,
            "done" => StepStatus::Done,
            "failed" => StepStatus::Failed,
            "interrupted" => StepStatus::Interrupted,
            "compensating" => StepStatus::Compensating,
            "compensated" => StepStatus::Compensated,
            "compensation_failed" => StepStatus::CompensationFailed,
            _ => return None,
        })
    }

    /// Whether the step may have changed something that its compensation must undo.
    pub(crate) fn may_have_taken_effect(self) -> bool {
        matches!(
            self,
            StepStatus::Done
                | StepStatus::Running
                | StepStatus::Interrupted
                | StepStatus::Compensating
                | StepStatus::CompensationFailed
        )
    }
}

/// Nanoseconds since the epoch, now (0 if the clock is before 1970).
pub(crate) fn now_ns() -> u64 {
    warden_audit::Timestamp::now_unix_ns()
}
