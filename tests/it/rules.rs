//! The rule author's commands on the shipped library, through the binary.

use crate::support::Cistern;

fn cistern(args: &[&str]) -> (bool, String) {
    let out = Cistern::command("rules", args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn rules_check_and_test_pass_on_the_shipped_library_and_fail_on_a_broken_rule() {
    let (ok, text) = cistern(&["rules", "check"]);
    assert!(ok, "{text}");
    assert!(text.contains("28 rules compiled, 0 errors"), "{text}");
    let (ok, text) = cistern(&["rules", "test"]);
    assert!(ok, "{text}");
    assert!(text.contains(" 0 failed"), "{text}");

    // A copy of the library with one rule broken: check names the file, line and column.
    let dir = crate::support::temp_dir("rules-broken");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/library")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let broken = dir.join("tank_low.rhai");
    let source = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, format!("{source}\nlet = ;\n")).unwrap();
    let (ok, text) = cistern(&["rules", "check", dir.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("tank_low.rhai:"), "{text}");
}

#[test]
fn rules_backtest_replays_a_seeded_fleet_with_faults_and_compares_two_versions() {
    // The same library twice, the second with pump_fault's on-delay at 10 min: same seed, same
    // faults, fewer pump-fault alarms.
    let dir = crate::support::temp_dir("rules-backtest");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/library")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(
                "id = \"pump_fault\"\n",
                "id = \"pump_fault\"\n//! on_delay = \"600s\"\n",
            )
            .replace(
                "//! on_delay = \"5s\"\n//! parents = [\"mains_loss\"]",
                "//! parents = [\"mains_loss\"]",
            );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let args = [
        "rules",
        "backtest",
        "--rooms",
        "4",
        "--hours",
        "2",
        "--seed",
        "3",
        "--faults-per-room-day",
        "60",
        "--json",
        "--against",
        dir.to_str().unwrap(),
    ];
    let (ok, text) = cistern(&args);
    assert!(ok, "{text}");
    let runs: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    let (a, b) = (&runs[0], &runs[1]);
    assert!(a["faults_injected"].as_u64().unwrap() > 0, "{a}");
    assert_eq!(a["faults_injected"], b["faults_injected"], "same faults");
    assert!(a["kpis"]["annunciated"].as_u64().unwrap() > 0, "{a}");
    let pump = |r: &serde_json::Value| r["kpis"]["per_rule"]["pump_fault"].as_u64().unwrap_or(0);
    assert!(
        pump(b) <= pump(a),
        "a longer delay never raises more: {} vs {}",
        pump(a),
        pump(b)
    );
}
