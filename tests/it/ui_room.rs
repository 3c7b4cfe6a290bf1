//! The room page in Chinese, in a real headless Chromium, on a desktop (1600×1000) and on a phone
//! (390×844): the process mimic drawn from the room's inventory shows a pump tripped by an
//! injected fault within a few seconds; a trend over the last 24 h shows stored data, and a click
//! on a mimic value box opens that point's trend; an outlet set-point on a Modbus room is written
//! only after a confirmation showing old → new and the limits, and its read-back is shown; at
//! phone width nothing on the room page is wider than the screen. The page's visible text holds
//! no English word. Screenshots go under the target directory (out of git), as in `ui.rs`.

use crate::browser::Browser;
use crate::support::{get, post, wait_for, Cistern};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn the_room_page_in_chinese_shows_the_mimic_a_trip_a_trend_and_a_confirmed_set_point() {
    let demo = Cistern::demo("ui-room-demo")
        .rooms(6)
        .modbus_rooms(2)
        .start();
    let base = demo.http().to_owned();
    let (status, inventory) = get(&format!("{base}/api/v1/rooms"));
    assert_eq!(status, 200, "{inventory}");
    let rooms: Vec<String> = inventory["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    // The room whose controller takes the set-point: a write of 0.45 MPa answers 200 there
    // (an MQTT room has no field writer; a Modbus profile may not mark the point writable).
    let writable = wait_for(
        "a room whose controller takes the outlet set-point",
        Duration::from_secs(120),
        || {
            rooms.iter().find_map(|room| {
                let (status, _) = post(
                    &format!("{base}/api/v1/rooms/{room}/setpoints"),
                    &format!(r#"{{"writes":[{{"point":"{room}.outlet_setpoint","value":0.45}}]}}"#),
                );
                (status == 200).then(|| room.clone())
            })
        },
    );
    let setpoint = |room: &str| {
        let (_, v) = get(&format!("{base}/api/v1/rooms/{room}"));
        v["points"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "outlet_setpoint"))
            .and_then(|p| p["value"].as_f64())
    };
    wait_for(
        "the controller's set-point read at 0.45 MPa",
        Duration::from_secs(30),
        || setpoint(&writable).filter(|v| (v - 0.45).abs() < 1e-6),
    );
    let tripped = rooms.iter().find(|r| **r != writable).unwrap().to_owned();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));

    // --- desktop ---
    let browser = Browser::start("ui-room-chromium");
    browser.sign_in(&base, "zh-CN");
    open_room(&browser, &base, &tripped);
    browser.screenshot(&shots.join("ui-room-zh-mimic.png"));
    assert_chinese(&browser, "the room page");

    // A pump trip: the mimic shows the pump tripped within a few seconds, without a rebuild.
    let svg_before = browser.js(
        "const s = document.querySelector('#r-mimic svg'); s.dataset.mark = 'kept'; return true;",
        json!([]),
    );
    assert_eq!(svg_before, true);
    let (status, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{tripped}","fault":"pump_trip","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    let injected = Instant::now();
    let pump = browser.until(
        "a tripped pump in the mimic",
        Duration::from_secs(10),
        "const g = document.querySelector('#r-mimic g.m-pump.tripped'); \
         return g ? g.querySelector('.pstate').textContent : null;",
    );
    let took = injected.elapsed();
    eprintln!("mimic showed the tripped pump {took:?} after the fault was injected");
    assert!(took < Duration::from_secs(5), "the trip took {took:?}");
    assert_eq!(pump, "故障", "the tripped pump says so in Chinese");
    let kept = browser.js(
        "return document.querySelector('#r-mimic svg').dataset.mark || null;",
        json!([]),
    );
    assert_eq!(kept, "kept", "the mimic updates in place, not rebuilt");
    browser.screenshot(&shots.join("ui-room-zh-tripped.png"));

    // A trend over the last 24 h: stored data (minute rollups) in the pressure chart.
    browser.click(&browser.element("#r-range button[data-range='24h']", Duration::from_secs(5)));
    browser.until(
        "the last 24 h of stored pressure",
        Duration::from_secs(30),
        "const b = document.querySelector('#r-range button.active'); \
         const t = document.querySelector('#r-trends .trend'); \
         return b && b.dataset.range === '24h' && t && Number(t.dataset.stored) > 0 || null;",
    );
    let (status, v) = get(&format!(
        "{base}/api/v1/history?point={tripped}.outlet_pressure&from={}&to={}&step=1m",
        now_ms() - 24 * 3_600_000,
        now_ms()
    ));
    assert_eq!(status, 200, "{v}");
    assert!(
        !v["series"][0]["buckets"].as_array().unwrap().is_empty(),
        "{v}"
    );
    // A value box of the mimic opens its point's trend over the same range.
    browser.click(&browser.element(
        &format!("#r-mimic g.vbox[data-point='{tripped}.outlet_pressure']"),
        Duration::from_secs(5),
    ));
    browser.until(
        "the outlet pressure's own trend with stored data",
        Duration::from_secs(30),
        &format!(
            "const t = document.querySelector('#r-trends .trend.focus'); \
             return t && t.dataset.point === '{tripped}.outlet_pressure' && Number(t.dataset.stored) > 0 || null;"
        ),
    );
    browser.screenshot(&shots.join("ui-room-zh-trend-24h.png"));

    // The set-point: a confirmation with old → new and the limits before anything is written.
    open_room(&browser, &base, &writable);
    let input = browser.element(
        &format!("#r-sp:not([hidden]) #r-sp-value[data-room=\"{writable}\"]"),
        Duration::from_secs(30),
    );
    browser.type_into(&input, "0.44");
    browser.click(&browser.element("#r-sp-write", Duration::from_secs(5)));
    let change = browser.until(
        "the confirmation dialog",
        Duration::from_secs(10),
        "const d = document.querySelector('dialog.confirm-write[open]'); \
         return d ? [d.querySelector('.change').textContent, d.querySelector('.limits').textContent] : null;",
    );
    let change: Vec<String> = serde_json::from_value(change).unwrap();
    assert!(
        change[0].contains("0.45") && change[0].contains("→") && change[0].contains("0.44"),
        "old → new: {change:?}"
    );
    assert!(change[1].contains("允许范围"), "the limits: {change:?}");
    let held = setpoint(&writable).unwrap();
    assert!(
        (held - 0.45).abs() < 1e-6,
        "nothing written before the confirmation: {held}"
    );
    browser.screenshot(&shots.join("ui-room-zh-confirm.png"));
    browser.click(&browser.element("dialog.confirm-write button.ok", Duration::from_secs(5)));
    let result = browser.until(
        "the read-back",
        Duration::from_secs(30),
        "const r = document.getElementById('r-sp-result').textContent; \
         return r.includes('回读值') ? r : null;",
    );
    assert_eq!(result, "回读值 0.440 MPa");
    assert_chinese(&browser, "the Modbus room page");
    drop(browser);

    // --- phone ---
    let phone = Browser::start_sized("ui-room-phone", 390, 844);
    phone.sign_in(&base, "zh-CN");
    open_room(&phone, &base, &tripped);
    phone.until(
        "the tripped pump on the phone",
        Duration::from_secs(10),
        "return !!document.querySelector('#r-mimic g.m-pump.tripped') || null;",
    );
    let wide = phone.js(
        "const w = window.innerWidth; \
         const over = [...document.querySelectorAll('body *')].filter(e => !e.closest('.topbar')) \
           .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > w + 1) \
           .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)); \
         return { scroll: document.documentElement.scrollWidth, room: document.getElementById('view-room').scrollWidth, \
                  inner: w, over };",
        json!([]),
    );
    phone.screenshot(&shots.join("ui-room-zh-phone.png"));
    let inner = wide["inner"].as_u64().unwrap();
    assert_eq!(inner, 390, "a phone's width");
    assert!(
        wide["scroll"].as_u64().unwrap() <= inner
            && wide["room"].as_u64().unwrap() <= inner
            && wide["over"].as_array().unwrap().is_empty(),
        "wider than the phone: {wide}"
    );
    let svg = phone.js(
        "return document.querySelector('#r-mimic svg').getBoundingClientRect().width;",
        json!([]),
    );
    assert!(
        svg.as_f64().unwrap() >= 300.0,
        "the mimic fills the phone's width: {svg}"
    );
    assert_chinese(&phone, "the room page on a phone");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Opens `room`'s page and waits for its mimic with live values: the pumps, a tank's level
/// filled, the outlet pressure read.
fn open_room(browser: &Browser, base: &str, room: &str) {
    browser.goto(&format!("{base}/?lang=zh-CN#/room/{room}"));
    browser.until(
        "the room's mimic with live values",
        Duration::from_secs(60),
        &format!(
            "const s = document.querySelector('#r-mimic svg.mimic-svg'); \
             if (!s || document.getElementById('nav-room').textContent !== '{room}') return null; \
             const water = [...s.querySelectorAll('.m-tank .water')].some(r => Number(r.getAttribute('height')) > 0); \
             const out = s.querySelector('g.vbox[data-point=\"{room}.outlet_pressure\"] .vvalue'); \
             return s.querySelectorAll('g.m-pump').length > 0 && water && out && /\\d/.test(out.textContent) || null;"
        ),
    );
}

/// The page's visible text holds no Latin word of 3 letters or more beyond ids and units.
fn assert_chinese(browser: &Browser, what: &str) {
    assert_eq!(
        browser.latin_words(),
        Vec::<String>::new(),
        "English on {what} in zh-CN"
    );
}
