//! The room page in Chinese, in a real headless Chromium, on a desktop (1600×1000) and on a phone
//! (390×844): the process mimic drawn from the room's inventory shows a pump tripped by an
//! injected fault within a few seconds; a trend over the last 24 h shows stored data, and a click
//! on a mimic value box opens that point's trend; a drag across a chart zooms every trend to the
//! span and "back" returns; the previous period overlays dashed; a point of another room typed in
//! full gets its own chart with history; the xlsx export is a ZIP that Python's `zipfile` reads,
//! its sheet holding the table; an outlet set-point on a Modbus room is written
//! only after a confirmation showing old → new and the limits, and its read-back is shown; at
//! phone width nothing on the room page is wider than the screen. The page's visible text holds
//! no English word. Screenshots go under the target directory (out of git), as in `ui.rs`.

use crate::browser::Browser;
use crate::support::{get, post, run_piped, wait_for, Cistern};
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

    // Zoom by drag: a span dragged over on a chart becomes every trend's absolute range;
    // "back" returns to the last 24 h.
    let first = "#r-trends .trend:not(.focus) canvas";
    drag(&browser, first, 0.3, 0.6);
    let zoomed = browser.until(
        "every trend on the span dragged over",
        Duration::from_secs(10),
        "const ranges = [...document.querySelectorAll('#r-trends .trend')].map(t => t.dataset.range); \
         const back = document.querySelector('#r-range [data-action=unzoom]'); \
         return !document.querySelector('#r-range button.active') && !back.hidden \
           && ranges.every(r => r === ranges[0] && r.includes('-')) ? ranges[0] : null;",
    );
    let (from, to) = zoomed.as_str().unwrap().split_once('-').unwrap();
    let (from, to): (i64, i64) = (from.parse().unwrap(), to.parse().unwrap());
    let day = 24 * 3_600_000;
    assert!(
        to - from > 5 * 3_600_000
            && to - from < 10 * 3_600_000
            && to < now_ms()
            && from > now_ms() - day,
        "30 %…60 % of the last 24 h: {from}…{to}"
    );
    browser.click(&browser.element("#r-range [data-action=unzoom]", Duration::from_secs(5)));
    browser.until(
        "the last 24 h again",
        Duration::from_secs(10),
        "const b = document.querySelector('#r-range button.active'); \
         return b && b.dataset.range === '24h' && document.querySelector('#r-range [data-action=unzoom]').hidden \
           && [...document.querySelectorAll('#r-trends .trend')].every(t => t.dataset.range === String(86400000)) || null;",
    );

    // The previous period overlaid: on the last hour (drawn from the node's start while it is
    // young, at least 5 min), the last quarter dragged over, whose previous quarter is stored
    // once the node has run 2.5 min.
    browser.click(&browser.element("#r-range button[data-range='1h']", Duration::from_secs(5)));
    wait_for(
        "2.5 min of stored outlet pressure",
        Duration::from_secs(180),
        || {
            let (status, v) = get(&format!(
                "{base}/api/v1/history?point={tripped}.outlet_pressure&from={}&to={}",
                now_ms() - 160_000,
                now_ms() - 150_000
            ));
            (status == 200
                && v["series"][0]["samples"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()))
            .then_some(())
        },
    );
    drag(&browser, first, 0.75, 1.0);
    browser.until(
        "the last quarter zoomed into",
        Duration::from_secs(10),
        "return [...document.querySelectorAll('#r-trends .trend')].every(t => (t.dataset.range || '').includes('-')) || null;",
    );
    browser.click(&browser.element(
        "#r-range input[data-action=compare]",
        Duration::from_secs(5),
    ));
    browser.until(
        "the previous period drawn dashed",
        Duration::from_secs(30),
        "const t = document.querySelector('#r-trends .trend:not(.focus)'); \
         return Number(t.dataset.previous) > 0 && Number(t.dataset.previousDrawn) > 0 || null;",
    );
    browser.screenshot(&shots.join("ui-room-zh-compare.png"));

    // A point of another room, typed in full: its own chart with its history for the range.
    let other = format!("{writable}.outlet_pressure");
    let input = browser.element("#r-add input[data-role=point]", Duration::from_secs(5));
    browser.type_into(&input, &other);
    browser.click(&browser.element("#r-add button[type=submit]", Duration::from_secs(5)));
    browser.until(
        "the other room's point charted with stored data",
        Duration::from_secs(30),
        &format!(
            "const t = document.querySelector('#r-trends .trend.added[data-point=\"{other}\"]'); \
             return t && Number(t.dataset.stored) > 0 || null;"
        ),
    );
    // A misspelt id is refused with a reason.
    browser.type_into(&input, "不是测点");
    browser.click(&browser.element("#r-add button[type=submit]", Duration::from_secs(5)));
    browser.until(
        "the reason a point cannot be added",
        Duration::from_secs(5),
        "return document.querySelector('#r-add .adder-error').textContent || null;",
    );
    assert_chinese(
        &browser,
        "the trends zoomed, compared and with an added point",
    );
    browser.screenshot(&shots.join("ui-room-zh-added-point.png"));

    // The xlsx export: the file handed to the download is a ZIP whose sheet holds the table.
    browser.js(
        "window.cisternBlobs = []; const make = URL.createObjectURL.bind(URL); \
         URL.createObjectURL = (b) => { window.cisternBlobs.push(b); return make(b); }; return true;",
        json!([]),
    );
    browser.click(&browser.element("#r-range [data-action=xlsx]", Duration::from_secs(5)));
    let bytes = browser.js(
        "const b = window.cisternBlobs[window.cisternBlobs.length - 1]; \
         return b.arrayBuffer().then((buf) => { const u = new Uint8Array(buf); let s = ''; \
           for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000)); \
           return [b.type, btoa(s)]; });",
        json!([]),
    );
    assert_eq!(
        bytes[0],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let sheet = read_xlsx(bytes[1].as_str().unwrap());
    assert_eq!(sheet["test"], serde_json::Value::Null, "CRCs: {sheet}");
    assert_eq!(sheet["magic"], "PK");
    let header: Vec<String> = serde_json::from_value(sheet["header"].clone()).unwrap();
    assert_eq!(header[0], "时间", "{header:?}");
    for column in [
        format!("{tripped}.outlet_pressure [MPa]"),
        format!("{other} [MPa]"),
    ] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    assert!(
        sheet["rows"].as_u64().unwrap() > 10 && sheet["numbers"].as_u64().unwrap() > 10,
        "{sheet}"
    );
    assert!(
        sheet["first_time"].as_str().unwrap().ends_with('Z'),
        "times as ISO text: {sheet}"
    );
    // The writer's pure parts, as the page loads them: the CRC ZIP uses, column letters.
    let parts = browser.js(
        "return import('/ui/xlsx.js').then((m) => [m.crc32(new TextEncoder().encode('123456789')), \
           [0, 25, 26, 701, 702].map(m.column), m.xmlText('a<b & \"c\"')]);",
        json!([]),
    );
    assert_eq!(
        parts,
        json!([
            0xcbf4_3926_u32,
            ["A", "Z", "AA", "ZZ", "AAA"],
            "a&lt;b &amp; &quot;c&quot;"
        ])
    );
    // The added chart goes with its remove button.
    browser.click(&browser.element(
        "#r-trends .trend.added .trend-remove",
        Duration::from_secs(5),
    ));
    browser.until(
        "the added chart removed",
        Duration::from_secs(5),
        "return !document.querySelector('#r-trends .trend.added') || null;",
    );

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

/// Drags the mouse across the plot of the chart `css` (the canvas) from `a` to `b`, fractions
/// of its plot's width (the axis labels take its left 46 px, its right margin 8 px).
fn drag(browser: &Browser, css: &str, a: f64, b: f64) {
    let rect = browser.js(
        "const c = document.querySelector(arguments[0]); c.scrollIntoView({ block: 'center' }); \
         const r = c.getBoundingClientRect(); return [r.left, r.top + r.height / 2, r.width];",
        json!([css]),
    );
    let (left, y, width) = (
        rect[0].as_f64().unwrap(),
        rect[1].as_f64().unwrap().round() as i64,
        rect[2].as_f64().unwrap(),
    );
    let x = |f: f64| {
        (left + 46.0 + f * (width - 54.0) - 1.0)
            .round()
            .max(left + 46.0) as i64
    };
    let (x0, x1) = (x(a), x(b));
    let step = |x: i64, ms: u64| json!({ "type": "pointerMove", "origin": "viewport", "x": x, "y": y, "duration": ms });
    browser.call(
        "POST",
        "/actions",
        Some(json!({ "actions": [{ "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": [step(x0, 0), { "type": "pointerDown", "button": 0 }, step((x0 + x1) / 2, 100),
                        step(x1, 100), { "type": "pointerUp", "button": 0 }] }] })),
    );
    browser.call("DELETE", "/actions", None);
}

/// What Python's `zipfile` reads in an .xlsx file given as base64: the first two bytes, the
/// first entry whose CRC is wrong (null when none), the entries, and of `xl/worksheets/sheet1.xml`
/// its first row's texts, its rows, its number cells and the second row's first cell.
fn read_xlsx(base64: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import base64, io, json, sys, zipfile
import xml.etree.ElementTree as ET
data = base64.b64decode(sys.stdin.read())
z = zipfile.ZipFile(io.BytesIO(data))
ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
rows = ET.fromstring(z.read("xl/worksheets/sheet1.xml")).findall(".//m:row", ns)
text = lambda c: "".join(t.text or "" for t in c.iter("{%s}t" % ns["m"]))
print(json.dumps({
    "magic": data[:2].decode("latin-1"),
    "test": z.testzip(),
    "names": z.namelist(),
    "header": [text(c) for c in rows[0].findall("m:c", ns)],
    "rows": len(rows),
    "numbers": sum(1 for r in rows for c in r.findall("m:c", ns) if c.find("m:v", ns) is not None),
    "first_time": text(rows[1].find("m:c", ns)) if len(rows) > 1 else None,
}))
"#;
    let out = run_piped("python3", &["-c", SCRIPT], Some(base64));
    assert!(
        out.status.success(),
        "python3 could not read the xlsx file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
