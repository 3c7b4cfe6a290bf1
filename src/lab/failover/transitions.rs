//! Alarm transitions through a failover: the ones the fleet's samples should have produced, the
//! ones the nodes recorded, and which were lost, recorded twice or recorded without a cause.
//!
//! **Expected** (the reference). The bench's tap ([`super::tap`]) keeps every message the
//! broker accepted, decoded as a node decodes it, with the moment it arrived. After the run the
//! messages are replayed room by room, in arrival order, through the product's own rule input
//! code and engine — [`RoomReplay`] (the room actor's point tables, facts, derived tank values,
//! staleness and link sweep) and [`RoomEngine`] with the built-in rule library and the node's
//! default `[actors]` and `[rules]` settings, as the bench's nodes run them — on the arrival
//! clock: a message's records applied and evaluated when it arrived, the 1 s sweep with its due
//! timers in between, every rule again each `refresh_every`. That is the alarm history of a
//! node that supervised the room without interruption: no takeover, no checkpoint, no second
//! node, the same code deciding.
//!
//! Why not the injected faults' schedule: it says what was done to the plant, not what the
//! rules should conclude from the samples — the standby pump takes over a tripped one, a mains
//! loss stops the pumps and suppresses their alarms under its own, a fault shorter than its
//! rule's on-delay raises nothing, and noise near a threshold raises what no fault caused. The
//! replay judges exactly what the nodes judged, from exactly what they were sent.
//!
//! What the reference does not model: zone correlation (`zone_event` and the suppression it
//! puts on `inlet_pressure_low`; each node correlates only its own rooms of a zone), so zone
//! alarms are left out of both sides; and the arrival clock is the tap's, which a node's
//! matches to milliseconds while it supervises the room — and not during a takeover, which is
//! what the tolerance below is for.
//!
//! **Recorded**: every node's alarm event log (`alarms/<room>` streams in its own store, where
//! the room's engine records every event it made, whichever node it ran on), read after the
//! nodes have stopped, its wall times brought back to the real clock by the node's offset.
//!
//! **Matching**, per alarm (room, rule, unit) and kind: expected and recorded transitions in
//! time order, each expected one paired with the earliest unpaired recorded one within the
//! tolerance. The tolerance is how late a transition can legitimately be stamped on a node
//! after a takeover: the samples that caused it wait at the broker until the new owner runs
//! the room (the takeover, ≤ the 5 s budget or the measured maximum if longer), the new owner
//! evaluates nothing for `RESTART_GRACE` (5 s) after restoring the room's state, and an
//! on-delay starts at the evaluation; plus one sweep (1 s) and 1 s of evaluation latency on a
//! loaded machine; plus twice the wall-clock skew (a delay set by the old owner is stamped on
//! its clock). A transition that no node recorded within it is **lost**; an unpaired recorded
//! one within the tolerance of a paired one of the same alarm and kind is **recorded twice**
//! (by another node: the old owner recorded it and the new one derived it again; or by the
//! same node); any other unpaired one is **spurious**.

use super::tap::Heard;
use super::FailoverError;
use crate::store::{IoRuntime, StoreConfig};
use cistern_actors::alarms::replay::RoomReplay;
use cistern_rules::{AlarmEvent, AlarmSource, EventKind, Notification, RoomEngine, RuleSet};
use cistern_schemas::inventory::{Inventory, RoomSpec};
use cistern_schemas::{RoomId, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The events that are transitions of an alarm the engine makes by itself from the samples and
/// the time — what must survive a failover. Operators' commands (acknowledge, shelve, reset,
/// out of service) and rule-set changes are not made during the bench.
pub const TRANSITION_KINDS: [EventKind; 8] = [
    EventKind::Raised,
    EventKind::Cleared,
    EventKind::Suppressed,
    EventKind::Unsuppressed,
    EventKind::ChatterShelved,
    EventKind::ShelveExpired,
    EventKind::Escalated,
    EventKind::RecurrenceEscalated,
];

/// The room actor's evaluation delay after a restore (actors' `RESTART_GRACE`).
pub const RESTART_GRACE: Duration = Duration::from_secs(5);

/// One transition of one alarm.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Transition {
    pub room: RoomId,
    pub rule: String,
    pub unit: String,
    pub kind: EventKind,
    /// Its stamp, Unix ms on the real clock.
    pub at_ms: i64,
}

impl Transition {
    /// A room's event, if it is a transition.
    pub fn of(e: &AlarmEvent) -> Option<Self> {
        let AlarmSource::Device(device) = &e.source else {
            return None;
        };
        TRANSITION_KINDS.contains(&e.kind).then(|| Self {
            room: device.room.clone(),
            rule: e.rule.to_string(),
            unit: e.key.unit.to_string(),
            kind: e.kind,
            at_ms: e.time.0,
        })
    }

    fn alarm(&self) -> (RoomId, String, String, EventKind) {
        (
            self.room.clone(),
            self.rule.clone(),
            self.unit.clone(),
            self.kind,
        )
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}@{} {} at {}",
            self.room, self.rule, self.unit, self.kind, self.at_ms
        )
    }
}

/// Replays what the tap heard through the rule engine (see the module doc): the transitions a
/// node supervising every room without interruption would have recorded, up to `until_ms`.
pub fn expected(heard: &[Heard], inventory: &Inventory, until_ms: i64) -> Vec<Transition> {
    let rules = Arc::new(cistern_rules::library::load(Default::default()).set);
    let settings = crate::alarms::RulesConfig::default();
    let mut by_room: HashMap<&RoomId, Vec<&Heard>> = HashMap::new();
    for h in heard {
        by_room.entry(&h.device.room).or_default().push(h);
    }
    let mut out = Vec::new();
    for spec in &inventory.rooms {
        let Some(messages) = by_room.get(&spec.id) else {
            continue;
        };
        out.extend(replay_room(spec, messages, &rules, &settings, until_ms));
    }
    out.sort();
    out
}

/// One room's replay: messages (in arrival order) applied at their arrival, the sweep every
/// `sweep_every` between them, up to `until_ms`.
fn replay_room(
    spec: &RoomSpec,
    messages: &[&Heard],
    rules: &Arc<RuleSet>,
    settings: &crate::alarms::RulesConfig,
    until_ms: i64,
) -> Vec<Transition> {
    let actors = crate::config::ActorsConfig::default().actor_config();
    let sweep_ms = actors.sweep_every.as_millis() as i64;
    let refresh_every = settings.refresh_every.max(Duration::from_secs(1));
    let mut replay = RoomReplay::new(Arc::new(spec.clone()), actors);
    let mut engine = RoomEngine::new(
        spec.id.clone(),
        rules.clone(),
        Arc::new(settings.engine.clone()),
    );
    let mut notes: Vec<Notification> = Vec::new();
    let mut events: Vec<AlarmEvent> = Vec::new();
    let Some(first) = messages.first() else {
        return Vec::new();
    };
    let mut next_sweep = first.at_ms + sweep_ms;
    let mut last_refresh: Option<Timestamp> = None;
    let mut i = 0;
    loop {
        let arrival = messages.get(i).map(|h| h.at_ms).filter(|t| *t <= until_ms);
        match arrival {
            Some(at) if at < next_sweep => {
                // One gateway message (a room message is one `Heard` per device, all arrived
                // at once): applied, then evaluated once, as the room coalesces a burst.
                let now = Timestamp(at);
                while let Some(h) = messages.get(i).filter(|h| h.at_ms == at) {
                    for record in &h.records {
                        replay.apply(h.device.unit, record, now);
                    }
                    i += 1;
                }
                let touched = replay.take_touched();
                events.extend(engine.evaluate(replay.facts(), &touched, now, &mut notes));
            }
            _ => {
                if next_sweep > until_ms {
                    break;
                }
                let now = Timestamp(next_sweep);
                replay.sweep(now);
                if last_refresh.is_none_or(|t| now.since(t) >= refresh_every) {
                    replay.touch_all(now);
                    last_refresh = Some(now);
                }
                events.extend(engine.tick(now, &mut notes));
                let touched = replay.take_touched();
                events.extend(engine.evaluate(replay.facts(), &touched, now, &mut notes));
                next_sweep += sweep_ms;
            }
        }
        notes.clear();
    }
    events.iter().filter_map(Transition::of).collect()
}

/// Every node's recorded transitions of the inventory's rooms stamped within `[from, to]` (the
/// nodes' own clocks), `by_node[i]` from `data_dirs[i]`.
pub async fn recorded(
    data_dirs: &[PathBuf],
    inventory: &Inventory,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Vec<Transition>>, FailoverError> {
    let mut by_node = Vec::with_capacity(data_dirs.len());
    for dir in data_dirs {
        let fail = |e: String| FailoverError::Alarms(format!("cannot read {}: {e}", dir.display()));
        let config = StoreConfig {
            data_dir: dir.clone(),
            ..StoreConfig::default()
        };
        let retention = crate::historian::HistorianSection::default().retention();
        let io = IoRuntime::new().map_err(|e| fail(e.to_string()))?;
        let opened = crate::store::open(&config, &retention, &io)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut transitions = Vec::new();
        for spec in &inventory.rooms {
            let stream = crate::alarms::stored::stream_of(spec.id.as_str());
            let stored = opened
                .store
                .events(&stream, Timestamp(from_ms), Timestamp(to_ms), usize::MAX)
                .await
                .map_err(|e| fail(e.to_string()))?;
            for s in stored {
                match serde_json::from_slice::<AlarmEvent>(&s.body) {
                    Ok(e) => transitions.extend(Transition::of(&e)),
                    Err(error) => {
                        return Err(fail(format!("an unreadable event in {stream}: {error}")))
                    }
                }
            }
        }
        drop(opened);
        by_node.push(transitions);
    }
    Ok(by_node)
}

/// What the comparison counts, over a window of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlarmCensus {
    /// Transitions the reference expects in the window.
    pub expected: u64,
    /// Recorded by the nodes (every node's, each counted): those paired with an expected one
    /// in the window, and the unpaired ones stamped in it. `matched + recorded_twice +
    /// duplicated + spurious`.
    pub recorded: u64,
    /// Expected and recorded within the tolerance.
    pub matched: u64,
    /// Expected and recorded by no node within the tolerance.
    pub lost: u64,
    /// Recorded once more within the tolerance of a matched one: by another node (the old
    /// owner recorded it, the new owner derived it again) …
    pub recorded_twice: u64,
    /// … or by the same node.
    pub duplicated: u64,
    /// Recorded, not expected.
    pub spurious: u64,
    /// Recorded stamp less the expected one, over the matched: median and largest magnitude.
    pub lateness_p50_ms: Option<i64>,
    pub lateness_max_ms: Option<i64>,
    /// Expected transitions by kind (`raised`, `cleared`, ...).
    pub by_kind: BTreeMap<String, u64>,
    /// A few lost, spurious and twice-recorded transitions, for the investigation.
    pub lost_examples: Vec<String>,
    pub spurious_examples: Vec<String>,
    pub twice_examples: Vec<String>,
}

/// One recorded transition and the node that recorded it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub node: usize,
    pub transition: Transition,
}

/// The window of the run the comparison covers, and its tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub tolerance_ms: i64,
}

/// Pairs `expected` with `recorded` (both on the real clock; see the module doc) and counts,
/// over the expected transitions stamped in the window and the recorded ones stamped in the
/// window; `keep` chooses the rooms counted (all of them, or those of the lost node).
pub fn compare(
    expected: &[Transition],
    recorded: &[Recorded],
    window: Window,
    keep: &dyn Fn(&RoomId) -> bool,
) -> AlarmCensus {
    let tol = window.tolerance_ms;
    let inside = |t: i64| (window.from_ms..=window.to_ms).contains(&t);
    type Alarm = (RoomId, String, String, EventKind);
    let mut want: BTreeMap<Alarm, Vec<&Transition>> = BTreeMap::new();
    for e in expected.iter().filter(|e| keep(&e.room)) {
        want.entry(e.alarm()).or_default().push(e);
    }
    let mut got: BTreeMap<Alarm, Vec<&Recorded>> = BTreeMap::new();
    for r in recorded.iter().filter(|r| keep(&r.transition.room)) {
        got.entry(r.transition.alarm()).or_default().push(r);
    }
    let mut c = AlarmCensus::default();
    let mut lateness: Vec<i64> = Vec::new();
    let empty = Vec::new();
    let keys: std::collections::BTreeSet<&Alarm> = want.keys().chain(got.keys()).collect();
    for key in keys {
        let mut es: Vec<&Transition> = want.get(key).cloned().unwrap_or_default();
        es.sort_by_key(|e| e.at_ms);
        let mut rs: Vec<&Recorded> = got.get(key).unwrap_or(&empty).clone();
        rs.sort_by_key(|r| (r.transition.at_ms, r.node));
        let mut paired = vec![false; rs.len()];
        // The recorded transition each expected one took (for the `recorded twice` test).
        let mut taken: Vec<usize> = Vec::new();
        // Paired with an expected transition of the window: counted as recorded.
        let mut counted_pair = vec![false; rs.len()];
        for e in &es {
            let pick = (0..rs.len())
                .find(|&j| !paired[j] && (rs[j].transition.at_ms - e.at_ms).abs() <= tol);
            let counted = inside(e.at_ms);
            if counted {
                c.expected += 1;
                *c.by_kind.entry(e.kind.as_str().to_owned()).or_default() += 1;
            }
            match pick {
                Some(j) => {
                    paired[j] = true;
                    taken.push(j);
                    if counted {
                        counted_pair[j] = true;
                        c.matched += 1;
                        lateness.push(rs[j].transition.at_ms - e.at_ms);
                    }
                }
                None if counted => {
                    c.lost += 1;
                    if c.lost_examples.len() < 10 {
                        c.lost_examples.push(e.to_string());
                    }
                }
                None => {}
            }
        }
        for (j, r) in rs.iter().enumerate() {
            if counted_pair[j] {
                c.recorded += 1;
            }
            if paired[j] || !inside(r.transition.at_ms) {
                continue;
            }
            c.recorded += 1;
            let twin = taken
                .iter()
                .map(|&k| rs[k])
                .find(|m| (m.transition.at_ms - r.transition.at_ms).abs() <= tol);
            if twin.is_some() && c.twice_examples.len() < 10 {
                c.twice_examples.push(format!(
                    "{} (node {}; first by node {} at {})",
                    r.transition,
                    r.node,
                    twin.map_or(0, |m| m.node),
                    twin.map_or(0, |m| m.transition.at_ms)
                ));
            }
            match twin {
                Some(m) if m.node != r.node => c.recorded_twice += 1,
                Some(_) => c.duplicated += 1,
                None => {
                    c.spurious += 1;
                    if c.spurious_examples.len() < 10 {
                        c.spurious_examples
                            .push(format!("{} (node {})", r.transition, r.node));
                    }
                }
            }
        }
    }
    lateness.sort_unstable();
    c.lateness_p50_ms = lateness.get(lateness.len() / 2).copied();
    c.lateness_max_ms = lateness.iter().copied().max_by_key(|l| l.abs());
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::failover::tap::Ledger;
    use crate::lab::sim::{generate_fleet, FaultKind, Simulator};
    use cistern_schemas::telemetry;
    use cistern_schemas::DeviceId;

    fn t(room: &str, rule: &str, kind: EventKind, at_ms: i64) -> Transition {
        Transition {
            room: RoomId::new(room).unwrap(),
            rule: rule.into(),
            unit: "room".into(),
            kind,
            at_ms,
        }
    }

    fn on(node: usize, transition: Transition) -> Recorded {
        Recorded { node, transition }
    }

    const WINDOW: Window = Window {
        from_ms: 0,
        to_ms: 100_000,
        tolerance_ms: 10_000,
    };

    #[test]
    fn a_transition_recorded_by_no_node_is_lost_and_one_nobody_expected_is_spurious() {
        let expected = vec![
            t("XM-0001", "mains_loss", EventKind::Raised, 10_000),
            t("XM-0001", "mains_loss", EventKind::Cleared, 40_000),
            t("XM-0002", "smoke", EventKind::Raised, 20_000),
        ];
        let recorded = vec![
            // Late by 6 s (a takeover): still the same transition.
            on(1, t("XM-0001", "mains_loss", EventKind::Raised, 16_000)),
            on(1, t("XM-0001", "mains_loss", EventKind::Cleared, 39_500)),
            // The smoke alarm's raise is nowhere; a clear nobody expected.
            on(0, t("XM-0002", "smoke", EventKind::Cleared, 30_000)),
        ];
        let c = compare(&expected, &recorded, WINDOW, &|_| true);
        assert_eq!(c.expected, 3);
        assert_eq!(c.recorded, 3);
        assert_eq!(c.matched, 2);
        assert_eq!(c.lost, 1);
        assert_eq!(c.lost_examples, vec!["XM-0002/smoke@room raised at 20000"]);
        assert_eq!(c.spurious, 1);
        assert_eq!(c.recorded_twice, 0);
        assert_eq!(c.lateness_max_ms, Some(6_000));
        assert_eq!(c.by_kind.get("raised"), Some(&2));
        // Only the second room.
        let one = compare(&expected, &recorded, WINDOW, &|r| r.as_str() == "XM-0002");
        assert_eq!((one.expected, one.lost, one.spurious), (1, 1, 1));
    }

    #[test]
    fn a_transition_recorded_by_the_old_and_the_new_owner_is_recorded_twice() {
        let expected = vec![t("XM-0001", "pump_fault", EventKind::Raised, 10_000)];
        let recorded = vec![
            on(0, t("XM-0001", "pump_fault", EventKind::Raised, 10_020)),
            on(2, t("XM-0001", "pump_fault", EventKind::Raised, 14_000)),
            on(2, t("XM-0001", "pump_fault", EventKind::Raised, 14_000)),
        ];
        let c = compare(&expected, &recorded, WINDOW, &|_| true);
        assert_eq!((c.matched, c.lost, c.spurious), (1, 0, 0));
        assert_eq!(c.recorded_twice, 2);
        assert_eq!(c.recorded, 3);
        assert_eq!(c.lateness_max_ms, Some(20));
        // Beyond the tolerance, a second raise is a transition of its own, not a twin.
        let far = vec![
            on(0, t("XM-0001", "pump_fault", EventKind::Raised, 10_000)),
            on(0, t("XM-0001", "pump_fault", EventKind::Raised, 30_000)),
        ];
        let c = compare(&expected, &far, WINDOW, &|_| true);
        assert_eq!((c.duplicated, c.recorded_twice, c.spurious), (0, 0, 1));
    }

    #[test]
    fn transitions_outside_the_window_are_not_counted_but_still_pair() {
        let window = Window {
            from_ms: 10_000,
            to_ms: 20_000,
            tolerance_ms: 5_000,
        };
        // Expected just before the end, recorded just after it: matched, not lost.
        let expected = vec![
            t("XM-0001", "smoke", EventKind::Raised, 19_000),
            t("XM-0001", "flooding", EventKind::Raised, 25_000),
        ];
        let recorded = vec![
            on(0, t("XM-0001", "smoke", EventKind::Raised, 21_000)),
            // After the window: neither counted nor spurious.
            on(0, t("XM-0001", "mains_loss", EventKind::Cleared, 26_000)),
        ];
        let c = compare(&expected, &recorded, window, &|_| true);
        assert_eq!((c.expected, c.matched, c.lost), (1, 1, 0));
        // The smoke alarm's raise is counted with the expected one it pairs with.
        assert_eq!((c.recorded, c.spurious), (1, 0));
    }

    /// The reference on the simulator's own readings, heard by the tap's ledger: a pump trip
    /// and a mains loss raise their alarms after their on-delays and clear once over.
    #[test]
    fn the_reference_raises_and_clears_the_alarms_of_short_faults() {
        let inventory = generate_fleet(3, 5);
        let start = Timestamp(1_767_571_200_000);
        let mut sim = Simulator::new(&inventory, 5, start);
        let (a, b) = (inventory.rooms[0].id.clone(), inventory.rooms[1].id.clone());
        let mut ledger = Ledger::default();
        let step = Duration::from_secs(2);
        for i in 0..60 {
            if i == 10 {
                sim.inject(&a, FaultKind::PumpTrip, Duration::from_secs(20))
                    .unwrap();
                sim.inject(&b, FaultKind::MainsLoss, Duration::from_secs(20))
                    .unwrap();
            }
            sim.step(step);
            for r in sim.readings() {
                for (unit, values) in &r.devices {
                    let device = DeviceId::new(r.room.clone(), *unit);
                    let payload = telemetry::encode(unit.kind(), &[(r.t, values)], false);
                    // Heard 30 ms after the reading.
                    ledger.record(&telemetry::topic(&device), &payload, Timestamp(r.t.0 + 30));
                }
            }
        }
        let end = sim.now().0;
        let published = ledger.settle();
        let got = expected(&published.heard, &inventory, end);
        let of = |room: &RoomId, rule: &str| -> Vec<EventKind> {
            got.iter()
                .filter(|t| &t.room == room && t.rule == rule)
                .map(|t| t.kind)
                .collect()
        };
        assert_eq!(
            of(&a, "pump_fault"),
            vec![EventKind::Raised, EventKind::Cleared],
            "{got:#?}"
        );
        assert_eq!(
            of(&b, "mains_loss"),
            vec![EventKind::Raised, EventKind::Cleared],
            "{got:#?}"
        );
        // Stamped after the injection and the on-delay (5 s).
        let injected = start.0 + 20_000;
        assert!(got.iter().all(|t| t.at_ms >= injected + 5_000), "{got:#?}");
        // The untouched room: nothing.
        let c = inventory.rooms[2].id.clone();
        assert!(got.iter().all(|t| t.room != c), "{got:#?}");
        // The same replay, the same transitions.
        assert_eq!(expected(&published.heard, &inventory, end), got);
    }
}
