//! `cistern simulate --csv`: the same seed gives the same trace, byte for byte.

use crate::support::{temp_dir, Cistern};

fn trace(seed: &str, path: &std::path::Path) -> Vec<u8> {
    let out = Cistern::command("trace", ["simulate", "--rooms", "3", "--seed", seed])
        .args(["--seconds", "600", "--csv"])
        .arg(path)
        .log_filter("warn")
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(path).unwrap()
}

#[test]
fn a_seeded_trace_is_reproducible() {
    let dir = temp_dir("trace");
    let a = trace("42", &dir.join("a.csv"));
    let b = trace("42", &dir.join("b.csv"));
    let c = trace("43", &dir.join("c.csv"));
    // 301 instants of 3 rooms of ~60 points each
    let lines = a.iter().filter(|&&b| b == b'\n').count();
    assert!(lines > 301 * 3 * 50, "{lines} lines");
    assert!(a == b, "same seed, same trace");
    assert!(a != c, "another seed, another trace");
}
