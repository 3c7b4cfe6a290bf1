//! History through the binary: the demo stores what it ingests, `kill -9` loses none of what
//! the API had already returned, and the restarted demo serves it again.

use crate::support::{get, wait_for, Cistern};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn samples(v: &Value, i: usize) -> Vec<(i64, f64)> {
    v["series"][i]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_i64().unwrap(), s[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn history_survives_kill_9_and_a_restart() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let query = format!(
        "/api/v1/history?point=XM-0002.outlet_pressure&point=XM-0001/P1.frequency&from={}&to={}",
        now - 60_000,
        now + 3_600_000
    );

    let mut demo = Cistern::demo("history").rooms(3).modbus_rooms(1).start();
    let url = demo.url(&query);
    let before = wait_for(
        "a few durable samples of both points",
        Duration::from_secs(15),
        || {
            let (status, v) = get(&url);
            assert_eq!(status, 200, "{v}");
            (samples(&v, 0).len() >= 3 && samples(&v, 1).len() >= 3).then_some(v)
        },
    );
    // Over MQTT (XM-0002), the simulated gateway stamps samples exactly 2 s apart: no gap and
    // no duplicate in what was stored.
    for w in samples(&before, 0).windows(2) {
        assert_eq!(w[1].0 - w[0].0, 2_000, "{w:?}");
    }

    // kill -9 in the middle of ingest, then start again on the same data directory.
    demo.kill9();
    demo.restart();
    let (status, after) = demo.get(&query);
    assert_eq!(status, 200, "{after}");
    for i in 0..2 {
        let after = samples(&after, i);
        for s in samples(&before, i) {
            assert!(
                after.contains(&s),
                "series {i}: {s:?} was returned before the kill and is gone after it"
            );
        }
    }

    // The same range in 1-minute buckets (the current hour: computed from raw samples).
    let (status, stepped) = demo.get(&format!("{query}&step=1m"));
    assert_eq!(status, 200, "{stepped}");
    let buckets = stepped["series"][0]["buckets"].as_array().unwrap();
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert!(counted >= samples(&after, 0).len() as u64, "{stepped}");
    for b in buckets {
        let (min, mean, max) = (b["min"].as_f64(), b["mean"].as_f64(), b["max"].as_f64());
        assert!(min <= mean && mean <= max, "{b}");
        assert_eq!(b["t"].as_i64().unwrap() % 60_000, 0, "{b}");
    }
    let (status, err) =
        demo.get("/api/v1/history?point=XM-0002.outlet_pressure&from=0&to=172800000&step=1s");
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("too_many_buckets"))
    );

    let (status, err) = demo.get("/api/v1/history?point=nonsense");
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_point"))
    );
}
