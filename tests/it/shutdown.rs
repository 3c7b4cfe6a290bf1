//! An orderly stop is quiet: `cistern demo` stopped with SIGTERM logs no warning or error on its
//! way out (no failed MQTT acknowledgements once the event loop closes, no embedded-broker
//! errors for the clients that disconnect), and a log written to a file carries no ANSI colour
//! codes (colour is for terminals only).

use crate::support::{metric, spawn_cistern, temp_dir, wait_for};
use std::time::Duration;

#[test]
fn a_demo_stopped_with_sigterm_stops_quietly_and_logs_without_colour_to_a_file() {
    let data = temp_dir("shutdown-data");
    let (mut demo, ready) = spawn_cistern(
        "shutdown",
        &[
            "demo",
            "--rooms",
            "20",
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            "127.0.0.1:0",
            "--modbus-rooms",
            "2",
            "--data",
            data.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let base = ready["http"].clone();
    // Stop in the middle of the stream: MQTT messages are in flight, waiting for their acks.
    wait_for("MQTT messages ingested", Duration::from_secs(20), || {
        (metric(&base, "cistern_ingest_messages_total{source=\"mqtt\"}") > 40.0).then_some(())
    });

    let pid = demo.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_for("the demo to exit", Duration::from_secs(30), || {
        demo.child.try_wait().unwrap()
    });
    let log = std::fs::read_to_string(&demo.log).unwrap();
    assert!(status.success(), "{status}\n{}", demo.log_tail());

    assert!(
        !log.contains("\u{1b}["),
        "ANSI escape codes in a log written to a file:\n{}",
        demo.log_tail()
    );
    let stopping = log
        .lines()
        .position(|l| l.contains("stopping"))
        .unwrap_or_else(|| panic!("no `stopping` line\n{}", demo.log_tail()));
    let loud: Vec<&str> = log
        .lines()
        .skip(stopping)
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        loud.is_empty(),
        "{} warnings or errors during an orderly stop:\n{}",
        loud.len(),
        loud.iter().take(20).copied().collect::<Vec<_>>().join("\n")
    );
}
