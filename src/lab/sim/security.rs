//! The room's security system: door contact, access control, infrared detector, arming,
//! siren, and what the cameras see.
//!
//! Normally the room is locked and armed. Now and then (mostly on weekday working hours) an
//! inspector visits: a granted card swipe disarms the system, the door stands open while tools
//! go in, the detector and cameras see someone inside, the door opens again on the way out,
//! and the system re-arms after the exit delay. Faults override this: a forced entry (armed,
//! no card), a chattering door contact, smoke (which sounds the siren too).
//!
//! Visits are drawn from the physics stream whatever else happens, so that faults never shift
//! a room's random numbers; a chattering contact's timing comes from the fault stream.

use super::clock::LocalClock;
use super::faults::RoomFaultEffects;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Visits per day on weekdays during 08:30-17:30, and on weekends.
const WEEKDAY_VISITS_PER_DAY: f64 = 0.6;
const WEEKEND_VISITS_PER_DAY: f64 = 0.15;
const WORKDAY_START_H: f64 = 8.5;
const WORKDAY_END_H: f64 = 17.5;
/// An access event is held for one sampling period so that a 2 s poll cannot miss it.
const EVENT_HOLD_S: i64 = 2;

/// Access-control event codes of the catalog's `access` point.
pub(crate) const ACCESS_NONE: f64 = 0.0;
pub(crate) const ACCESS_GRANTED: f64 = 1.0;
pub(crate) const ACCESS_FORCED: f64 = 3.0;

/// One inspector's visit, as absolute times (s since the epoch).
#[derive(Clone, Copy, Debug)]
struct Visit {
    card_s: i64,
    entry_door_until_s: i64,
    exit_door_from_s: i64,
    exit_door_until_s: i64,
    rearm_s: i64,
}

impl Visit {
    fn door_open(&self, t: i64) -> bool {
        let entering = (self.card_s + 3..self.entry_door_until_s).contains(&t);
        let leaving = (self.exit_door_from_s..self.exit_door_until_s).contains(&t);
        entering || leaving
    }

    fn someone_inside(&self, t: i64) -> bool {
        (self.card_s + 3..self.exit_door_until_s).contains(&t)
    }
}

/// What the security system reports at an instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SecurityState {
    pub(crate) door: bool,
    pub(crate) intrusion: bool,
    pub(crate) armed: bool,
    pub(crate) access: f64,
    pub(crate) siren: bool,
    pub(crate) motion: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Security {
    visit: Option<Visit>,
    chatter_closed: bool,
    chatter_next_s: Option<i64>,
}

impl Security {
    /// Advances one second: maybe an inspector arrives; a chattering contact toggles.
    pub(crate) fn step(
        &mut self,
        clock: &LocalClock,
        chattering: bool,
        rng: &mut ChaCha8Rng,
        fault_rng: &mut ChaCha8Rng,
    ) {
        let t = clock.t_s;
        if self.visit.is_some_and(|v| t >= v.rearm_s) {
            self.visit = None;
        }
        let per_day = if clock.weekend {
            WEEKEND_VISITS_PER_DAY
        } else {
            WEEKDAY_VISITS_PER_DAY
        };
        let hazard = per_day / ((WORKDAY_END_H - WORKDAY_START_H) * 3600.0);
        let working_hours = (WORKDAY_START_H..WORKDAY_END_H).contains(&clock.hour);
        let arrives = rng.random::<f64>() < hazard && working_hours;
        if arrives && self.visit.is_none() {
            let entry = rng.random_range(60..300);
            let stay = rng.random_range(600..2400);
            let exit = rng.random_range(20..90);
            let exit_delay = rng.random_range(30..60);
            let exit_from = t + 3 + stay;
            self.visit = Some(Visit {
                card_s: t,
                entry_door_until_s: t + 3 + entry,
                exit_door_from_s: exit_from,
                exit_door_until_s: exit_from + exit,
                rearm_s: exit_from + exit + exit_delay,
            });
        }
        match (chattering, self.chatter_next_s) {
            (false, _) => self.chatter_next_s = None,
            (true, None) => {
                self.chatter_closed = false;
                self.chatter_next_s = Some(t + fault_rng.random_range(3..=8));
            }
            (true, Some(next)) if t >= next => {
                self.chatter_closed = !self.chatter_closed;
                self.chatter_next_s = Some(t + fault_rng.random_range(3..=8));
            }
            (true, Some(_)) => {}
        }
    }

    /// The security points at second `t_s` under the active faults.
    pub(crate) fn state(&self, t_s: i64, effects: &RoomFaultEffects) -> SecurityState {
        let mut s = SecurityState {
            door: false,
            intrusion: false,
            armed: true,
            access: ACCESS_NONE,
            siren: false,
            motion: false,
        };
        if let Some(v) = self.visit.filter(|v| t_s < v.rearm_s) {
            s.armed = false;
            s.door = v.door_open(t_s);
            s.intrusion = v.someone_inside(t_s);
            s.motion = s.intrusion;
            if (v.card_s..v.card_s + EVENT_HOLD_S).contains(&t_s) {
                s.access = ACCESS_GRANTED;
            }
        }
        if let Some(since) = effects.intrusion_since {
            let since_s = since.as_millis().div_euclid(1000);
            s.armed = true;
            s.door = true;
            s.intrusion = true;
            s.motion = true;
            s.siren = true;
            if (since_s..since_s + EVENT_HOLD_S).contains(&t_s) {
                s.access = ACCESS_FORCED;
            }
        }
        if self.chatter_next_s.is_some() && effects.chattering_door {
            s.door = !self.chatter_closed;
        }
        if effects.smoke {
            s.siren = true;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::noise::{room_rng, Stream};
    use cistern_schemas::Timestamp;

    #[test]
    fn visits_disarm_open_the_door_and_rearm() {
        let mut rng = room_rng(2, Stream::Physics, 0);
        let mut fault_rng = room_rng(2, Stream::Faults, 0);
        let mut sec = Security::default();
        let quiet = RoomFaultEffects::default();
        // A fortnight from a Monday 00:00 local (day 20_001 is a Saturday; 20_003 a Monday).
        let start = 20_003 * 86_400 - 8 * 3600;
        let (mut granted, mut door_open_s, mut disarmed_s) = (0, 0, 0);
        let mut previous_access = ACCESS_NONE;
        for t in start..start + 14 * 86_400 {
            let clock = LocalClock::at(Timestamp(t * 1000));
            sec.step(&clock, false, &mut rng, &mut fault_rng);
            let s = sec.state(t, &quiet);
            if s.access == ACCESS_GRANTED && previous_access != ACCESS_GRANTED {
                granted += 1;
            }
            previous_access = s.access;
            door_open_s += i64::from(s.door);
            disarmed_s += i64::from(!s.armed);
            assert!(!s.siren);
            assert!(!s.door || !s.armed, "the door only opens while disarmed");
        }
        assert!((2..=20).contains(&granted), "{granted} visits");
        assert!(door_open_s > 0 && disarmed_s > door_open_s);
    }

    #[test]
    fn a_chattering_contact_toggles_every_few_seconds() {
        let mut rng = room_rng(2, Stream::Physics, 0);
        let mut fault_rng = room_rng(2, Stream::Faults, 0);
        let mut sec = Security::default();
        let effects = RoomFaultEffects {
            chattering_door: true,
            ..RoomFaultEffects::default()
        };
        let start = 20_003 * 86_400; // 08:00 local: visits possible but rare
        let mut toggles = 0;
        let mut last = sec.state(start, &effects).door;
        for t in start..start + 120 {
            sec.step(
                &LocalClock::at(Timestamp(t * 1000)),
                true,
                &mut rng,
                &mut fault_rng,
            );
            let door = sec.state(t, &effects).door;
            toggles += i32::from(door != last);
            last = door;
        }
        assert!((14..=41).contains(&toggles), "{toggles}");
    }
}
