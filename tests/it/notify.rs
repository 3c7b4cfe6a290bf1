//! Notifications through the binary (issue 20): a pump trip in the demo opens a work order
//! whose assignee hears of it by e-mail through a real SMTP server (Debian's aiosmtpd), in the
//! language the crew chose; the alarm's escalation reaches a local HTTP receiver as a generic
//! webhook, a WeCom robot and a signed DingTalk robot (the signature checked by Python's hmac);
//! an endpoint answering 500, one that hangs and an SMTP server that is not there are retried
//! and recorded failed with their errors; the alarm is raised on time all the while, and nothing
//! is dropped from the alarm path.

use crate::browser::Browser;
use crate::support::{
    call_as, free_port, get, metric, post, temp_dir, token_for, wait_for, wait_listening, zone_of,
    Cistern,
};
use cistern::lab::crews::CREW_PASSWORD;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROOM: &str = "XM-0002";
const ZONES: [&str; 6] = ["siming", "huli", "jimei", "haicang", "tongan", "xiangan"];
const SECRET: &str = "SECnotify-it";

/// One request the receiver took: path with query, body.
type Taken = Arc<Mutex<Vec<(String, String)>>>;

/// A plain HTTP receiver: `/fail` answers 500, `/hang` never answers (the connection is held
/// 10 s), the robots answer `{"errcode":0}`, anything else 200.
fn receiver() -> (SocketAddr, Taken) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let taken: Taken = Arc::default();
    let t = taken.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let t = t.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                t.lock()
                    .unwrap()
                    .push((path.clone(), String::from_utf8_lossy(&body).into_owned()));
                let mut stream = reader.into_inner();
                let (status, answer) = if path.starts_with("/hang") {
                    std::thread::park_timeout(Duration::from_secs(10));
                    return;
                } else if path.starts_with("/fail") {
                    ("500 Internal Server Error", "down")
                } else if path.starts_with("/wecom") || path.starts_with("/ding") {
                    ("200 OK", r#"{"errcode":0,"errmsg":"ok"}"#)
                } else {
                    ("200 OK", "{}")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    (addr, taken)
}

/// Debian's aiosmtpd, delivering into a Maildir; killed when dropped.
struct Smtp {
    child: Child,
    dir: std::path::PathBuf,
}

impl Smtp {
    fn start(name: &str) -> (Self, u16) {
        let port = free_port();
        // A Maildir aiosmtpd creates (it only makes its subdirectories for a new one).
        let dir = temp_dir(&format!("{name}-smtp")).join("mail");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's python3-aiosmtpd (ops/test.sh installs it)");
        wait_listening(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(20),
        );
        (Self { child, dir }, port)
    }

    /// Every message delivered so far, raw.
    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("new"))
            .map(|d| {
                d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(http: SocketAddr, smtp: u16, dead: u16) -> String {
    let mut c = format!(
        r#"[notify]
attempts = 3
backoff = "200ms"
backoff_max = "1s"
timeout = "2s"
poll_every = "100ms"

[[notify.channels]]
name = "hook"
kind = "webhook"
url = "http://{http}/hook"

[[notify.channels]]
name = "wecom"
kind = "wecom"
url = "http://{http}/wecom/send?key=K"

[[notify.channels]]
name = "ding"
kind = "dingtalk"
url = "http://{http}/ding/send?access_token=T"
secret = "{SECRET}"

[[notify.channels]]
name = "broken"
kind = "webhook"
url = "http://{http}/fail"

[[notify.channels]]
name = "hanging"
kind = "webhook"
url = "http://{http}/hang"
timeout = "3s"

[[notify.channels]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp}
from = "cistern@example.test"

[[notify.channels]]
name = "mail-dead"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {dead}
from = "cistern@example.test"
"#
    );
    for z in ZONES {
        c.push_str(&format!(
            "\n[[notify.users]]\nname = \"crew-{z}-1\"\nemail = \"crew-{z}-1@example.test\"\n\
             \n[[notify.users]]\nname = \"lead-{z}\"\nemail = \"lead-{z}@example.test\"\nchannels = [\"mail\"]\n"
        ));
    }
    c
}

fn notifications(base: &str, query: &str) -> Vec<Value> {
    let (status, v) = get(&format!("{base}/api/v1/notifications?{query}"));
    assert_eq!(status, 200, "{v}");
    v["notifications"].as_array().unwrap().clone()
}

fn find<'a>(list: &'a [Value], channel: &str, event: &str) -> Option<&'a Value> {
    list.iter()
        .find(|d| d["channel"] == channel && d["event"] == event)
}

/// The query string's value of `name` in a path.
fn query_value(path: &str, name: &str) -> String {
    path.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[test]
fn an_order_and_its_alarm_reach_smtp_and_the_robots_and_failures_are_retried_and_recorded() {
    let (http, taken) = receiver();
    let (smtp, smtp_port) = Smtp::start("notify");
    let dead = free_port();
    let dir = temp_dir("notify-config");
    let file = dir.join("notify.toml");
    std::fs::write(&file, config(http, smtp_port, dead)).unwrap();
    let demo = Cistern::demo("notify")
        .rooms(12)
        .modbus_rooms(0)
        .args(["--escalate-after", "4s"])
        .arg("--notify")
        .arg(&file)
        .start();
    let base = demo.http().to_owned();
    let zone = zone_of(&base, ROOM);
    let crew = format!("crew-{zone}-1");
    // The crew reads English: its e-mail comes in English, the lead's in Chinese.
    let token = token_for(&base, &crew, CREW_PASSWORD);
    let (s, v) = call_as(
        Some(&token),
        "PUT",
        &format!("{base}/api/v1/auth/me/language"),
        Some(r#"{"language":"en"}"#),
    );
    assert_eq!(s, 200, "{v}");

    let injected = Instant::now();
    let (s, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{ROOM}","fault":"pump_trip","seconds":60}}"#),
    );
    assert_eq!(s, 202, "{v}");
    let alarm = "XM-0002/pump_fault@P1";
    // The alarm is raised on time (its 5 s on-delay) though two endpoints are failing.
    wait_for("the pump_fault alarm", Duration::from_secs(20), || {
        let (s, v) = get(&format!("{base}/api/v1/alarms/{alarm}"));
        (s == 200 && v["alarm"]["raised_at"].is_i64()).then_some(())
    });
    let raised_after = injected.elapsed();
    let order = wait_for("the work order", Duration::from_secs(20), || {
        let (_, v) = get(&format!("{base}/api/v1/workorders?room={ROOM}"));
        v["orders"].as_array().unwrap().first().cloned()
    });
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["assignee"], crew.as_str(), "{order}");

    // The assignee's e-mail, through the real SMTP server, in English.
    let mail = wait_for("the assignee's e-mail", Duration::from_secs(20), || {
        smtp.messages()
            .into_iter()
            .find(|m| m.contains(&format!("{crew}@example.test")) && m.contains(&id))
    });
    assert!(mail.contains("dispatched to you"), "{mail}");
    let sent = wait_for(
        "the dispatch delivery recorded sent",
        Duration::from_secs(10),
        || {
            let list = notifications(&base, &format!("order={id}"));
            find(&list, "mail", "order_dispatched")
                .filter(|d| d["status"] == "sent")
                .cloned()
        },
    );
    assert_eq!(sent["recipient"], crew.as_str());
    assert_eq!(sent["language"], "en");
    assert_eq!(sent["address"], format!("{crew}@example.test").as_str());
    // While the hanging endpoint holds the escalation's attempts, another room trips: its
    // alarm comes on time all the same.
    wait_for(
        "the hanging endpoint being tried",
        Duration::from_secs(20),
        || {
            let list = notifications(&base, &format!("alarm={alarm}"));
            find(&list, "hanging", "alarm_escalation")
                .filter(|d| d["status"] == "pending")
                .map(|_| ())
        },
    );
    let second = Instant::now();
    let (s, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        r#"{"room":"XM-0003","fault":"pump_trip","seconds":60}"#,
    );
    assert_eq!(s, 202, "{v}");
    let raised = crate::support::try_wait_for(Duration::from_secs(20), || {
        let (_, v) = get(&format!("{base}/api/v1/alarms"));
        v["alarms"].as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("XM-0003/pump_fault"))
                    && x["raised_at"].is_i64()
            })
        })
    });
    let (_, all) = get(&format!("{base}/api/v1/alarms"));
    assert!(raised, "no pump_fault alarm in XM-0003: {all}");
    let second_after = second.elapsed();
    let (_, hanging_then) = get(&format!("{base}/api/v1/notifications?alarm={alarm}"));
    let still_hanging = hanging_then["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "hanging")
        .map(|d| format!("{}:{}", d["status"], d["attempts"]))
        .collect::<Vec<_>>();
    eprintln!(
        "second alarm raised {second_after:?} after its trip (on-delay 5 s) while the hanging endpoint was being tried ({still_hanging:?} when it came)"
    );
    assert!(
        second_after < Duration::from_secs(12),
        "second alarm raised {second_after:?} after its trip"
    );

    // The SMTP server that is not there: three attempts, then failed with the error.
    let refused = wait_for(
        "the dead SMTP delivery failed",
        Duration::from_secs(20),
        || {
            let list = notifications(&base, &format!("order={id}"));
            find(&list, "mail-dead", "order_dispatched")
                .filter(|d| d["status"] == "failed")
                .cloned()
        },
    );
    assert_eq!(refused["attempts"], 3, "{refused}");
    assert!(
        refused["last_error"].as_str().unwrap().contains("SMTP"),
        "{refused}"
    );
    // Nobody accepts within 4 s: the order goes to the lead, told in Chinese.
    let lead = format!("lead-{zone}");
    let escalated = wait_for(
        "the lead told of the escalation",
        Duration::from_secs(30),
        || {
            let list = notifications(&base, &format!("order={id}"));
            find(&list, "mail", "order_escalated")
                .filter(|d| d["status"] == "sent" && d["recipient"] == lead.as_str())
                .cloned()
        },
    );
    assert_eq!(escalated["language"], "zh-CN");
    assert!(
        escalated["title"].as_str().unwrap().contains("已升级给您"),
        "{escalated}"
    );

    // The alarm's escalation (4 s unacknowledged) on every group channel.
    let settled = wait_for(
        "the alarm's deliveries settled",
        Duration::from_secs(40),
        || {
            let list = notifications(&base, &format!("alarm={alarm}"));
            let done = ["hook", "wecom", "ding", "broken", "hanging"]
                .iter()
                .all(|c| {
                    find(&list, c, "alarm_escalation").is_some_and(|d| d["status"] != "pending")
                });
            done.then_some(list)
        },
    );
    // The ladder's first step (`shift_lead`) is the lead of the zone's team in the work
    // orders' roster: the lead gets the alarm's escalation by e-mail too.
    let lead_told = wait_for(
        "the zone's lead told of the alarm's escalation",
        Duration::from_secs(20),
        || {
            notifications(&base, &format!("alarm={alarm}"))
                .into_iter()
                .find(|d| {
                    d["channel"] == "mail"
                        && d["event"] == "alarm_escalation"
                        && d["recipient"] == lead.as_str()
                        && d["status"] == "sent"
                })
        },
    );
    assert_eq!(lead_told["language"], "zh-CN", "{lead_told}");
    for c in ["hook", "wecom", "ding"] {
        let d = find(&settled, c, "alarm_escalation").unwrap();
        assert_eq!(d["status"], "sent", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
    }
    let broken = find(&settled, "broken", "alarm_escalation").unwrap();
    assert_eq!(
        (&broken["status"], &broken["attempts"]),
        (&"failed".into(), &3.into()),
        "{broken}"
    );
    assert!(
        broken["last_error"].as_str().unwrap().contains("500"),
        "{broken}"
    );
    let hanging = find(&settled, "hanging", "alarm_escalation").unwrap();
    assert_eq!(
        (&hanging["status"], &hanging["attempts"]),
        (&"failed".into(), &3.into()),
        "{hanging}"
    );
    assert!(hanging["last_error"].is_string(), "{hanging}");
    let (_, failed) = get(&format!("{base}/api/v1/notifications?status=failed"));
    assert!(
        failed["notifications"].as_array().unwrap().len() >= 3,
        "{failed}"
    );

    // What the receiver saw: the three formats, and the DingTalk signature verified apart.
    let requests = taken.lock().unwrap().clone();
    // The first step's requests about this alarm (step 2 follows at 3× the delay).
    let about = |prefix: &str| -> Vec<(String, String)> {
        requests
            .iter()
            .filter(|(p, b)| p.starts_with(prefix) && b.contains(alarm) && b.contains("第 1 级"))
            .cloned()
            .collect()
    };
    let hook: Value = serde_json::from_str(&about("/hook")[0].1).unwrap();
    assert_eq!(hook["event"], "alarm_escalation", "{hook}");
    assert_eq!(hook["alarm"], alarm, "{hook}");
    assert_eq!(hook["severity"], "P1", "{hook}");
    let wecom: Value = serde_json::from_str(&about("/wecom")[0].1).unwrap();
    assert_eq!(wecom["msgtype"], "markdown", "{wecom}");
    assert!(
        wecom["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("告警升级"),
        "{wecom}"
    );
    let (ding_path, ding_body) = about("/ding")[0].clone();
    let ding: Value = serde_json::from_str(&ding_body).unwrap();
    assert_eq!(ding["msgtype"], "markdown", "{ding}");
    assert!(
        ding["markdown"]["title"]
            .as_str()
            .unwrap()
            .contains("告警升级"),
        "{ding}"
    );
    let (ts, sign) = (
        query_value(&ding_path, "timestamp"),
        query_value(&ding_path, "sign"),
    );
    let expected = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys,hmac,hashlib,base64,urllib.parse;s,t=sys.argv[1],sys.argv[2];\
             print(urllib.parse.quote_plus(base64.b64encode(hmac.new(s.encode(),(t+'\\n'+s).encode(),hashlib.sha256).digest()).decode()))",
            SECRET,
            &ts,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&expected.stdout).trim(),
        sign,
        "{ding_path}"
    );
    assert_eq!(
        about("/fail").len(),
        3,
        "the 500 endpoint retried to the limit"
    );
    assert_eq!(
        about("/hang").len(),
        3,
        "the hanging endpoint retried to the limit"
    );

    // The order's page on a phone, in Chinese: its deliveries, sent and failed, readable.
    let phone = Browser::start_sized("notify-phone", 390, 844);
    phone.sign_in(&base, "zh-CN");
    phone.js(
        &format!("location.hash = '#/orders/{id}'; return null;"),
        serde_json::json!([]),
    );
    let rows = phone.until(
        "the order's deliveries on its page",
        Duration::from_secs(15),
        "const r = document.querySelectorAll('.o-notify table.notify tbody tr'); \
         return r.length >= 3 ? [...r].map((x) => x.innerText).join('\\n') : null;",
    );
    let rows = rows.as_str().unwrap();
    assert!(rows.contains("已发送") && rows.contains("失败"), "{rows}");
    assert!(rows.contains(&crew) && rows.contains("电子邮件"), "{rows}");
    assert_eq!(
        phone.latin_words(),
        Vec::<String>::new(),
        "the order's deliveries"
    );
    assert_eq!(phone.missing_keys(), Vec::<String>::new());
    assert_eq!(phone.overflowing(), Vec::<String>::new());

    // The alarm's history dialog shows who was told of it, on which channel.
    phone.js(
        "location.hash = '#/alarms'; return null;",
        serde_json::json!([]),
    );
    let button = phone.element(
        &format!("button[data-action=history][data-alarm=\"{alarm}\"]"),
        Duration::from_secs(15),
    );
    phone.click(&button);
    let told = phone.until(
        "the alarm's deliveries in its history",
        Duration::from_secs(15),
        "const r = document.querySelectorAll('#history-notify table.notify tbody tr'); \
         return r.length >= 5 ? [...r].map((x) => x.innerText).join('\\n') : null;",
    );
    let told = told.as_str().unwrap();
    for shown in [
        "企业微信机器人",
        "钉钉机器人",
        "通用回调",
        "告警升级",
        "已发送",
        "失败",
    ] {
        assert!(told.contains(shown), "{shown} in {told}");
    }
    assert_eq!(phone.missing_keys(), Vec::<String>::new());

    assert_eq!(
        metric(&base, "cistern_notify_dropped_total{source=\"alarm\"}"),
        0.0
    );
    assert!(
        metric(
            &base,
            "cistern_notify_deliveries_total{kind=\"email\",result=\"sent\"}"
        ) >= 2.0
    );
    eprintln!(
        "alarm raised {raised_after:?} after the trip (on-delay 5 s) with a 500 and a hanging endpoint configured"
    );
    assert!(
        raised_after < Duration::from_secs(15),
        "alarm raised {raised_after:?} after the trip (5 s on-delay)"
    );
}
