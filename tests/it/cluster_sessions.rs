//! Sessions and login throttling on a cluster (issue 24, item 3): two `cistern run` nodes
//! sharing users and sessions through a real etcd (`cluster::identity`), with a 3-second idle
//! timeout. A session used on node A stays alive on node B (A shares its last use); left
//! alone, it ends on B too. A session made on A and ended by an admin on B, or by its user's
//! new password on A, or by a role change on B, is refused by the other node within a second
//! or two; the sessions list of either node shows the other's. An admin's unlock on A clears
//! the login throttling of B.

use crate::cluster_site::ClusterSite;
use crate::support::{call_as, call_background, call_from, token_for, wait_for, IT_ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A request with `token` marked as a background refresh (no use of the session).
fn background(base: &str, token: &str) -> (u16, Value) {
    call_background(base, "/api/v1/auth/sessions", token)
}

fn session_id(token: &str) -> String {
    token.split('_').nth(1).unwrap().to_owned()
}

#[test]
fn sessions_and_their_ends_hold_on_every_node() {
    let site = ClusterSite::start("sessions", 4, &["--seed", "3"]);
    let extra = "[auth]\nidle_timeout = \"3s\"\nlogin_free_failures = 3\nlogin_delay = \"30s\"\n\
                 login_max_delay = \"1m\"\n";
    let nodes: Vec<_> = ["node-a", "node-b"]
        .iter()
        .map(|id| site.node_with(id, None, extra).start())
        .collect();
    let (a, b) = (nodes[0].http().to_owned(), nodes[1].http().to_owned());
    // The admin's sessions are short-lived too: a fresh one for each step.
    let admin = |base: &str| token_for(base, "admin", IT_ADMIN_PASSWORD);
    let (status, v) = call_as(
        Some(&admin(&a)),
        "POST",
        &format!("{a}/api/v1/users"),
        Some(r#"{"name":"op1","role":"operator","password":"op1-password-1"}"#),
    );
    assert_eq!(status, 201, "{v}");
    let admin_b = admin(&b);
    wait_for("op1 known to B", Duration::from_secs(5), || {
        let url = format!("{b}/api/v1/users/op1");
        (call_as(Some(&admin_b), "GET", &url, None).0 == 200).then_some(())
    });

    // A session used on A, every 200 ms for twice the idle timeout: alive on B all along.
    let s = token_for(&a, "op1", "op1-password-1");
    wait_for("A's session known to B", Duration::from_secs(5), || {
        (background(&b, &s).0 == 200).then_some(())
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let (status, v) = call_as(Some(&s), "GET", &format!("{a}/api/v1/rooms"), None);
        assert_eq!(status, 200, "on A after {:?}: {v}", started.elapsed());
        let (status, v) = background(&b, &s);
        assert_eq!(status, 200, "on B after {:?}: {v}", started.elapsed());
        std::thread::park_timeout(Duration::from_millis(200));
    }
    // Left alone, it ends on both, as idle.
    let left = Instant::now();
    let refused = wait_for(
        "the idle session refused on B",
        Duration::from_secs(10),
        || {
            let (status, v) = background(&b, &s);
            (status != 200).then_some(v)
        },
    );
    assert_eq!(refused["error"]["code"], "session_idle", "{refused}");
    let idle_after = left.elapsed();
    assert!(
        idle_after >= Duration::from_millis(2_500) && idle_after < Duration::from_secs(5),
        "idle on B after {idle_after:?}"
    );
    // A learns of the end through etcd (B's view of the last use may lag A's by the sharing
    // interval, so B can find it idle a little before A would by itself).
    let refused_on_a = wait_for(
        "the idle session refused on A",
        Duration::from_secs(5),
        || {
            let (status, v) = background(&a, &s);
            (status != 200).then_some(v)
        },
    );
    assert_eq!(
        refused_on_a["error"]["code"], "session_idle",
        "{refused_on_a}"
    );

    // A session made on A, listed on B and ended there by an admin: refused on A.
    let s2 = token_for(&a, "op1", "op1-password-1");
    let admin_b = admin(&b);
    let listed = wait_for("A's session listed on B", Duration::from_secs(5), || {
        let (_, v) = call_as(
            Some(&admin_b),
            "GET",
            &format!("{b}/api/v1/sessions?user=op1"),
            None,
        );
        (v["sessions"].as_array().into_iter().flatten())
            .find(|x| x["id"] == session_id(&s2).as_str())
            .cloned()
    });
    assert_eq!(listed["address"], "127.0.0.1", "{listed}");
    let (status, v) = call_as(
        Some(&admin_b),
        "DELETE",
        &format!("{b}/api/v1/sessions/{}", session_id(&s2)),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let ended = Instant::now();
    wait_for(
        "the ended session refused on A",
        Duration::from_secs(5),
        || (background(&a, &s2).0 == 401).then_some(()),
    );
    eprintln!(
        "a session ended on B was refused on A after {:?}",
        ended.elapsed()
    );

    // op1 changes their password on A: their session on B ends, the one that changed it stays
    // (on both nodes).
    let on_b = token_for(&b, "op1", "op1-password-1");
    let on_a = token_for(&a, "op1", "op1-password-1");
    wait_for("B's session known to A", Duration::from_secs(5), || {
        (background(&a, &on_b).0 == 200).then_some(())
    });
    let (status, v) = call_as(
        Some(&on_a),
        "PUT",
        &format!("{a}/api/v1/auth/me/password"),
        Some(
            &json!({ "current_password": "op1-password-1", "new_password": "op1-password-2" })
                .to_string(),
        ),
    );
    assert_eq!(
        (status, v["sessions_ended"].as_u64()),
        (200, Some(1)),
        "{v}"
    );
    wait_for(
        "the other session refused on B",
        Duration::from_secs(5),
        || (background(&b, &on_b).0 == 401).then_some(()),
    );
    wait_for(
        "the changing session still good on B",
        Duration::from_secs(5),
        || (call_as(Some(&on_a), "GET", &format!("{b}/api/v1/rooms"), None).0 == 200).then_some(()),
    );

    // A role change on B ends op1's session made on A.
    let (status, v) = call_as(
        Some(&admin(&b)),
        "PATCH",
        &format!("{b}/api/v1/users/op1"),
        Some(r#"{"role":"viewer"}"#),
    );
    assert_eq!(status, 200, "{v}");
    wait_for(
        "the demoted user's session refused on A",
        Duration::from_secs(5),
        || (background(&a, &on_a).0 == 401).then_some(()),
    );

    // Guessing at B from 127.0.0.2 makes op1 wait there; an admin's unlock on A clears it.
    let login = |base: &str, password: &str| {
        call_from(
            "127.0.0.2",
            "POST",
            &format!("{base}/api/v1/auth/login"),
            &[],
            Some(&json!({ "user": "op1", "password": password }).to_string()),
        )
    };
    for _ in 0..3 {
        assert_eq!(login(&b, "guess-guess-guess").status, 401);
    }
    assert_eq!(login(&b, "op1-password-2").status, 429);
    let (status, v) = call_as(
        Some(&admin(&a)),
        "POST",
        &format!("{a}/api/v1/auth/throttles/unlock"),
        Some(r#"{"address":"127.0.0.2"}"#),
    );
    assert_eq!(status, 200, "{v}");
    let unlocked = Instant::now();
    wait_for(
        "B unlocked by A's announcement",
        Duration::from_secs(5),
        || (login(&b, "op1-password-2").status == 200).then_some(()),
    );
    eprintln!("an unlock on A cleared B after {:?}", unlocked.elapsed());
}

fn admin_of(node: &crate::support::Node) -> String {
    token_for(node.http(), "admin", IT_ADMIN_PASSWORD)
}

/// A site that ran as a single node keeps its users, API tokens and gateways when it is
/// switched to a cluster: the node brings them into etcd at its first cluster start, so its
/// operator signs in on either node and its token works everywhere; the cluster's own records
/// win where both have a key; and it happens once, so that a user deleted in the cluster is
/// not brought back by the node's next restart.
#[test]
fn a_node_switched_to_a_cluster_brings_its_own_users_once() {
    let site = ClusterSite::start("import", 4, &["--seed", "4"]);
    // node-a first as a single node: its cluster configuration without the [cluster] section,
    // on the same data directory.
    drop(site.node("node-a", None));
    let clustered = std::fs::read_to_string(site.dir.join("node-a.toml")).unwrap();
    let single = clustered.split("[cluster]").next().unwrap().to_owned();
    std::fs::write(site.dir.join("single-a.toml"), single).unwrap();
    let alone =
        crate::support::Cistern::run("import-single", &site.dir.join("single-a.toml")).start();
    let base = alone.http().to_owned();
    let admin = token_for(&base, "admin", IT_ADMIN_PASSWORD);
    let made = call_as(
        Some(&admin),
        "POST",
        &format!("{base}/api/v1/users"),
        Some(r#"{"name": "op-local", "role": "operator", "password": "op-local-password"}"#),
    );
    assert_eq!(made.0, 201, "{}", made.1);
    let token = call_as(
        Some(&admin),
        "POST",
        &format!("{base}/api/v1/tokens"),
        Some(r#"{"name": "historian-export", "role": "viewer", "scope": "read"}"#),
    );
    assert_eq!(token.0, 201, "{}", token.1);
    let api_token = token.1["token"].as_str().unwrap().to_owned();
    let rooms = call_as(Some(&admin), "GET", &format!("{base}/api/v1/rooms"), None);
    let room = rooms.1["rooms"][0]["id"].as_str().unwrap().to_owned();
    let gateway = call_as(
        Some(&admin),
        "PUT",
        &format!("{base}/api/v1/gateways/gw-local"),
        Some(&json!({"rooms": [room], "note": "from the single node"}).to_string()),
    );
    assert_eq!(gateway.0, 200, "{}", gateway.1);
    drop(alone);

    // Switched to a cluster of two: both nodes know op-local, the token and the gateway.
    let mut a = site.node("node-a", None).start();
    let b = site.node("node-b", None).start();
    assert!(
        a.log().contains("brought into the cluster"),
        "{}",
        a.log_tail()
    );
    for node in [a.http().to_owned(), b.http().to_owned()] {
        let op = token_for(&node, "op-local", "op-local-password");
        let me = call_as(Some(&op), "GET", &format!("{node}/api/v1/auth/me"), None);
        assert_eq!(me.1["user"], "op-local", "{}", me.1);
        let read = call_as(
            Some(&api_token),
            "GET",
            &format!("{node}/api/v1/rooms"),
            None,
        );
        assert_eq!(
            read.0, 200,
            "the single node's API token on {node}: {}",
            read.1
        );
    }

    // Deleted in the cluster (on B), it stays deleted when node-a restarts.
    let b_http = b.http().to_owned();
    let admin_b = admin_of(&b);
    let deleted = call_as(
        Some(&admin_b),
        "DELETE",
        &format!("{b_http}/api/v1/users/op-local"),
        None,
    );
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    a.terminate();
    a.restart();
    let a_http = a.http().to_owned();
    let admin_a = token_for(&a_http, "admin", IT_ADMIN_PASSWORD);
    let after = call_as(
        Some(&admin_a),
        "GET",
        &format!("{a_http}/api/v1/users/op-local"),
        None,
    );
    assert_eq!(after.0, 404, "op-local came back: {}", after.1);
}
