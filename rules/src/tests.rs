//! Unit tests of the engine as a whole: the shipped library and its golden cases, lint
//! diagnostics, hot reload, snapshot/restore (including a property test), touched-input
//! selection, commands and counters.

use crate::cases::CASE_EPOCH;
use crate::*;
use cistern_schemas::{DeviceUnit, RoomId, Timestamp};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("library")
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

fn room() -> RoomId {
    RoomId::new("XM-0001").unwrap()
}

fn lib_set() -> Arc<RuleSet> {
    let out = RuleSet::load_dir(&library(), SandboxLimits::default()).unwrap();
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    Arc::new(out.set)
}

fn at(s: u64) -> Timestamp {
    CASE_EPOCH + Duration::from_secs(s)
}

fn key(s: &str) -> AlarmKey {
    s.parse().unwrap()
}

fn rule_src(id: &str, body: &str, extra: &str) -> (PathBuf, String) {
    (
        PathBuf::from(format!("{id}.rhai")),
        format!(
            "//! id = \"{id}\"\n//! applies_to = \"room\"\n//! severity = \"P3\"\n//! message = \"m\"\n{extra}{body}\n"
        ),
    )
}

#[test]
fn the_library_checks_clean_and_has_every_rule_of_the_domain_table() {
    let report = tools::check(&library()).unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.diagnostics.is_empty(), "{report}");
    let ids: Vec<String> = report.rules.iter().map(|r| r.id.to_string()).collect();
    for id in [
        "comms_lost",
        "mains_loss",
        "voltage_deviation",
        "bad_analog",
        "pump_fault",
        "no_pump_available",
        "pump_at_max",
        "outlet_pressure_low",
        "outlet_pressure_high",
        "inlet_pressure_low",
        "tank_low",
        "tank_low_low",
        "tank_high",
        "overflow",
        "tank_not_refilling",
        "chlorine_warning",
        "chlorine_low",
        "chlorine_high",
        "turbidity_high",
        "ph_out_of_range",
        "tank_cleaning_overdue",
        "flooding",
        "smoke",
        "intrusion",
        "door_held_open",
        "camera_fault",
        "room_environment",
    ] {
        assert!(ids.contains(&id.to_string()), "missing {id}");
    }
}

#[test]
fn golden_cases_pass_and_cover_every_rule() {
    let report = tools::test(&library(), &cases_dir()).unwrap();
    assert!(report.ok(), "\n{report}");
    assert!(report.uncovered.is_empty(), "\n{report}");
    assert!(report.cases.len() >= 35);
}

#[test]
fn a_failing_case_prints_a_readable_diff() {
    let case: cases::Case = toml::from_str(
        r#"
description = "wrong on purpose"
[[step]]
at = "0s"
set = { "P1.fault" = 1 }
[[expect]]
at = "4s"
key = "pump_fault@P1"
kind = "raised"
"#,
    )
    .unwrap();
    let r = cases::run_case("wrong", &case, &lib_set(), &[]);
    assert!(!r.passed);
    assert!(r.diff.contains("4s pump_fault@P1 raised"), "{}", r.diff);
    assert!(
        r.diff.contains("5s pump_fault@P1 raised →unacked P2"),
        "{}",
        r.diff
    );
    assert!(r.to_string().starts_with("FAILED wrong"));
}

#[test]
fn lint_reports_file_line_and_column() {
    let sources = vec![
        // reads a point it does not declare
        rule_src(
            "undeclared",
            "outlet_pressure < 0.3 || inlet_pressure < 0.1",
            "//! inputs = [\"outlet_pressure\"]\n",
        ),
        // declares a point that does not exist
        rule_src(
            "unknown_point",
            "true",
            "//! inputs = [\"outlet_presure\"]\n",
        ),
        // no metadata at all
        (PathBuf::from("bare.rhai"), "fault\n".to_string()),
        // a parent cycle and an unknown parent
        rule_src(
            "cyc_a",
            "door",
            "//! inputs = [\"door\"]\n//! parents = [\"cyc_b\"]\n",
        ),
        rule_src(
            "cyc_b",
            "door",
            "//! inputs = [\"door\"]\n//! parents = [\"cyc_a\", \"nope\"]\n",
        ),
        // a syntax error
        rule_src("syntax", "door &&", "//! inputs = [\"door\"]\n"),
    ];
    let out = RuleSet::from_sources(sources, SandboxLimits::default());
    let text: Vec<String> = out.diagnostics.iter().map(ToString::to_string).collect();
    let find = |needle: &str| {
        text.iter()
            .find(|t| t.contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("no diagnostic with {needle:?} in {text:#?}"))
    };
    assert!(
        find("undeclared.rhai:6:").contains("inlet_pressure"),
        "{text:#?}"
    );
    assert!(
        find("unknown point `outlet_presure`").starts_with("unknown_point.rhai:5:"),
        "{text:#?}"
    );
    assert!(find("missing metadata").starts_with("bare.rhai:1:1"));
    assert!(find("parent cycle").contains("cyc_a, cyc_b"));
    assert!(find("unknown parent `nope`").contains("error"));
    assert!(find("syntax.rhai:7:1").contains("incomplete"), "{text:#?}");
    // What compiled is usable.
    assert!(out.set.get(&RuleId::new("cyc_a").unwrap()).is_some());
    assert!(out.set.get(&RuleId::new("undeclared").unwrap()).is_none());
}

#[test]
fn reload_keeps_the_previous_version_of_a_rule_that_fails_to_compile() {
    let v1 = vec![
        rule_src("door_open", "door", "//! inputs = [\"door\"]\n"),
        rule_src("smoky", "smoke", "//! inputs = [\"smoke\"]\n"),
    ];
    let set1 = Arc::new(RuleSet::from_sources(v1, SandboxLimits::default()).set);
    let mut engine = RoomEngine::new(room(), set1.clone(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 1, 1, 1);
    facts.set_path("door", 1.0).unwrap();
    let ev = engine.evaluate_all(&facts, at(0), &mut Discard);
    assert_eq!(ev.len(), 1);
    assert_eq!(engine.state_of(&key("door_open@room")), AlarmState::Unacked);

    // v2: door_open is broken, smoky is removed, a new rule appears.
    let v2 = vec![
        rule_src("door_open", "door &&", "//! inputs = [\"door\"]\n"),
        rule_src(
            "hot",
            "temperature > 30.0",
            "//! inputs = [\"temperature\"]\n",
        ),
    ];
    let out = set1.reload_sources(v2);
    assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
    assert!(out.diagnostics[0]
        .to_string()
        .contains("previous version stays in service"));
    let set2 = Arc::new(out.set);
    assert!(set2.get(&RuleId::new("door_open").unwrap()).is_some());
    assert!(set2.get(&RuleId::new("smoky").unwrap()).is_none());
    assert!(set2.get(&RuleId::new("hot").unwrap()).is_some());
    let ev = engine.swap_rules(set2, at(1));
    assert!(ev.is_empty(), "{ev:?}");
    // The active alarm of the kept rule kept its state.
    assert_eq!(engine.state_of(&key("door_open@room")), AlarmState::Unacked);
    facts.set_path("door", 0.0).unwrap();
    let ev = engine.evaluate_all(&facts, at(2), &mut Discard);
    assert_eq!(ev[0].kind, EventKind::Cleared);
}

#[test]
fn a_ten_minute_delay_survives_a_restart() {
    let rules = lib_set();
    let config = Arc::new(EngineConfig::default());
    let mut a = RoomEngine::new(room(), rules.clone(), config.clone());
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    facts.set_path("door", 1.0).unwrap(); // door_held_open: 600 s on-delay
    assert!(a.evaluate_all(&facts, at(0), &mut Discard).is_empty());
    // 5 min later the process dies; the snapshot went to the store as JSON.
    let json = serde_json::to_string(&a.snapshot()).unwrap();
    drop(a);
    let snap: EngineSnapshot = serde_json::from_str(&json).unwrap();
    let mut b = RoomEngine::restore(room(), rules, config, snap);
    assert_eq!(b.next_deadline(), Some(at(600)));
    let ev = b.tick(at(601), &mut Discard);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].key, key("door_held_open@room"));
    assert_eq!(ev[0].time, at(600), "fires at its original due time");
}

#[test]
fn only_rules_reading_a_touched_fact_run() {
    let rules = lib_set();
    let mut e = RoomEngine::new(room(), rules, Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    let all = e.stats().evaluations;
    // 19 room rules, 2 pump rules × 3, 6 tank rules × 2, 1 camera rule × 2
    assert_eq!(all, 39);
    facts.set_path("P2.fault", 1.0).unwrap();
    facts.derive_pump_status();
    let mut t = Touched::none();
    t.device(DeviceUnit::Pump(2));
    e.evaluate(&facts, &t, at(1), &mut Discard);
    let s = e.stats();
    let ran = s.evaluations - all;
    // pump_fault@P2, pump_at_max@P2, no_pump_available (reads pump counts),
    // bad_analog (reads suspect_transmitters, which includes devices)
    assert_eq!(ran, 4, "{:#?}", s.per_rule);
    assert_eq!(
        s.per_rule[&RuleId::new("pump_fault").unwrap()].evaluations,
        3 + 1
    );
}

#[test]
fn commands_are_validated() {
    let rules = lib_set();
    let mut e = RoomEngine::new(room(), rules, Arc::new(EngineConfig::default()));
    let facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    let cmd = |k: &str, action: CommandAction| Command {
        key: key(k),
        action,
        user: "op".into(),
        comment: String::new(),
    };
    assert!(matches!(
        e.apply(
            &cmd("pump_fault@P1", CommandAction::Ack),
            at(1),
            &mut Discard
        ),
        Err(CommandError::NotAckable { .. })
    ));
    assert!(matches!(
        e.apply(
            &cmd("pump_fault@room", CommandAction::Ack),
            at(1),
            &mut Discard
        ),
        Err(CommandError::UnknownAlarm { .. })
    ));
    assert!(matches!(
        e.apply(
            &cmd("pump_fault@P1", CommandAction::Reset),
            at(1),
            &mut Discard
        ),
        Err(CommandError::NotLatched { .. })
    ));
    let too_long = CommandAction::Shelve {
        until: at(1) + Duration::from_secs(8 * 24 * 3600),
        reason: "r".into(),
    };
    assert!(matches!(
        e.apply(&cmd("pump_fault@P1", too_long), at(1), &mut Discard),
        Err(CommandError::BadShelveExpiry { .. })
    ));
    let mut nouser = cmd("pump_fault@P1", CommandAction::Unshelve);
    nouser.user = " ".into();
    assert_eq!(
        e.apply(&nouser, at(1), &mut Discard),
        Err(CommandError::NoUser)
    );
}

#[test]
fn escalation_notifies_the_outbox_and_stats_count_by_severity() {
    let rules = lib_set();
    let mut e = RoomEngine::new(room(), rules, Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    facts.set_path("turbidity", 2.0).unwrap();
    let mut outbox: Vec<Notification> = Vec::new();
    let mut t = Touched::none();
    t.path("turbidity").unwrap();
    e.evaluate(&facts, &t, at(10), &mut outbox);
    let mut now = at(10);
    while let Some(d) = e.next_deadline().filter(|d| *d <= at(3000)) {
        now = d;
        e.tick(now, &mut outbox);
    }
    assert!(now >= at(310));
    let targets: Vec<&str> = outbox.iter().map(|n| n.target.as_str()).collect();
    assert_eq!(targets, vec!["shift_lead", "on_call_manager"]);
    let json = serde_json::to_value(&outbox[0]).unwrap();
    assert_eq!(json["type"], "escalation");
    assert_eq!(json["step"], 1);
    let s = e.stats();
    assert_eq!(s.activations_by_severity, [0, 1, 0, 0]);
    assert!(s.eval_nanos > 0);
}

#[test]
fn sandbox_kills_are_counted_and_the_rule_stays_disabled() {
    let sources = vec![
        rule_src(
            "spin",
            "let i = 0; while true { i += 1; } true",
            "//! inputs = [\"door\"]\n",
        ),
        rule_src(
            "deep",
            "fn f(x) { f(x + 1) } f(0)",
            "//! inputs = [\"door\"]\n",
        ),
        rule_src("door_open", "door", "//! inputs = [\"door\"]\n"),
    ];
    let set = Arc::new(RuleSet::from_sources(sources, SandboxLimits::default()).set);
    let mut e = RoomEngine::new(room(), set.clone(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 1, 1, 1);
    facts.set_path("door", 1.0).unwrap();
    let mut outbox: Vec<Notification> = Vec::new();
    let started = std::time::Instant::now();
    let ev = e.evaluate_all(&facts, at(0), &mut outbox);
    assert!(started.elapsed() < Duration::from_secs(5));
    let kinds: Vec<(String, EventKind)> = ev.iter().map(|e| (e.key.to_string(), e.kind)).collect();
    assert!(
        kinds.contains(&("spin@room".into(), EventKind::RuleDisabled)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("deep@room".into(), EventKind::RuleDisabled)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("door_open@room".into(), EventKind::Raised)),
        "{kinds:?}"
    );
    assert_eq!(e.stats().sandbox_kills, 2);
    assert_eq!(outbox.len(), 2);
    assert!(set
        .get(&RuleId::new("spin").unwrap())
        .unwrap()
        .is_disabled());
    // A second pass does not run them again.
    e.evaluate_all(&facts, at(1), &mut Discard);
    assert_eq!(e.stats().sandbox_kills, 2);
}

#[test]
fn scripts_cannot_reach_outside() {
    for (id, body) in [
        ("sleeper", "sleep(10); true"),
        ("evaler", "eval(\"1\"); true"),
        ("clock", "timestamp(); true"),
        ("importer", "import \"x\" as y; true"),
    ] {
        let out = RuleSet::from_sources(
            vec![rule_src(id, body, "//! inputs = [\"door\"]\n")],
            SandboxLimits::default(),
        );
        if out.has_errors() {
            continue; // rejected at compile time
        }
        let set = Arc::new(out.set);
        let mut e = RoomEngine::new(room(), set, Arc::new(EngineConfig::default()));
        let facts = RoomFacts::nominal(room(), 1, 1, 1);
        let ev = e.evaluate_all(&facts, at(0), &mut Discard);
        assert!(ev.is_empty(), "{id}: {ev:?}");
        assert_eq!(e.stats().script_errors, 1, "{id} should fail at run time");
    }
}

#[test]
fn a_snapshot_round_trips_through_json_with_every_timer() {
    let rules = lib_set();
    let mut e = RoomEngine::new(room(), rules.clone(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    facts.set_path("turbidity", 2.0).unwrap();
    facts.set_path("flooding", 1.0).unwrap();
    facts.set_path("door", 1.0).unwrap();
    e.evaluate_all(&facts, at(1), &mut Discard);
    e.tick(at(400), &mut Discard);
    e.apply(
        &Command {
            key: key("flooding@room"),
            action: CommandAction::Shelve {
                until: at(5000),
                reason: "pump-out".into(),
            },
            user: "op".into(),
            comment: "crew on site".into(),
        },
        at(401),
        &mut Discard,
    )
    .unwrap();
    let snap = e.snapshot();
    let json = serde_json::to_string_pretty(&snap).unwrap();
    let back: EngineSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let r = RoomEngine::restore(room(), rules, Arc::new(EngineConfig::default()), back);
    assert_eq!(r.next_deadline(), e.next_deadline());
    assert_eq!(r.state_of(&key("flooding@room")), AlarmState::Shelved);
}

#[derive(Clone, Debug)]
enum Op {
    Pressure(f64),
    Bad,
    Fault(u8, bool),
    Door(bool),
    Chlorine(f64),
    Ack,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0.2f64..0.7).prop_map(Op::Pressure),
        Just(Op::Bad),
        (1u8..=3, any::<bool>()).prop_map(|(p, f)| Op::Fault(p, f)),
        any::<bool>().prop_map(Op::Door),
        (0.0f64..2.5).prop_map(Op::Chlorine),
        Just(Op::Ack),
        (1u64..900).prop_map(Op::Wait),
    ]
}

/// Drives an engine through ops; returns its events.
fn drive(
    e: &mut RoomEngine,
    facts: &mut RoomFacts,
    ops: &[Op],
    now: &mut Timestamp,
) -> Vec<AlarmEvent> {
    let mut out = Vec::new();
    for op in ops {
        let mut t = Touched::none();
        match op {
            Op::Pressure(p) => {
                facts.set_path("outlet_pressure", *p).unwrap();
                t.path("outlet_pressure").unwrap();
            }
            Op::Bad => {
                if let Some(p) = facts
                    .points_mut(DeviceUnit::Room)
                    .unwrap()
                    .get_mut("outlet_pressure")
                    .unwrap()
                {
                    p.quality = cistern_schemas::QualityLevel::Bad;
                }
                t.path("outlet_pressure").unwrap();
            }
            Op::Fault(n, f) => {
                facts
                    .set_path(&format!("P{n}.fault"), f64::from(u8::from(*f)))
                    .unwrap();
                facts.derive_pump_status();
                t.device(DeviceUnit::Pump(*n));
            }
            Op::Door(d) => {
                facts.set_path("door", f64::from(u8::from(*d))).unwrap();
                t.path("door").unwrap();
            }
            Op::Chlorine(c) => {
                facts.set_path("chlorine", *c).unwrap();
                t.path("chlorine").unwrap();
            }
            Op::Ack => {
                let unacked: Vec<AlarmKey> = e
                    .alarms()
                    .filter(|a| {
                        matches!(a.state(), AlarmState::Unacked | AlarmState::ReturnedUnacked)
                    })
                    .map(|a| a.key.clone())
                    .collect();
                for k in unacked {
                    let cmd = Command {
                        key: k,
                        action: CommandAction::Ack,
                        user: "op".into(),
                        comment: String::new(),
                    };
                    out.extend(e.apply(&cmd, *now, &mut Discard).unwrap());
                }
                continue;
            }
            Op::Wait(s) => {
                let until = *now + Duration::from_secs(*s);
                while let Some(d) = e.next_deadline().filter(|d| *d <= until) {
                    out.extend(e.tick(d, &mut Discard));
                }
                *now = until;
                continue;
            }
        }
        *now = *now + Duration::from_secs(1);
        out.extend(e.evaluate(facts, &t, *now, &mut Discard));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Restoring from a JSON snapshot at any point gives exactly the events an uninterrupted
    /// engine gives.
    #[test]
    fn snapshot_restore_is_invisible(ops in proptest::collection::vec(op(), 1..40), cut in 0usize..40) {
        let rules = lib_set();
        let config = Arc::new(EngineConfig::default());
        let cut = cut.min(ops.len());
        let (head, tail) = ops.split_at(cut);

        let mut a = RoomEngine::new(room(), rules.clone(), config.clone());
        let mut fa = RoomFacts::nominal(room(), 3, 2, 2);
        let mut ta = at(0);
        a.evaluate_all(&fa, ta, &mut Discard);
        drive(&mut a, &mut fa, head, &mut ta);
        let snap = serde_json::to_string(&a.snapshot()).unwrap();
        let mut fb = fa.clone();
        let mut tb = ta;
        let expected = drive(&mut a, &mut fa, tail, &mut ta);

        let mut b = RoomEngine::restore(room(), rules, config, serde_json::from_str(&snap).unwrap());
        let got = drive(&mut b, &mut fb, tail, &mut tb);
        prop_assert_eq!(got, expected);
        prop_assert_eq!(b.snapshot(), a.snapshot());
    }
}

#[test]
fn a_reload_keeps_a_hostile_rule_disabled_until_its_source_changes() {
    let spin = rule_src(
        "spin",
        "let i = 0; while true { i += 1; } true",
        "//! inputs = [\"door\"]\n",
    );
    let door = rule_src("door_open", "door", "//! inputs = [\"door\"]\n");
    let set1 = Arc::new(
        RuleSet::from_sources(vec![spin.clone(), door.clone()], SandboxLimits::default()).set,
    );
    let mut e = RoomEngine::new(room(), set1.clone(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 1, 1, 1);
    facts.set_path("door", 1.0).unwrap();
    e.evaluate_all(&facts, at(0), &mut Discard);
    assert_eq!(e.stats().sandbox_kills, 1);
    let spin_id = RuleId::new("spin").unwrap();

    // Another rule changes (an upload of door_open reloads the whole directory): spin's
    // source is the same, so it stays disabled and is not run (nor killed) again.
    let door_v2 = rule_src("door_open", "door > 0.5", "//! inputs = [\"door\"]\n");
    let out = set1.reload_sources(vec![spin.clone(), door_v2.clone()]);
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    assert!(
        out.diagnostics
            .iter()
            .any(|d| d.level == DiagLevel::Warning && d.message.contains("stays disabled")),
        "{:?}",
        out.diagnostics
    );
    let set2 = Arc::new(out.set);
    assert!(set2.get(&spin_id).unwrap().is_disabled());
    e.swap_rules(set2.clone(), at(1));
    e.evaluate_all(&facts, at(2), &mut Discard);
    assert_eq!(
        e.stats().sandbox_kills,
        1,
        "the unchanged hostile rule ran again"
    );

    // A changed source gets a new chance.
    let spin_v2 = rule_src("spin", "door > 0.5", "//! inputs = [\"door\"]\n");
    let set3 = set2.reload_sources(vec![spin_v2, door_v2]).set;
    assert!(!set3.get(&spin_id).unwrap().is_disabled());
}

#[test]
fn a_refused_reload_keeps_the_version_in_force_and_records_the_refused_one() {
    let v1 = rule_src("door_open", "door", "//! inputs = [\"door\"]\n");
    let set1 = RuleSet::from_sources(vec![v1.clone()], SandboxLimits::default()).set;
    let id = RuleId::new("door_open").unwrap();
    assert_eq!(set1.get(&id).unwrap().source(), v1.1);
    assert!(set1.rejected(&id).is_none());

    let broken = rule_src("door_open", "door &&", "//! inputs = [\"door\"]\n");
    let set2 = set1.reload_sources(vec![broken.clone()]).set;
    assert_eq!(
        set2.get(&id).unwrap().source(),
        v1.1,
        "the version in force"
    );
    let rejected = set2.rejected(&id).expect("the refused version is recorded");
    assert_eq!(rejected.source, broken.1);
    assert!(!rejected.errors.is_empty());
    // The same refused source again keeps its first refusal time; a fixed file clears it.
    let set3 = set2.reload_sources(vec![broken]).set;
    assert_eq!(set3.rejected(&id).unwrap().at, rejected.at);
    let fixed = rule_src("door_open", "door > 0.5", "//! inputs = [\"door\"]\n");
    let set4 = set3.reload_sources(vec![fixed.clone()]).set;
    assert!(set4.rejected(&id).is_none());
    assert_eq!(set4.get(&id).unwrap().source(), fixed.1);
}

/// Sets `path` to `value` at `t` (after running the timers due before it) and returns every
/// event up to and including `t`.
fn set_at(
    e: &mut RoomEngine,
    facts: &mut RoomFacts,
    path: &str,
    value: f64,
    t: Timestamp,
) -> Vec<AlarmEvent> {
    let mut out = Vec::new();
    while let Some(d) = e.next_deadline().filter(|d| *d < t) {
        out.extend(e.tick(d, &mut Discard));
    }
    facts.set_path(path, value).unwrap();
    let mut touched = Touched::none();
    touched.path(path).unwrap();
    out.extend(e.evaluate(facts, &touched, t, &mut Discard));
    out
}

fn count(events: &[AlarmEvent], k: &str, kind: EventKind) -> usize {
    events
        .iter()
        .filter(|e| e.key == key(k) && e.kind == kind)
        .count()
}

#[test]
fn a_chattering_alarm_is_one_alarm_with_a_count_until_it_stays_clear() {
    // An overflow switch flapping for 45 min (set every 20 s, clear 12 s later: 10 s on-delay),
    // past the 30-min chatter shelve of the default configuration.
    let mut e = RoomEngine::new(room(), lib_set(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    let mut events = Vec::new();
    let cycles = 45 * 3;
    for k in 0..cycles {
        events.extend(set_at(
            &mut e,
            &mut facts,
            "T1.overflow",
            1.0,
            at(20 * k + 1),
        ));
        events.extend(set_at(
            &mut e,
            &mut facts,
            "T1.overflow",
            0.0,
            at(20 * k + 13),
        ));
    }
    let last_change = at(20 * (cycles - 1) + 13);
    // Annunciated three times before it was found chattering, then consolidated: one
    // chatter shelve, one chattering alarm, whatever it does next.
    assert_eq!(
        count(&events, "overflow@T1", EventKind::Raised),
        3,
        "{events:#?}"
    );
    assert_eq!(count(&events, "overflow@T1", EventKind::ChatterShelved), 1);
    assert_eq!(count(&events, "overflow@T1", EventKind::ShelveExpired), 0);
    assert_eq!(count(&events, "chattering@room", EventKind::Raised), 1);
    let member = e.alarm(&key("overflow@T1")).unwrap();
    assert_eq!(
        member.chatter_count, cycles as u32,
        "every activation is counted"
    );
    assert_eq!(
        member.shelve.as_ref().unwrap().until,
        last_change + Duration::from_secs(30 * 60),
        "held until it has been quiet for the shelve time"
    );
    let chattering = e.alarm(&key("chattering@room")).unwrap();
    assert!(
        chattering
            .message
            .contains(&format!("overflow@T1 ({cycles} activations)")),
        "{}",
        chattering.message
    );
    // Quiet at last: released once, and the chattering alarm returns.
    let mut tail = Vec::new();
    while let Some(d) = e
        .next_deadline()
        .filter(|d| *d <= last_change + Duration::from_secs(3600))
    {
        tail.extend(e.tick(d, &mut Discard));
    }
    assert_eq!(
        count(&tail, "overflow@T1", EventKind::ShelveExpired),
        1,
        "{tail:#?}"
    );
    assert_eq!(count(&tail, "chattering@room", EventKind::Cleared), 1);
    let expired = tail
        .iter()
        .find(|e| e.kind == EventKind::ShelveExpired)
        .unwrap();
    assert_eq!(expired.time, last_change + Duration::from_secs(30 * 60));
    assert_eq!(e.alarm(&key("overflow@T1")).unwrap().chatter_count, 0);
    assert_eq!(e.state_of(&key("overflow@T1")), AlarmState::Normal);
}

#[test]
fn a_snapshot_written_before_chatter_counts_and_chinese_messages_still_loads() {
    let mut e = RoomEngine::new(room(), lib_set(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    set_at(&mut e, &mut facts, "T1.overflow", 1.0, at(1));
    let mut json = serde_json::to_value(e.snapshot()).unwrap();
    for rec in json["alarms"].as_object_mut().unwrap().values_mut() {
        let rec = rec.as_object_mut().unwrap();
        for field in ["chatter_count", "message_zh", "raised_value"] {
            assert!(rec.remove(field).is_some(), "{field}");
        }
    }
    let old: EngineSnapshot = serde_json::from_value(json).unwrap();
    assert!(old.alarms.values().all(|r| r.chatter_count == 0));
    assert!(old
        .alarms
        .values()
        .all(|r| r.message_zh.is_empty() && r.raised_value.is_none()));
    // An event stored before `message_zh` too.
    let mut event = serde_json::to_value(set_at(&mut e, &mut facts, "T1.overflow", 0.0, at(30)))
        .unwrap()[0]
        .take();
    event.as_object_mut().unwrap().remove("message_zh");
    let old: AlarmEvent = serde_json::from_value(event).unwrap();
    assert_eq!(old.message_zh, "");
}

#[test]
fn an_intrusion_episode_annunciates_once_until_reset() {
    // Armed; the door flaps for 10 min (a forced door, or a chattering contact), the detector
    // sees motion now and then.
    let mut e = RoomEngine::new(room(), lib_set(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    facts.set_path("armed", 1.0).unwrap();
    e.evaluate_all(&facts, at(0), &mut Discard);
    let mut events = Vec::new();
    for k in 0..120 {
        let t = 10 + 5 * k;
        events.extend(set_at(
            &mut e,
            &mut facts,
            "door",
            f64::from(u8::from(k % 2 == 0)),
            at(t),
        ));
        if k % 10 == 0 {
            events.extend(set_at(
                &mut e,
                &mut facts,
                "intrusion",
                f64::from(u8::from(k % 20 == 0)),
                at(t),
            ));
        }
    }
    events.extend(set_at(&mut e, &mut facts, "intrusion", 0.0, at(700)));
    assert_eq!(
        count(&events, "intrusion@room", EventKind::Raised),
        1,
        "{events:#?}"
    );
    assert_eq!(count(&events, "intrusion@room", EventKind::Cleared), 0);
    assert_eq!(
        count(&events, "intrusion@room", EventKind::ChatterShelved),
        0
    );
    assert_eq!(count(&events, "chattering@room", EventKind::Raised), 0);
    assert_eq!(e.state_of(&key("intrusion@room")), AlarmState::Unacked);
    // A reset ends the episode; the next breach is a new one.
    let reset = Command {
        key: key("intrusion@room"),
        action: CommandAction::Reset,
        user: "zhang.min".into(),
        comment: "door secured".into(),
    };
    let ev = e.apply(&reset, at(710), &mut Discard).unwrap();
    assert_eq!(ev[0].kind, EventKind::Reset);
    assert_eq!(e.state_of(&key("intrusion@room")), AlarmState::Normal);
    let again = set_at(&mut e, &mut facts, "door", 1.0, at(800));
    assert_eq!(count(&again, "intrusion@room", EventKind::Raised), 1);
}

#[test]
fn alarms_carry_both_messages_and_the_value_they_were_raised_with() {
    // The library's rule has a Chinese message.
    let mut e = RoomEngine::new(room(), lib_set(), Arc::new(EngineConfig::default()));
    let mut facts = RoomFacts::nominal(room(), 3, 2, 2);
    e.evaluate_all(&facts, at(0), &mut Discard);
    let raised = set_at(&mut e, &mut facts, "inlet_pressure", 0.02, at(1));
    assert!(raised.is_empty(), "15 s on-delay: {raised:?}");
    let ev = set_at(&mut e, &mut facts, "inlet_pressure", 0.40, at(60));
    let k = key("inlet_pressure_low@room");
    let raised = ev.iter().find(|x| x.kind == EventKind::Raised).unwrap();
    assert_eq!(
        raised.message_zh,
        "泵房进水压力低：0.020 MPa，低于 0.05 MPa"
    );
    let rec = e.alarms().find(|r| r.key == k).unwrap();
    assert_eq!(rec.state(), AlarmState::ReturnedUnacked);
    assert_eq!(rec.raised_value, Some(FactValue::Number(0.02)), "was");
    assert_eq!(rec.value, Some(FactValue::Number(0.40)), "now");
    assert_eq!(rec.message, "Inlet pressure 0.020 MPa below 0.05 MPa");
    assert_eq!(rec.message_zh, "泵房进水压力低：0.020 MPa，低于 0.05 MPa");

    // A user's rule without `message_zh`: the English text in both.
    let set = RuleSet::from_sources(
        vec![rule_src(
            "door_open",
            "door",
            "//! inputs = [\"door\"]\n//! message_zh = \"{room} 门开\"\n",
        )
        .clone()]
        .into_iter()
        .chain([rule_src("smoky", "smoke", "//! inputs = [\"smoke\"]\n")]),
        SandboxLimits::default(),
    );
    assert!(!set.has_errors(), "{:?}", set.diagnostics);
    let mut e = RoomEngine::new(room(), Arc::new(set.set), Arc::new(EngineConfig::default()));
    facts.set_path("door", 1.0).unwrap();
    facts.set_path("smoke", 1.0).unwrap();
    let ev = e.evaluate_all(&facts, at(100), &mut Discard);
    let msg = |id: &str| {
        let x = ev.iter().find(|x| x.rule.as_str() == id).unwrap();
        (x.message.as_str(), x.message_zh.as_str())
    };
    assert_eq!(msg("door_open"), ("m", "XM-0001 门开"));
    assert_eq!(msg("smoky"), ("m", "m"));
}

#[test]
fn a_chinese_message_with_an_unknown_field_is_refused() {
    let out = RuleSet::from_sources(
        vec![rule_src(
            "door_open",
            "door",
            "//! inputs = [\"door\"]\n//! message_zh = \"门开 {doorr}\"\n",
        )],
        SandboxLimits::default(),
    );
    assert!(out.has_errors());
    assert!(
        out.diagnostics[0]
            .to_string()
            .contains("message_zh field `{doorr}`"),
        "{:?}",
        out.diagnostics
    );
}
