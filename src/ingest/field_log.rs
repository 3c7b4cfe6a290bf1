//! Rate-limited logging of field errors: a device that sends garbage every 2 s must not fill
//! the disk. The first error of a device is logged at once; further ones within the interval
//! are only counted, and the count is reported with the next line that gets through. Over the
//! whole gate, [`FieldLog::summary`] gives one count of the lines suppressed per interval (for a
//! summary line, so that a flood that stops still shows in the log).

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-key log gate.
#[derive(Debug)]
pub struct FieldLog {
    interval: Duration,
    last: DashMap<String, (Instant, u64)>,
    max_keys: usize,
    /// Lines suppressed since the last summary, and when that was.
    suppressed: AtomicU64,
    summarised: Mutex<Instant>,
}

impl FieldLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: DashMap::new(),
            max_keys: 100_000,
            suppressed: AtomicU64::new(0),
            summarised: Mutex::new(Instant::now()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Once per interval at most: how many lines were suppressed since the last summary (none
    /// when it is not due yet or nothing was suppressed).
    pub fn summary(&self, now: Instant) -> Option<u64> {
        let mut last = self.summarised.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(*last) < self.interval {
            return None;
        }
        *last = now;
        let n = self.suppressed.swap(0, Ordering::Relaxed);
        (n > 0).then_some(n)
    }

    fn suppress(&self) -> Option<u64> {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Whether a line about `key` may be logged now; `Some(n)` carries how many were
    /// suppressed since the last one.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        if let Some(mut e) = self.last.get_mut(key) {
            let (at, suppressed) = *e;
            if now.duration_since(at) < self.interval {
                e.1 = suppressed + 1;
                return self.suppress();
            }
            *e = (now, 0);
            return Some(suppressed);
        }
        // Keys come from the field (device ids in topics): bound the map so that a flood of
        // invented ids cannot grow it without limit.
        if self.last.len() >= self.max_keys {
            self.last
                .retain(|_, (at, _)| now.duration_since(*at) < self.interval);
            if self.last.len() >= self.max_keys {
                return self.suppress();
            }
        }
        self.last.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval() {
        let log = FieldLog::new(Duration::from_secs(3600));
        assert_eq!(log.admit("XM-0001"), Some(0));
        assert_eq!(log.admit("XM-0001"), None);
        assert_eq!(log.admit("XM-0001"), None);
        assert_eq!(log.admit("XM-0002"), Some(0));
        let log = FieldLog::new(Duration::ZERO);
        assert_eq!(log.admit("a"), Some(0));
        assert_eq!(log.admit("a"), Some(0));
    }

    #[test]
    fn one_summary_per_interval_counts_what_was_suppressed() {
        let hour = Duration::from_secs(3600);
        let log = FieldLog::new(hour);
        let t0 = Instant::now();
        assert_eq!(log.admit("a"), Some(0));
        for _ in 0..5 {
            assert_eq!(log.admit("a"), None);
        }
        assert_eq!(log.admit("b"), Some(0));
        assert_eq!(log.admit("b"), None);
        // Not due before the interval is over.
        assert_eq!(log.summary(t0), None);
        assert_eq!(log.summary(t0 + 2 * hour), Some(6));
        // Once per interval, and only when something was suppressed.
        assert_eq!(log.admit("a"), None);
        assert_eq!(log.summary(t0 + 2 * hour), None);
        assert_eq!(log.summary(t0 + 4 * hour), Some(1));
        assert_eq!(log.summary(t0 + 6 * hour), None);
    }

    #[test]
    fn invented_keys_past_the_bound_are_suppressed_and_counted() {
        let mut log = FieldLog::new(Duration::from_secs(3600));
        log.max_keys = 2;
        assert_eq!(log.admit("a"), Some(0));
        assert_eq!(log.admit("b"), Some(0));
        assert_eq!(log.admit("c"), None);
        assert_eq!(
            log.summary(Instant::now() + Duration::from_secs(7200)),
            Some(1)
        );
    }
}
