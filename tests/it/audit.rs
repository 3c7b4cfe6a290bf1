//! The tamper-evident audit log through the real binary (issue 24 item 5): entries carry their
//! source address, category and result; `cistern audit verify` finds an edited and a deleted
//! record in a stopped node's store; the chain survives a restart and a node notices the newest
//! entries gone at start; CSV and JSON-lines exports (audited themselves); forwarding reaches a
//! real rsyslogd over TCP (octet-counted) and UDP, and a JSON-lines file.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The store's event table (src/store/embedded.rs): (stream, t, id) → body.
const EVENTS: redb::TableDefinition<(&str, i64, u64), &[u8]> =
    redb::TableDefinition::new("events_v1");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The stored audit entries of a stopped node's data directory: (t, id, entry).
fn stored(data: &Path) -> Vec<(i64, u64, serde_json::Value)> {
    use redb::ReadableDatabase;
    let db = redb::Database::open(data.join("history.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(EVENTS).unwrap();
    t.range(("audit", i64::MIN, 0)..=("audit", i64::MAX, u64::MAX))
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            let (_, t, id) = k.value();
            (t, id, serde_json::from_slice(v.value()).unwrap())
        })
        .collect()
}

/// Writes (`Some`) or removes (`None`) one stored entry, as someone with the disk would.
fn tamper(data: &Path, t: i64, id: u64, body: Option<&serde_json::Value>) {
    let db = redb::Database::open(data.join("history.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(EVENTS).unwrap();
        match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b).unwrap();
                table.insert(("audit", t, id), bytes.as_slice()).unwrap();
            }
            None => {
                table.remove(("audit", t, id)).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

fn verify(name: &str, args: &[&str]) -> (i32, String) {
    let out = Cistern::command(name, ["audit", "verify"])
        .args(args)
        .output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Some audited traffic: a failed login, a login, a user created, a refused creation.
fn traffic(base: &str) {
    assert_eq!(login(base, "admin", "not-the-password").0, 401);
    let (s, _) = post(
        &format!("{base}/api/v1/users"),
        r#"{"name":"op1","role":"operator","password":"a long operator password"}"#,
    );
    assert_eq!(s, 201);
    let (s, _) = post(
        &format!("{base}/api/v1/users"),
        r#"{"name":"op1","role":"operator","password":"a long operator password"}"#,
    );
    assert_eq!(s, 409, "a second op1 is refused");
}

#[test]
fn audit_verify_finds_an_edited_and_a_deleted_record_and_the_chain_survives_a_restart() {
    let config = storage_site("audit-verify", "");
    let data = config.parent().unwrap().join("data");
    let mut node = Cistern::run("audit-verify", &config).start();
    let base = node.url("");
    let base = base.trim_end_matches('/').to_owned();
    traffic(&base);

    // The new fields, through the API.
    let (s, body) = get(&format!("{base}/api/v1/audit?limit=100"));
    assert_eq!(s, 200, "{body}");
    let entries = body["entries"].as_array().unwrap();
    let failed = entries
        .iter()
        .find(|e| e["action"] == "login_failed")
        .unwrap_or_else(|| panic!("no failed login in {body}"));
    assert_eq!(failed["source"], "127.0.0.1");
    assert_eq!(failed["category"], "auth");
    assert_eq!(failed["result"], "refused");
    let created = entries
        .iter()
        .find(|e| e["action"] == "user_create" && e["target"] == "op1" && e["ok"] == true)
        .unwrap();
    assert_eq!(
        (&created["source"], &created["category"], &created["result"]),
        (&"127.0.0.1".into(), &"user".into(), &"ok".into())
    );
    let bootstrap = entries
        .iter()
        .find(|e| e["detail"] == "first admin (bootstrap)")
        .unwrap();
    assert_eq!(bootstrap["source"], "system");
    assert!(entries.windows(2).all(|w| w[1]["seq"].as_u64()
        == Some(w[0]["seq"].as_u64().unwrap() + 1)
        && w[1]["prev"] == w[0]["hash"]));

    // Verify over the API: admin only.
    let op = token_for(&base, "op1", "a long operator password");
    let (s, _) = call_as(
        Some(&op),
        "GET",
        &format!("{base}/api/v1/audit/verify"),
        None,
    );
    assert_eq!(s, 403);
    let (s, v) = get(&format!("{base}/api/v1/audit/verify"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["report"]["intact"], true, "{v}");

    // The chain survives a restart: the positions go on, nothing breaks.
    let before = v["report"]["last_seq"].as_u64().unwrap();
    assert!(node.terminate().success());
    node.restart();
    let base = node.url("").trim_end_matches('/').to_owned();
    assert_eq!(metric(&base, "cistern_audit_chain_breaks_total"), 0.0);
    let (_, v) = call_as(
        Some(&admin_token(&base, true)),
        "GET",
        &format!("{base}/api/v1/audit/verify"),
        None,
    );
    assert_eq!(v["report"]["intact"], true, "{v}");
    assert!(v["report"]["last_seq"].as_u64().unwrap() > before, "{v}");
    // The CLI asks the running node (--server is --url).
    let out = Cistern::command("audit-verify-cli", ["audit", "verify", "--server", &base])
        .env("CISTERN_PASSWORD", IT_ADMIN_PASSWORD)
        .output();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit chain intact"));
    node.terminate();

    // A stopped node's store: intact.
    let d = data.to_str().unwrap();
    let (code, text) = verify("audit-verify-ok", &["--data", d]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("audit chain intact"), "{text}");

    let entries = stored(&data);
    assert!(entries.len() >= 8, "{entries:?}");

    // Edited: the refused login turned into a success, hash untouched.
    let edited_dir = temp_dir("audit-verify-edited");
    copy_dir(&data, &edited_dir);
    let (t, id, mut e) = entries
        .iter()
        .find(|(_, _, e)| e["action"] == "login_failed")
        .cloned()
        .unwrap();
    let seq = e["seq"].as_u64().unwrap();
    e["ok"] = true.into();
    e["result"] = "ok".into();
    tamper(&edited_dir, t, id, Some(&e));
    let (code, text) = verify(
        "audit-verify-edited",
        &["--data", edited_dir.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("entry {seq} ")) && text.contains("altered"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password") && !text.contains("wrong user name"),
        "non-revealing: {text}"
    );

    // Deleted: one record from the middle.
    let deleted_dir = temp_dir("audit-verify-deleted");
    copy_dir(&data, &deleted_dir);
    let (t, id, e) = entries[entries.len() / 2].clone();
    let seq = e["seq"].as_u64().unwrap();
    tamper(&deleted_dir, t, id, None);
    let (code, text) = verify(
        "audit-verify-deleted",
        &["--data", deleted_dir.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 1, "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&text[..text.rfind('}').unwrap() + 1]).unwrap();
    assert_eq!(report["first_break"]["kind"], "missing", "{report}");
    assert_eq!(report["first_break"]["seq"], seq, "{report}");

    // The newest record deleted: the node sees it at start (logged and counted).
    let tail_dir = temp_dir("audit-verify-tail");
    copy_dir(&data, &tail_dir);
    let (t, id, _) = entries.last().cloned().unwrap();
    tamper(&tail_dir, t, id, None);
    let (code, text) = verify("audit-verify-tail", &["--data", tail_dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("newest"), "{text}");
    let tail_config = tail_dir.join("cistern.toml");
    std::fs::copy(
        config.parent().unwrap().join("inventory.toml"),
        tail_dir.join("inventory.toml"),
    )
    .unwrap();
    std::fs::write(
        &tail_config,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[inventory]\nfile = \"inventory.toml\"\n[store]\ndata_dir = \"{}\"\n",
            tail_dir.display()
        ),
    )
    .unwrap();
    let node = Cistern::run("audit-verify-tail-node", &tail_config).start();
    let base = node.url("").trim_end_matches('/').to_owned();
    assert!(metric(&base, "cistern_audit_chain_breaks_total") >= 1.0);
    assert!(
        node.log().contains("audit chain broken, found at start"),
        "{}",
        node.log_tail()
    );
    let (_, found) = get(&format!("{base}/api/v1/audit?action=audit_verify"));
    let found = found["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["user"] == "system")
        .unwrap_or_else(|| panic!("no finding of the node's own in {found}"));
    assert_eq!(
        (&found["user"], &found["result"], &found["source"]),
        (&"system".into(), &"failed".into(), &"system".into()),
        "the finding is audited: {found}"
    );
    assert!(
        found["detail"].as_str().unwrap().contains("tail_missing"),
        "{found}"
    );

    // Bad input: a directory without a store is no verdict (exit 2), and nothing is created.
    let empty = temp_dir("audit-verify-empty");
    let (code, text) = verify("audit-verify-empty", &["--data", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("holds no store"), "{text}");
    assert!(!empty.join("history.redb").exists());
}

#[test]
fn audit_exports_csv_and_jsonl_and_is_audited_for_it() {
    let config = storage_site("audit-export", "");
    let node = Cistern::run("audit-export", &config).start();
    let base = node.url("").trim_end_matches('/').to_owned();
    traffic(&base);
    let token = admin_token(&base, false);
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];

    let (s, csv) = call_raw(
        "GET",
        &format!("{base}/api/v1/audit/export?format=csv&lang=zh-CN"),
        &headers,
        None,
    );
    assert_eq!(s, 200, "{csv}");
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(
        csv.contains("时间 (UTC),来源地址,用户,类别,操作,对象,结果,详情"),
        "{csv}"
    );
    assert!(
        csv.contains(",127.0.0.1,admin,auth,login_failed,session,refused,"),
        "{csv}"
    );
    let (_, csv_en) = call_raw(
        "GET",
        &format!("{base}/api/v1/audit/export?lang=en"),
        &headers,
        None,
    );
    assert!(
        csv_en.contains("Time (UTC),Source address,User,Category,Action"),
        "{csv_en}"
    );

    let (s, jsonl) = call_raw(
        "GET",
        &format!("{base}/api/v1/audit/export?format=jsonl"),
        &headers,
        None,
    );
    assert_eq!(s, 200);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    // An export is itself audited (the CSV ones were before this one).
    assert!(
        lines
            .iter()
            .any(|e| e["action"] == "audit_export" && e["category"] == "data"),
        "{jsonl}"
    );

    // A copy verifies offline; an edited copy does not.
    let dir = temp_dir("audit-export-files");
    let copy = dir.join("audit.jsonl");
    std::fs::write(&copy, &jsonl).unwrap();
    let (code, text) = verify("audit-export-verify", &["--file", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let edited = jsonl.replacen("\"login_failed\"", "\"login\"", 1);
    std::fs::write(&copy, edited).unwrap();
    let (code, text) = verify(
        "audit-export-verify-edited",
        &["--file", copy.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{text}");

    // The command line, through the node (so audited there too), a time range in RFC 3339.
    let out_file = dir.join("cli.csv");
    let out = Cistern::command("audit-export-cli", ["audit", "export"])
        .arg(&out_file)
        .args([
            "--url",
            &base,
            "--format",
            "csv",
            "--lang",
            "en",
            "--since",
            "2020-01-01T00:00:00Z",
        ])
        .env("CISTERN_PASSWORD", IT_ADMIN_PASSWORD)
        .output();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.starts_with("\u{feff}Time (UTC)"), "{text}");
    assert!(text.contains("login_failed"));

    // Refusals: an operator, a bad format, an inverted range.
    let op = token_for(&base, "op1", "a long operator password");
    let (s, _) = call_as(
        Some(&op),
        "GET",
        &format!("{base}/api/v1/audit/export"),
        None,
    );
    assert_eq!(s, 403);
    let (s, body) = get(&format!("{base}/api/v1/audit/export?format=pdf"));
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{body}"
    );
    let (s, _) = get(&format!("{base}/api/v1/audit/export?since=10&until=5"));
    assert_eq!(s, 400);
    let (_, log) = get(&format!(
        "{base}/api/v1/audit?action=audit_export&limit=100"
    ));
    assert!(log["count"].as_u64().unwrap() >= 4, "{log}");
}

/// A real rsyslogd on loopback: UDP and TCP inputs, every message written as its parsed
/// fields (facility|severity|app|msgid|structured data|msg).
struct Rsyslog {
    dir: PathBuf,
    udp: u16,
    tcp: u16,
    child: Child,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start(name: &str) -> Self {
        let exe = "/usr/sbin/rsyslogd";
        assert!(
            Path::new(exe).exists(),
            "rsyslogd is not installed: run ops/test.sh (it installs Debian's rsyslog)"
        );
        let dir = temp_dir(name);
        let (udp, tcp) = (free_udp_port(), free_port());
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imudp\")\nmodule(load=\"imtcp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
                 template(name=\"fields\" type=\"string\" string=\"%syslogfacility-text%|%syslogseverity-text%|%app-name%|%msgid%|%structured-data%|%msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{d}/received.log\" template=\"fields\")\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new(exe)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslogd.log")).unwrap())
            .spawn()
            .expect("cannot start rsyslogd");
        wait_listening(
            format!("127.0.0.1:{tcp}").parse().unwrap(),
            Duration::from_secs(10),
        );
        Self {
            dir,
            udp,
            tcp,
            child,
        }
    }

    fn received(&self) -> String {
        std::fs::read_to_string(self.dir.join("received.log")).unwrap_or_default()
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn audit_entries_are_forwarded_to_a_real_syslog_daemon_and_a_file() {
    let syslog = Rsyslog::start("audit-rsyslog");
    // TCP with structured data, and a JSON-lines file.
    let files = temp_dir("audit-forward-files");
    let jsonl = files.join("audit.jsonl");
    let config = storage_site(
        "audit-forward-tcp",
        &format!(
            "[audit.forward]\nsyslog = \"tcp://127.0.0.1:{}\"\nfacility = \"local4\"\nfile = \"{}\"\n",
            syslog.tcp,
            jsonl.display()
        ),
    );
    let node = Cistern::run("audit-forward-tcp", &config).start();
    let base = node.url("").trim_end_matches('/').to_owned();
    assert_eq!(login(&base, "admin", "wrong password here").0, 401);
    let got = wait_for(
        "the failed login at rsyslogd over TCP",
        Duration::from_secs(15),
        || {
            let text = syslog.received();
            text.lines()
                .find(|l| l.contains("|login_failed|"))
                .map(str::to_owned)
        },
    );
    let fields: Vec<&str> = got.splitn(6, '|').collect();
    assert_eq!(
        &fields[..4],
        ["local4", "warning", "cistern", "login_failed"],
        "{got}"
    );
    assert!(
        fields[4].starts_with("[cistern@32473 seq=\"")
            && fields[4].contains("source=\"127.0.0.1\" user=\"admin\" category=\"auth\""),
        "{got}"
    );
    assert!(fields[4].contains("result=\"refused\""), "{got}");
    let lines = wait_for("the JSON-lines file", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&jsonl).ok()?;
        text.contains("login_failed").then_some(text)
    });
    for l in lines.lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    }
    assert!(metric(&base, "cistern_audit_forwarded_total{sink=\"syslog\"}") >= 1.0);
    drop(node);

    // UDP with the entry as JSON in MSG.
    let config = storage_site(
        "audit-forward-udp",
        &format!(
            "[audit.forward]\nsyslog = \"udp://127.0.0.1:{}\"\nformat = \"json\"\n",
            syslog.udp
        ),
    );
    let node = Cistern::run("audit-forward-udp", &config).start();
    let base = node.url("").trim_end_matches('/').to_owned();
    assert_eq!(login(&base, "nobody", "wrong password here").0, 401);
    let got = wait_for(
        "the failed login at rsyslogd over UDP",
        Duration::from_secs(15),
        || {
            syslog
                .received()
                .lines()
                .find(|l| l.starts_with("authpriv|warning|cistern|login_failed|-|"))
                .map(str::to_owned)
        },
    );
    let msg = got.splitn(6, '|').nth(5).unwrap();
    let e: serde_json::Value = serde_json::from_str(msg.trim_start_matches('\u{feff}')).unwrap();
    assert_eq!(
        (e["source"].as_str(), e["result"].as_str()),
        (Some("127.0.0.1"), Some("refused")),
        "{got}"
    );
    drop(node);

    // Bad input: an unusable destination stops start-up with the key named.
    let config = storage_site(
        "audit-forward-bad",
        "[audit.forward]\nsyslog = \"http://x:1\"\n",
    );
    let out = Cistern::run("audit-forward-bad", &config).output();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[audit.forward] syslog"),
        "{out:?}"
    );
}
