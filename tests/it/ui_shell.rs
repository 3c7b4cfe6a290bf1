//! The console's shell in both languages and on a phone, in a real headless Chromium: the map
//! page and the tank plans at 390×844 in Chinese show no English and nothing wider than the screen; the search
//! finds a room by its id and by its Chinese name and zooms the map to it; the language picker
//! switches the whole page to English and back, and no screen looked up a key the catalogues
//! lack.

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
    // A wheel gesture moves the drawing as one picture, then commits the view: a room is in the
    // same place on screen during the gesture and after it (the transform's arithmetic).
    let moved = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [id], "script":
            "const done = arguments[arguments.length - 1]; \
             const svg = document.getElementById('map'); \
             const dot = document.querySelector(`#map circle[data-room=\"${arguments[0]}\"]`); \
             const box = svg.parentNode.getBoundingClientRect(); \
             const at = () => { const r = dot.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }; \
             for (let i = 0; i < 3; i++) svg.dispatchEvent(new WheelEvent('wheel', { deltaY: -120, \
               clientX: box.left + box.width * 0.3, clientY: box.top + box.height * 0.4, bubbles: true, cancelable: true })); \
             const during = at(); const live = svg.style.transform; \
             setTimeout(() => done({ during, after: at(), live, committed: svg.style.transform }), 400);" })),
    );
    assert_ne!(moved["live"], "", "a gesture moves the picture: {moved}");
    assert_eq!(moved["committed"], "", "and is committed after it: {moved}");
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
