//! Dashboard sessions: an operator logs in once with the operator token and the browser then
//! holds a session cookie instead of the token.
//!
//! - The session id is 32 random bytes from the operating system, sent only as an
//!   `HttpOnly; SameSite=Strict; Path=/` cookie (plus `Secure` behind a TLS proxy), so page
//!   scripts never see it and no other site's request carries it.
//! - Each session has its own CSRF token, also random, which the dashboard's script receives
//!   in the login answer and sends back in the `X-Warden-CSRF` header on every API call. A
//!   cookie alone never authorizes anything but the read-only event stream.
//! - Sessions live in this process only (a restart logs everyone out), expire after a fixed
//!   time, and are bounded in number: a new login past [`MAX_SESSIONS`] evicts the one closest
//!   to expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "warden_session";
/// The header the dashboard's script sends its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-warden-csrf";
/// Sessions kept at once.
pub(crate) const MAX_SESSIONS: usize = 64;
/// Failed logins accepted per [`FAILURE_WINDOW`]; beyond, logins are refused until the
/// window ends, so a weak operator token cannot be guessed at network speed.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window failed logins are counted in.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

struct Session {
    csrf: String,
    expires: Instant,
}

/// The sessions of this server.
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    /// Failed logins in the current window, and when it started.
    failures: Mutex<(u32, Instant)>,
}

/// A new session's secrets.
pub(crate) struct NewSession {
    pub id: String,
    pub csrf: String,
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(warden_audit::to_hex(&bytes))
}

impl Sessions {
    pub(crate) fn new(ttl: Duration) -> Self {
        Sessions {
            live: Mutex::new(HashMap::new()),
            ttl,
            failures: Mutex::new((0, Instant::now())),
        }
    }

    /// Whether a login may be tried now (fewer than [`MAX_FAILURES`] failed in the window).
    pub(crate) fn may_try(&self) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.1.elapsed() >= FAILURE_WINDOW {
            *f = (0, Instant::now());
        }
        f.0 < MAX_FAILURES
    }

    /// Count a failed login.
    pub(crate) fn failed(&self) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.1.elapsed() >= FAILURE_WINDOW {
            *f = (0, Instant::now());
        }
        f.0 = f.0.saturating_add(1);
    }

    /// How long a session lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a session. Fails only when the OS has no randomness to give.
    pub(crate) fn create(&self) -> Result<NewSession, getrandom::Error> {
        let new = NewSession {
            id: random_hex()?,
            csrf: random_hex()?,
        };
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            new.id.clone(),
            Session {
                csrf: new.csrf.clone(),
                expires: now + self.ttl,
            },
        );
        Ok(new)
    }

    /// The CSRF token of the live session `id`.
    fn csrf_of(&self, id: &str) -> Option<String> {
        let mut live = self.lock();
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.csrf.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// End the session `id`.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Sessions alive now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// What the request's cookie and CSRF header amount to.
    pub(crate) fn check(&self, headers: &HeaderMap) -> SessionCheck {
        let Some(id) = cookie(headers, COOKIE) else {
            return SessionCheck::None;
        };
        let Some(csrf) = self.csrf_of(id) else {
            return SessionCheck::Expired;
        };
        let given = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if bool::from(given.ct_eq(csrf.as_bytes())) {
            SessionCheck::Valid {
                id: id.to_string(),
                csrf_ok: true,
            }
        } else {
            SessionCheck::Valid {
                id: id.to_string(),
                csrf_ok: false,
            }
        }
    }

    /// The live session's CSRF token, for a page that reloads (cookie only).
    pub(crate) fn csrf_for_cookie(&self, headers: &HeaderMap) -> Option<String> {
        cookie(headers, COOKIE).and_then(|id| self.csrf_of(id))
    }
}

/// The outcome of [`Sessions::check`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionCheck {
    /// No session cookie was sent.
    None,
    /// A cookie was sent, but names no live session (expired, logged out, restarted).
    Expired,
    /// A live session; `csrf_ok` says whether the CSRF header matched it.
    Valid { id: String, csrf_ok: bool },
}

/// The value of cookie `name` from the `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value that starts a session.
pub(crate) fn set_cookie(id: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends one.
pub(crate) fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookie: Option<&str>, csrf: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(c) = csrf {
            h.insert(CSRF_HEADER, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn a_session_needs_its_own_csrf_token() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.create().unwrap();
        let b = s.create().unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.id.len(), 64);
        let cookie = format!("other=1; {COOKIE}={}", a.id);
        assert_eq!(
            s.check(&headers(Some(&cookie), Some(&a.csrf))),
            SessionCheck::Valid {
                id: a.id.clone(),
                csrf_ok: true
            }
        );
        for wrong in [None, Some(b.csrf.as_str()), Some(""), Some(&a.csrf[..63])] {
            assert_eq!(
                s.check(&headers(Some(&cookie), wrong)),
                SessionCheck::Valid {
                    id: a.id.clone(),
                    csrf_ok: false
                }
            );
        }
        assert_eq!(s.check(&headers(None, Some(&a.csrf))), SessionCheck::None);
        let forged = format!("{COOKIE}={}", "0".repeat(64));
        assert_eq!(
            s.check(&headers(Some(&forged), Some(&a.csrf))),
            SessionCheck::Expired
        );
        s.remove(&a.id);
        assert_eq!(
            s.check(&headers(Some(&cookie), Some(&a.csrf))),
            SessionCheck::Expired
        );
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = Sessions::new(Duration::ZERO);
        let a = s.create().unwrap();
        let cookie = format!("{COOKIE}={}", a.id);
        assert_eq!(
            s.check(&headers(Some(&cookie), Some(&a.csrf))),
            SessionCheck::Expired
        );
        let s = Sessions::new(Duration::from_secs(60));
        for _ in 0..MAX_SESSIONS * 2 {
            s.create().unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

    #[test]
    fn failed_logins_are_bounded() {
        let s = Sessions::new(Duration::from_secs(60));
        for _ in 0..MAX_FAILURES {
            assert!(s.may_try());
            s.failed();
        }
        assert!(!s.may_try());
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let c = set_cookie("abc", Duration::from_secs(60), false);
        assert_eq!(
            c,
            "warden_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert!(set_cookie("abc", Duration::from_secs(60), true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
