//! The boxed program's stdout and stderr, relayed through pipes up to a cap.
//!
//! Why pipes and not the terminal itself: a program that writes without end would fill a
//! disk or a log; past `--max-output` bytes on a stream the rest is read and dropped (so the
//! program never blocks on a full pipe) and counted, and `warden exec` says so afterwards.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// What was relayed of one stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct Relayed {
    /// Bytes passed on.
    pub kept: u64,
    /// Bytes dropped past the cap.
    pub dropped: u64,
}

/// A stream being relayed on its own thread.
#[derive(Debug)]
pub struct Relay {
    done: mpsc::Receiver<Relayed>,
}

impl Relay {
    /// Relay `from` into `to`, passing at most `cap` bytes.
    pub fn start(
        name: &str,
        mut from: impl Read + Send + 'static,
        mut to: impl Write + Send + 'static,
        cap: u64,
    ) -> Relay {
        let (tx, done) = mpsc::channel();
        let _ = std::thread::Builder::new()
            .name(format!("warden-relay-{name}"))
            .spawn(move || {
                let mut seen = Relayed::default();
                let mut open = true;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let room = usize::try_from(cap.saturating_sub(seen.kept)).unwrap_or(usize::MAX);
                    let keep = n.min(room);
                    if keep > 0 && open {
                        // A closed stdout on our side (`| head`) stops passing, not reading.
                        open = to.write_all(&buf[..keep]).and_then(|()| to.flush()).is_ok();
                    }
                    seen.kept += keep as u64;
                    seen.dropped += (n - keep) as u64;
                }
                let _ = tx.send(seen);
            });
        Relay { done }
    }

    /// What was relayed, once the stream ended (`None`: it did not end within `wait`, as when
    /// a process outside Warden's reach still holds the pipe).
    pub fn finish(self, wait: Duration) -> Option<Relayed> {
        self.done.recv_timeout(wait).ok()
    }
}
