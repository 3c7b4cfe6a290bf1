//! The README's tour, run as written: its shell commands (the fenced block under "A short
//! tour") against a demo started with the tour's admin password. Each command must print what it
//! promises — some output, and no error envelope — within a deadline (the tour's pump-fault alarm
//! takes its 5 s delay, the first planning round comes ~30 s after start), so a tour line that
//! prints nothing (a grep whose pattern no longer matches, a plan asked for too early) fails.

use crate::support::{temp_dir, Cistern};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tour's password (README: `demo --admin-password 'choose-one-now'`).
const TOUR_PASSWORD: &str = "choose-one-now";

/// The tour's commands: the first `sh` block after "## A short tour", continuation lines
/// joined, without the line that starts the demo (the test starts it).
fn tour_commands(readme: &str) -> Vec<String> {
    let tour = &readme[readme.find("## A short tour").expect("README has a tour")..];
    let block = &tour[tour.find("```sh\n").expect("the tour has a sh block") + 6..];
    let block = &block[..block.find("```").expect("the block ends")];
    let mut commands: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = line.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let command = std::mem::take(&mut pending);
        if !command.trim().is_empty() && !command.contains("cargo run") {
            commands.push(command);
        }
    }
    commands
}

/// What a tour line says it shows, beyond some output: the controller's `fill_mode` value
/// (README: `"value":1.0` = plan), and districts that have had a planning round.
fn keeps_its_promise(command: &str, stdout: &str) -> bool {
    if command.contains("fill_mode") {
        return stdout.contains("\"value\":");
    }
    if command.trim_end().ends_with("/api/v1/districts") || command.contains("/api/v1/districts ") {
        return stdout.contains("\"rounds\":") && !stdout.contains("\"rounds\":0");
    }
    true
}

#[test]
fn the_readme_tour_prints_what_it_promises() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let commands = tour_commands(&readme);
    assert!(
        commands.len() > 15,
        "the tour has {} commands",
        commands.len()
    );
    let demo = Cistern::demo("readme-tour")
        .env("CISTERN_ADMIN_PASSWORD", TOUR_PASSWORD)
        .start();
    let host = demo.http().trim_start_matches("http://").to_owned();

    // The variable assignments (J, T, H) run before every command, as in one terminal session.
    let (setup, steps): (Vec<String>, Vec<String>) = commands
        .into_iter()
        .map(|c| c.replace("localhost:8080", &host))
        .partition(|c| !c.trim_start().starts_with("curl"));
    let setup = setup.join("\n");
    // The tour's files (its archive export) go to a directory of the test's, not the checkout.
    let cwd = temp_dir("readme-tour-cwd");
    for step in steps {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new("bash")
                .current_dir(&cwd)
                .arg("-c")
                .arg(format!("{setup}\n{step}"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let printed = !stdout.trim().is_empty();
            let refused = stdout.contains("\"error\":{");
            if printed && !refused && keeps_its_promise(&step, &stdout) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the tour's command printed {stdout:?} for 60 s:\n{step}\n{}",
                demo.log_tail()
            );
            std::thread::park_timeout(Duration::from_secs(1));
        }
    }
}
