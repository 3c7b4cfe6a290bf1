//! The field crew's work-order page on a phone and the dispatcher's in the console, in a real
//! headless Chromium (issue 20 items 6 and 7): a pump trip's order reaches the on-call crew
//! member, who signs in at 390×844 in Chinese, finds it under "my orders", accepts, goes on
//! site (the phone's position recorded), ticks the checklist with a reading and completes it
//! with the knowledge base's suggested cause and remedy — every button reachable with a thumb, no English, nothing cut off;
//! on the way it takes the photo the template asks for (completion is refused without it) and
//! shares its position while on site; then the team lead verifies and closes it from a desktop
//! console in English, where the order's page follows the phone's steps live (the
//! `workorders` topic, no reload) and the fleet map shows the crew member where the phone was.

use crate::browser::Browser;
use crate::support::{crew_position, get, post, wait_for, Cistern};
use cistern::lab::crews::CREW_PASSWORD;
use serde_json::json;
use std::time::Duration;

const ROOM: &str = "XM-0002";

/// A 1×1 PNG: the crew's photo.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Where the UI tests write their screenshots (out of git).
fn shots() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The element is on screen, ≥ 44 px tall and what a tap at its centre reaches.
const REACHABLE: &str = r#"
const el = document.querySelector(arguments[0]);
if (!el) return 'missing';
el.scrollIntoView({ block: 'center' });
const r = el.getBoundingClientRect();
const problems = [];
if (r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight) problems.push(`outside the viewport: ${JSON.stringify(r)}`);
if (r.height < 44) problems.push(`only ${r.height} px tall`);
const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
if (hit !== el && !el.contains(hit)) problems.push(`a tap reaches ${hit && hit.outerHTML.slice(0, 80)}`);
return problems.length ? problems.join('; ') : 'ok';
"#;

fn press(browser: &Browser, css: &str) {
    let el = browser.element(css, Duration::from_secs(10));
    assert_eq!(browser.js(REACHABLE, json!([css])), "ok", "{css}");
    browser.click(&el);
}

fn state_is(browser: &Browser, state: &str) {
    browser.until(
        &format!("the order {state}"),
        Duration::from_secs(15),
        &format!("return document.querySelector('.order .o-state.st-{state}') || null;"),
    );
}

fn clean(browser: &Browser, screen: &str) {
    assert_eq!(browser.missing_keys(), Vec::<String>::new(), "{screen}");
    assert_eq!(browser.overflowing(), Vec::<String>::new(), "{screen}");
}

#[test]
fn a_crew_works_its_order_on_a_phone_in_chinese_and_the_lead_closes_it_in_the_console() {
    let demo = Cistern::demo("ui-orders").rooms(6).modbus_rooms(0).start();
    let base = demo.http().to_owned();
    let (status, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{ROOM}","fault":"pump_trip","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    let order = wait_for("the pump trip's order", Duration::from_secs(60), || {
        let (_, v) = get(&format!("{base}/api/v1/workorders?room={ROOM}"));
        v["orders"].as_array().and_then(|a| a.first().cloned())
    });
    let id = order["id"].as_str().unwrap().to_owned();
    let crew = order["assignee"].as_str().unwrap().to_owned();
    let zone = order["team"].as_str().unwrap().to_owned();

    // The crew member's phone, in Chinese, at a known position.
    let phone = Browser::start_sized("ui-orders-phone", 390, 844);
    phone.call(
        "POST",
        "/goog/cdp/execute",
        Some(json!({ "cmd": "Browser.grantPermissions", "params": { "permissions": ["geolocation"] } })),
    );
    phone.call(
        "POST",
        "/goog/cdp/execute",
        Some(json!({ "cmd": "Emulation.setGeolocationOverride",
                     "params": { "latitude": 24.4801, "longitude": 118.0902, "accuracy": 12 } })),
    );
    phone.goto(&format!("{base}/?lang=zh-CN"));
    phone.submit_sign_in(&crew, CREW_PASSWORD);
    phone.until(
        "the console",
        Duration::from_secs(30),
        "return !document.getElementById('shell').hidden || null;",
    );
    press(&phone, "nav a[data-view=orders]");
    let card = format!("a.order-card[data-order=\"{id}\"]");
    phone.element(&card, Duration::from_secs(15));
    assert_eq!(phone.latin_words(), Vec::<String>::new(), "my orders");
    clean(&phone, "my orders");
    press(&phone, &card);
    state_is(&phone, "dispatched");
    assert_eq!(phone.latin_words(), Vec::<String>::new(), "the order");
    clean(&phone, "the order");
    press(&phone, "button.cmd-accept");
    state_is(&phone, "accepted");
    press(&phone, "button.cmd-on_site");
    state_is(&phone, "on_site");

    // The checklist: a reading where the item asks for one, then the tick.
    let items = order["checklist"].as_array().unwrap().len();
    for i in 0..items {
        if !order["checklist"][i]["point"].is_null() {
            let input = phone.element(&format!("[data-reading=\"{i}\"]"), Duration::from_secs(5));
            phone.type_into(&input, "0.41");
        }
        press(&phone, &format!("[data-item=\"{i}\"]"));
        phone.until(
            "the item ticked",
            Duration::from_secs(10),
            &format!("const b = document.querySelector('[data-item=\"{i}\"]'); return (b && b.checked && b.closest('.check').classList.contains('done')) || null;"),
        );
    }
    phone.screenshot(&shots().join("orders-phone-on-site.png"));
    // The template's photo, from the camera button (a file given to its input here).
    assert_eq!(order["photos_required"], 1, "{order}");
    let photo = shots().join("ui-orders-photo.png");
    std::fs::write(&photo, PNG).unwrap();
    assert_eq!(phone.js(REACHABLE, json!(["label.photo-take"])), "ok");
    let input = phone.element("#o-photo", Duration::from_secs(5));
    phone.call(
        "POST",
        &format!("/element/{input}/value"),
        Some(json!({ "text": photo.to_str().unwrap() })),
    );
    phone.until(
        "the photo's thumbnail",
        Duration::from_secs(15),
        "const i = document.querySelector('img[data-thumb=\"1\"]'); return (i && i.src.startsWith('data:image/png') && i.naturalWidth > 0) || null;",
    );
    phone.screenshot(&shots().join("orders-phone-photo.png"));
    assert_eq!(phone.latin_words(), Vec::<String>::new(), "the photo");
    clean(&phone, "the photo");
    // The knowledge base's first suggestion, taken into the completion form.
    press(&phone, "button[data-use=\"0\"]");
    let cause = phone.js(
        "return document.querySelector('.o-form [name=cause]').value;",
        json!([]),
    );
    assert_eq!(cause, "变频器过流", "the suggestion in Chinese");
    press(&phone, "#o-confirm");
    state_is(&phone, "completed");
    assert_eq!(
        phone.latin_words(),
        Vec::<String>::new(),
        "the completed order"
    );
    // Back to "my orders": the card says completed; it leaves the list live once verified.
    press(&phone, "a.back");
    phone.until(
        "the completed card",
        Duration::from_secs(15),
        &format!("return document.querySelector('{card} .o-state.st-completed') || null;"),
    );

    let (_, v) = get(&format!("{base}/api/v1/workorders/{id}"));
    let done = &v["order"];
    assert_eq!(
        done["attachments"][0]["content_type"], "image/png",
        "{done}"
    );
    assert_eq!(done["attachments"][0]["by"], crew.as_str(), "{done}");
    // Stored by the knowledge base's ids, shown in words.
    assert_eq!(done["resolution"]["cause"], "vfd_overcurrent", "{done}");
    assert_eq!(done["resolution"]["remedy"], "reset_and_megger", "{done}");
    let on_site = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "on_site")
        .unwrap();
    assert_eq!(on_site["by"], crew.as_str(), "{on_site}");
    let lat = on_site["position"]["lat"].as_f64().unwrap_or_default();
    assert!(
        (lat - 24.4801).abs() < 1e-6,
        "the phone's position: {on_site}"
    );
    if let Some(reading) = done["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !c["point"].is_null())
    {
        assert_eq!(reading["reading"], 0.41, "{reading}");
    }

    // The lead verifies from a desktop console in English.
    let desk = Browser::start("ui-orders-desk");
    desk.goto(&format!("{base}/?lang=en"));
    desk.submit_sign_in(&format!("lead-{zone}"), CREW_PASSWORD);
    desk.until(
        "the console",
        Duration::from_secs(30),
        "return !document.getElementById('shell').hidden || null;",
    );
    // The crew member on the fleet map, where the phone was while on site.
    let marker = format!("g.crew[data-crew=\"{crew}\"]");
    desk.element(&marker, Duration::from_secs(30));
    let shown = |b: &Browser| {
        b.js(
            "const l = document.querySelector('#map .crews'); return l.getAttribute('display') !== 'none' && l.children.length > 0;",
            json!([]),
        )
    };
    assert_eq!(shown(&desk), true);
    let me = crew_position(&base, &crew).expect("the phone shared its position");
    assert!((me["lat"].as_f64().unwrap() - 24.4801).abs() < 1e-6, "{me}");
    assert_eq!(me["order"], id.as_str(), "{me}");
    desk.click(&desk.element("#map-crews", Duration::from_secs(5)));
    assert_eq!(shown(&desk), false, "the crews toggle hides them");
    desk.click(&desk.element("#map-crews", Duration::from_secs(5)));
    assert_eq!(shown(&desk), true);
    desk.screenshot(&shots().join("orders-desk-map-crews.png"));

    desk.js(&format!("location.hash = '#/orders/{id}';"), json!([]));
    state_is(&desk, "completed");
    // The console shows the crew's photo too.
    desk.until(
        "the photo on the console",
        Duration::from_secs(15),
        "const i = document.querySelector('img[data-thumb=\"1\"]'); return (i && i.naturalWidth > 0) || null;",
    );
    // Live, without a reload: a second photo from the crew's phone (over REST here) appears.
    let crew_token = crate::support::token_for(&base, &crew, CREW_PASSWORD);
    let (s, v) = crate::workorders::upload(
        &crew_token,
        &format!("{base}/api/v1/workorders/{id}/attachments"),
        "image/png",
        PNG,
    );
    assert_eq!(s, 201, "{v}");
    desk.until(
        "the second photo, pushed to the open page",
        Duration::from_secs(15),
        "const i = document.querySelector('img[data-thumb=\"2\"]'); return (i && i.naturalWidth > 0) || null;",
    );
    clean(&desk, "the order, desktop, English");
    desk.screenshot(&shots().join("orders-desk-completed.png"));
    desk.click(&desk.element("button.cmd-verify", Duration::from_secs(5)));
    state_is(&desk, "closed");
    let (_, v) = get(&format!("{base}/api/v1/workorders/{id}"));
    assert_eq!(v["order"]["state"], "closed", "{v}");
    // The phone's open orders drop it, pushed over the socket (no reload, no polling).
    phone.until(
        "the closed order gone from the phone's open orders",
        Duration::from_secs(15),
        &format!("return (document.querySelector('#o-list') && !document.querySelector('{card}')) || null;"),
    );
    // The verified fix counts for the next pump fault's suggestions.
    let (_, kb) = get(&format!("{base}/api/v1/knowledge?problem=pump_fault"));
    let first = &kb["suggestions"][0];
    assert_eq!(
        (first["remedy"].as_str(), first["closed"].as_u64()),
        (Some("reset_and_megger"), Some(1)),
        "{kb}"
    );
}
