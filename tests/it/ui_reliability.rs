//! The reliability page (#/reliability) and a room's lifecycle tab in real headless Chromium,
//! in Chinese on a 390×844 phone and in English on a desk: the class curves drawn as SVG
//! (R(t) and h(t), fit or literature said), the plan by month, spares with reorder warnings,
//! the suppliers' table; the tab lists the room's parts with their risk, opens one (its curves
//! with its age marked, its events) and records a failure by hand. No missing catalogue
//! key, no English in the Chinese page, nothing wider than the phone.

use crate::browser::Browser;
use crate::support::Cistern;
use std::time::Duration;

fn check_page(b: &Browser, lang: &str) {
    b.js("location.hash = '#/reliability';", serde_json::json!([]));
    let cards = b.until(
        "the class cards with their charts",
        Duration::from_secs(30),
        "const c = document.querySelectorAll('#rel-classes .rel-card'); \
         const charts = document.querySelectorAll('#rel-classes svg.rel-chart polyline.rel-fit'); \
         return c.length === 6 && charts.length === 12 ? c.length : null;",
    );
    assert_eq!(cards, 6);
    let drawn = b.js(
        "return [...document.querySelectorAll('#rel-classes polyline')].every((p) => \
           p.getAttribute('points').split(' ').length > 10 && !/NaN|Infinity/.test(p.getAttribute('points')));",
        serde_json::json!([]),
    );
    assert_eq!(drawn, true, "every curve drawn with finite points");
    let rows = b.js(
        "return [document.querySelectorAll('#rel-plan tbody tr').length, \
                 document.querySelectorAll('#rel-spares tbody tr').length, \
                 document.querySelectorAll('#rel-suppliers tbody tr').length, \
                 document.body.innerText.includes('NaN')];",
        serde_json::json!([]),
    );
    assert_eq!(rows[0], 12, "{rows}");
    assert!(rows[1].as_u64().unwrap() >= 4, "{rows}");
    assert!(rows[2].as_u64().unwrap() >= 1, "{rows}");
    assert_eq!(rows[3], false, "no NaN shown");
    assert_eq!(b.missing_keys(), Vec::<String>::new(), "{lang}");
    if lang == "zh-CN" {
        assert_eq!(b.latin_words(), Vec::<String>::new(), "the page in Chinese");
        assert_eq!(b.overflowing(), Vec::<String>::new(), "the page on a phone");
    }
}

fn check_tab(b: &Browser, room: &str, lang: &str) {
    b.js(
        &format!("location.hash = '#/room/{room}/lifecycle';"),
        serde_json::json!([]),
    );
    let n = b.until(
        "the lifecycle tab's parts",
        Duration::from_secs(30),
        "const r = document.querySelectorAll('#lc-table tbody tr'); return r.length || null;",
    );
    assert!(n.as_u64().unwrap() >= 4, "{n}");
    let nan = b.js(
        "return document.querySelector('.room-lifecycle').innerText.includes('NaN');",
        serde_json::json!([]),
    );
    assert_eq!(nan, false);
    // A part opened: its curves with its age marked, its events; the admin records a failure.
    b.click(&b.element(
        "#lc-table tr.lc-row[data-class=mechanical_seal]",
        Duration::from_secs(10),
    ));
    let events = b.until(
        "the seal's curves and events",
        Duration::from_secs(15),
        "const d = document.getElementById('lc-detail'); \
         return d && d.querySelectorAll('svg.rel-chart').length === 2 \
           && d.querySelector('line.rel-age') ? d.querySelectorAll('.lc-events li').length : null;",
    );
    let before = events.as_u64().unwrap();
    assert!(before >= 1);
    b.js(
        "document.querySelector('form.lc-event select[name=kind]').value = 'failure';",
        serde_json::json!([]),
    );
    b.type_into(
        &b.element("form.lc-event input[name=serial]", Duration::from_secs(5)),
        &format!("MS-{lang}"),
    );
    b.click(&b.element("form.lc-event button", Duration::from_secs(5)));
    let after = b.until(
        "the recorded event listed",
        Duration::from_secs(15),
        &format!(
            "const l = document.querySelectorAll('#lc-detail .lc-events li'); \
             return l.length === {} && l[0].textContent.includes('MS-{lang}') ? l.length : null;",
            before + 1
        ),
    );
    assert_eq!(after.as_u64().unwrap(), before + 1);
    assert_eq!(b.missing_keys(), Vec::<String>::new(), "{lang}");
    if lang == "zh-CN" {
        assert_eq!(b.latin_words(), Vec::<String>::new(), "the tab in Chinese");
        assert_eq!(b.overflowing(), Vec::<String>::new(), "the tab on a phone");
    }
}

#[test]
fn the_reliability_page_and_the_lifecycle_tab_in_both_languages() {
    let demo = Cistern::demo("ui-reliability")
        .rooms(4)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let (_, rooms) = crate::support::get(&format!("{base}/api/v1/rooms"));
    let room = rooms["rooms"][0]["id"].as_str().unwrap().to_owned();

    let phone = Browser::start_sized("ui-reliability-phone", 390, 844);
    phone.sign_in(&base, "zh-CN");
    check_page(&phone, "zh-CN");
    check_tab(&phone, &room, "zh-CN");

    let desk = Browser::start("ui-reliability-desk");
    desk.sign_in(&base, "en");
    check_page(&desk, "en");
    check_tab(&desk, &room, "en");
}
