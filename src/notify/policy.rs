//! The rules a delivery goes through before and between its attempts, as pure functions so that
//! they are tested without a clock or a network: a recipient's preferences by severity and hour
//! (quiet hours, P1 through them unless the user opts out), the backoff between attempts, a
//! channel's rate limit (a sliding minute: excess waits for the next free slot, never dropped)
//! and DingTalk's robot signature.

use base64::Engine;
use cistern_rules::Severity;
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Hours in which a user is not to be disturbed, local time: `"22:00-07:00"` (across midnight)
/// or `"12:00-13:30"`. The start is inside, the end outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub start: u32,
    pub end: u32,
}

impl QuietHours {
    /// Whether `minute` (after local midnight) falls in the quiet hours.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

fn minute_of(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl FromStr for QuietHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s
            .split_once('-')
            .and_then(|(a, b)| Some((minute_of(a)?, minute_of(b)?)));
        match parsed {
            Some((start, end)) if start != end => Ok(Self { start, end }),
            _ => Err(format!(
                "quiet hours {s:?}: HH:MM-HH:MM local time, start and end different (\"22:00-07:00\")"
            )),
        }
    }
}

impl TryFrom<String> for QuietHours {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// The minute after local midnight of `at_ms` (UTC milliseconds) at `utc_offset_minutes`.
pub fn local_minute(at_ms: i64, utc_offset_minutes: i32) -> u32 {
    let minutes = at_ms.div_euclid(60_000) + i64::from(utc_offset_minutes);
    // rem_euclid keeps it in 0..1440, which fits a u32.
    u32::try_from(minutes.rem_euclid(1_440)).unwrap_or(0)
}

/// Why a delivery is not made (recorded on the suppressed delivery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// Below the severities the recipient or channel takes.
    Severity,
    /// In the recipient's quiet hours.
    QuietHours,
    /// The same event went to the same recipient on the same channel within the window.
    Duplicate,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Severity => "severity",
            Suppression::QuietHours => "quiet_hours",
            Suppression::Duplicate => "duplicate",
        }
    }
}

/// What a recipient takes: severities, quiet hours, P1 through them.
#[derive(Clone, Debug, PartialEq)]
pub struct Preference<'a> {
    /// Empty: every severity.
    pub severities: &'a [Severity],
    pub quiet: Option<QuietHours>,
    /// P1 is delivered in quiet hours unless this is false.
    pub p1_in_quiet_hours: bool,
}

impl Preference<'_> {
    /// Whether a notification of `severity` at local `minute` is delivered.
    pub fn admits(&self, severity: Severity, minute: u32) -> Result<(), Suppression> {
        if !self.severities.is_empty() && !self.severities.contains(&severity) {
            return Err(Suppression::Severity);
        }
        match self.quiet {
            Some(q)
                if q.contains(minute) && !(severity == Severity::P1 && self.p1_in_quiet_hours) =>
            {
                Err(Suppression::QuietHours)
            }
            _ => Ok(()),
        }
    }
}

/// The wait before attempt `attempts + 1` after `attempts` failed ones: `base`, doubled at
/// every failure, at most `max`.
pub fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(max)
}

/// A channel's rate limit: at most `per_minute` sends in any sliding minute.
#[derive(Clone, Debug)]
pub struct RateLimit {
    per_minute: usize,
    sent: VecDeque<i64>,
}

impl RateLimit {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: usize::try_from(per_minute).unwrap_or(usize::MAX),
            sent: VecDeque::new(),
        }
    }

    /// Takes a slot at `now_ms` (`Ok`), or says when the next one frees (`Err(ms)`).
    pub fn take(&mut self, now_ms: i64) -> Result<(), i64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        while self.sent.front().is_some_and(|&t| t + 60_000 <= now_ms) {
            self.sent.pop_front();
        }
        if self.sent.len() < self.per_minute {
            self.sent.push_back(now_ms);
            Ok(())
        } else {
            Err(self.sent.front().map_or(now_ms, |&t| t + 60_000))
        }
    }
}

/// DingTalk's robot signature of `timestamp_ms`:
/// `urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret)))`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dingtalk_signature_matches_a_fixed_vector() {
        // Computed independently: python3 -c 'import hmac,hashlib,base64,urllib.parse;
        // s="SECtest";t="1700000000000";print(urllib.parse.quote_plus(base64.b64encode(
        // hmac.new(s.encode(),(t+"\n"+s).encode(),hashlib.sha256).digest())))'
        assert_eq!(
            dingtalk_sign("SECtest", 1_700_000_000_000),
            "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
        );
    }

    #[test]
    fn quiet_hours_across_midnight_hold_back_all_but_p1_unless_the_user_opts_out() {
        let quiet: QuietHours = "22:00-07:00".parse().unwrap();
        let mut p = Preference {
            severities: &[],
            quiet: Some(quiet),
            p1_in_quiet_hours: true,
        };
        let (night, early, day) = (23 * 60, 6 * 60 + 59, 7 * 60);
        assert_eq!(p.admits(Severity::P2, night), Err(Suppression::QuietHours));
        assert_eq!(p.admits(Severity::P2, early), Err(Suppression::QuietHours));
        assert_eq!(p.admits(Severity::P2, day), Ok(()));
        assert_eq!(p.admits(Severity::P1, night), Ok(()));
        p.p1_in_quiet_hours = false;
        assert_eq!(p.admits(Severity::P1, night), Err(Suppression::QuietHours));
        let lunch: QuietHours = "12:00-13:30".parse().unwrap();
        assert!(lunch.contains(12 * 60) && lunch.contains(13 * 60 + 29));
        assert!(!lunch.contains(13 * 60 + 30) && !lunch.contains(11 * 60 + 59));
        assert!("25:00-07:00".parse::<QuietHours>().is_err());
        assert!("07:00-07:00".parse::<QuietHours>().is_err());
        assert_eq!(quiet.to_string(), "22:00-07:00");
    }

    #[test]
    fn severities_filter_and_local_time_uses_the_offset() {
        let p = Preference {
            severities: &[Severity::P1, Severity::P2],
            quiet: None,
            p1_in_quiet_hours: true,
        };
        assert_eq!(p.admits(Severity::P3, 0), Err(Suppression::Severity));
        assert_eq!(p.admits(Severity::P2, 0), Ok(()));
        // 2026-12-07T15:30Z is 23:30 in Beijing (+08:00).
        let t = 1_796_657_400_000; // 2026-12-07T15:30:00Z
        assert_eq!(local_minute(t, 0), 15 * 60 + 30);
        assert_eq!(local_minute(t, 480), 23 * 60 + 30);
        assert_eq!(local_minute(t, -960), 23 * 60 + 30);
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(300));
        let waits: Vec<u64> = (1..=7).map(|a| backoff(base, max, a).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(base, max, 0), base);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }

    #[test]
    fn the_rate_limit_lets_n_a_minute_through_and_names_when_the_next_slot_frees() {
        let mut r = RateLimit::new(20);
        for i in 0..20 {
            assert_eq!(r.take(1_000 + i * 100), Ok(()), "send {i}");
        }
        // The 21st waits until the first leaves the minute.
        assert_eq!(r.take(5_000), Err(61_000));
        assert_eq!(r.take(60_999), Err(61_000));
        assert_eq!(r.take(61_000), Ok(()));
        assert_eq!(r.take(61_001), Err(61_100));
        let mut open = RateLimit::new(0);
        assert!((0..1_000).all(|_| open.take(0).is_ok()));
    }
}
