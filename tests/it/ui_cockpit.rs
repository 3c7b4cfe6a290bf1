//! The cockpit, the ranking and the wall screen in real headless Chromium (issue 22 items 5,
//! 6): on a 390×844 phone in Chinese the board's tiles show figures, a click on data
//! completeness drills from the fleet to a zone, a room and its pump P1 (the breadcrumb climbs
//! back), a tile moved and an indicator subscribed are kept as the user's board; on a desk in
//! English a room's score opens to an explanation whose total is the score the ranking shows;
//! the wall screen at 1920×1080 is dark, large and without the top bar. No missing catalogue
//! key, no English in the Chinese pages, nothing wider than the phone, no NaN.

use crate::browser::Browser;
use crate::support::{call, get, wait_for, Cistern};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Today's figures of every room computed (the node's live pass runs every 5 minutes).
fn compute_today(base: &str, rooms: &[String]) {
    let (_, v) = get(&format!("{base}/api/v1/analysis/days?room={}", rooms[0]));
    let today = v["today"].as_str().unwrap().to_owned();
    wait_for("today's figures with data", Duration::from_secs(60), || {
        let mut ok = true;
        for r in rooms {
            let (s, v) = call(
                "POST",
                &format!("{base}/api/v1/analysis/recompute"),
                Some(&json!({ "room": r, "date": today }).to_string()),
            );
            assert_eq!(s, 200, "{v}");
            ok &= v["figures"]["completeness"].as_f64().unwrap_or(0.0) > 0.0;
        }
        ok.then_some(())
    });
}

fn clean(b: &Browser, lang: &str, what: &str) {
    assert_eq!(b.missing_keys(), Vec::<String>::new(), "{what} {lang}");
    let nan = b.js(
        "return document.querySelector('main').innerText.includes('NaN');",
        json!([]),
    );
    assert_eq!(nan, false, "{what}: no NaN");
    if lang == "zh-CN" {
        assert_eq!(b.latin_words(), Vec::<String>::new(), "{what} in Chinese");
        assert_eq!(b.overflowing(), Vec::<String>::new(), "{what} on a phone");
    }
}

fn drill_to_a_pump(b: &Browser, lang: &str) {
    b.js("location.hash = '#/cockpit';", json!([]));
    b.until(
        "the board's tiles",
        WAIT,
        "return document.querySelectorAll('#ck-tiles .ck-tile').length || null;",
    );
    clean(b, lang, "the board");
    let tile = b.element("#ck-tiles .ck-tile[data-ind=completeness] .ck-value", WAIT);
    let fleet = b.js("return document.querySelector('#ck-tiles .ck-tile[data-ind=completeness] .ck-value').textContent;", json!([]));
    assert!(
        fleet.as_str().unwrap().contains('%'),
        "the fleet's completeness shown: {fleet}"
    );
    b.click(&tile);
    // Fleet → zones.
    b.until(
        "the zones",
        WAIT,
        "return document.querySelector('#ck-drill-rows tr.ck-go[data-level=zone]');",
    );
    b.click(&b.element("#ck-drill-rows tr.ck-go[data-level=zone] td", WAIT));
    // Zone → rooms.
    b.until(
        "the zone's rooms",
        WAIT,
        "return document.querySelector('#ck-drill-rows tr.ck-go[data-level=room]');",
    );
    let crumbs = b.js(
        "return document.querySelectorAll('#ck-drill .ck-crumbs a').length;",
        json!([]),
    );
    assert_eq!(crumbs, 2, "fleet › zone");
    b.click(&b.element("#ck-drill-rows tr.ck-go[data-level=room] td", WAIT));
    // Room → devices, down to the pump.
    let pump = b.until(
        "the room's pump P1",
        WAIT,
        "const r = document.querySelector('#ck-drill-rows tr[data-level=device][data-key=P1]'); \
         return r ? r.querySelectorAll('td')[1].textContent : null;",
    );
    let text = pump.as_str().unwrap();
    assert!(
        text.contains('%') && !text.contains('—'),
        "P1's completeness: {text}"
    );
    clean(b, lang, "the drill-down to a pump");
    // Back up to the fleet by the breadcrumb.
    b.click(&b.element("#ck-drill .ck-crumbs a[data-level=fleet]", WAIT));
    b.until(
        "the zones again",
        WAIT,
        "return document.querySelector('#ck-drill-rows tr[data-level=zone]') \
           && !document.querySelector('#ck-drill-rows tr[data-level=room]');",
    );
}

fn keep_a_board(b: &Browser) {
    let first = b.js(
        "return document.querySelector('#ck-tiles .ck-tile').dataset.ind;",
        json!([]),
    );
    let n = b.js(
        "return document.querySelectorAll('#ck-tiles .ck-tile').length;",
        json!([]),
    );
    // The first tile moved one place right.
    b.click(&b.element("#ck-tiles .ck-tile .ck-right", WAIT));
    b.until(
        "the tile moved",
        WAIT,
        &format!(
            "const t = document.querySelectorAll('#ck-tiles .ck-tile'); \
             return t.length > 1 && t[1].dataset.ind === {first} && t[0].dataset.ind !== {first};"
        ),
    );
    // An indicator subscribed.
    b.js(
        "const s = document.getElementById('ck-add'); s.value = 'open_orders'; \
         s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    b.until(
        "the subscribed tile",
        WAIT,
        &format!(
            "const t = document.querySelectorAll('#ck-tiles .ck-tile'); \
             return t.length === {n} + 1 && t[t.length - 1].dataset.ind === 'open_orders';"
        ),
    );
}

fn explain_a_score(b: &Browser, lang: &str) {
    b.js("location.hash = '#/ranking';", json!([]));
    let shown = b.until(
        "the ranked rooms",
        WAIT,
        "const r = document.querySelector('#rk-rooms tr.rk-room'); \
         return r ? r.querySelector('.rk-score').textContent.trim() : null;",
    );
    b.click(&b.element("#rk-rooms tr.rk-room td", WAIT));
    let total = b.until(
        "the explanation",
        WAIT,
        "const t = document.getElementById('rk-total'); \
         return t && document.querySelector('#rk-explain-rows tr.rk-fact') ? t.textContent.trim() : null;",
    );
    assert_eq!(total, shown, "the explanation's total is the score ranked");
    // The shown contributions add up to the total.
    let sum = b.js(
        "return [...document.querySelectorAll('#rk-explain-rows td.rk-fact-contrib')] \
           .reduce((s, td) => s + Number(td.textContent.replace(/[^0-9.\\-]/g, '')), 0);",
        json!([]),
    );
    let total: f64 = total.as_str().unwrap().parse().unwrap();
    assert!(
        (sum.as_f64().unwrap() - total).abs() < 0.051,
        "{sum} vs {total}"
    );
    clean(b, lang, "the ranking");
}

#[test]
fn the_cockpit_drills_from_the_fleet_to_a_pump_and_scores_explain_themselves() {
    let demo = Cistern::demo("ui-cockpit").rooms(6).modbus_rooms(0).start();
    let base = demo.http().to_owned();
    let (_, inv) = get(&format!("{base}/api/v1/rooms"));
    let rooms: Vec<String> = inv["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    compute_today(&base, &rooms);

    let phone = Browser::start_sized("ui-cockpit-phone", 390, 844);
    phone.sign_in(&base, "zh-CN");
    drill_to_a_pump(&phone, "zh-CN");
    keep_a_board(&phone);
    explain_a_score(&phone, "zh-CN");

    let desk = Browser::start("ui-cockpit-desk");
    desk.sign_in(&base, "en");
    drill_to_a_pump(&desk, "en");
    explain_a_score(&desk, "en");

    let wall = Browser::start_sized("ui-cockpit-wall", 1920, 1080);
    wall.sign_in(&base, "zh-CN");
    wall.js("location.hash = '#/wall';", json!([]));
    wall.until(
        "the wall's tiles",
        WAIT,
        "return document.querySelectorAll('#wall-body .wall-tile').length || null;",
    );
    let look = wall.js(
        "const v = document.querySelector('.wall-value'); \
         const bar = document.querySelector('.topbar'); \
         return [parseFloat(getComputedStyle(v).fontSize), bar.offsetParent === null, \
           getComputedStyle(document.getElementById('view-wall')).backgroundColor];",
        json!([]),
    );
    assert!(look[0].as_f64().unwrap() >= 60.0, "large type: {look}");
    assert_eq!(look[1], true, "no top bar on the wall: {look}");
    assert_eq!(look[2], "rgb(11, 18, 32)", "dark: {look}");
    assert_eq!(wall.missing_keys(), Vec::<String>::new());
    assert_eq!(
        wall.latin_words(),
        Vec::<String>::new(),
        "the wall in Chinese"
    );
    assert_eq!(
        wall.overflowing(),
        Vec::<String>::new(),
        "the wall at 1920×1080"
    );
    // The next slide by hand: another board.
    let first = wall.js(
        "return document.getElementById('wall-slide').textContent;",
        json!([]),
    );
    wall.click(&wall.element("#wall-next", WAIT));
    wall.until(
        "the next slide",
        WAIT,
        &format!("return document.getElementById('wall-slide').textContent !== {first};"),
    );
}

/// The cockpit's first paint at the city's 2,100 rooms (issue 22 Performance: < 1 s): the
/// board's API answer and the page's own mark `cistern:cockpit-drawn` from a fresh load of
/// `#/cockpit` (navigation start → the tiles drawn), with the browser's first contentful
/// paint. A benchmark, not a test of budgets:
///
/// ```text
/// cargo nextest run -p cistern --test it --run-ignored only cockpit_first_paint --no-capture
/// ```
#[test]
#[ignore = "a benchmark: run on demand (see the doc)"]
fn cockpit_first_paint_at_2100_rooms() {
    let demo = Cistern::demo("ui-cockpit-perf")
        .rooms(2_100)
        .ready_within(Duration::from_secs(300))
        .start();
    let base = demo.http().to_owned();
    // Today's figures of every room (the node's first live pass).
    wait_for("the first live pass", Duration::from_secs(300), || {
        let (_, b) = get(&format!("{base}/api/v1/cockpit/board?kind=director"));
        (b["tiles"][0]["value"].is_number()).then_some(())
    });
    let mut api_ms = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let (s, b) = get(&format!("{base}/api/v1/cockpit/board"));
        api_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((s, b["rooms"].as_u64()), (200, Some(2_100)));
    }
    let t = std::time::Instant::now();
    let (s, _) = get(&format!("{base}/api/v1/analysis/scores"));
    let ranking_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(s, 200);
    let t = std::time::Instant::now();
    let (s, _) = get(&format!("{base}/api/v1/analysis/score?room=XM-0001"));
    let score_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(s, 200);
    let browser = Browser::start("ui-cockpit-perf-chromium");
    browser.sign_in(&base, "zh-CN");
    browser.goto(&format!("{base}/?lang=zh-CN#/cockpit"));
    browser.until(
        "the board drawn",
        Duration::from_secs(60),
        "return performance.getEntriesByName('cistern:cockpit-drawn').length > 0 || null;",
    );
    let drawn = browser.js(
        "const m = performance.getEntriesByName('cistern:cockpit-drawn'); return m[0].startTime;",
        json!([]),
    );
    let fcp = browser.js(
        "const p = performance.getEntriesByName('first-contentful-paint'); \
         return p.length ? p[0].startTime : null;",
        json!([]),
    );
    // Where the time goes: the shell's fleet map (built before any page opens) and the board's
    // answer as the browser received it.
    let parts = browser.js(
        "const m = performance.getEntriesByName('cistern:map-drawn'); \
         const r = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/cockpit/board')); \
         const rooms = performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/v1/rooms')); \
         return { map_drawn: m.length ? m[0].startTime : null, \
                  board_received: r.length ? r[0].responseEnd : null, \
                  rooms_received: rooms.length ? rooms[0].responseEnd : null };",
        json!([]),
    );
    println!("cockpit at 2,100 rooms, in the page (ms after navigation start): {parts}");
    api_ms.sort_by(f64::total_cmp);
    println!(
        "cockpit at 2,100 rooms: board API {:.0} ms median ({:.0}–{:.0} over 5), ranking API \
         {ranking_ms:.0} ms, one room's score API {score_ms:.0} ms; Chromium: first contentful \
         paint {fcp} ms, board drawn {drawn} ms after navigation start",
        api_ms[2], api_ms[0], api_ms[4]
    );
}
