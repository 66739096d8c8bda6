//! The exit codes, in one place. Stable and documented in the README.

use std::process::ExitCode;

use warden::Verdict;

/// How the `warden` process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: allowed, or the command succeeded (valid, intact, clean).
    Ok,
    /// 1: denied, a policy test case did not match, the log is tampered, a scan found
    /// something at or above `--fail-on`.
    Failed,
    /// 2: usage error, invalid input or policy, or anything else that went wrong. Never 0.
    Error,
    /// 3: a person must approve the action first.
    Approval,
    /// The exit code of the program Warden ran for the user (the MCP server behind the
    /// stdio proxy), passed through.
    Child(u8),
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Error => 2,
            Exit::Approval => 3,
            Exit::Child(code) => code,
        }
    }
}

impl From<Verdict> for Exit {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Allow => Exit::Ok,
            Verdict::Deny => Exit::Failed,
            Verdict::RequireApproval => Exit::Approval,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_codes_are_stable() {
        assert_eq!(Exit::from(Verdict::Allow).code(), 0);
        assert_eq!(Exit::from(Verdict::Deny).code(), 1);
        assert_eq!(Exit::from(Verdict::RequireApproval).code(), 3);
        assert_eq!(Exit::Error.code(), 2);
    }
}
