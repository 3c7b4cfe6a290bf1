//! Sessions (ASVS 5.0 L2) and login throttling end to end, against `cistern run` with
//! shortened `[auth]` settings (issue 24, item 3):
//!
//! - a session ends when idle (background refreshes do not keep it alive; its user's requests
//!   do) and at its absolute lifetime, and a WebSocket authenticated with it closes then, saying
//!   why;
//! - an admin lists every session (user, times, address, user agent) and ends any; a user lists
//!   and ends their own, and no one else's; a password change ends the user's other sessions
//!   (the one making it stays), an admin's role or password change ends them all; the password
//!   policy refuses each rule by its own code;
//! - guessing a user's password from one address slows that address for that user, never the
//!   user from anywhere else, nor from their own browser behind the guessing address; a NAT'd
//!   room (many users, one address) signs in through its typos, and a sprayer behind the same
//!   address slows new browsers there, not the room's known ones; an admin unlocks; all counted
//!   and audited;
//! - API tokens: their scope (read, operate, admin) and expiry refused clearly (403
//!   `out_of_scope`, 401 `token_expired`) and counted.

use crate::support::{
    call_as, call_background, call_from, get, login, metric, patch, post, storage_site, token_for,
    wait_for, Cistern,
};
use crate::ws::{Got, Ws};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A `cistern run` site with storage and no ingest, `[auth]` as given and fast WebSocket
/// heartbeats.
fn site(name: &str, auth: &str) -> std::path::PathBuf {
    storage_site(name, &format!("[ws]\nheartbeat = \"1s\"\n[auth]\n{auth}"))
}

fn create_user(base: &str, name: &str, role: &str) -> String {
    let password = format!("{name}-password");
    let (status, v) = post(
        &format!("{base}/api/v1/users"),
        &json!({ "name": name, "role": role, "password": password }).to_string(),
    );
    assert_eq!(status, 201, "{v}");
    password
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A request with `token` that says it is a background refresh (no use of the session).
fn background(base: &str, token: &str) -> (u16, Value) {
    call_background(base, "/api/v1/rooms", token)
}

fn audit(base: &str, action: &str) -> Vec<Value> {
    let (status, v) = get(&format!("{base}/api/v1/audit?action={action}"));
    assert_eq!(status, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

#[test]
fn sessions_end_when_idle_and_at_their_lifetime_and_their_sockets_with_them() {
    let config = site(
        "sessions-timeouts",
        "idle_timeout = \"2s\"\nsession_lifetime = \"6s\"",
    );
    let node = Cistern::run("sessions-timeouts", &config).start();
    let base = node.http().to_owned();
    let password = create_user(&base, "op1", "operator");
    let rooms = format!("{base}/api/v1/rooms");

    // Idle: background refreshes do not keep it alive; it ends after 2 s, and says so.
    let (status, session) = login(&base, "op1", &password);
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["idle_timeout_ms"], 2000, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (mut socket, _) = Ws::login(&base, &token, None);
    let started = Instant::now();
    let refused = wait_for("the idle session refused", Duration::from_secs(10), || {
        let (status, v) = background(&base, &token);
        (status != 200).then_some((status, v))
    });
    let idle_after = started.elapsed();
    assert_eq!(refused.0, 401, "{:?}", refused.1);
    assert_eq!(code(&refused.1), "session_idle", "{:?}", refused.1);
    assert!(
        idle_after >= Duration::from_millis(1900) && idle_after < Duration::from_secs(4),
        "ended after {idle_after:?}"
    );
    // The socket authenticated with it closes within a heartbeat, with the reason.
    let closed = loop {
        match socket.read() {
            Got::Frame(f) if f["type"] == "error" => {
                assert_eq!(f["code"], "session_idle", "{f}");
            }
            Got::Frame(_) => {}
            Got::Closed(c) => break c,
        }
    };
    assert_eq!(closed, Some((1008, "session_idle".to_owned())));

    // Used by its user all along, it outlives the idle timeout, up to its lifetime (6 s).
    let (_, session) = login(&base, "op1", &password);
    let token = session["token"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let ended = wait_for(
        "the session's absolute end",
        Duration::from_secs(12),
        || {
            let (status, v) = call_as(Some(&token), "GET", &rooms, None);
            (status != 200).then_some((status, v))
        },
    );
    let lived = started.elapsed();
    assert_eq!(
        (ended.0, code(&ended.1)),
        (401, "session_expired"),
        "{:?}",
        ended.1
    );
    assert!(
        lived >= Duration::from_millis(5800) && lived < Duration::from_secs(8),
        "lived {lived:?}"
    );
    assert!(metric(&base, "cistern_auth_rejected_total{reason=\"idle\"}") >= 1.0);
    assert!(metric(&base, "cistern_auth_rejected_total{reason=\"expired\"}") >= 1.0);
}

#[test]
fn admins_and_users_end_sessions_and_new_passwords_or_roles_end_them() {
    let config = site("sessions-admin", "");
    let node = Cistern::run("sessions-admin", &config).start();
    let base = node.http().to_owned();
    let password = create_user(&base, "op1", "operator");
    let rooms = format!("{base}/api/v1/rooms");
    let sign_in = |agent: &str| {
        let a = call_from(
            "127.0.0.1",
            "POST",
            &format!("{base}/api/v1/auth/login"),
            &[("user-agent", agent)],
            Some(&json!({ "user": "op1", "password": password }).to_string()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["token"].as_str().unwrap().to_owned()
    };
    let phone = sign_in("Mozilla/5.0 (Linux; Android 14) phone");
    let desk = sign_in("Mozilla/5.0 (X11; Linux x86_64) desk");

    // The admin sees both, with their address and user agent; and their own, marked current.
    let (status, v) = get(&format!("{base}/api/v1/sessions?user=op1"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["count"], 2, "{v}");
    let of = |agent: &str| {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["user_agent"].as_str().unwrap_or("").ends_with(agent))
            .cloned()
            .unwrap_or_else(|| panic!("no {agent} session in {v}"))
    };
    let (phone_id, desk_id) = (of("phone")["id"].clone(), of("desk")["id"].clone());
    assert_eq!(of("phone")["address"], "127.0.0.1");
    assert!(of("phone")["idle_expires_at_ms"].as_i64() <= of("phone")["expires_at_ms"].as_i64());
    let (_, all) = get(&format!("{base}/api/v1/sessions"));
    assert!(
        all["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user"] == "admin" && s["current"] == true),
        "{all}"
    );
    let (status, v) = get(&format!("{base}/api/v1/sessions?who=op1"));
    assert_eq!((status, code(&v)), (400, "invalid_query"), "{v}");

    // op1 sees their own two (the asking one current), ends the other, and cannot end the
    // admin's.
    let mine = format!("{base}/api/v1/auth/sessions");
    let (status, v) = call_as(Some(&desk), "GET", &mine, None);
    assert_eq!((status, v["count"].as_u64()), (200, Some(2)), "{v}");
    let current: Vec<_> = (v["sessions"].as_array().unwrap().iter())
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(current, std::slice::from_ref(&desk_id));
    let (status, v) = call_as(Some(&desk), "GET", &format!("{base}/api/v1/sessions"), None);
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    let admin_id = (all["sessions"].as_array().unwrap().iter())
        .find(|s| s["user"] == "admin")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    let (status, v) = call_as(Some(&desk), "DELETE", &format!("{mine}/{admin_id}"), None);
    assert_eq!((status, code(&v)), (404, "unknown_session"), "{v}");
    let (status, v) = call_as(
        Some(&desk),
        "DELETE",
        &format!("{mine}/{}", phone_id.as_str().unwrap()),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = call_as(Some(&phone), "GET", &rooms, None);
    assert_eq!(
        (status, code(&v)),
        (401, "unauthorized"),
        "an ended session: {v}"
    );

    // The admin ends op1's desk session.
    let (status, v) = crate::support::delete(&format!(
        "{base}/api/v1/sessions/{}",
        desk_id.as_str().unwrap()
    ));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ended"]["user"], "op1", "{v}");
    let (status, _) = call_as(Some(&desk), "GET", &rooms, None);
    assert_eq!(status, 401);
    let (status, v) = crate::support::delete(&format!(
        "{base}/api/v1/sessions/{}",
        desk_id.as_str().unwrap()
    ));
    assert_eq!((status, code(&v)), (404, "unknown_session"), "{v}");

    // op1 changes their own password from one session: the policy first, then the current
    // password; the other sessions end, this one stays.
    let (here, there, elsewhere) = (sign_in("a"), sign_in("b"), sign_in("c"));
    let change = |current: &str, new: &str| {
        call_as(
            Some(&here),
            "PUT",
            &format!("{base}/api/v1/auth/me/password"),
            Some(&json!({ "current_password": current, "new_password": new }).to_string()),
        )
    };
    for (new, want) in [
        ("short", "weak_password"),
        ("OP1", "weak_password"),
        ("password1234", "common_password"),
    ] {
        let (status, v) = change(&password, new);
        assert_eq!((status, code(&v)), (400, want), "{new}: {v}");
    }
    let (status, v) = change("not-my-password", "a-brand-new-password");
    assert_eq!((status, code(&v)), (403, "wrong_password"), "{v}");
    let (status, v) = change(&password, "a-brand-new-password");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["sessions_ended"], 2, "{v}");
    assert_eq!(
        call_as(Some(&here), "GET", &rooms, None).0,
        200,
        "this one stays"
    );
    assert_eq!(call_as(Some(&there), "GET", &rooms, None).0, 401);
    assert_eq!(call_as(Some(&elsewhere), "GET", &rooms, None).0, 401);
    let (status, _) = login(&base, "op1", &password);
    assert_eq!(status, 401, "the old password is gone");
    // A name as password, refused by its own code (an admin setting it).
    let (status, v) = patch(
        &format!("{base}/api/v1/users/op1"),
        r#"{"password":"OP1-op1-OP1-op1"}"#,
    );
    assert_eq!(status, 200, "not the name, only containing it: {v}");
    let (status, v) = patch(&format!("{base}/api/v1/users/op1"), r#"{"password":"Op1"}"#);
    assert_eq!((status, code(&v)), (400, "weak_password"), "{v}");
    let (_, v) = post(
        &format!("{base}/api/v1/users"),
        r#"{"name":"operator-0002","role":"viewer","password":"Operator-0002"}"#,
    );
    assert_eq!(code(&v), "password_is_name", "{v}");

    // An admin's role change ends every session of the user; so does an admin's new password.
    assert_eq!(
        call_as(Some(&here), "GET", &rooms, None).0,
        401,
        "ended by the admin's reset"
    );
    let s1 = token_for(&base, "op1", "OP1-op1-OP1-op1");
    let (status, v) = patch(&format!("{base}/api/v1/users/op1"), r#"{"role":"viewer"}"#);
    assert_eq!(
        (status, v["sessions_ended"].as_u64()),
        (200, Some(1)),
        "{v}"
    );
    let (status, v) = call_as(Some(&s1), "GET", &rooms, None);
    assert_eq!((status, code(&v)), (401, "unauthorized"), "{v}");
    let s2 = token_for(&base, "op1", "OP1-op1-OP1-op1");
    let (_, me) = call_as(Some(&s2), "GET", &format!("{base}/api/v1/auth/me"), None);
    assert_eq!(me["role"], "viewer", "{me}");
    assert_eq!(me["password_min_chars"], 12, "{me}");
    assert_eq!(me["session"]["current"], true, "{me}");

    // Audited and counted.
    let ends = audit(&base, "session_end");
    assert_eq!(
        ends.len(),
        4,
        "op1's refused and taken, the admin's taken and refused: {ends:?}"
    );
    assert!(ends
        .iter()
        .any(|e| e["user"] == "admin" && e["target"] == "op1" && e["ok"] == true));
    let changes = audit(&base, "password_change");
    assert_eq!(
        changes.iter().filter(|e| e["ok"] == true).count(),
        1,
        "{changes:?}"
    );
    for (reason, least) in [
        ("ended_by_user", 1.0),
        ("ended_by_admin", 1.0),
        ("password_change", 3.0),
        ("role_change", 1.0),
    ] {
        let line = format!("cistern_auth_sessions_ended_total{{reason=\"{reason}\"}}");
        assert!(metric(&base, &line) >= least, "{line}");
    }
}

#[test]
fn guessing_never_locks_a_user_out_and_a_natd_room_signs_in() {
    let config = site(
        "sessions-throttle",
        "login_free_failures = 3\nlogin_delay = \"2s\"\nlogin_max_delay = \"8s\"\n\
         login_failures_per_address = 10\nlogin_window = \"1m\"",
    );
    let node = Cistern::run("sessions-throttle", &config).start();
    let base = node.http().to_owned();
    let login_url = format!("{base}/api/v1/auth/login");
    let password = create_user(&base, "op1", "operator");
    let attempt = |from: &str, user: &str, password: &str, device: Option<&str>| {
        call_from(
            from,
            "POST",
            &login_url,
            &[],
            Some(&json!({ "user": user, "password": password, "device": device }).to_string()),
        )
    };

    // op1 signs in once from their own browser (at 127.0.0.3): it is given a device token.
    let first = attempt("127.0.0.3", "op1", &password, None);
    assert_eq!(first.status, 200, "{}", first.body);
    let device = first.body["device"].as_str().unwrap().to_owned();

    // An attacker at 127.0.0.2 guesses op1's password: three failures, then every attempt
    // from there waits, the right password included — a wait, named in Retry-After.
    for _ in 0..3 {
        assert_eq!(
            attempt("127.0.0.2", "op1", "guess-guess-guess", None).status,
            401
        );
    }
    let slowed = attempt("127.0.0.2", "op1", &password, None);
    assert_eq!(slowed.status, 429, "{}", slowed.body);
    assert_eq!(code(&slowed.body), "too_many_requests");
    assert_eq!(
        slowed.header("retry-after"),
        Some("2"),
        "{:?}",
        slowed.headers
    );
    // The user is not locked out: from another address at once, and from their own browser
    // even behind the attacker's address.
    assert_eq!(attempt("127.0.0.4", "op1", &password, None).status, 200);
    let known = attempt("127.0.0.2", "op1", &password, Some(&device));
    assert_eq!(known.status, 200, "{}", known.body);
    assert_eq!(
        known.body["device"],
        Value::Null,
        "the device token stays valid"
    );
    // The attacker's next try after the wait fails again and waits twice as long.
    wait_for("the wait to pass", Duration::from_secs(5), || {
        let a = attempt("127.0.0.2", "op1", "guess-guess-guess", None);
        (a.status == 401).then_some(())
    });
    let slower = attempt("127.0.0.2", "op1", &password, None);
    assert_eq!(
        slower.header("retry-after"),
        Some("4"),
        "{:?}",
        slower.headers
    );

    // The admin sees the key waiting and unlocks it: op1 signs in from there, no device token.
    let (_, v) = get(&format!("{base}/api/v1/auth/throttles"));
    let pair = (v["throttles"].as_array().unwrap().iter())
        .find(|k| k["key"] == "pair" && k["address"] == "127.0.0.2")
        .cloned()
        .unwrap_or_else(|| panic!("no waiting pair in {v}"));
    assert_eq!(pair["user"], "op1");
    assert_eq!(pair["failures"], 4, "{pair}");
    assert!(pair["retry_after_ms"].as_u64().unwrap() > 0, "{pair}");
    let (status, v) = post(
        &format!("{base}/api/v1/auth/throttles/unlock"),
        r#"{"user":"op1","address":"127.0.0.2"}"#,
    );
    assert_eq!((status, v["cleared"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(attempt("127.0.0.2", "op1", &password, None).status, 200);
    let (status, v) = post(
        &format!("{base}/api/v1/auth/throttles/unlock"),
        r#"{"address":"not-an-address"}"#,
    );
    assert_eq!((status, code(&v)), (400, "invalid_address"), "{v}");
    let (status, v) = post(&format!("{base}/api/v1/auth/throttles/unlock"), "{}");
    assert_eq!((status, code(&v)), (400, "nothing_to_change"), "{v}");

    // A NAT'd control room at 127.0.0.5: twelve users, each mistyping once then signing in,
    // twice over (more failures than the address's allowance of 10): no one ever waits.
    let room: Vec<(String, String)> = (1..=12)
        .map(|n| {
            let name = format!("nat{n}");
            let password = create_user(&base, &name, "operator");
            (name, password)
        })
        .collect();
    let mut devices = Vec::new();
    for round in 0..2 {
        for (name, password) in &room {
            let miss = attempt("127.0.0.5", name, "typo-typo-typo", None);
            assert_eq!(miss.status, 401, "{name}, round {round}: {}", miss.body);
            let hit = attempt("127.0.0.5", name, password, None);
            assert_eq!(hit.status, 200, "{name}, round {round}: {}", hit.body);
            if round == 1 {
                devices.push(hit.body["device"].as_str().unwrap().to_owned());
            }
        }
    }
    // A sprayer behind the same address tries names: after 10 failures the address waits —
    // for browsers it does not know. The room's users, on their known browsers, sign in.
    let mut sprayed = 0;
    let waited = loop {
        let a = attempt("127.0.0.5", &format!("x{sprayed}"), "Summer2026!", None);
        if a.status == 429 {
            break a;
        }
        assert_eq!(a.status, 401);
        sprayed += 1;
        assert!(sprayed <= 10, "the address never waited");
    };
    assert_eq!(sprayed, 10);
    let (new_name, new_password) = &room[0];
    assert_eq!(
        attempt("127.0.0.5", new_name, new_password, None).status,
        429,
        "a new browser behind the spraying address waits: {}",
        waited.body
    );
    for ((name, password), device) in room.iter().zip(&devices) {
        let a = attempt("127.0.0.5", name, password, Some(device));
        assert_eq!(a.status, 200, "{name} on their own browser: {}", a.body);
    }
    let (status, v) = post(
        &format!("{base}/api/v1/auth/throttles/unlock"),
        r#"{"address":"127.0.0.5"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        attempt("127.0.0.5", new_name, new_password, None).status,
        200
    );

    // Counted and audited: the start of each wait and each unlock (not every refusal).
    assert!(metric(&base, "cistern_auth_login_throttled_total{key=\"pair\"}") >= 2.0);
    assert!(metric(&base, "cistern_auth_login_throttled_total{key=\"address\"}") >= 2.0);
    assert!(metric(&base, "cistern_auth_logins_total{result=\"throttled\"}") >= 4.0);
    assert!(metric(&base, "cistern_auth_login_unlocks_total") >= 2.0);
    let throttled = audit(&base, "login_throttled");
    assert!(
        throttled
            .iter()
            .any(|e| e["user"] == "op1" && e["detail"].as_str().unwrap().contains("127.0.0.2")),
        "{throttled:?}"
    );
    assert!(
        throttled.iter().any(|e| e["detail"]
            .as_str()
            .unwrap()
            .contains("any user from 127.0.0.5")),
        "{throttled:?}"
    );
    let unlocks = audit(&base, "login_unlock");
    assert_eq!(unlocks.len(), 2, "{unlocks:?}");
    assert!(unlocks
        .iter()
        .all(|e| e["user"] == "admin" && e["ok"] == true));
}

#[test]
fn api_tokens_are_refused_outside_their_scope_and_after_their_expiry() {
    let config = site("sessions-tokens", "");
    let node = Cistern::run("sessions-tokens", &config).start();
    let base = node.http().to_owned();
    let tokens = format!("{base}/api/v1/tokens");
    let issue = |body: Value| {
        let (status, v) = post(&tokens, &body.to_string());
        assert_eq!(status, 201, "{v}");
        (v["token"].as_str().unwrap().to_owned(), v)
    };
    let now_ms = cistern_schemas::Timestamp::now().as_millis();
    // A read-only token of an admin: reads the users, creates none.
    let (reader, v) = issue(json!({ "name": "reader", "role": "admin", "scope": "read" }));
    assert_eq!(v["scope"], "read");
    let ninety_days = 90 * 86_400_000_i64;
    let expires = v["expires_at_ms"].as_i64().unwrap();
    assert!((expires - now_ms - ninety_days).abs() < 60_000, "{v}");
    assert_eq!(
        call_as(Some(&reader), "GET", &format!("{base}/api/v1/users"), None).0,
        200
    );
    let (status, v) = call_as(
        Some(&reader),
        "POST",
        &format!("{base}/api/v1/users"),
        Some(r#"{"name":"x2","role":"viewer","password":"long-enough-x2"}"#),
    );
    assert_eq!((status, code(&v)), (403, "out_of_scope"), "{v}");
    assert_eq!(
        v["error"]["message"],
        "this API token's scope (read) does not allow this"
    );
    // An operator's token that operates: it may end its own session (none), not manage users.
    let (operate, _) = issue(json!({ "name": "ops", "role": "admin", "scope": "operate" }));
    let (status, v) = call_as(
        Some(&operate),
        "POST",
        &format!("{base}/api/v1/auth/throttles/unlock"),
        Some(r#"{"user":"x"}"#),
    );
    assert_eq!((status, code(&v)), (403, "out_of_scope"), "{v}");
    let (status, v) = call_as(
        Some(&operate),
        "PUT",
        &format!("{base}/api/v1/auth/me/password"),
        Some(r#"{"current_password":"a","new_password":"b"}"#),
    );
    assert_eq!((status, code(&v)), (409, "not_a_user"), "{v}");
    // Without a scope, a token may do what its role may.
    let (_, v) = issue(json!({ "name": "plain", "role": "operator" }));
    assert_eq!(v["scope"], "operate");

    // Expiry: in the future, within a year; then refused, and said so.
    for bad in [now_ms - 1000, now_ms + 400 * 86_400_000] {
        let (status, v) = post(
            &tokens,
            &json!({ "name": "bad", "role": "viewer", "expires_at_ms": bad }).to_string(),
        );
        assert_eq!((status, code(&v)), (400, "invalid_expiry"), "{v}");
    }
    let (short, _) = issue(json!({
        "name": "short", "role": "viewer",
        "expires_at_ms": cistern_schemas::Timestamp::now().as_millis() + 1500,
    }));
    let rooms = format!("{base}/api/v1/rooms");
    assert_eq!(call_as(Some(&short), "GET", &rooms, None).0, 200);
    let refused = wait_for("the token's expiry", Duration::from_secs(10), || {
        let (status, v) = call_as(Some(&short), "GET", &rooms, None);
        (status != 200).then_some((status, v))
    });
    assert_eq!(
        (refused.0, code(&refused.1)),
        (401, "token_expired"),
        "{:?}",
        refused.1
    );
    let (_, listed) = get(&tokens);
    let short_listed = (listed["tokens"].as_array().unwrap().iter())
        .find(|t| t["name"] == "short")
        .unwrap();
    assert_eq!(short_listed["expired"], true, "{listed}");
    // A WebSocket will not take it either.
    let mut ws = Ws::connect(&base, None);
    ws.send(json!({ "type": "auth", "token": short }));
    match ws.read() {
        Got::Frame(f) => assert_eq!(f["code"], "unauthorized", "{f}"),
        Got::Closed(c) => panic!("closed without a word: {c:?}"),
    }
    assert!(
        metric(
            &base,
            "cistern_auth_rejected_total{reason=\"out_of_scope\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &base,
            "cistern_auth_rejected_total{reason=\"token_expired\"}"
        ) >= 1.0
    );
    let created = audit(&base, "token_create");
    assert!(
        created.iter().any(
            |e| e["target"] == "reader" && e["detail"].as_str().unwrap().contains("scope read")
        ),
        "{created:?}"
    );
}
