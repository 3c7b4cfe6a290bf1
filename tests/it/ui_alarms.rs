//! The alarm console on a phone, in Chinese, in a real headless Chromium (issue 19 items 4, 5
//! and 8): at 390×844 with `?lang=zh-CN`, sign in, inject a fault and see its P1 row blink,
//! its tone sound and the unacknowledged count in the tab title; acknowledge it with a comment
//! from the phone layout (the Ack button scrolled into view and not cut off) and find the
//! acknowledgement and its comment through the REST API; open the alarm's event history; kill
//! the node and see the link-lost banner. The page's visible text holds no Latin word beyond
//! ids, units and codes. Screenshots go under the target directory (`target/tmp/`) for people to judge the design.

use crate::browser::Browser;
use crate::support::{get, post, wait_for, Cistern};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const COMMENT: &str = "已通知维修班组到场检查";

/// Where the UI tests write their screenshots (out of git).
fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn no_latin_words(browser: &Browser, screen: &str) {
    assert_eq!(
        browser.latin_words(),
        Vec::<String>::new(),
        "Latin words on the zh-CN page ({screen})"
    );
}

/// The element's box against the viewport: inside it, at least 44 px tall, and the element
/// itself is what a tap at its centre reaches (not covered, not cut off).
const REACHABLE: &str = r#"
const el = document.querySelector(arguments[0]);
if (!el) return 'missing';
el.scrollIntoView({ block: 'center', inline: 'center' });
const r = el.getBoundingClientRect();
const problems = [];
if (r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight) problems.push(`outside the viewport: ${JSON.stringify(r)} in ${innerWidth}×${innerHeight}`);
if (r.height < 44) problems.push(`only ${r.height} px tall`);
const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
if (hit !== el && !el.contains(hit)) problems.push(`a tap reaches ${hit && hit.outerHTML.slice(0, 80)}`);
if (document.documentElement.scrollWidth > innerWidth) problems.push(`the page is ${document.documentElement.scrollWidth} px wide`);
return problems.length ? problems.join('; ') : 'ok';
"#;

#[test]
fn phone_operator_in_chinese_sees_blinks_hears_acks_with_a_comment_and_sees_the_link_lost() {
    let mut demo = Cistern::demo("ui-alarms").rooms(8).start();
    let base = demo.http().to_owned();
    let (status, inventory) = demo.get("/api/v1/rooms");
    assert_eq!(status, 200, "{inventory}");
    // The third room of the inventory (any room would do; the same one every run).
    let room = inventory["rooms"][2]["id"].as_str().unwrap().to_owned();
    let alarm = format!("{room}/intrusion@room");
    let shots = shots();

    let browser = Browser::start_sized("ui-alarms-phone", 390, 844);
    browser.sign_in(&base, "zh-CN");
    let width = browser.js("return [innerWidth, innerHeight]", json!([]));
    assert_eq!(width[0], 390, "a phone's viewport width: {width}");
    browser.until(
        "the live link",
        Duration::from_secs(30),
        "return document.getElementById('link-state').classList.contains('up') || null;",
    );

    // A fault: an intrusion raises a P1 alarm at once (the rule has no on-delay).
    let (status, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{room}","fault":"intrusion","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    browser.click(&browser.element("nav a[data-view=alarms]", Duration::from_secs(5)));
    let row = format!("#alarm-rows tr[data-alarm=\"{alarm}\"]");
    let blink = browser.until(
        "the P1 row blinking",
        Duration::from_secs(60),
        &format!(
            "const r = document.querySelector('{row}'); \
             if (!r || !r.classList.contains('blink-P1')) return null; \
             return getComputedStyle(r.querySelector('td')).animationName;"
        ),
    );
    assert_eq!(blink, "alarm-blink-p1", "the row's cells are animated");

    // The tab title counts the unacknowledged alarms, as the header does.
    let title = browser.until(
        "the unacknowledged count in the tab title",
        Duration::from_secs(20),
        "const n = document.getElementById('sum-unacked').textContent; \
         return n !== '0' && document.title.startsWith('（' + n + '）泵房监控') ? document.title : null;",
    );
    let (_, list) = get(&format!(
        "{base}/api/v1/alarms?state=unacked,returned_unacked"
    ));
    let shown: u64 = title.as_str().unwrap()[3..]
        .split('）')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{title}: {e}"));
    assert_eq!(
        shown,
        list["count"].as_u64().unwrap(),
        "the title counts what the node holds unacknowledged: {list}"
    );

    // The tone: the sign-in click unlocked audio; an unacknowledged P1 sounds its bursts.
    browser.until(
        "the P1 tone sounding",
        Duration::from_secs(20),
        "return document.body.dataset.tone === 'P1' && Number(document.body.dataset.toneBursts || 0) > 0 || null;",
    );
    browser.screenshot(&shots.join("alarms-phone-zh-blinking.png"));

    // Acknowledge with a comment, from the phone layout.
    let ack_css = format!("{row} button[data-action=ack]");
    let reach = browser.js(REACHABLE, json!([ack_css]));
    assert_eq!(reach, "ok", "the Ack button on a phone");
    browser.click(&browser.element(&ack_css, Duration::from_secs(5)));
    let comment = browser.element(
        "#command-dialog[open][data-action=ack] #command-comment",
        Duration::from_secs(10),
    );
    browser.type_into(&comment, COMMENT);
    let reach = browser.js(REACHABLE, json!(["#command-ok"]));
    assert_eq!(reach, "ok", "the dialog's confirm button on a phone");
    browser.screenshot(&shots.join("alarms-phone-zh-ack-dialog.png"));
    browser.click(&browser.element("#command-ok", Duration::from_secs(5)));
    // The node's record of it: the alarm acknowledged, its `acknowledged` event.
    let (acked, event) = wait_for(
        "the acknowledgement in the REST API",
        Duration::from_secs(30),
        || {
            let (_, v) = get(&format!("{base}/api/v1/alarms/{alarm}"));
            let event = v["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "acknowledged")?
                .clone();
            (v["alarm"]["state"] == "acked").then_some((v, event))
        },
    );
    assert_eq!(event["user"], "admin", "acknowledged as the signed-in user");
    assert_eq!(
        event["comment"], COMMENT,
        "the comment is recorded: {event}"
    );
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=alarm_ack"));
    assert!(
        audit.to_string().contains(COMMENT),
        "the audit log holds the comment: {audit}"
    );
    browser.until(
        "the row acknowledged and no longer blinking",
        Duration::from_secs(20),
        &format!(
            "const r = document.querySelector('{row}'); \
             return r && !r.classList.contains('blink') && !r.querySelector('button[data-action=ack]') \
               && r.querySelector('.state').textContent.startsWith('已确认') || null;"
        ),
    );

    // An alarm the node words in Chinese reads in Chinese. What the node sends only in Latin
    // letters (zone names without Chinese, messages without `message_zh`) is its data, not the
    // console's text: the scan leaves exactly those texts out, and says which.
    let message_zh = acked["alarm"]["message_zh"].as_str().map(str::to_owned);
    if let Some(zh) = &message_zh {
        let shown = browser.js(
            &format!("return document.querySelector('{row} td.msg').textContent"),
            json!([]),
        );
        assert_eq!(shown, zh.as_str(), "the Chinese message is shown");
    }
    no_latin_words(&browser, "alarm list");

    // Its event history: raised, then acknowledged by admin with the comment.
    browser.click(&browser.element(
        &format!("{row} button[data-action=history]"),
        Duration::from_secs(5),
    ));
    let history = browser.until(
        "the event history",
        Duration::from_secs(20),
        &format!(
            "const d = document.getElementById('history-dialog'); \
             if (!d.open || d.dataset.loaded !== '{alarm}') return null; \
             const rows = [...d.querySelectorAll('#history-rows tr[data-kind]')]; \
             return rows.map(r => [r.dataset.kind, r.textContent]);"
        ),
    );
    let history: Vec<(String, String)> = serde_json::from_value(history).unwrap();
    assert!(
        history.iter().any(|(k, _)| k == "raised"),
        "a raised event: {history:?}"
    );
    assert!(
        history.iter().any(|(k, text)| k == "acknowledged"
            && text.contains(COMMENT)
            && text.contains("admin")),
        "the acknowledgement with its comment: {history:?}"
    );
    no_latin_words(&browser, "event history");
    browser.screenshot(&shots.join("alarms-phone-zh-history.png"));
    browser.click(&browser.element("#history-close", Duration::from_secs(5)));

    // Sortable columns: a tap on a header sorts by it, a second tap reverses it.
    let by_room = "table.alarms th[data-sort=room]";
    for order in ["ascending", "descending"] {
        browser.click(&browser.element(by_room, Duration::from_secs(5)));
        browser.until(
            &format!("the list sorted by room, {order}"),
            Duration::from_secs(10),
            &format!(
                "if (document.querySelector('{by_room}').getAttribute('aria-sort') !== '{order}') return null; \
                 const rooms = [...document.querySelectorAll('#alarm-rows tr[data-alarm]')].map(r => r.dataset.alarm.split('/')[0]); \
                 const sorted = [...rooms].sort(); \
                 if ('{order}' === 'descending') sorted.reverse(); \
                 return rooms.join() === sorted.join() || null;"
            ),
        );
    }

    // The node dies: the banner says so, across the page.
    assert!(
        browser
            .js(
                "return document.getElementById('link-banner').hidden",
                json!([])
            )
            .as_bool()
            .unwrap(),
        "no banner while the link is up"
    );
    demo.kill9();
    let banner = browser.until(
        "the link-lost banner",
        Duration::from_secs(30),
        "const b = document.getElementById('link-banner'); \
         if (b.hidden) return null; \
         const r = b.getBoundingClientRect(); \
         return { text: b.textContent, width: r.width, top: r.top, view: innerWidth };",
    );
    let text = banner["text"].as_str().unwrap();
    assert!(text.contains("实时连接中断"), "{banner}");
    assert_eq!(banner["width"], banner["view"], "full width: {banner}");
    no_latin_words(&browser, "link lost");
    browser.screenshot(&shots.join("alarms-phone-zh-link-lost.png"));
}
