//! Rate-limited logging of field errors: a device that sends garbage every 2 s must not fill
//! the disk. The first error of a device is logged at once; further ones within the interval
//! are only counted, and the count is reported with the next line that gets through.

use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Per-key log gate.
#[derive(Debug)]
pub struct FieldLog {
    interval: Duration,
    last: DashMap<String, (Instant, u64)>,
    max_keys: usize,
}

impl FieldLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: DashMap::new(),
            max_keys: 100_000,
        }
    }

    /// Whether a line about `key` may be logged now; `Some(n)` carries how many were
    /// suppressed since the last one.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        if let Some(mut e) = self.last.get_mut(key) {
            let (at, suppressed) = *e;
            if now.duration_since(at) < self.interval {
                e.1 = suppressed + 1;
                return None;
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
                return None;
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
}
