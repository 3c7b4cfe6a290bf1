//! The Rhai sandbox with the product's limits (`SandboxLimits::default()`), as an uploaded
//! rule meets it (src/api/rules.rs compiles it with `RuleSet::from_sources`; the room actor
//! then evaluates it with `RoomEngine`): a hostile or broken script is compiled, evaluated
//! against a healthy room and run through a timer tick.
//!
//! Input: byte 0 chooses a rule header (a room rule, a pump rule, or none: the input is the
//! whole file, header included); the rest is the script. Beyond "no panic" it checks the
//! sandbox's promise: an evaluation the sandbox had to stop is counted and its rule disabled.
//! A hang is a finding too: run with `-timeout=` (ops/test.sh and the README use 10 s), each
//! evaluation being bounded by `max_operations`.
#![no_main]

use cistern_rules::engine::EngineConfig;
use cistern_rules::facts::RoomFacts;
use cistern_rules::{Discard, RoomEngine, RuleSet, SandboxLimits};
use cistern_schemas::{RoomId, Timestamp};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const ROOM_HEADER: &str = "//! id = \"fuzz\"\n//! applies_to = \"room\"\n//! severity = \"P4\"\n\
//! message = \"fuzz {room}\"\n//! inputs = [\"door\", \"turbidity\", \"outlet_pressure\"]\n";
const PUMP_HEADER: &str = "//! id = \"fuzz\"\n//! applies_to = \"pump\"\n//! severity = \"P3\"\n\
//! message = \"fuzz {device}\"\n//! on_delay = \"5s\"\n//! inputs = [\"fault\", \"frequency\"]\n";

const NOW: Timestamp = Timestamp(1_732_170_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, script)) = data.split_first() else {
        return;
    };
    let Ok(script) = std::str::from_utf8(script) else {
        return;
    };
    let source = match selector % 3 {
        0 => format!("{ROOM_HEADER}\n{script}"),
        1 => format!("{PUMP_HEADER}\n{script}"),
        _ => script.to_owned(),
    };
    let out = RuleSet::from_sources(
        [(PathBuf::from("fuzz.rhai"), source)],
        SandboxLimits::default(),
    );
    let rules = Arc::new(out.set);
    if rules.is_empty() {
        return;
    }
    let room = RoomId::new("fuzz_room").expect("a room id");
    let facts = RoomFacts::nominal(room.clone(), 2, 1, 1);
    let mut engine = RoomEngine::new(room, rules.clone(), Arc::new(EngineConfig::default()));
    let mut outbox = Discard;
    let _ = engine.evaluate_all(&facts, NOW, &mut outbox);
    let _ = engine.tick(NOW + Duration::from_secs(10), &mut outbox);
    let _ = engine.evaluate_all(&facts, NOW + Duration::from_secs(20), &mut outbox);
    let stats = engine.stats();
    for (id, s) in &stats.per_rule {
        if s.sandbox_kills > 0 {
            let rule = rules.get(id).expect("a rule with stats is in the set");
            assert!(rule.is_disabled(), "rule {id} was stopped but not disabled");
        }
    }
});
