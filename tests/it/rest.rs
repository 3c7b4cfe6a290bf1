//! The REST API against its own description, through the binary: every refusal is the JSON
//! error envelope (framework errors too), a method a resource does not serve is 405 with
//! `Allow`, the history API reads RFC 3339 and relative times and names an unknown point, and
//! the rule endpoints show what is in force (a refused reload beside it; a hostile rule stays
//! disabled across reloads of an unchanged source).

use crate::support::{admin_token, get, metric, post, spawn_cistern, temp_dir, wait_for, Proc};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// A demo of two MQTT rooms with a copy of the rule library (returned) and its own data.
fn demo(name: &str) -> (Proc, String, PathBuf) {
    let rules = temp_dir(&format!("{name}-rules"));
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/library")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, rules.join(path.file_name().unwrap())).unwrap();
    }
    let data = temp_dir(&format!("{name}-data"));
    let (proc, ready) = spawn_cistern(
        name,
        &[
            "demo",
            "--rooms",
            "2",
            "--modbus-rooms",
            "0",
            "--http",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let base = ready["http"].clone();
    (proc, base, rules)
}

/// One request as the admin with any method and raw body: status, `Content-Type`, `Allow`,
/// and the body (JSON when it parses).
fn request(
    method: &str,
    url: &str,
    content_type: &str,
    body: Option<&[u8]>,
) -> (u16, String, Option<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {}", admin_token(url, false));
    let result = match (method, body) {
        ("GET", _) => agent.get(url).header("authorization", &auth).call(),
        ("DELETE", _) => agent.delete(url).header("authorization", &auth).call(),
        (m, body) => {
            let r = match m {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                "PATCH" => agent.patch(url),
                other => panic!("method {other}"),
            }
            .header("authorization", &auth)
            .header("content-type", content_type);
            match body {
                Some(b) => r.send(b),
                None => r.send_empty(),
            }
        }
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (ctype, allow) = (header("content-type").unwrap_or_default(), header("allow"));
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (resp.status().as_u16(), ctype, allow, body)
}

/// Asserts a JSON error envelope with `status` and `code`.
fn refused(
    what: &str,
    (status, ctype, _, body): &(u16, String, Option<String>, Value),
    want: u16,
    code: &str,
) {
    assert_eq!(*status, want, "{what}: {body}");
    assert!(
        ctype.starts_with("application/json"),
        "{what}: Content-Type {ctype:?}, body {body}"
    );
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

#[test]
fn framework_errors_are_json_envelopes_and_unserved_methods_are_405_with_allow() {
    let (_demo, base, _) = demo("rest-errors");
    let api = format!("{base}/api/v1");

    // A query the extractor refuses (an unknown parameter of a typed query).
    let r = request("GET", &format!("{api}/audit?bogus=1"), "", None);
    refused("unknown query parameter", &r, 400, "invalid_query");
    let r = request("GET", &format!("{api}/audit?limit=many"), "", None);
    refused("a limit that is not a number", &r, 400, "invalid_query");
    // JSON bodies: malformed, over the limit (with and without a length), not JSON.
    let r = request(
        "POST",
        &format!("{api}/users"),
        "application/json",
        Some(b"{"),
    );
    refused("malformed JSON", &r, 400, "invalid_json");
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(40 * 1024));
    let r = request(
        "POST",
        &format!("{api}/users"),
        "application/json",
        Some(big.as_bytes()),
    );
    refused("JSON over the limit", &r, 413, "payload_too_large");
    let r = request("POST", &format!("{api}/users"), "text/plain", Some(b"{}"));
    refused("not JSON", &r, 415, "unsupported_media_type");
    // A rule script over every limit.
    let huge = "x".repeat(300 * 1024);
    let r = request(
        "PUT",
        &format!("{api}/rules/huge"),
        "text/plain",
        Some(huge.as_bytes()),
    );
    refused("script over the limit", &r, 413, "script_too_large");
    // No body where the script is required.
    let r = request(
        "POST",
        &format!("{api}/rules/validate?file=smoke.rhai"),
        "text/plain",
        None,
    );
    refused("validate without a body", &r, 400, "missing_body");
    let r = request("PUT", &format!("{api}/rules/smoke"), "text/plain", None);
    refused("upload without a body", &r, 400, "missing_body");

    // A path no route serves: 404; a path served with other methods: 405 and Allow.
    let r = request("GET", &format!("{api}/nothing-here"), "", None);
    refused("unknown path", &r, 404, "not_found");
    let r = request("DELETE", &format!("{api}/rooms"), "", None);
    refused("DELETE /rooms", &r, 405, "method_not_allowed");
    assert_eq!(r.2.as_deref(), Some("GET"), "{r:?}");
    let r = request(
        "POST",
        &format!("{api}/rules/smoke"),
        "text/plain",
        Some(b"x"),
    );
    refused("POST /rules/{id}", &r, 405, "method_not_allowed");
    assert_eq!(r.2.as_deref(), Some("GET, PUT"), "{r:?}");
    let r = request(
        "PATCH",
        &format!("{api}/users"),
        "application/json",
        Some(b"{}"),
    );
    refused("PATCH /users", &r, 405, "method_not_allowed");
    assert_eq!(r.2.as_deref(), Some("GET, POST"), "{r:?}");
}

#[test]
fn history_reads_rfc3339_and_relative_times_and_names_an_unknown_point() {
    let (_demo, base, _) = demo("rest-history");
    let history = format!("{base}/api/v1/history");
    let point = "XM-0001.outlet_pressure";

    let (status, v) = get(&format!("{history}?point={point}&from=-15m&to=now"));
    assert_eq!(status, 200, "{v}");
    let (from, to) = (v["from"].as_i64().unwrap(), v["to"].as_i64().unwrap());
    assert_eq!(to - from, 15 * 60 * 1000, "{v}");
    let (status, v) = get(&format!(
        "{history}?point={point}&from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00%2B02:00&step=1m"
    ));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["from"], 1_796_551_200_000_i64, "{v}");
    assert_eq!(v["to"], 1_796_551_200_000_i64, "{v}");
    let (status, v) = get(&format!("{history}?point={point}&from=yesterday"));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_time")),
        "{v}"
    );

    // Unknown points: a name the device does not have, a device the room does not have, a
    // room the fleet does not have — 404 naming the point, never an empty series.
    for unknown in [
        "XM-0001.no_such_point",
        "XM-0001/P9.frequency",
        "ZZ-9999.outlet_pressure",
    ] {
        let (status, v) = get(&format!("{history}?point={point}&point={unknown}"));
        assert_eq!(status, 404, "{unknown}: {v}");
        assert_eq!(v["error"]["code"], "unknown_point", "{unknown}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(unknown),
            "{unknown}: {v}"
        );
    }
}

const HOSTILE: &str = "//! id = \"spin\"\n//! applies_to = \"room\"\n//! severity = \"P3\"\n\
//! message = \"m\"\n//! inputs = [\"outlet_pressure\"]\nlet i = 0; while true { i += 1; } true\n";

fn rule_text(id: &str, body: &str) -> String {
    format!(
        "//! id = \"{id}\"\n//! applies_to = \"room\"\n//! severity = \"P3\"\n//! message = \"m\"\n\
         //! inputs = [\"outlet_pressure\"]\n{body}\n"
    )
}

/// Every kind of hostile rule an author can upload through the API — a loop without end, a
/// string doubled without end, recursion without a base case, an array flood, an output too
/// large — is stopped by the sandbox in the rooms, counted, reported and disabled, and the
/// rooms go on: a sound rule uploaded beside them raises its alarm in both rooms.
#[test]
fn hostile_rules_of_every_kind_are_stopped_and_disabled_while_the_rooms_go_on() {
    let (demo, base, _rules) = demo("rest-hostile");
    let api = format!("{base}/api/v1");
    let hostile = [
        ("spin_loop", "let i = 0; loop { i += 1; } true"),
        ("memory_bomb", "let s = \"x\"; while true { s += s; } true"),
        ("deep_recursion", "fn down(n) { down(n + 1) } down(0) > 0"),
        (
            "array_flood",
            "let a = []; for i in 0..1000000 { a.push(i); } a.len() > 0",
        ),
        (
            "huge_output",
            "let s = \"y\"; for i in 0..40 { s += s; } s.len() > 0",
        ),
    ];
    for (id, body) in hostile {
        let (status, _, _, v) = request(
            "PUT",
            &format!("{api}/rules/{id}"),
            "text/plain",
            Some(rule_text(id, body).as_bytes()),
        );
        assert_eq!(status, 200, "{id}: {v}");
    }
    let sound = "//! id = \"always\"\n//! applies_to = \"room\"\n//! severity = \"P3\"\n\
                 //! message = \"pressure seen\"\n//! inputs = [\"outlet_pressure\"]\n\
                 outlet_pressure > -1.0\n";
    let (status, _, _, v) = request(
        "PUT",
        &format!("{api}/rules/always"),
        "text/plain",
        Some(sound.as_bytes()),
    );
    assert_eq!(status, 200, "{v}");
    for (id, _) in hostile {
        wait_for(
            &format!("{id} disabled by the sandbox"),
            Duration::from_secs(30),
            || {
                let (_, v) = get(&format!("{api}/rules/{id}"));
                (v["disabled"] == true).then_some(())
            },
        );
        let kills = metric(
            &base,
            &format!("cistern_rules_sandbox_kills_total{{rule=\"{id}\"}}"),
        );
        assert!(kills >= 1.0, "{id}: {}", demo.log_tail());
    }
    // The rooms went on: the sound rule raises in both of them.
    wait_for(
        "the sound rule's alarm in both rooms",
        Duration::from_secs(30),
        || {
            let (_, v) = get(&format!("{api}/alarms"));
            let raised = v["alarms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["rule"] == "always")
                .count();
            (raised == 2).then_some(())
        },
    );
    let (_, v) = get(&format!("{api}/rules/always"));
    assert_eq!(v["disabled"], false, "{v}");
}

#[test]
fn a_rule_shows_the_version_in_force_and_a_hostile_rule_stays_disabled_across_uploads() {
    let (demo, base, rules) = demo("rest-rules");
    let api = format!("{base}/api/v1");
    let put_rule = |id: &str, text: &str| {
        request(
            "PUT",
            &format!("{api}/rules/{id}"),
            "text/plain",
            Some(text.as_bytes()),
        )
    };

    // A hostile rule: the sandbox stops it in the rooms and it is disabled.
    let (status, _, _, v) = put_rule("spin", HOSTILE);
    assert_eq!(status, 200, "{v}");
    wait_for(
        "spin disabled by the sandbox",
        Duration::from_secs(30),
        || {
            let (_, v) = get(&format!("{api}/rules/spin"));
            (v["disabled"] == true).then_some(())
        },
    );
    let kills = metric(&base, "cistern_rules_sandbox_kills_total{rule=\"spin\"}");
    assert!(kills >= 1.0, "{}", demo.log_tail());

    // Another upload reloads the whole directory: spin's source is unchanged, so it stays
    // disabled (before: recompiled, enabled, and killed again in every room).
    let (status, _, _, v) = put_rule("calm", &rule_text("calm", "outlet_pressure > 100.0"));
    assert_eq!(status, 200, "{v}");
    let notes = v["reload"]["diagnostics"].to_string();
    assert!(
        notes.contains("spin.rhai") && notes.contains("stays disabled"),
        "{v}"
    );
    let (_, v) = get(&format!("{api}/rules/spin"));
    assert_eq!(v["disabled"], true, "{v}");
    assert_eq!(v["source"], HOSTILE, "{v}");
    let (status, _, _, v) = request("POST", &format!("{api}/rules/reload"), "text/plain", None);
    assert_eq!(status, 200, "{v}");
    let (_, v) = get(&format!("{api}/rules/spin"));
    assert_eq!(
        v["disabled"], true,
        "a reload re-enabled the hostile rule: {v}"
    );
    assert_eq!(
        metric(&base, "cistern_rules_sandbox_kills_total{rule=\"spin\"}"),
        kills,
        "{}",
        demo.log_tail()
    );

    // A changed source gets a new chance.
    let tame = rule_text("spin", "outlet_pressure > 100.0");
    let (status, _, _, v) = put_rule("spin", &tame);
    assert_eq!(status, 200, "{v}");
    let (_, v) = get(&format!("{api}/rules/spin"));
    assert_eq!(
        (v["disabled"].clone(), v["source"].clone()),
        (Value::Bool(false), Value::String(tame)),
        "{v}"
    );

    // A file a reload refuses: the version in force is shown, the refused one beside it.
    let (_, before) = get(&format!("{api}/rules/calm"));
    let in_force = before["source"].as_str().unwrap().to_owned();
    assert!(before["rejected"].is_null(), "{before}");
    let broken = rule_text("calm", "outlet_pressure >");
    std::fs::write(rules.join("calm.rhai"), &broken).unwrap();
    let (status, v) = post(&format!("{api}/rules/reload"), "");
    assert_eq!(status, 200, "{v}");
    let (_, v) = get(&format!("{api}/rules/calm"));
    assert_eq!(v["source"], in_force.as_str(), "the source in force: {v}");
    assert_eq!(v["version"], before["version"], "{v}");
    assert_eq!(v["disabled"], false, "{v}");
    assert_eq!(v["rejected"]["source"], broken.as_str(), "{v}");
    assert_ne!(v["rejected"]["version"], v["version"], "{v}");
    assert!(
        v["rejected"]["error"]
            .as_str()
            .unwrap()
            .contains("calm.rhai"),
        "{v}"
    );
    assert!(v["rejected"]["at"].as_i64().unwrap() > 0, "{v}");
    let (_, list) = get(&format!("{api}/rules"));
    let calm = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "calm")
        .cloned();
    assert_eq!(
        calm.map(|r| r["rejected"].clone()),
        Some(Value::Bool(true)),
        "{list}"
    );
}
