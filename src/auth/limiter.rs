//! Failed-login rate limiting, per user name and per client address.
//!
//! Password guessing is slowed two ways: a user name that failed `per_user` times within the
//! window is refused (whoever asks), and so is a client address that failed `per_address`
//! times (whatever name it tries). An attempt counts as a failure from the moment it starts
//! and is forgiven when it succeeds, so a burst of parallel guesses cannot all slip through
//! before the first one is counted. Pure logic: the caller passes `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most tracked names and addresses; beyond it, expired entries are swept, and when none has
/// expired new keys are refused (a flood of distinct names cannot exhaust memory).
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    failures: u32,
}

/// Counts failed logins in fixed windows.
#[derive(Debug)]
pub struct LoginLimiter {
    per_user: u32,
    per_address: u32,
    window: Duration,
    counts: Mutex<HashMap<Key, Window>>,
}

/// The attempt is refused; try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl LoginLimiter {
    pub fn new(per_user: u32, per_address: u32, window: Duration) -> Self {
        Self {
            per_user: per_user.max(1),
            per_address: per_address.max(1),
            window: window.max(Duration::from_secs(1)),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an attempt: refused when the user or the address is over its limit, else
    /// counted as a failure until [`LoginLimiter::succeeded`] forgives it.
    pub fn begin(&self, user: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys = vec![(Key::User(user.to_owned()), self.per_user)];
        if let Some(a) = address {
            keys.push((Key::Address(a), self.per_address));
        }
        let mut retry_after = None;
        for (key, limit) in &keys {
            if let Some(w) = counts.get(key) {
                let age = now.saturating_duration_since(w.start);
                if age < self.window && w.failures >= *limit {
                    let left = self.window - age;
                    retry_after = Some(retry_after.map_or(left, |r: Duration| r.max(left)));
                }
            }
        }
        if let Some(retry_after) = retry_after {
            return Err(Limited { retry_after });
        }
        if counts.len() + keys.len() > MAX_KEYS {
            let window = self.window;
            counts.retain(|_, w| now.saturating_duration_since(w.start) < window);
            if counts.len() + keys.len() > MAX_KEYS {
                return Err(Limited {
                    retry_after: self.window,
                });
            }
        }
        for (key, _) in keys {
            let w = counts.entry(key).or_insert(Window {
                start: now,
                failures: 0,
            });
            if now.saturating_duration_since(w.start) >= self.window {
                *w = Window {
                    start: now,
                    failures: 0,
                };
            }
            w.failures += 1;
        }
        Ok(())
    }

    /// The attempt begun for `user` from `address` succeeded: the user's failures are
    /// forgiven, and this attempt no longer counts against the address (its earlier failures
    /// still do: one valid account must not reset the limit for guessing others).
    pub fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(&Key::User(user.to_owned()));
        if let Some(w) = address.and_then(|a| counts.get_mut(&Key::Address(a))) {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn a_user_is_locked_after_its_failures_until_the_window_passes() {
        let l = LoginLimiter::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            l.begin("admin", ip("10.0.0.1"), t0).unwrap();
        }
        // From another address too: the name is locked.
        let err = l.begin("admin", ip("10.0.0.2"), t0).unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(60));
        let err = l
            .begin("admin", ip("10.0.0.2"), t0 + Duration::from_secs(45))
            .unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(15));
        // Another user is not.
        l.begin("op1", ip("10.0.0.2"), t0).unwrap();
        l.begin("admin", ip("10.0.0.2"), t0 + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn an_address_is_locked_whatever_name_it_tries() {
        let l = LoginLimiter::new(100, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for n in 0..4 {
            l.begin(&format!("user{n}"), ip("10.0.0.9"), t0).unwrap();
        }
        assert!(l.begin("user9", ip("10.0.0.9"), t0).is_err());
        assert!(l.begin("user9", ip("10.0.0.8"), t0).is_ok());
    }

    #[test]
    fn success_forgives_the_user_but_not_the_addresses_earlier_failures() {
        let l = LoginLimiter::new(2, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        l.begin("admin", ip("10.0.0.1"), t0).unwrap();
        l.begin("admin", ip("10.0.0.1"), t0).unwrap();
        l.succeeded("admin", ip("10.0.0.1"));
        // The user's count is gone; the address keeps one failure.
        l.begin("admin", ip("10.0.0.1"), t0).unwrap();
        l.begin("other", ip("10.0.0.1"), t0).unwrap();
        assert!(l.begin("third", ip("10.0.0.1"), t0).is_err());
    }

    #[test]
    fn successful_logins_never_lock_anyone() {
        let l = LoginLimiter::new(2, 2, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..50 {
            l.begin("admin", ip("10.0.0.1"), t0).unwrap();
            l.succeeded("admin", ip("10.0.0.1"));
        }
    }
}
