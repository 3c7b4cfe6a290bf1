//! TLS and device identity end to end (issue 24 items 1 and 2), with real components only:
//! certificates made by `cistern pki`, a real mosquitto asking for client certificates
//! (`require_certificate`, `use_identity_as_username`, an ACL that lets a gateway publish only
//! under its own name), `cistern run` with HTTPS and MQTT over mTLS, Python's `ssl` and
//! paho-mqtt as the independent peers (tests/it/peers/tls_peer.py), and headless Chromium on
//! the HTTPS console at phone size, where the admin enrols, revokes and removes gateways.

use crate::browser::Browser;
use crate::support::{
    free_port, run_site_on_port, temp_dir, wait_for, Cistern, Mosquitto, IT_ADMIN_PASSWORD,
};
use cistern::lab::sim;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/peers/tls_peer.py");

fn python(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(PEER)
        .args(args)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tls_peer.py {args:?} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `cistern pki ARGS`: its stdout (panics unless it succeeds).
pub(crate) fn pki(args: &[&str]) -> String {
    let out = Cistern::command("pki", ["pki"]).args(args).output();
    assert!(
        out.status.success(),
        "cistern pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cistern pki issue`: the server certificate of 127.0.0.1 (`localhost.pem`, `.key` in `out`),
/// signed by the CA in `ca`.
fn server_certificate(ca: &str, out: &str) {
    pki(&[
        "issue",
        "--ca",
        ca,
        "--out",
        out,
        "--name",
        "localhost",
        "--kind",
        "server",
        "--ip",
        "127.0.0.1",
    ]);
}

fn fingerprint_in(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .unwrap_or_else(|| panic!("no fingerprint in {output}"))
        .to_owned()
}

/// A mosquitto that asks every client for a certificate signed by `pki/ca.pem`, takes its name
/// as the user name and client id, and lets a gateway publish only under
/// `cistern/v1/gw/<its name>/`.
fn tls_broker(name: &str, pki: &Path) -> Mosquitto {
    let dir = temp_dir(name);
    let port = free_port();
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "# the platform's node reads every telemetry topic\n\
         user node-1\ntopic read cistern/v1/#\n\
         # a gateway publishes only under its own name\n\
         pattern write cistern/v1/gw/%u/#\n",
    )
    .unwrap();
    Mosquitto::with_conf(
        &format!("{name}-broker"),
        port,
        &format!(
            "user root\nlistener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\n\
             allow_anonymous false\nacl_file {acl}\npersistence false\nlog_dest stderr\nlog_type all\n",
            ca = pki.join("ca.pem").display(),
            cert = pki.join("localhost.pem").display(),
            key = pki.join("localhost.key").display(),
            acl = acl.display(),
        ),
    )
}

/// The HTTPS API through Python's `ssl`, verifying the server against the pilot CA.
struct Https {
    ca: String,
    port: String,
    token: String,
}

impl Https {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let mut args = vec![
            "https",
            &self.ca,
            "127.0.0.1",
            &self.port,
            method,
            path,
            "--token",
            &self.token,
        ];
        if let Some(b) = &body {
            args.push(b);
        }
        python(&args)
    }

    fn metric(&self, line_start: &str) -> f64 {
        let v = self.call("GET", "/metrics", None);
        v["body"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

fn publish(pki: &Path, who: &str, port: u16, topic: &str, payload: &str) -> Value {
    publish_as(pki, who, port, topic, payload, &format!("peer-{who}"))
}

/// [`publish`] asking for client id `client_id` (the broker gives it the certificate's name).
fn publish_as(
    pki: &Path,
    who: &str,
    port: u16,
    topic: &str,
    payload: &str,
    client_id: &str,
) -> Value {
    let ca = pki.join("ca.pem");
    let (cert, key) = (
        pki.join(format!("{who}.pem")),
        pki.join(format!("{who}.key")),
    );
    python(&[
        "publish",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "127.0.0.1",
        &port.to_string(),
        topic,
        payload,
        client_id,
    ])
}

/// [`publish`], which must reach the broker.
fn publish_ok(pki: &Path, who: &str, port: u16, topic: &str, level: f64) {
    let sent = publish(pki, who, port, topic, &level_payload(level));
    assert_eq!(sent["published"], true, "{who} on {topic}: {sent}");
}

fn level_payload(level: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    json!({"devices": {"T1": [{"t": now, "v": {"level": level}}]}}).to_string()
}

#[test]
fn a_tls_only_site_takes_telemetry_only_from_enrolled_gateways_for_their_own_rooms() {
    // The pilot's certificates, made by `cistern pki`.
    let dir = temp_dir("tls-pki");
    let pki_dir = dir.join("pki");
    let p = pki_dir.to_str().unwrap();
    pki(&["ca", "--dir", p]);
    server_certificate(p, p);
    pki(&["issue", "--ca", p, "--name", "node-1"]);
    let gw_a = fingerprint_in(&pki(&["issue", "--ca", p, "--name", "gw-A"]));
    pki(&[
        "issue",
        "--ca",
        p,
        "--name",
        "gw-old",
        "--until",
        "2021-01-01",
    ]);
    // A certificate of another CA, with a name the broker would otherwise accept.
    let rogue = dir.join("rogue");
    let r = rogue.to_str().unwrap();
    pki(&["ca", "--dir", r, "--name", "Rogue CA"]);
    pki(&["issue", "--ca", r, "--name", "gw-A"]);
    std::fs::copy(pki_dir.join("ca.pem"), rogue.join("trusted-ca.pem")).unwrap();

    let broker = tls_broker("tls-mosquitto", &pki_dir);
    let inventory = sim::generate_fleet(2, 3);
    let (room_a, room_b) = (
        inventory.rooms[0].id.to_string(),
        inventory.rooms[1].id.to_string(),
    );
    let config = run_site_on_port(
        "tls-site",
        &inventory,
        broker.addr.port(),
        &format!(
            "require_gateway_identity = true\n\
             [mqtt.tls]\nca = \"{p}/ca.pem\"\ncert = \"{p}/node-1.pem\"\nkey = \"{p}/node-1.key\"\n\
             [http.tls]\ncert = \"{h}/server.pem\"\nkey = \"{h}/server.key\"\nreload_every = \"1s\"\n",
            h = dir.display(),
        ),
    );
    std::fs::copy(pki_dir.join("localhost.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(pki_dir.join("localhost.key"), dir.join("server.key")).unwrap();
    let config_text = std::fs::read_to_string(&config).unwrap().replace(
        "client_id = \"cistern-it-tls-site\"",
        "client_id = \"node-1\"",
    );
    std::fs::write(&config, config_text).unwrap();
    let node = Cistern::run("tls-node", &config).start();
    let base = node.http().to_owned();
    assert!(base.starts_with("https://"), "{base}");
    let port = base.rsplit(':').next().unwrap().to_owned();

    // HTTPS, verified against the pilot CA by an independent client.
    let ca = pki_dir.join("ca.pem").to_str().unwrap().to_owned();
    let login = python(&[
        "https",
        &ca,
        "127.0.0.1",
        &port,
        "GET",
        "/api/v1/auth/me",
        "--login",
        "admin",
        IT_ADMIN_PASSWORD,
    ]);
    assert_eq!(login["status"], 200, "{login}\n{}", node.log_tail());
    let served = login["fingerprint"].as_str().unwrap().to_owned();
    let token = login["token"].as_str().unwrap().to_owned();
    let api = Https {
        ca: ca.clone(),
        port: port.clone(),
        token,
    };
    // A client that does not trust the pilot CA is refused by its own TLS stack.
    let untrusted = python(&[
        "https",
        rogue.join("ca.pem").to_str().unwrap(),
        "127.0.0.1",
        &port,
        "GET",
        "/healthz",
    ]);
    assert!(
        untrusted["error"]
            .as_str()
            .is_some_and(|e| e.contains("CERTIFICATE_VERIFY_FAILED")),
        "{untrusted}"
    );

    // Enrol gw-A for room A (admin, audited).
    let enrolled = api.call(
        "PUT",
        "/api/v1/gateways/gw-A",
        Some(&json!({"rooms": [room_a], "fingerprint": gw_a, "note": "泵房 A 的网关"})),
    );
    assert_eq!(enrolled["status"], 200, "{enrolled}");
    assert_eq!(enrolled["body"]["enabled"], true);
    let bad = api.call(
        "PUT",
        "/api/v1/gateways/gw-B",
        Some(&json!({"rooms": [], "fingerprint": "zz"})),
    );
    assert_eq!(bad["status"], 400, "{bad}");

    let rejected = |reason: &str| {
        api.metric(&format!(
            "cistern_ingest_rejected_total{{reason=\"{reason}\",source=\"mqtt\"}}"
        ))
    };
    assert!(
        !node.log().contains("not subscribed to the MQTT broker yet"),
        "the node did not connect over mTLS: {}",
        node.log_tail()
    );

    // gw-A for its own room: taken, over mTLS at both ends.
    let topic_a = format!("cistern/v1/gw/gw-A/telemetry/{room_a}");
    publish_ok(&pki_dir, "gw-A", broker.addr.port(), &topic_a, 2.345);
    wait_for("gw-A's level in room A", Duration::from_secs(20), || {
        let room = api.call("GET", &format!("/api/v1/rooms/{room_a}"), None);
        room["body"].to_string().contains("2.345").then_some(())
    });

    // gw-A for room B on its own name: the broker lets it through, the platform refuses it.
    let topic_b = format!("cistern/v1/gw/gw-A/telemetry/{room_b}");
    publish_ok(&pki_dir, "gw-A", broker.addr.port(), &topic_b, 7.777);
    wait_for("the refusal counted", Duration::from_secs(20), || {
        (rejected("gateway_room") == 1.0).then_some(())
    });
    // gw-A as another gateway, or on the anonymous form: the broker's ACL drops it.
    for topic in [
        format!("cistern/v1/gw/gw-B/telemetry/{room_b}"),
        format!("cistern/v1/telemetry/{room_b}"),
    ] {
        let sent = publish(
            &pki_dir,
            "gw-A",
            broker.addr.port(),
            &topic,
            &level_payload(8.888),
        );
        assert_eq!(sent["connected"], true, "{sent}");
    }
    wait_for("the broker's ACL denials", Duration::from_secs(10), || {
        (broker.log().matches("Denied PUBLISH from gw-A").count() >= 2).then_some(())
    });
    let room = api.call("GET", &format!("/api/v1/rooms/{room_b}"), None);
    let text = room["body"].to_string();
    assert!(
        !text.contains("7.777") && !text.contains("8.888"),
        "room B took another gateway's data: {text}"
    );

    // gw-A asking for the node's client id gets its own: the node's session stays.
    let sent = publish_as(
        &pki_dir,
        "gw-A",
        broker.addr.port(),
        &topic_a,
        &level_payload(2.5),
        "node-1",
    );
    assert_eq!(sent["published"], true, "{sent}");
    assert!(
        !broker
            .log()
            .contains("already connected, closing old connection"),
        "a gateway took over the node's session:\n{}",
        broker.log()
    );

    // Expired, and signed by another CA: the broker refuses the handshake.
    for (who, pki) in [("gw-old", pki_dir.clone()), ("gw-A", rogue.clone())] {
        let mut args = (pki.join("ca.pem"), pki.join(format!("{who}.pem")));
        if pki == rogue {
            args.0 = rogue.join("trusted-ca.pem");
        }
        let sent = python(&[
            "publish",
            args.0.to_str().unwrap(),
            args.1.to_str().unwrap(),
            pki.join(format!("{who}.key")).to_str().unwrap(),
            "127.0.0.1",
            &broker.addr.port().to_string(),
            &topic_a,
            &level_payload(9.999),
        ]);
        assert_eq!(sent["connected"], false, "{who}: {sent}");
    }

    // The console over HTTPS in a real browser, in Chinese, on a phone: the gateways tab lists
    // gw-A, enrols another through its form, revokes gw-A (refused from its next message) and
    // removes the other.
    let browser = Browser::start_accepting_any_certificate("tls-browser");
    browser.sign_in(&base, "zh-CN");
    browser.assert_chinese_only("the HTTPS console");
    browser.js("location.hash = arguments[0];", json!(["#/admin/gateways"]));
    let row_of = |id: &str| {
        format!(
            "const r = document.querySelector('table.admin-gateways tr[data-gateway=\"{id}\"]'); \
             return r && (r.className + ' ' + r.textContent) || null;"
        )
    };
    let row = browser.until("gw-A listed", WAIT, &row_of("gw-A"));
    let row = row.as_str().unwrap();
    assert!(
        row.contains(&gw_a[..16]) && row.contains(&room_a) && row.contains("已启用"),
        "{row}"
    );
    browser.assert_chinese_only("the gateways tab");
    assert_eq!(
        browser.overflowing(),
        Vec::<String>::new(),
        "the gateways tab is wider than a phone"
    );
    browser.set_value("#gateway-form input[name=id]", "gw-C");
    browser.set_value("#gateway-form input[name=rooms]", &room_b);
    browser.set_value("#gateway-form input[name=note]", "备用网关");
    browser.click(&browser.element("#gateway-form button[type=submit]", WAIT));
    browser.until("gw-C listed", WAIT, &row_of("gw-C"));
    browser.screenshot(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-gateways.png"));
    let listed = api.call("GET", "/api/v1/gateways", None);
    let gw_c = listed["body"]["gateways"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["id"] == "gw-C"))
        .cloned()
        .unwrap_or_else(|| panic!("gw-C not enrolled: {listed}"));
    assert_eq!(gw_c["rooms"], json!([room_b]), "{gw_c}");
    assert_eq!(gw_c["enabled"], true, "{gw_c}");
    assert_eq!(gw_c["updated_by"], "admin", "{gw_c}");
    let confirm = |browser: &Browser| {
        browser.until(
            "the confirmation dialog",
            WAIT,
            "return document.querySelector('.admin-ask').open || null;",
        );
        browser.click(&browser.element(".admin-ask .ask-ok", WAIT));
    };
    // (The enrolment's toast would cover the row's buttons on a phone.)
    let dismiss_toast = |browser: &Browser| {
        browser.js("document.getElementById('toast').hidden = true;", json!([]));
    };
    dismiss_toast(&browser);
    browser.click(&browser.element("tr[data-gateway='gw-A'] button[data-act=toggle]", WAIT));
    confirm(&browser);
    browser.until(
        "gw-A shown revoked",
        WAIT,
        "const r = document.querySelector('tr[data-gateway=\"gw-A\"]'); \
         return r && r.classList.contains('revoked') && r.textContent.includes('已吊销') || null;",
    );
    publish(
        &pki_dir,
        "gw-A",
        broker.addr.port(),
        &topic_a,
        &level_payload(6.666),
    );
    wait_for(
        "the revoked gateway refused",
        Duration::from_secs(20),
        || (rejected("gateway_disabled") == 1.0).then_some(()),
    );
    dismiss_toast(&browser);
    browser.click(&browser.element("tr[data-gateway='gw-C'] button[data-act=delete]", WAIT));
    confirm(&browser);
    wait_for("gw-C removed", WAIT, || {
        let listed = api.call("GET", "/api/v1/gateways", None);
        (!listed["body"].to_string().contains("gw-C")).then_some(())
    });
    let audit = api.call("GET", "/api/v1/audit?action=gateway_put", None);
    assert!(
        audit["body"].to_string().matches("gw-A").count() >= 2,
        "{audit}"
    );
    let audit = api.call("GET", "/api/v1/audit?action=gateway_delete", None);
    assert!(audit["body"].to_string().contains("gw-C"), "{audit}");

    // The server certificate renewed on disk is served without a restart.
    let renewed = dir.join("renewed");
    server_certificate(p, renewed.to_str().unwrap());
    std::fs::copy(renewed.join("localhost.key"), dir.join("server.key")).unwrap();
    std::fs::copy(renewed.join("localhost.pem"), dir.join("server.pem")).unwrap();
    let now_served = wait_for(
        "the renewed certificate served",
        Duration::from_secs(20),
        || {
            let v = python(&["https", &ca, "127.0.0.1", &port, "GET", "/healthz"]);
            v["fingerprint"]
                .as_str()
                .filter(|f| *f != served)
                .map(str::to_owned)
        },
    );
    assert_ne!(now_served, served);

    // The console still answers over the renewed certificate.
    browser.js("location.hash = arguments[0];", json!(["#/admin/users"]));
    browser.element("#user-form", WAIT);
    drop(node);
}
