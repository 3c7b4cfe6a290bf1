//! Source timestamps: milliseconds since the Unix epoch, UTC.
//!
//! Field devices stamp their samples; the platform keeps those stamps (a replay after an outage
//! must land at the original time), so a timestamp is plain data, not a clock reading.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock now. Actors never call this directly: they are given a clock.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self(ms)
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

/// A duration in whole milliseconds, `i64::MAX` for one longer than that (about 292 million
/// years: a configuration may say "500000000years"). `as i64` would wrap such a duration to a
/// negative number, and `t + d` would then go back in time (found by the config fuzz target).
fn saturating_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `t + d`, saturating.
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(saturating_millis(d)))
    }
}

/// `t - d`, saturating.
impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(saturating_millis(d)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A calendar day (`YYYY-MM-DD`, proleptic Gregorian): installation, commissioning and warranty
/// dates, cleaning due dates — days people write on paper, with no time of day or zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a YYYY-MM-DD date")]
pub struct DateError(pub String);

impl Date {
    /// The day `days` after 1970-01-01.
    pub fn from_days(days: i32) -> Self {
        Self(days)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.0
    }

    /// The day of `year`-`month`-`day`, if there is one.
    pub fn ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        i32::try_from(era * 146_097 + doe - 719_468).ok().map(Self)
    }

    /// (year, month, day).
    pub fn parts(self) -> (i32, u32, u32) {
        // Howard Hinnant's civil_from_days.
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
        (y, m, d)
    }

    /// The day `t` falls on in a zone `offset_minutes` east of UTC.
    pub fn of(t: Timestamp, offset_minutes: i32) -> Self {
        let ms = t.as_millis() + i64::from(offset_minutes) * 60_000;
        Self(ms.div_euclid(86_400_000) as i32)
    }

    /// The local midnight this day starts at, in a zone `offset_minutes` east of UTC.
    pub fn start(self, offset_minutes: i32) -> Timestamp {
        Timestamp(i64::from(self.0) * 86_400_000 - i64::from(offset_minutes) * 60_000)
    }

    /// `n` days later (earlier when negative).
    pub fn plus_days(self, n: i32) -> Self {
        Self(self.0.saturating_add(n))
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl std::str::FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, DateError> {
        let bad = || DateError(s.chars().take(32).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DateError> {
            let part = s.get(r).ok_or_else(bad)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::ymd(y as i32, m, d).ok_or_else(bad)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.parts();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_never_negative() {
        let a = Timestamp(1_000);
        let b = Timestamp(4_500);
        assert_eq!(b.since(a), Duration::from_millis(3_500));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(a + Duration::from_secs(2), Timestamp(3_000));
        assert_eq!(a - Duration::from_secs(2), Timestamp(-1_000));
    }

    /// A duration of more milliseconds than an i64 holds (a configured "500000000years")
    /// saturates: it once wrapped to a negative number of milliseconds, so `now + skew` lay in
    /// the past and every sample was refused as future (fuzz/corpus/config/actors-huge).
    #[test]
    fn arithmetic_with_huge_durations_saturates() {
        let now = Timestamp(1_732_170_000_000);
        let huge = Duration::from_secs(500_000_000 * 365 * 24 * 3600);
        assert_eq!(now + huge, Timestamp(i64::MAX));
        assert_eq!(now - huge, Timestamp(now.0 - i64::MAX));
        assert_eq!(now + Duration::MAX, Timestamp(i64::MAX));
        assert_eq!(now - Duration::MAX, Timestamp(now.0 - i64::MAX));
        assert_eq!(Timestamp(i64::MIN) - huge, Timestamp(i64::MIN));
    }

    #[test]
    fn dates_round_trip_and_refuse_days_that_do_not_exist() {
        for text in [
            "1970-01-01",
            "2000-02-29",
            "2026-12-07",
            "1899-12-30",
            "2100-03-01",
        ] {
            let d: Date = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(Date::from_days(d.days()), d);
        }
        assert_eq!("1970-01-02".parse::<Date>().unwrap().days(), 1);
        assert_eq!("2026-12-07".parse::<Date>().unwrap().days(), 20_794);
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-01-00",
            "+026-01-01",
            "",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        let d: Date = "2026-12-07".parse().unwrap();
        // 00:30 in Beijing on the 7th is still the 6th in UTC.
        let t = d.start(480) + Duration::from_secs(1800);
        assert_eq!(Date::of(t, 480), d);
        assert_eq!(Date::of(t, 0), d.plus_days(-1));
    }
}
