//! The comparisons page in real headless Chromium, on a phone (390×844) in Chinese: two rooms'
//! outlet flow on one chart with the period before overlaid (its columns dashed, labelled with
//! its dates), exported as CSV (a UTF-8 byte-order mark, a Chinese time header, one column per
//! series) and as .xlsx; a request past the limits refused with its code, shown in Chinese.

use crate::browser::Browser;
use crate::support::Cistern;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn two_points_and_their_earlier_period_are_drawn_and_exported_on_a_phone() {
    let demo = Cistern::demo("ui-compare").rooms(3).modbus_rooms(0).start();
    let base = demo.http().to_owned();
    let (_, inventory) = demo.get("/api/v1/rooms");
    let rooms: Vec<String> = inventory["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let (a, b) = (&rooms[0], &rooms[1]);
    let browser = Browser::start_sized("ui-compare", 390, 844);
    browser.sign_in(&base, "zh-CN");
    // Let the rooms send a minute or so of samples.
    crate::support::wait_for("history of both rooms", WAIT, || {
        let (status, v) = demo.get(&format!(
            "/api/v1/history?point={a}.outlet_flow&point={b}.outlet_flow&from=-10m"
        ));
        (status == 200
            && v["series"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|s| s["samples"].as_array().is_some_and(|x| x.len() > 2))
            }))
        .then_some(())
    });
    browser.goto(&format!(
        "{base}/#/compare?point={a}.outlet_flow&point={b}.outlet_flow&range=1d&earlier=previous"
    ));
    let drawn = browser.until(
        "two series drawn with their earlier periods in the legend",
        WAIT,
        "const svg = document.querySelector('#cmp-body svg.cmp-chart'); \
         if (!svg) return null; \
         const cols = new Set([...svg.querySelectorAll('polyline.cmp-line:not(.cmp-earlier)')].map((p) => p.dataset.col)); \
         const legend = [...document.querySelectorAll('#cmp-body .cmp-legend li')]; \
         return cols.size === 2 && svg.dataset.columns === '4' \
           && legend.filter((li) => li.querySelector('.cmp-swatch.cmp-earlier')).length === 2 \
           && legend.map((li) => li.textContent).join('|') || null;",
    );
    let legend = drawn.as_str().unwrap();
    assert!(legend.contains("对比时段"), "{legend}");
    assert!(legend.contains(&format!("{a}.outlet_flow")), "{legend}");
    assert!(
        browser.overflowing().is_empty(),
        "{:?}",
        browser.overflowing()
    );
    assert!(
        browser.missing_keys().is_empty(),
        "{:?}",
        browser.missing_keys()
    );
    assert!(
        browser.latin_words().is_empty(),
        "{:?}",
        browser.latin_words()
    );

    // The CSV export: what the chart shows, one column per series.
    browser.js(
        "const made = URL.createObjectURL; \
         URL.createObjectURL = (blob) => { window.cmpFile = blob; return made(blob); };",
        json!([]),
    );
    browser.click(&browser.element("#cmp-csv", WAIT));
    let csv = browser.until(
        "the exported CSV",
        WAIT,
        "if (!window.cmpFile) return null; \
         if (!window.cmpText) window.cmpFile.arrayBuffer().then((b) => { \
           const bytes = new Uint8Array(b); \
           window.cmpText = bytes.slice(0, 3).join(',') + '|' + new TextDecoder().decode(bytes); }); \
         return window.cmpText || null;",
    );
    let csv = csv.as_str().unwrap();
    let header = format!(
        "239,187,191|\u{feff}时间,{a}.outlet_flow,{a}.outlet_flow (对比时段),{b}.outlet_flow,{b}.outlet_flow (对比时段)"
    );
    assert!(
        csv.starts_with(&header) || csv.starts_with(&header.replace('\u{feff}', "")),
        "{csv}"
    );
    assert!(
        csv.lines().count() >= 2,
        "a header and at least one row: {csv}"
    );
    // The .xlsx export: a workbook (a zip), not an error.
    browser.js("window.cmpFile = null; window.cmpText = null;", json!([]));
    browser.click(&browser.element("#cmp-xlsx", WAIT));
    let magic = browser.until(
        "the exported workbook",
        WAIT,
        "if (!window.cmpFile) return null; \
         if (!window.cmpText) window.cmpFile.arrayBuffer().then((b) => { \
           window.cmpText = String.fromCharCode(...new Uint8Array(b).slice(0, 2)) + '|' + b.byteLength; }); \
         return window.cmpText || null;",
    );
    assert!(magic.as_str().unwrap().starts_with("PK|"), "{magic}");

    // Past the limits: a year of one-minute buckets is refused with its code, in Chinese.
    browser.goto(&format!(
        "{base}/#/compare?point={a}.outlet_flow&range=366d&earlier=year"
    ));
    browser.until(
        "the chart of a year",
        WAIT,
        "return document.querySelector('#cmp-body svg.cmp-chart, #cmp-body p.muted') || null;",
    );
    let (status, v) = demo.get(&format!(
        "/api/v1/analysis/compare?point={a}.outlet_flow&from=-366d&step=1m"
    ));
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "too_many_buckets", "{v}");
}
