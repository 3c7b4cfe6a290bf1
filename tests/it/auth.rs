//! Authentication and roles end to end, against the real binary: logins (and failed ones,
//! throttled), every role refused what is above it, API tokens issued and revoked, the
//! audit log of an acknowledgement and a rule change, malformed `Authorization` headers, and
//! users, tokens and the audit log surviving a restart of `cistern run` with storage — and a
//! user's chosen console language with them (an unknown language refused by code).

use crate::support::{
    call_as, call_raw, delete, get, login, metric, patch, post, temp_dir, token_for, wait_for,
    Cistern, IT_ADMIN_PASSWORD,
};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn create_user(base: &str, name: &str, role: &str) -> String {
    let password = format!("{name}-password");
    let (status, v) = post(
        &format!("{base}/api/v1/users"),
        &json!({ "name": name, "role": role, "password": password }).to_string(),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["role"], role);
    assert!(v.get("password_hash").is_none(), "{v}");
    token_for(base, name, &password)
}

fn assert_refused(status: u16, v: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
}

fn audit(base: &str, token: &str, query: &str) -> Vec<Value> {
    let (status, v) = call_as(
        Some(token),
        "GET",
        &format!("{base}/api/v1/audit?{query}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

/// A copy of the shipped rule library (the demo writes uploaded rules into it).
fn rule_dir(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/library");
    for e in std::fs::read_dir(lib).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn roles_are_enforced_and_every_command_is_audited() {
    let rules = rule_dir("auth-rules");
    let demo = Cistern::demo("auth-demo")
        .rooms(4)
        .modbus_rooms(0)
        .rules(&rules)
        .start();
    let base = demo.http().to_owned();
    let rooms = format!("{base}/api/v1/rooms");

    // No token: 401 with a bare JSON error; public routes stay public.
    let (status, v) = call_as(None, "GET", &rooms, None);
    assert_refused(status, &v, 401, "unauthorized");
    assert_eq!(v["error"]["message"], "authentication required");
    let (status, _) = call_raw("GET", &format!("{base}/healthz"), &[], None);
    assert_eq!(status, 200);

    // Wrong password and unknown user: the same answer.
    let (s1, wrong) = login(&base, "admin", "not-the-password");
    let (s2, unknown) = login(&base, "nobody", "not-the-password");
    assert_refused(s1, &wrong, 401, "unauthorized");
    assert_eq!(
        (s1, &wrong),
        (s2, &unknown),
        "no hint whether a user exists"
    );
    let (status, v) = login(&base, "admin", IT_ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"], "admin");
    assert_eq!(v["role"], "admin");
    assert!(v["expires_at_ms"].as_i64().unwrap() > cistern_schemas::Timestamp::now().0);

    let viewer = create_user(&base, "viewer1", "viewer");
    let operator = create_user(&base, "operator1", "operator");
    let author = create_user(&base, "author1", "rule-author");
    let (status, me) = call_as(
        Some(&operator),
        "GET",
        &format!("{base}/api/v1/auth/me"),
        None,
    );
    assert_eq!(status, 200);
    // `language` null: the user never chose one (the console follows the browser).
    assert_eq!(
        (&me["user"], &me["role"], &me["language"], &me["scope"]),
        (
            &json!("operator1"),
            &json!("operator"),
            &Value::Null,
            &Value::Null
        ),
        "{me}"
    );
    assert_eq!(me["session"]["user"], "operator1", "a login session: {me}");

    // The viewer sees, and cannot act.
    let (status, _) = call_as(Some(&viewer), "GET", &rooms, None);
    assert_eq!(status, 200);
    let ack_smoke = format!("{base}/api/v1/alarms/XM-0001/smoke@room/ack");
    let (status, v) = call_as(Some(&viewer), "POST", &ack_smoke, Some("{}"));
    assert_refused(status, &v, 403, "forbidden");
    assert_eq!(v["error"]["message"], "this needs the operator role");
    let (status, v) = call_as(Some(&viewer), "GET", &format!("{base}/api/v1/audit"), None);
    assert_refused(status, &v, 403, "forbidden");

    // The operator injects smoke and acknowledges its alarm.
    let (status, v) = call_as(
        Some(&operator),
        "POST",
        &format!("{base}/api/v1/sim/faults"),
        Some(r#"{"room":"XM-0001","fault":"smoke","seconds":600}"#),
    );
    assert_eq!(status, 202, "{v}");
    wait_for("the smoke alarm", Duration::from_secs(30), || {
        let (_, v) = get(&format!("{base}/api/v1/alarms/XM-0001/smoke@room"));
        (v["alarm"]["state"] == "unacked").then_some(())
    });
    let (status, v) = call_as(
        Some(&operator),
        "POST",
        &ack_smoke,
        Some(r#"{"comment":"crew sent"}"#),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["events"][0]["user"], "operator1",
        "the user is the caller"
    );

    // The operator cannot change a rule; the rule author can, and cannot manage users.
    let rule_url = format!("{base}/api/v1/rules/door_held_open");
    let source = std::fs::read_to_string(rules.join("door_held_open.rhai"))
        .unwrap()
        .replace("severity = \"P4\"", "severity = \"P3\"");
    let (status, v) = call_as(Some(&operator), "PUT", &rule_url, Some(&source));
    assert_refused(status, &v, 403, "forbidden");
    assert_eq!(v["error"]["message"], "this needs the rule-author role");
    let (status, v) = call_as(Some(&author), "PUT", &rule_url, Some(&source));
    assert_eq!(status, 200, "{v}");
    let (status, v) = call_as(
        Some(&author),
        "POST",
        &format!("{base}/api/v1/users"),
        Some(r#"{"name":"x1","role":"admin","password":"long-enough"}"#),
    );
    assert_refused(status, &v, 403, "forbidden");
    assert_eq!(v["error"]["message"], "this needs the admin role");

    // The audit log has the acknowledgement and the rule change, by their users.
    let acks = audit(&base, &operator, "action=alarm_ack");
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0]["user"], "operator1");
    assert_eq!(acks[0]["target"], "XM-0001/smoke@room");
    assert_eq!(acks[0]["detail"], "crew sent");
    assert_eq!(acks[0]["ok"], true);
    let puts = audit(&base, &operator, "user=author1&action=rule_put");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0]["target"], "door_held_open");
    let refused = audit(&base, &operator, "user=operator1&action=rule_put");
    assert!(
        refused.is_empty(),
        "a request the gate refused never reached the handler"
    );
    let failed = audit(&base, &operator, "action=login_failed");
    assert_eq!(
        failed
            .iter()
            .map(|e| e["user"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["admin", "unknown"],
        "a name that does not exist is not written down"
    );
    let (status, v) = get(&format!("{base}/api/v1/audit?limit=0"));
    assert_refused(status, &v, 400, "invalid_limit");

    // API tokens: the secret is shown once, works until revoked, is never listed.
    let (status, created) = post(
        &format!("{base}/api/v1/tokens"),
        r#"{"name":"dashboard","role":"viewer"}"#,
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, listed) = get(&format!("{base}/api/v1/tokens"));
    assert_eq!(listed["tokens"][0]["name"], "dashboard");
    assert!(!listed.to_string().contains(&secret[20..]), "{listed}");
    let (status, me) = call_as(
        Some(&secret),
        "GET",
        &format!("{base}/api/v1/auth/me"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(me["user"], "token:dashboard");
    let (status, v) = call_as(Some(&secret), "POST", &ack_smoke, Some("{}"));
    assert_refused(status, &v, 403, "forbidden");
    let (status, _) = delete(&format!("{base}/api/v1/tokens/{id}"));
    assert_eq!(status, 200);
    let (status, v) = call_as(Some(&secret), "GET", &rooms, None);
    assert_refused(status, &v, 401, "unauthorized");

    // Users: a role change ends the user's sessions (the next sign-in has the new role); the
    // last admin stays.
    let (status, v) = patch(
        &format!("{base}/api/v1/users/viewer1"),
        r#"{"role":"operator"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["sessions_ended"], 1, "{v}");
    let (status, _) = call_as(Some(&viewer), "GET", &rooms, None);
    assert_eq!(status, 401, "a role change ends the session");
    let viewer = token_for(&base, "viewer1", "viewer1-password");
    let (status, me) = call_as(
        Some(&viewer),
        "GET",
        &format!("{base}/api/v1/auth/me"),
        None,
    );
    assert_eq!((status, me["role"].as_str()), (200, Some("operator")));
    let (status, v) = delete(&format!("{base}/api/v1/users/admin"));
    assert_refused(status, &v, 409, "last_admin");
    let (status, _) = delete(&format!("{base}/api/v1/users/author1"));
    assert_eq!(status, 200);
    let (status, _) = call_as(Some(&author), "GET", &rooms, None);
    assert_eq!(status, 401, "a deleted user's session ends");

    // Logout ends the session.
    let (status, _) = call_as(
        Some(&operator),
        "POST",
        &format!("{base}/api/v1/auth/logout"),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = call_as(Some(&operator), "GET", &rooms, None);
    assert_eq!(status, 401);

    assert!(
        metric(
            &base,
            "cistern_auth_logins_total{result=\"bad_credentials\"}"
        ) >= 2.0
    );
    assert!(metric(&base, "cistern_auth_rejected_total{reason=\"forbidden\"}") >= 5.0);
    assert!(metric(&base, "cistern_auth_rejected_total{reason=\"missing\"}") >= 1.0);
    drop(demo);
}

#[test]
fn malformed_authorization_headers_get_a_clear_401_and_never_break_the_server() {
    let demo = Cistern::demo("auth-malformed")
        .rooms(2)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let rooms = format!("{base}/api/v1/rooms");
    let long = format!("Bearer {}", "a".repeat(8_000));
    let forged = format!("Bearer cs_{}_{}", "0".repeat(16), "0".repeat(64));
    for value in [
        "",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Basic YWRtaW46aXQtYWRtaW4tcGFzc3dvcmQ=",
        "bearer nonsense",
        "Bearer cs_",
        "Bearer cs__",
        "Bearer ct_zz_zz",
        &long,
        &forged,
    ] {
        let (status, text) = call_raw("GET", &rooms, &[("authorization", value)], None);
        assert_eq!(status, 401, "{value:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{value:?}: {text}"));
        assert_eq!(
            v,
            json!({ "error": { "code": "unauthorized", "message": "authentication required" } }),
            "{value:?}"
        );
    }
    // Bytes that are not text in the header (Latin-1 here): no client library sends them.
    let head = b"GET /api/v1/rooms HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xe9\xe9".to_vec();
    let (status, text) = crate::support::raw_http(&base, &head);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("\"unauthorized\""), "{text}");
    // A malformed login body is a clear 400.
    let (status, v) = call_as(
        None,
        "POST",
        &format!("{base}/api/v1/auth/login"),
        Some(r#"{"user": 1}"#),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    let (status, _) = get(&rooms);
    assert_eq!(status, 200, "still serving: {}", demo.log_tail());
    assert!(metric(&base, "cistern_auth_rejected_total{reason=\"malformed\"}") >= 5.0);
}

/// A `cistern run` site with storage and no ingest, and `auth` in `[auth]`.
fn site(name: &str, auth: &str) -> std::path::PathBuf {
    crate::support::storage_site(name, &format!("[auth]\n{auth}"))
}

/// op1 (signed in as `op`) chooses English; the API token `token` may not choose.
fn choose_a_language(base: &str, op: &str, token: &str) {
    let url = format!("{base}/api/v1/auth/me/language");
    let (_, me) = call_as(Some(op), "GET", &format!("{base}/api/v1/auth/me"), None);
    assert_eq!(me["language"], Value::Null, "never chose: {me}");
    for bad in [json!("fr"), json!("EN"), json!("zh"), json!(7)] {
        let (status, v) = call_as(
            Some(op),
            "PUT",
            &url,
            Some(&json!({ "language": bad }).to_string()),
        );
        let code = if bad.is_string() {
            "invalid_language"
        } else {
            "invalid_json"
        };
        assert_refused(status, &v, 400, code);
    }
    let (status, v) = call_as(
        Some(token),
        "PUT",
        &url,
        Some(&json!({ "language": "en" }).to_string()),
    );
    assert_refused(status, &v, 409, "not_a_user");
    let (status, v) = call_as(
        Some(op),
        "PUT",
        &url,
        Some(&json!({ "language": "en" }).to_string()),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({ "user": "op1", "language": "en" }));
    let (_, me) = call_as(Some(op), "GET", &format!("{base}/api/v1/auth/me"), None);
    assert_eq!(me["language"], "en", "{me}");
    let (_, user) = get(&format!("{base}/api/v1/users/op1"));
    assert_eq!(user["language"], "en", "{user}");
    let (_, v) = get(&format!("{base}/api/v1/audit?action=language_set"));
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "the token's refusal and op1's choice: {v}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["user"] == "op1" && e["ok"] == true && e["detail"] == "en"),
        "{v}"
    );
}

#[test]
fn failed_logins_are_throttled_and_identities_survive_a_restart() {
    let config = site(
        "auth-run",
        "login_free_failures = 3\nlogin_window = \"1h\"\nadmin_password = \"ignored-env-wins\"",
    );
    let mut node = Cistern::run("auth-run", &config).start();
    let base = node.http().to_owned();
    let op = create_user(&base, "op1", "operator");
    let (status, token) = post(
        &format!("{base}/api/v1/tokens"),
        r#"{"name":"bridge","role":"viewer","scope":"operate"}"#,
    );
    assert_eq!(status, 201);
    let token = token["token"].as_str().unwrap().to_owned();
    choose_a_language(&base, &op, &token);
    // Three failures from here make the next attempt wait, even with the right password; the
    // answer says for how long.
    for _ in 0..3 {
        let (status, _) = login(&base, "op1", "guess-guess");
        assert_eq!(status, 401);
    }
    let (status, headers_and_body) = call_raw(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        &[],
        Some(r#"{"user":"op1","password":"op1-password"}"#),
    );
    assert_eq!(status, 429, "{headers_and_body}");
    assert!(
        headers_and_body.contains("too_many_requests"),
        "{headers_and_body}"
    );
    assert_eq!(
        metric(&base, "cistern_auth_logins_total{result=\"throttled\"}"),
        1.0
    );
    // Another user is not slowed, and the live session of op1 still works.
    let (status, _) = login(&base, "admin", IT_ADMIN_PASSWORD);
    assert_eq!(status, 200);
    let (status, _) = call_as(Some(&op), "GET", &format!("{base}/api/v1/rooms"), None);
    assert_eq!(status, 200);
    // Read back (this flushes the audit log to the store) before the kill.
    let (_, v) = get(&format!("{base}/api/v1/audit?action=user_create"));
    assert_eq!(v["count"], 2, "the first admin and op1: {v}");
    node.kill9();

    node.restart();
    let base = node.http().to_owned();
    let (_, users) = get(&format!("{base}/api/v1/users"));
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "op1"], "{}", node.log_tail());
    let (status, me) = call_as(Some(&token), "GET", &format!("{base}/api/v1/auth/me"), None);
    assert_eq!((status, me["user"].as_str()), (200, Some("token:bridge")));
    assert_eq!(me["language"], Value::Null, "a token has no language: {me}");
    let (status, _) = call_as(Some(&op), "GET", &format!("{base}/api/v1/rooms"), None);
    assert_eq!(status, 401, "sessions do not survive a restart");
    // The language op1 chose came back with op1: in the sign-in answer and in `me`.
    let (status, session) = login(&base, "op1", "op1-password");
    assert_eq!(
        (status, &session["language"]),
        (200, &json!("en")),
        "{session}"
    );
    let op = session["token"].as_str().unwrap();
    let (_, me) = call_as(Some(op), "GET", &format!("{base}/api/v1/auth/me"), None);
    assert_eq!(me["language"], "en", "{me}");
    let (_, v) = get(&format!("{base}/api/v1/audit?action=user_create"));
    assert_eq!(v["count"], 2, "the audit log persists: {v}");
    let first_failed = wait_for("the audit log readable", Duration::from_secs(5), || {
        let (_, v) = get(&format!("{base}/api/v1/audit?action=login_failed&user=op1"));
        v["entries"].as_array().map(|a| a.len())
    });
    assert_eq!(
        first_failed, 3,
        "three wrong passwords (the attempt refused while waiting is counted, not audited)"
    );
    let (_, v) = get(&format!(
        "{base}/api/v1/audit?action=login_throttled&user=op1"
    ));
    assert_eq!(v["count"], 1, "the start of the wait: {v}");
}
