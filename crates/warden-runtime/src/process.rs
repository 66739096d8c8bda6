//! Processes Warden runs for an agent (the MCP server behind `warden mcp proxy`, and
//! `warden exec` children), terminated when a kill switch stops that agent: SIGTERM, then
//! SIGKILL if it is still running after the grace period.
//!
//! Why the process is owned here: a signal sent by process id after the child was reaped
//! could hit an unrelated process that got the same id. [`Supervised`] holds the `Child`,
//! reaps it only through its own `try_wait`, and signals only while it has not reaped it,
//! all under one lock — so the id is always still ours.

use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How often a waiting caller or a terminator looks at the child.
const POLL: Duration = Duration::from_millis(10);

/// A child process the kill switch can terminate.
#[derive(Debug, Clone)]
pub struct Supervised {
    inner: Arc<SupervisedInner>,
}

#[derive(Debug)]
pub(crate) struct SupervisedInner {
    child: Mutex<Child>,
    pid: u32,
    agent: Option<String>,
    grace: Duration,
    terminating: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Supervised {
    /// Supervise `child`, run for `agent` (`None`: only a fleet-wide kill stops it).
    pub fn new(child: Child, agent: Option<&str>, grace: Duration) -> Self {
        let pid = child.id();
        Supervised {
            inner: Arc::new(SupervisedInner {
                child: Mutex::new(child),
                pid,
                agent: agent.map(str::to_string),
                grace,
                terminating: AtomicBool::new(false),
                why: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<SupervisedInner> {
        &self.inner
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Wait for the process to end.
    pub fn wait(&self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
    }

    /// The exit status, if it has ended.
    pub fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        self.inner.lock().try_wait()
    }

    /// Kill it now (SIGKILL), as when its user is gone.
    pub fn kill(&self) {
        let mut child = self.inner.lock();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
    }

    /// Terminate it: SIGTERM now, SIGKILL after the grace period (on another thread).
    pub fn terminate(&self, why: impl Into<String>) {
        SupervisedInner::terminate(&self.inner, why.into());
    }

    /// Why the kill switch terminated it, if it did.
    pub fn terminated_because(&self) -> Option<String> {
        self.inner
            .why
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl SupervisedInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    pub(crate) fn terminate(this: &Arc<SupervisedInner>, why: String) {
        if this.terminating.swap(true, Ordering::SeqCst) {
            return;
        }
        *this
            .why
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.clone());
        tracing::warn!("terminating process {} ({why})", this.pid);
        {
            let mut child = this.lock();
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            if let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(this.pid).unwrap_or(0))
            {
                // INVARIANT: the child is not reaped (checked under this lock), so the id is ours.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let this = this.clone();
        let _ = std::thread::Builder::new()
            .name("warden-terminate".into())
            .spawn(move || {
                let deadline = Instant::now() + this.grace;
                loop {
                    {
                        let mut child = this.lock();
                        if !matches!(child.try_wait(), Ok(None)) {
                            return;
                        }
                        if Instant::now() >= deadline {
                            tracing::warn!("process {} ignored SIGTERM; sending SIGKILL", this.pid);
                            let _ = child.kill();
                            return;
                        }
                    }
                    std::thread::sleep(POLL);
                }
            });
    }
}
