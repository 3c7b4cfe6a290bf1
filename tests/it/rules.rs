//! The rule author's commands on the shipped library, through the binary.

use std::process::Command;

fn cistern(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cistern"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn rules_check_and_test_pass_on_the_shipped_library_and_fail_on_a_broken_rule() {
    let (ok, text) = cistern(&["rules", "check"]);
    assert!(ok, "{text}");
    assert!(text.contains("27 rules compiled, 0 errors"), "{text}");
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
