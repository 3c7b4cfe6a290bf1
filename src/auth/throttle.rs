//! Login throttling: slows password guessing without letting anyone lock a real user out.
//!
//! Failures are counted under three keys, each with its own allowance; past it, the next
//! attempt under that key has to wait, twice as long after each further failure, from
//! `login_delay` up to `login_max_delay` — a wait, never a lock (issue 24: five wrong
//! passwords used to lock any account, admin included, from anywhere, for 15 minutes).
//!
//! - **user × origin** (allowance `login_free_failures`): the origin is the browser the user
//!   signed in from before, when the attempt presents that browser's device token
//!   ([`super::identity`]), else the client address. Guessing a user's password from one
//!   address slows that address for that user only: the user signs in from anywhere else, and
//!   from their own browser even behind the same address.
//! - **address** (`login_failures_per_address`), across names: password spraying from one
//!   address. Counted and applied only for attempts from no known browser, so a NAT'd control
//!   room (many users, one address), whose users signed in before on their consoles, never
//!   slows itself.
//! - **user** (`login_failures_per_user`), across addresses: guessing spread over many
//!   addresses. Also only for attempts from no known browser.
//!
//! An attempt counts as a failure from the moment it starts and is forgiven when it succeeds
//! (with the user's earlier failures from the same origin, on every key), so parallel guesses
//! cannot slip through before the first is counted, and a room whose users mistype and then
//! sign in never adds up to the address's allowance. Failures are forgotten
//! `login_window` after the last one; an admin clears any key at once ([`LoginThrottle::unlock`]).
//! Pure logic: the caller passes `now`.

use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most tracked keys; beyond it expired ones are swept, and when none has expired, attempts
/// from no known browser that need a new key are refused (a flood of distinct names cannot
/// exhaust memory; users on their known browsers still get in).
const MAX_KEYS: usize = 100_000;
/// Most entries [`LoginThrottle::list`] returns.
const MAX_LISTED: usize = 500;

/// The settings (from `[auth]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub delay: Duration,
    pub max_delay: Duration,
    pub per_address: u32,
    pub per_user: u32,
    pub window: Duration,
}

impl From<&super::AuthConfig> for ThrottleConfig {
    fn from(c: &super::AuthConfig) -> Self {
        Self {
            free_failures: c.login_free_failures,
            delay: c.login_delay,
            max_delay: c.login_max_delay,
            per_address: c.login_failures_per_address,
            per_user: c.login_failures_per_user,
            window: c.login_window,
        }
    }
}

/// The second half of a user × origin key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// A browser the user signed in from before (its device id).
    Device(String),
    Address(IpAddr),
    /// Neither (no peer address: never over TCP).
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pair { user: String, origin: Origin },
    Address(IpAddr),
    User(String),
}

/// Which key slowed an attempt (metrics label `key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The user from this address or browser.
    Pair,
    /// The address, across names.
    Address,
    /// The user, across addresses.
    User,
    /// The throttle's table is full (a flood of distinct names).
    Full,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pair => "pair",
            Kind::Address => "address",
            Kind::User => "user",
            Kind::Full => "full",
        }
    }
}

impl Key {
    fn kind(&self) -> Kind {
        match self {
            Key::Pair { .. } => Kind::Pair,
            Key::Address(_) => Kind::Address,
            Key::User(_) => Kind::User,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Count {
    failures: u32,
    last: Instant,
}

/// The attempt has to wait this long; `by` says which key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub by: Kind,
}

/// An attempt under way (from [`LoginThrottle::begin`]): hand it back to
/// [`LoginThrottle::succeeded`] when the password was right.
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    keys: Vec<Key>,
    /// Should this attempt fail, the key it makes wait for the first time (and how long):
    /// what the audit log records as the start of throttling.
    pub starts_waiting: Option<(Kind, Duration)>,
}

/// One counted key, as an admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThrottleView {
    pub key: Kind,
    /// The user name (user × origin and user keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client address (user × address and address keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A user × browser key (the browser's device id is not shown).
    pub known_browser: bool,
    /// The name tried is no user's: not shown (it may be a password typed into the name
    /// field), and the key is cleared by its address.
    pub unknown_user: bool,
    pub failures: u32,
    /// How long the next attempt under this key waits (0: none).
    pub retry_after_ms: u64,
    /// Milliseconds since the last failure.
    pub last_failure_ms_ago: u64,
}

/// Counts failed logins and says how long the next attempt has to wait (see the module doc).
#[derive(Debug)]
pub struct LoginThrottle {
    cfg: ThrottleConfig,
    counts: Mutex<HashMap<Key, Count>>,
}

impl LoginThrottle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg: ThrottleConfig {
                delay: cfg.delay.max(Duration::from_millis(1)),
                max_delay: cfg.max_delay.max(cfg.delay),
                window: cfg.window.max(cfg.max_delay),
                ..cfg
            },
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn allowance(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Pair => self.cfg.free_failures,
            Kind::Address => self.cfg.per_address,
            Kind::User => self.cfg.per_user,
            Kind::Full => 0,
        }
    }

    /// The wait after the `n`th failure beyond the allowance (n ≥ 1).
    fn delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.cfg
            .delay
            .saturating_mul(1u32 << doublings)
            .min(self.cfg.max_delay)
    }

    /// How long an attempt under a key of `kind` with `c` waits from `now` (zero: none).
    fn wait(&self, kind: Kind, c: &Count, now: Instant) -> Duration {
        let allowance = self.allowance(kind).max(1);
        if c.failures < allowance {
            return Duration::ZERO;
        }
        let until = c.last + self.delay(c.failures - allowance + 1);
        until.saturating_duration_since(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Count>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an attempt for `user` from `address`, or from the known browser `device` (its
    /// device id: the caller checked the device token). Refused while a key waits; else
    /// counted as a failure of every key until [`LoginThrottle::succeeded`].
    pub fn begin(
        &self,
        user: &str,
        address: Option<IpAddr>,
        device: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let origin = match (device, address) {
            (Some(d), _) => Origin::Device(d.to_owned()),
            (None, Some(a)) => Origin::Address(a),
            (None, None) => Origin::Unknown,
        };
        let mut keys = vec![Key::Pair {
            user: user.to_owned(),
            origin,
        }];
        if device.is_none() {
            if let Some(a) = address {
                keys.push(Key::Address(a));
            }
            keys.push(Key::User(user.to_owned()));
        }
        let window = self.cfg.window;
        let mut counts = self.lock();
        let mut refused: Option<Throttled> = None;
        for key in &keys {
            let Some(c) = counts.get(key) else { continue };
            if now.saturating_duration_since(c.last) >= window {
                counts.remove(key);
                continue;
            }
            let wait = self.wait(key.kind(), c, now);
            if !wait.is_zero() && refused.is_none_or(|r| wait > r.retry_after) {
                refused = Some(Throttled {
                    retry_after: wait,
                    by: key.kind(),
                });
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        let new_keys = keys.iter().filter(|k| !counts.contains_key(k)).count();
        if counts.len() + new_keys > MAX_KEYS {
            counts.retain(|_, c| now.saturating_duration_since(c.last) < window);
            if counts.len() + new_keys > MAX_KEYS && device.is_none() {
                return Err(Throttled {
                    retry_after: self.cfg.delay,
                    by: Kind::Full,
                });
            }
        }
        let mut starts_waiting = None;
        for key in &keys {
            let c = counts.entry(key.clone()).or_insert(Count {
                failures: 0,
                last: now,
            });
            c.failures = c.failures.saturating_add(1);
            c.last = now;
            let allowance = self.allowance(key.kind()).max(1);
            if c.failures == allowance && starts_waiting.is_none() {
                starts_waiting = Some((key.kind(), self.delay(1)));
            }
        }
        Ok(Attempt {
            keys,
            starts_waiting,
        })
    }

    /// The password was right: the user × origin key is cleared, and the failures it held
    /// (this attempt's among them) are forgiven on the address and user keys too — a user who
    /// mistyped and then signed in leaves nothing behind. Other names' failures from the
    /// address still count: one valid account must not reset the allowance for guessing
    /// others.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut counts = self.lock();
        let mut forgiven = 1;
        for key in attempt.keys {
            if key.kind() == Kind::Pair {
                if let Some(c) = counts.remove(&key) {
                    forgiven = c.failures.max(1);
                }
            } else if let Some(c) = counts.get_mut(&key) {
                c.failures = c.failures.saturating_sub(forgiven);
                if c.failures == 0 {
                    counts.remove(&key);
                }
            }
        }
    }

    /// Clears what an admin names: with a user and an address, that user from that address;
    /// with a user only, the user's every key (from any address or browser, and across
    /// addresses); with an address only, the address's every key. How many were cleared.
    pub fn unlock(&self, user: Option<&str>, address: Option<IpAddr>) -> usize {
        let mut counts = self.lock();
        let before = counts.len();
        counts.retain(|key, _| {
            let hit = match (user, address) {
                (Some(u), Some(a)) => {
                    matches!(key, Key::Pair { user, origin: Origin::Address(x) } if user == u && *x == a)
                }
                (Some(u), None) => match key {
                    Key::Pair { user, .. } | Key::User(user) => user == u,
                    Key::Address(_) => false,
                },
                (None, Some(a)) => match key {
                    Key::Pair {
                        origin: Origin::Address(x),
                        ..
                    }
                    | Key::Address(x) => *x == a,
                    _ => false,
                },
                (None, None) => false,
            };
            !hit
        });
        before - counts.len()
    }

    /// The keys with failures not yet forgotten, those waiting longest first (at most 500).
    pub fn list(&self, now: Instant) -> Vec<ThrottleView> {
        let window = self.cfg.window;
        let counts = self.lock();
        let mut out: Vec<ThrottleView> = counts
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last) < window)
            .map(|(key, c)| {
                let (user, address, known_browser) = match key {
                    Key::Pair { user, origin } => (
                        Some(user.clone()),
                        match origin {
                            Origin::Address(a) => Some(a.to_string()),
                            _ => None,
                        },
                        matches!(origin, Origin::Device(_)),
                    ),
                    Key::Address(a) => (None, Some(a.to_string()), false),
                    Key::User(u) => (Some(u.clone()), None, false),
                };
                ThrottleView {
                    key: key.kind(),
                    user,
                    address,
                    known_browser,
                    unknown_user: false,
                    failures: c.failures,
                    retry_after_ms: millis(self.wait(key.kind(), c, now)),
                    last_failure_ms_ago: millis(now.saturating_duration_since(c.last)),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (b.retry_after_ms, b.failures, &a.user, &a.address).cmp(&(
                a.retry_after_ms,
                a.failures,
                &b.user,
                &b.address,
            ))
        });
        out.truncate(MAX_LISTED);
        out
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn throttle(free: u32, per_address: u32, per_user: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            free_failures: free,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            per_address,
            per_user,
            window: Duration::from_secs(900),
        })
    }

    fn fail(t: &LoginThrottle, user: &str, from: &str, now: Instant) -> Attempt {
        t.begin(user, ip(from), None, now).unwrap()
    }

    #[test]
    fn failures_past_the_allowance_wait_longer_each_time_and_never_lock() {
        let t = throttle(3, 100, 100);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(fail(&t, "admin", "10.0.0.1", t0).starts_waiting, None);
        }
        // The third failure starts the waiting.
        let third = fail(&t, "admin", "10.0.0.1", t0);
        assert_eq!(
            third.starts_waiting,
            Some((Kind::Pair, Duration::from_secs(1)))
        );
        let err = t.begin("admin", ip("10.0.0.1"), None, t0).unwrap_err();
        assert_eq!(
            err,
            Throttled {
                retry_after: Duration::from_secs(1),
                by: Kind::Pair
            }
        );
        // Each further failure doubles the wait: 1 s, 2 s, 4 s ... up to the maximum.
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            let wait = t
                .begin("admin", ip("10.0.0.1"), None, now)
                .map(|_| Duration::ZERO)
                .unwrap_or_else(|e| e.retry_after);
            now += wait;
            waits.push(wait.as_secs());
            let _ = fail(&t, "admin", "10.0.0.1", now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // The right password after the wait clears the pair at once.
        now += Duration::from_secs(60);
        let a = t.begin("admin", ip("10.0.0.1"), None, now).unwrap();
        t.succeeded(a);
        let _ = t.begin("admin", ip("10.0.0.1"), None, now).unwrap();
    }

    #[test]
    fn guessing_from_one_address_does_not_slow_the_user_elsewhere() {
        let t = throttle(3, 100, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            let _ = fail(&t, "admin", "10.0.0.1", t0);
        }
        assert!(t.begin("admin", ip("10.0.0.1"), None, t0).is_err());
        let a = t.begin("admin", ip("10.0.0.2"), None, t0).unwrap();
        t.succeeded(a);
        // Another user from the guessing address is not slowed either.
        let _ = t.begin("op1", ip("10.0.0.1"), None, t0).unwrap();
    }

    #[test]
    fn an_address_spraying_names_is_slowed_except_for_known_browsers_behind_it() {
        let t = throttle(3, 5, 100);
        let t0 = Instant::now();
        for n in 0..5 {
            let _ = fail(&t, &format!("user{n}"), "10.0.0.9", t0);
        }
        let err = t.begin("user9", ip("10.0.0.9"), None, t0).unwrap_err();
        assert_eq!(err.by, Kind::Address);
        // The control room's users, on the browsers they signed in from before: not slowed.
        for n in 0..20 {
            let a = t
                .begin(
                    &format!("op{n}"),
                    ip("10.0.0.9"),
                    Some(&format!("dev{n}")),
                    t0,
                )
                .unwrap();
            t.succeeded(a);
        }
        // Other addresses are not slowed.
        let _ = t.begin("user9", ip("10.0.0.8"), None, t0).unwrap();
    }

    #[test]
    fn a_nated_room_whose_users_mistype_is_never_slowed() {
        // 40 users behind one address, each mistyping twice, then signing in: the address's
        // allowance (30) is never spent, as each success forgives its user's failures.
        let t = throttle(3, 30, 100);
        let t0 = Instant::now();
        for n in 0..40 {
            let user = format!("op{n}");
            let _ = fail(&t, &user, "10.1.1.1", t0);
            let _ = fail(&t, &user, "10.1.1.1", t0);
            let a = t.begin(&user, ip("10.1.1.1"), None, t0).unwrap();
            t.succeeded(a);
        }
        assert!(t.list(t0).is_empty(), "nothing left behind");
        // A sprayer's failures on other names stay counted.
        for n in 0..30 {
            let _ = fail(&t, &format!("x{n}"), "10.1.1.1", t0);
        }
        assert!(t.begin("op1", ip("10.1.1.1"), None, t0).is_err());
    }

    #[test]
    fn guessing_spread_over_addresses_slows_the_user_except_on_known_browsers() {
        let t = throttle(3, 100, 6);
        let t0 = Instant::now();
        for n in 0..6 {
            let _ = fail(&t, "admin", &format!("10.0.1.{n}"), t0);
        }
        let err = t.begin("admin", ip("10.0.2.1"), None, t0).unwrap_err();
        assert_eq!(err.by, Kind::User);
        let a = t.begin("admin", ip("10.0.2.1"), Some("dev1"), t0).unwrap();
        t.succeeded(a);
    }

    #[test]
    fn an_admin_unlock_clears_what_it_names() {
        let t = throttle(2, 4, 100);
        let t0 = Instant::now();
        for user in ["a", "a", "b", "b"] {
            let _ = fail(&t, user, "10.0.0.1", t0);
        }
        assert!(t.begin("a", ip("10.0.0.1"), None, t0).is_err());
        assert!(t.begin("c", ip("10.0.0.1"), None, t0).is_err(), "address");
        assert_eq!(t.unlock(Some("a"), ip("10.0.0.1")), 1);
        // The address still waits (its own key).
        assert!(t.begin("a", ip("10.0.0.1"), None, t0).is_err());
        assert_eq!(
            t.unlock(None, ip("10.0.0.1")),
            2,
            "the address and b's pair"
        );
        let _ = t.begin("b", ip("10.0.0.1"), None, t0).unwrap();
        assert!(t.unlock(Some("a"), None) >= 1, "a's user key");
        assert_eq!(t.unlock(None, None), 0);
    }

    #[test]
    fn failures_are_forgotten_after_the_window_and_listed_until_then() {
        let t = throttle(1, 100, 100);
        let t0 = Instant::now();
        let _ = fail(&t, "admin", "10.0.0.1", t0);
        let views = t.list(t0);
        let pair = views.iter().find(|v| v.key == Kind::Pair).unwrap();
        assert_eq!(pair.user.as_deref(), Some("admin"));
        assert_eq!(pair.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(pair.retry_after_ms, 1000);
        let later = t0 + Duration::from_secs(900);
        assert!(t.list(later).is_empty());
        let _ = t.begin("admin", ip("10.0.0.1"), None, later).unwrap();
    }

    #[test]
    fn parallel_attempts_are_counted_before_their_outcome() {
        let t = throttle(1, 100, 100);
        let t0 = Instant::now();
        let first = t.begin("admin", ip("10.0.0.1"), None, t0).unwrap();
        assert!(t.begin("admin", ip("10.0.0.1"), None, t0).is_err());
        t.succeeded(first);
        let _ = t.begin("admin", ip("10.0.0.1"), None, t0).unwrap();
    }
}
