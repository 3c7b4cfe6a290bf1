//! The console's shell in both languages and on a phone, in a real headless Chromium: the map
//! page and the tank plans at 390×844 in Chinese show no English and nothing wider than the screen; the search
//! finds a room by its id and by its Chinese name and zooms the map to it; the language picker
//! switches the whole page to English and back, and no screen looked up a key the catalogues
//! lack. At the overview the rooms are drawn as clusters whose counts add up to the fleet, a
//! cluster holding a room in alarm carries the alarm, a click on a cluster zooms in and splits
//! it, and the search marks the cluster a room found is in.

use crate::browser::Browser;
use crate::support::{get, Cistern};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[test]
fn the_map_on_a_phone_in_chinese_searches_zooms_and_switches_language() {
    let demo = Cistern::demo("ui-shell").rooms(60).modbus_rooms(2).start();
    let base = demo.http().to_owned();
    let (_, inventory) = get(&format!("{base}/api/v1/rooms"));
    let room = &inventory["rooms"].as_array().unwrap()[6];
    let (id, name) = (room["id"].as_str().unwrap(), room["name"].as_str().unwrap());

    let browser = Browser::start_sized("ui-shell-chromium", 390, 844);
    browser.sign_in(&base, "zh-CN");
    browser.until(
        "every room on the map and the live link",
        Duration::from_secs(30),
        "return document.querySelectorAll('#map circle.room').length === 60 \
           && document.getElementById('link-state').classList.contains('up') || null;",
    );
    // The demo's base map: Xiamen's six districts under the rooms.
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#map path.district').length",
            json!([])
        ),
        6
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("ui-phone-map-zh.png"));
    assert_eq!(
        browser.js("return document.documentElement.lang", json!([])),
        "zh-CN"
    );
    assert_eq!(
        browser.latin_words(),
        Vec::<String>::new(),
        "English left on the zh-CN map"
    );
    assert_eq!(
        browser.overflowing(),
        Vec::<String>::new(),
        "cut off at 390 px"
    );
    // The navigation is reachable and a finger's height.
    let nav = browser.js(
        "return [...document.querySelectorAll('.topbar nav a:not([hidden])')] \
           .map(a => a.getBoundingClientRect().height);",
        json!([]),
    );
    assert!(
        nav.as_array()
            .unwrap()
            .iter()
            .all(|h| h.as_f64().unwrap() >= 44.0),
        "touch targets: {nav}"
    );

    clusters_count_alarm_split_and_are_searched(&browser, &base);

    // Search by id, then by the Chinese name: the room is listed, marked, and the map zooms to
    // it (the view narrows).
    let full = browser.js(
        "return document.getElementById('map').getAttribute('viewBox')",
        json!([]),
    );
    for query in [id, name] {
        let input = browser.element("#map-search-input", Duration::from_secs(5));
        browser.type_into(&input, query);
        browser.until(
            &format!("the search for {query} to list {id}"),
            Duration::from_secs(10),
            &format!(
                "return document.querySelector('#map-results li[data-room=\"{id}\"]') \
                   && document.querySelector('#map circle.room.found[data-room=\"{id}\"]') || null;"
            ),
        );
    }
    browser.click(&browser.element(
        &format!("#map-results li[data-room=\"{id}\"]"),
        Duration::from_secs(5),
    ));
    let zoomed = browser.js(
        "return document.getElementById('map').getAttribute('viewBox')",
        json!([]),
    );
    assert_ne!(zoomed, full, "the map zooms to the room found");
    browser.click(&browser.element("#map-zoom-reset", Duration::from_secs(5)));
    assert_eq!(
        browser.js(
            "return document.getElementById('map').getAttribute('viewBox')",
            json!([])
        ),
        full
    );
    // A wheel gesture moves the drawing as one picture, then commits the view: a district of the
    // base map is in the same place on screen during the gesture and after it (the transform's
    // arithmetic; a room could be hidden in a cluster at this scale).
    let moved = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [], "script":
            "const done = arguments[arguments.length - 1]; \
             const svg = document.getElementById('map'); \
             const dot = document.querySelector('#map path.district'); \
             const box = svg.parentNode.getBoundingClientRect(); \
             const at = () => { const r = dot.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }; \
             for (let i = 0; i < 3; i++) svg.dispatchEvent(new WheelEvent('wheel', { deltaY: -120, \
               clientX: box.left + box.width * 0.3, clientY: box.top + box.height * 0.4, bubbles: true, cancelable: true })); \
             const during = at(); const live = svg.style.transform; \
             setTimeout(() => done({ during, after: at(), live, committed: svg.style.transform }), 400);" })),
    );
    assert_ne!(moved["live"], "", "a gesture moves the picture: {moved}");
    assert_eq!(moved["committed"], "", "and is committed after it: {moved}");
    assert!(
        moved["after"][0].as_f64().unwrap() > 0.0,
        "the district is drawn: {moved}"
    );
    for axis in 0..2 {
        let d = moved["during"][axis].as_f64().unwrap() - moved["after"][axis].as_f64().unwrap();
        assert!(
            d.abs() < 1.5,
            "the room moved {d} px when the view was committed: {moved}"
        );
    }
    browser.click(&browser.element("#map-zoom-reset", Duration::from_secs(5)));
    browser.click(&browser.element("#map-zoom-in", Duration::from_secs(5)));
    assert_ne!(
        browser.js(
            "return document.getElementById('map').getAttribute('viewBox')",
            json!([])
        ),
        full
    );

    // The tank plans of the Modbus rooms, in Chinese on the phone.
    browser.goto(&format!("{base}/?lang=zh-CN#/plans"));
    browser.until(
        "a district's plan with its tanks",
        Duration::from_secs(60),
        "return document.querySelector('#p-timeline svg.timeline') \
           && document.querySelectorAll('.plan-tanks tr[data-tank]').length > 0 || null;",
    );
    browser.screenshot(&shots.join("ui-phone-plans-zh.png"));
    assert_eq!(
        browser.latin_words(),
        Vec::<String>::new(),
        "English left on the zh-CN plans"
    );
    assert_eq!(
        browser.overflowing(),
        Vec::<String>::new(),
        "plans cut off at 390 px"
    );
    browser.goto(&format!("{base}/?lang=zh-CN#/map"));
    browser.until(
        "the map again",
        Duration::from_secs(30),
        "return document.querySelectorAll('#map circle.room').length === 60 || null;",
    );

    // English from the picker: the page reloads in English, the session kept.
    let before = browser.js(
        "return document.querySelector('a[data-view=map]').textContent",
        json!([]),
    );
    browser.js(
        "const s = document.querySelector('.topbar .lang-select'); s.value = 'en'; \
         s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    browser.until(
        "the English console",
        Duration::from_secs(30),
        "return document.documentElement.lang === 'en' \
           && !document.getElementById('shell').hidden \
           && document.querySelector('a[data-view=map]').textContent === 'Fleet map' || null;",
    );
    assert_ne!(before, "Fleet map", "the Chinese page said {before}");
    browser.screenshot(&shots.join("ui-phone-map-en.png"));
    assert_eq!(
        browser.overflowing(),
        Vec::<String>::new(),
        "cut off at 390 px in English"
    );
    assert_eq!(browser.missing_keys(), Vec::<String>::new());
}

/// The map's clusters at the phone's overview: every room is in one marker (a cluster's count or
/// its own circle); a P1 fault in a clustered room makes its cluster a blinking P1 cluster; a click
/// on it zooms in and splits it; the search marks the cluster holding a room it found.
fn clusters_count_alarm_split_and_are_searched(browser: &Browser, base: &str) {
    browser.click(&browser.element("#map-zoom-reset", Duration::from_secs(5)));
    // Every room in exactly one marker.
    let markers = browser.until(
        "clusters at the overview",
        Duration::from_secs(10),
        "const clusters = [...document.querySelectorAll('#map g.cluster')]; \
         if (!clusters.length) return null; \
         const shown = [...document.querySelectorAll('#map circle.room')] \
           .filter(c => getComputedStyle(c).display !== 'none').length; \
         const hidden = document.querySelectorAll('#map circle.room.clustered').length; \
         return { clusters: clusters.length, inside: clusters.reduce((s, g) => s + Number(g.querySelector('text').textContent), 0), \
                  shown, hidden, labels: clusters.map(g => g.getAttribute('aria-label')) };",
    );
    assert_eq!(
        markers["inside"].as_u64().unwrap() + markers["shown"].as_u64().unwrap(),
        60,
        "every room once: {markers}"
    );
    assert_eq!(markers["inside"], markers["hidden"], "{markers}");
    assert!(
        markers["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.as_str().unwrap().contains("座泵房")),
        "the clusters' labels in Chinese: {markers}"
    );

    // A P1 in a room inside a cluster (one whose id without its last digit is in other rooms' ids,
    // for the search below): the cluster is a P1 cluster, blinking while unacknowledged.
    let room = browser.js(
        "const ids = [...document.querySelectorAll('#map circle.room')].map(c => c.dataset.room); \
         const c = [...document.querySelectorAll('#map circle.room.clustered:not([class*=sev-])')] \
           .find(c => ids.filter(id => id.includes(c.dataset.room.slice(0, -1))).length > 1); \
         return c && c.dataset.room;",
        json!([]),
    );
    let room = room
        .as_str()
        .expect("a room without an alarm inside a cluster");
    let (status, v) = crate::support::post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{room}","fault":"intrusion","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    let cluster = format!(
        "document.querySelector(`#map g.cluster[data-cluster=\"${{document.querySelector('#map circle[data-room=\"{room}\"]').dataset.in}}\"]`)"
    );
    let before = browser.until(
        "the room's cluster in P1, blinking",
        Duration::from_secs(60),
        &format!(
            "const g = {cluster}; \
             return g && g.classList.contains('st-P1') && g.classList.contains('unack') \
               && getComputedStyle(g.querySelector('.ring')).animationName === 'cluster-blink' \
               && {{ n: Number(g.querySelector('text').textContent), label: g.getAttribute('aria-label'), \
                    view: document.getElementById('map').getAttribute('viewBox') }} || null;"
        ),
    );
    assert!(
        before["label"].as_str().unwrap().contains("座报警"),
        "{before}"
    );
    browser.screenshot(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-phone-map-clusters.png"));

    // A click on the cluster zooms to its rooms, and they split: the room is now in a smaller
    // cluster or its own circle, drawn in alarm.
    browser.click(&browser.element(
        &format!(
            "#map g.cluster[data-cluster=\"{}\"]",
            browser
                .js(
                    &format!("return document.querySelector('#map circle[data-room=\"{room}\"]').dataset.in"),
                    json!([])
                )
                .as_str()
                .unwrap()
        ),
        Duration::from_secs(5),
    ));
    let after = browser.until(
        "the view zoomed to the cluster",
        Duration::from_secs(10),
        &format!(
            "const v = document.getElementById('map').getAttribute('viewBox'); \
             if (v === {view}) return null; \
             const c = document.querySelector('#map circle[data-room=\"{room}\"]'); \
             const g = c.dataset.in === undefined ? null : {cluster}; \
             return {{ view: v, in: g ? Number(g.querySelector('text').textContent) : 1, \
                      cls: c.getAttribute('class'), gcls: g && g.getAttribute('class') }};",
            view = before["view"]
        ),
    );
    let width = |v: &serde_json::Value| -> f64 {
        v.as_str()
            .unwrap()
            .split(' ')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        width(&after["view"]) < width(&before["view"]) / 2.0,
        "zoomed in: {before} → {after}"
    );
    assert!(
        after["in"].as_u64().unwrap() < before["n"].as_u64().unwrap(),
        "the cluster split: {before} → {after}"
    );
    assert!(
        after["cls"].as_str().unwrap().contains("sev-P1")
            || after["gcls"].as_str().is_some_and(|c| c.contains("st-P1")),
        "still in alarm: {after}"
    );

    // The search marks the cluster a room it found is in (several hits: the view stays).
    browser.click(&browser.element("#map-zoom-reset", Duration::from_secs(5)));
    let prefix = &room[..room.len() - 1];
    let input = browser.element("#map-search-input", Duration::from_secs(5));
    browser.type_into(&input, prefix);
    let found = browser.until(
        &format!("the search for {prefix} to list {room} and mark its cluster"),
        Duration::from_secs(10),
        &format!(
            "const li = document.querySelector('#map-results li[data-room=\"{room}\"]'); \
             const c = document.querySelector('#map circle[data-room=\"{room}\"]'); \
             if (!li || !c.classList.contains('found')) return null; \
             const g = c.dataset.in === undefined ? null : {cluster}; \
             return {{ clustered: !!g, found: !!g && g.classList.contains('found'), \
                      hits: document.querySelectorAll('#map-results li[data-room]').length }};"
        ),
    );
    assert!(found["hits"].as_u64().unwrap() > 1, "{found}");
    assert_eq!(found["clustered"], true, "at the overview: {found}");
    assert_eq!(found["found"], true, "the cluster is marked: {found}");
}
