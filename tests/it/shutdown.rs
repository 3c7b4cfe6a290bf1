//! An orderly stop is quiet: `cistern demo` stopped with SIGTERM logs no warning or error on its
//! way out (no failed MQTT acknowledgements once the event loop closes, no embedded-broker
//! errors for the clients that disconnect), and a log written to a file carries no ANSI colour
//! codes (colour is for terminals only).

use crate::support::{metric, wait_for, Cistern};
use std::time::Duration;

#[test]
fn a_demo_stopped_with_sigterm_stops_quietly_and_logs_without_colour_to_a_file() {
    let mut demo = Cistern::demo("shutdown").rooms(20).modbus_rooms(2).start();
    let base = demo.http().to_owned();
    // Stop in the middle of the stream: MQTT messages are in flight, waiting for their acks.
    wait_for("MQTT messages ingested", Duration::from_secs(20), || {
        (metric(&base, "cistern_ingest_messages_total{source=\"mqtt\"}") > 40.0).then_some(())
    });

    let status = demo.terminate();
    let log = demo.log();
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
