//! Teams and on-call rosters, and the dispatch decision (DOMAIN.md §7): a room's zone names its
//! team; the team's roster names who is on call now (shifts by weekday and hour in the
//! utility's local time, holidays with their own shifts); the template's skills narrow them;
//! the least loaded gets the order. Nobody on call: the order waits in the team's queue and the
//! response target runs. The escalation ladder of an order (the team lead, then the manager)
//! comes from the same team.

use cistern_schemas::{Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A day a shift runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
    /// A date in `[workorders] holidays` (instead of its weekday).
    Holiday,
}

impl Day {
    /// Every day, holidays included (a round-the-clock roster): the weekdays from Monday,
    /// then `Holiday`.
    pub const EVERY: [Day; 8] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
        Day::Holiday,
    ];
}

/// Who is on call on some days between two times of day. `to` before `from` runs overnight
/// (the morning part belongs to the next day).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub days: Vec<Day>,
    /// `HH:MM`, local time.
    pub from: String,
    pub to: String,
    pub users: Vec<String>,
}

/// A crew member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub user: String,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// A maintenance team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// The zones it serves; empty: every zone no other team serves.
    #[serde(default)]
    pub zones: Vec<ZoneId>,
    /// First step of the escalation ladder.
    pub lead: String,
    /// Second step.
    pub manager: String,
    pub members: Vec<Member>,
    #[serde(default)]
    pub on_call: Vec<Shift>,
}

/// Why a roster was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[workorders] {0}")]
pub struct RosterError(pub String);

/// A time of day in minutes.
fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.len() == 5).then_some(h * 60 + m)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || date.len() != 10 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The teams and the calendar they work to.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    teams: Vec<Team>,
    /// Local time = UTC + this.
    offset_minutes: i64,
    holidays: Vec<i64>,
}

impl Roster {
    pub fn new(
        teams: Vec<Team>,
        utc_offset_minutes: i32,
        holidays: &[String],
    ) -> Result<Self, RosterError> {
        let mut seen = std::collections::HashSet::new();
        for t in &teams {
            if !seen.insert(t.id.as_str()) {
                return Err(RosterError(format!("team {:?} is defined twice", t.id)));
            }
            for s in &t.on_call {
                if minutes(&s.from).is_none() || minutes(&s.to).is_none() {
                    return Err(RosterError(format!(
                        "team {:?}: a shift's from/to must be HH:MM (got {:?}–{:?})",
                        t.id, s.from, s.to
                    )));
                }
                if let Some(u) = s
                    .users
                    .iter()
                    .find(|u| !t.members.iter().any(|m| &m.user == *u))
                {
                    return Err(RosterError(format!(
                        "team {:?}: {u:?} is on call but not a member",
                        t.id
                    )));
                }
            }
        }
        let holidays = holidays
            .iter()
            .map(|h| {
                day_number(h)
                    .ok_or_else(|| RosterError(format!("holiday {h:?} is not a YYYY-MM-DD date")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            teams,
            offset_minutes: i64::from(utc_offset_minutes),
            holidays,
        })
    }

    /// Local time = UTC + this many minutes.
    pub fn offset_minutes(&self) -> i64 {
        self.offset_minutes
    }

    pub fn teams(&self) -> &[Team] {
        &self.teams
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// The team serving `zone`: the first naming it, else the first naming no zone.
    pub fn team_for(&self, zone: Option<&ZoneId>) -> Option<&Team> {
        zone.and_then(|z| self.teams.iter().find(|t| t.zones.contains(z)))
            .or_else(|| self.teams.iter().find(|t| t.zones.is_empty()))
    }

    /// The kind of day (a weekday, or a holiday) of local day number `n`.
    fn day_kind(&self, n: i64) -> Day {
        if self.holidays.contains(&n) {
            Day::Holiday
        } else {
            // 1970-01-01 was a Thursday.
            Day::EVERY[(n + 3).rem_euclid(7) as usize]
        }
    }

    /// Who of `team` is on call at `t`, in roster order, each once.
    pub fn on_call(&self, team: &Team, t: Timestamp) -> Vec<String> {
        let local = t.as_millis() / 60_000 + self.offset_minutes;
        let (day, minute) = (local.div_euclid(1440), local.rem_euclid(1440) as u32);
        let (today, yesterday) = (self.day_kind(day), self.day_kind(day - 1));
        let mut out: Vec<String> = Vec::new();
        for s in &team.on_call {
            let (Some(from), Some(to)) = (minutes(&s.from), minutes(&s.to)) else {
                continue;
            };
            let on = if from < to {
                s.days.contains(&today) && (from..to).contains(&minute)
            } else {
                (s.days.contains(&today) && minute >= from)
                    || (s.days.contains(&yesterday) && minute < to)
            };
            if on {
                for u in &s.users {
                    if !out.contains(u) {
                        out.push(u.clone());
                    }
                }
            }
        }
        out
    }

    /// The people a notification target names for `zone` at `t` — the one ladder that alarms'
    /// escalation steps (`notify = "shift_lead"`) and work orders' escalations climb:
    /// `on_call` → who of the zone's team is on call; `shift_lead` / `team_lead` / `lead` →
    /// its lead; `on_call_manager` / `manager` → its manager; a team member's or lead's user
    /// name → that person. Anything else (a group such as `rule_authors`) names nobody here:
    /// group channels take it.
    pub fn resolve(&self, target: &str, zone: Option<&ZoneId>, t: Timestamp) -> Vec<String> {
        let team = self.team_for(zone);
        match (target, team) {
            ("on_call", Some(team)) => self.on_call(team, t),
            ("shift_lead" | "team_lead" | "lead", Some(team)) => vec![team.lead.clone()],
            ("on_call_manager" | "manager", Some(team)) => vec![team.manager.clone()],
            (
                "on_call" | "shift_lead" | "team_lead" | "lead" | "on_call_manager" | "manager",
                None,
            ) => Vec::new(),
            (user, _) => {
                let known = self.teams.iter().any(|t| {
                    t.lead == user || t.manager == user || t.members.iter().any(|m| m.user == user)
                });
                if known {
                    vec![user.to_owned()]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Whom to send an order for `zone` needing `skills` at `t`, given each person's open
    /// orders: `(team, person)`; the person is none when nobody suitable is on call.
    pub fn dispatch(
        &self,
        zone: Option<&ZoneId>,
        skills: &[String],
        t: Timestamp,
        load: &HashMap<String, usize>,
    ) -> Option<(String, Option<String>)> {
        let team = self.team_for(zone)?;
        let on_call = self.on_call(team, t);
        let skilled: Vec<&String> = on_call
            .iter()
            .filter(|u| {
                team.members
                    .iter()
                    .find(|m| &m.user == *u)
                    .is_some_and(|m| skills.iter().all(|s| m.skills.contains(s)))
            })
            .collect();
        // Nobody with the skills on call: anyone on call goes (and calls for help).
        let pool: Vec<&String> = if skilled.is_empty() {
            on_call.iter().collect()
        } else {
            skilled
        };
        let person = pool
            .into_iter()
            .enumerate()
            .min_by_key(|(i, u)| (load.get(*u).copied().unwrap_or(0), *i))
            .map(|(_, u)| u.clone());
        Some((team.id.clone(), person))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> Team {
        let m = |u: &str, s: &[&str]| Member {
            user: u.into(),
            skills: s.iter().map(|x| x.to_string()).collect(),
        };
        Team {
            id: "siming".into(),
            name: "思明维修班".into(),
            name_en: "Siming crew".into(),
            zones: vec![ZoneId::new("siming").unwrap()],
            lead: "lead".into(),
            manager: "boss".into(),
            members: vec![
                m("day1", &["electrical"]),
                m("day2", &[]),
                m("night", &["electrical"]),
                m("holiday", &[]),
            ],
            on_call: vec![
                Shift {
                    days: vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                    from: "08:00".into(),
                    to: "20:00".into(),
                    users: vec!["day1".into(), "day2".into()],
                },
                Shift {
                    days: Day::EVERY[..7].to_vec(),
                    from: "20:00".into(),
                    to: "08:00".into(),
                    users: vec!["night".into()],
                },
                Shift {
                    days: vec![Day::Holiday],
                    from: "08:00".into(),
                    to: "20:00".into(),
                    users: vec!["holiday".into()],
                },
            ],
        }
    }

    /// 2026-12-07 (a Monday) at `hh:mm` Beijing time.
    fn monday(hh: i64, mm: i64) -> Timestamp {
        let day = day_number("2026-12-07").unwrap();
        Timestamp((day * 1440 + hh * 60 + mm - 480) * 60_000)
    }

    fn roster(holidays: &[&str]) -> Roster {
        let h: Vec<String> = holidays.iter().map(|s| s.to_string()).collect();
        Roster::new(vec![team()], 480, &h).unwrap()
    }

    #[test]
    fn shifts_follow_local_weekdays_overnight_hours_and_holidays() {
        let r = roster(&[]);
        let t = &r.teams()[0];
        assert_eq!(r.on_call(t, monday(9, 0)), ["day1", "day2"]);
        assert_eq!(r.on_call(t, monday(20, 0)), ["night"]);
        // Monday 03:00 is Sunday night's shift.
        assert_eq!(r.on_call(t, monday(3, 0)), ["night"]);
        let r = roster(&["2026-12-07"]);
        assert_eq!(r.on_call(&r.teams()[0], monday(9, 0)), ["holiday"]);
    }

    #[test]
    fn escalation_targets_name_the_zones_on_call_lead_and_manager_from_the_same_roster() {
        let r = roster(&[]);
        let siming = ZoneId::new("siming").unwrap();
        let z = Some(&siming);
        assert_eq!(r.resolve("on_call", z, monday(9, 0)), ["day1", "day2"]);
        assert_eq!(r.resolve("on_call", z, monday(23, 0)), ["night"]);
        assert_eq!(r.resolve("shift_lead", z, monday(9, 0)), ["lead"]);
        assert_eq!(r.resolve("on_call_manager", z, monday(9, 0)), ["boss"]);
        assert_eq!(
            r.resolve("night", None, monday(9, 0)),
            ["night"],
            "a person"
        );
        assert!(
            r.resolve("rule_authors", z, monday(9, 0)).is_empty(),
            "a group"
        );
        let other = ZoneId::new("huli").unwrap();
        assert!(
            r.resolve("shift_lead", Some(&other), monday(9, 0))
                .is_empty(),
            "no team"
        );
    }

    #[test]
    fn dispatch_takes_the_skilled_least_loaded_person_on_call() {
        let r = roster(&[]);
        let zone = ZoneId::new("siming").unwrap();
        let mut load = HashMap::new();
        let pick = |skills: &[String], load: &HashMap<String, usize>| {
            r.dispatch(Some(&zone), skills, monday(9, 0), load).unwrap()
        };
        assert_eq!(pick(&[], &load).1.as_deref(), Some("day1"));
        load.insert("day1".to_string(), 2);
        assert_eq!(pick(&[], &load).1.as_deref(), Some("day2"));
        assert_eq!(
            pick(&["electrical".to_string()], &load).1.as_deref(),
            Some("day1")
        );
        // A skill nobody on call has: anyone on call.
        assert_eq!(
            pick(&["diving".to_string()], &load).1.as_deref(),
            Some("day2")
        );
        // A zone no team serves and no catch-all team: nobody.
        assert!(r
            .dispatch(
                Some(&ZoneId::new("jimei").unwrap()),
                &[],
                monday(9, 0),
                &load
            )
            .is_none());
    }

    #[test]
    fn bad_rosters_are_refused_with_the_reason() {
        let mut t = team();
        t.on_call[0].from = "8am".into();
        let err = Roster::new(vec![t], 480, &[]).unwrap_err();
        assert!(err.to_string().contains("HH:MM"), "{err}");
        let mut t = team();
        t.on_call[0].users.push("stranger".into());
        let err = Roster::new(vec![t], 480, &[]).unwrap_err();
        assert!(err.to_string().contains("not a member"), "{err}");
        let err = Roster::new(vec![team()], 480, &["2026-13-01".into()]).unwrap_err();
        assert!(err.to_string().contains("holiday"), "{err}");
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-03-01"), Some(11_017));
    }
}
