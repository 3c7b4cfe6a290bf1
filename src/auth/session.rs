//! Login sessions (ASVS 5.0 V7): what is kept of one — the digest of its secret, never the
//! secret — when it ends, and how it is shown.
//!
//! A session ends at the first of: its absolute lifetime (`[auth] session_lifetime`, from the
//! login), its idle timeout (`[auth] idle_timeout`, from its last use), a logout, an admin or
//! its user ending it, a change of its user's password or role, or its user's deletion. A use
//! is a request the user made: the console marks its background refreshes
//! (`X-Cistern-Background`), which do not count, so a console left open does not keep its
//! session alive.
//!
//! In a cluster the record is shared through etcd ([`super::IdentityPersistence`]); a node
//! writes the time of last use back at most every tenth of the idle timeout (at most a minute
//! apart, at least 100 ms), so every node sees a session used on any other within that slack,
//! and keeps the later of its own and the shared time. Pure logic: callers pass `now` (ms).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Longest user agent kept with a session (characters).
const MAX_USER_AGENT_CHARS: usize = 200;

/// A session as kept (and, in a cluster, shared). Records written before the timeouts existed
/// read with zero times: their last use counts from when this node read them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub user: String,
    pub digest: String,
    #[serde(default)]
    pub created_at_ms: i64,
    /// The absolute end.
    pub expires_at_ms: i64,
    #[serde(default)]
    pub last_used_ms: i64,
    /// The client address of the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The login's `User-Agent` (shortened; what the browser says, not proof of anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Whether a session may still be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionState {
    Live,
    /// Unused for longer than the idle timeout.
    Idle,
    /// Past its absolute lifetime.
    Expired,
}

/// The two timeouts (from `[auth]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub idle: Duration,
    pub lifetime: Duration,
}

impl Timeouts {
    pub fn idle_ms(self) -> i64 {
        i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn lifetime_ms(self) -> i64 {
        i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX)
    }

    /// How often a node shares a session's last use: a tenth of the idle timeout, from 100 ms
    /// to a minute.
    pub fn share_every_ms(self) -> i64 {
        (self.idle_ms() / 10).clamp(100, 60_000)
    }
}

/// A session in a node's memory: its record and the last use this node knows of.
#[derive(Debug)]
pub(crate) struct LiveSession {
    pub record: SessionRecord,
    last_used_ms: AtomicI64,
    /// The last use written to the shared store (or read from it).
    shared_ms: AtomicI64,
}

impl LiveSession {
    /// A session read (or created) at `now`.
    pub fn new(mut record: SessionRecord, now: i64) -> Self {
        if record.last_used_ms <= 0 {
            record.last_used_ms = now;
        }
        if record.created_at_ms <= 0 {
            record.created_at_ms = record.last_used_ms;
        }
        let last = record.last_used_ms;
        Self {
            record,
            last_used_ms: AtomicI64::new(last),
            shared_ms: AtomicI64::new(last),
        }
    }

    pub fn last_used_ms(&self) -> i64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    pub fn state(&self, now: i64, t: Timeouts) -> SessionState {
        if now >= self.record.expires_at_ms {
            SessionState::Expired
        } else if now.saturating_sub(self.last_used_ms()) >= t.idle_ms() {
            SessionState::Idle
        } else {
            SessionState::Live
        }
    }

    /// A use at `now`. True when the node should share it now (its last shared use is older
    /// than [`Timeouts::share_every_ms`]); only one caller gets true for one interval.
    pub fn touch(&self, now: i64, t: Timeouts) -> bool {
        self.last_used_ms.fetch_max(now, Ordering::Relaxed);
        let shared = self.shared_ms.load(Ordering::Relaxed);
        now.saturating_sub(shared) >= t.share_every_ms()
            && self
                .shared_ms
                .compare_exchange(shared, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The same session as shared by another node (or written back by this one): its record
    /// replaces ours, and the later of the two last uses stands.
    pub fn merge(&mut self, incoming: SessionRecord) {
        let theirs = incoming.last_used_ms;
        let ours = self.last_used_ms();
        self.record = incoming;
        self.last_used_ms.store(theirs.max(ours), Ordering::Relaxed);
        self.shared_ms.fetch_max(theirs, Ordering::Relaxed);
    }

    /// The record with this node's last use (what is shared).
    pub fn snapshot(&self) -> SessionRecord {
        SessionRecord {
            last_used_ms: self.last_used_ms(),
            ..self.record.clone()
        }
    }

    pub fn view(&self, id: &str, t: Timeouts, current: Option<&str>) -> SessionView {
        let last = self.last_used_ms();
        SessionView {
            id: id.to_owned(),
            user: self.record.user.clone(),
            created_at_ms: self.record.created_at_ms,
            last_used_ms: last,
            expires_at_ms: self.record.expires_at_ms,
            idle_expires_at_ms: last
                .saturating_add(t.idle_ms())
                .min(self.record.expires_at_ms),
            address: self.record.address.clone(),
            user_agent: self.record.user_agent.clone(),
            current: current == Some(id),
        }
    }
}

/// A session as listed (no secret, no digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The session's public id (the middle of its token): what ends it.
    pub id: String,
    pub user: String,
    pub created_at_ms: i64,
    pub last_used_ms: i64,
    /// Its absolute end.
    pub expires_at_ms: i64,
    /// When it ends if unused until then.
    pub idle_expires_at_ms: i64,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// The session the request came with.
    pub current: bool,
}

/// A `User-Agent` as kept: printable characters only, shortened.
pub(crate) fn clean_user_agent(ua: &str) -> Option<String> {
    let s: String = ua
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        idle: Duration::from_secs(60),
        lifetime: Duration::from_secs(600),
    };

    fn record(now: i64) -> SessionRecord {
        SessionRecord {
            user: "op1".into(),
            digest: "d".into(),
            created_at_ms: now,
            expires_at_ms: now + T.lifetime_ms(),
            last_used_ms: now,
            address: Some("10.0.0.1".into()),
            user_agent: None,
        }
    }

    #[test]
    fn a_session_ends_when_idle_or_at_its_absolute_end_whichever_is_first() {
        let s = LiveSession::new(record(0), 0);
        assert_eq!(s.state(59_999, T), SessionState::Live);
        assert_eq!(s.state(60_000, T), SessionState::Idle);
        // Used every 50 s it lives on, until its absolute end.
        let mut now = 0;
        while now < 600_000 {
            assert_eq!(s.state(now, T), SessionState::Live, "at {now}");
            s.touch(now, T);
            now += 50_000;
        }
        assert_eq!(s.state(600_000, T), SessionState::Expired);
        let v = s.view("abc", T, Some("abc"));
        assert!(v.current);
        assert_eq!(v.idle_expires_at_ms, 600_000, "never past the absolute end");
    }

    #[test]
    fn uses_are_shared_at_most_once_per_interval_and_merges_keep_the_later_use() {
        let mut s = LiveSession::new(record(0), 0);
        assert_eq!(T.share_every_ms(), 6_000);
        assert!(!s.touch(1_000, T));
        assert!(s.touch(6_000, T));
        assert!(!s.touch(7_000, T), "shared at 6 s already");
        assert!(s.touch(12_000, T));
        // Our own older write coming back through the watch does not move the use back.
        s.merge(SessionRecord {
            last_used_ms: 6_000,
            ..record(0)
        });
        assert_eq!(s.last_used_ms(), 12_000);
        // Another node's later use moves it on.
        s.merge(SessionRecord {
            last_used_ms: 30_000,
            ..record(0)
        });
        assert_eq!(s.last_used_ms(), 30_000);
        assert_eq!(s.snapshot().last_used_ms, 30_000);
        assert!(!s.touch(31_000, T), "the shared use is recent");
    }

    #[test]
    fn records_from_before_the_timeouts_count_from_when_they_are_read() {
        let old = SessionRecord {
            created_at_ms: 0,
            last_used_ms: 0,
            ..record(0)
        };
        let s = LiveSession::new(old, 5_000);
        assert_eq!(s.last_used_ms(), 5_000);
        assert_eq!(s.record.created_at_ms, 5_000);
    }

    #[test]
    fn user_agents_are_kept_printable_and_short() {
        assert_eq!(clean_user_agent("  "), None);
        assert_eq!(clean_user_agent("a\u{0}b\nc").as_deref(), Some("abc"));
        assert_eq!(
            clean_user_agent(&"x".repeat(500)).map(|s| s.len()),
            Some(200)
        );
    }
}
