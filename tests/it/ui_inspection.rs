//! The guided inspection in a real headless Chromium (issue 21 item 7): a team lead signs in on
//! a 390×844 phone in Chinese, opens the inspections page, starts a room's daily remote round
//! and walks it one item at a time beside the room's live values — ok, ok… then an anomaly with
//! a note, turned into a work order with one button — and finishes it; every button reachable
//! with a thumb, no English, no missing key, nothing past the screen's edge. The order exists
//! with the room and the `inspection_anomaly` template. Then the same in English on a desktop:
//! the finished inspection, the inspections page, the cleaning page and the room's cleaning and
//! inspections tabs.

use crate::browser::Browser;
use crate::support::{get, rooms_by_zone, Cistern};
use cistern::lab::crews::CREW_PASSWORD;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

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
    let el = browser.element(css, WAIT);
    assert_eq!(browser.js(REACHABLE, json!([css])), "ok", "{css}");
    browser.click(&el);
}

fn clean(browser: &Browser, screen: &str, zh: bool) {
    assert_eq!(browser.missing_keys(), Vec::<String>::new(), "{screen}");
    assert_eq!(browser.overflowing(), Vec::<String>::new(), "{screen}");
    if zh {
        assert_eq!(browser.latin_words(), Vec::<String>::new(), "{screen}");
    }
}

/// Waits until item `i` is the one shown.
fn at_item(browser: &Browser, i: usize) {
    browser.until(
        &format!("item {}", i + 1),
        WAIT,
        &format!("return document.querySelector('.in-dot.cur[data-i=\"{i}\"]') && document.querySelector('.in-item') || null;"),
    );
}

#[test]
fn an_inspection_walked_on_a_phone_ends_with_an_anomaly_turned_into_a_work_order() {
    let demo = Cistern::demo("ui-inspection")
        .rooms(6)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let (zone, rooms) = rooms_by_zone(&base).into_iter().next().unwrap();
    let room = rooms[0].clone();
    let (_, teams) = get(&format!("{base}/api/v1/teams"));
    let lead = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["zones"].as_array().unwrap().iter().any(|z| z == &zone))
        .and_then(|t| t["lead"].as_str())
        .unwrap()
        .to_owned();
    let (_, tpl) = get(&format!("{base}/api/v1/inspection-templates"));
    let items = tpl["templates"][0]["item"].as_array().unwrap().len();
    assert!(items >= 3);

    let phone = Browser::start_sized("ui-inspection-phone", 390, 844);
    phone.goto(&format!("{base}/?lang=zh-CN"));
    phone.submit_sign_in(&lead, CREW_PASSWORD);
    phone.until(
        "the console",
        WAIT,
        "return !document.getElementById('shell').hidden || null;",
    );
    press(&phone, "nav a[data-view=inspections]");
    let start = format!(".in-start[data-room=\"{room}\"][data-template=\"daily_remote\"]");
    phone.element(&start, WAIT);
    phone.element(".in-cov", WAIT);
    clean(&phone, "the inspections page", true);
    press(&phone, &start);
    at_item(&phone, 0);
    // The room's live values beside the item (the live client's `room` topic).
    phone.until(
        "the room's live values",
        WAIT,
        "return document.querySelector('#in-values .in-val[data-point]') || null;",
    );
    clean(&phone, "the first item", true);

    // Item 1 ok, item 2 an anomaly with a note, raised as an order; the rest ok.
    let anomaly = 1;
    for i in 0..items {
        at_item(&phone, i);
        if i == anomaly {
            let note = phone.element("#in-note", WAIT);
            phone.type_into(&note, "余氯偏低，需复核加氯设备");
            press(&phone, "#in-anomaly");
            press(&phone, "#in-raise");
            phone.until(
                "the order's link",
                WAIT,
                "return document.querySelector('.in-order a[href^=\"#/orders/\"]') || null;",
            );
            clean(&phone, "the anomaly's order", true);
            press(&phone, "#in-next");
        } else {
            press(&phone, "#in-ok");
        }
        phone.until(
            &format!("item {} recorded", i + 1),
            WAIT,
            &format!("return document.querySelector('.in-dot[data-i=\"{i}\"].ok, .in-dot[data-i=\"{i}\"].anomaly') || null;"),
        );
    }
    press(&phone, "#in-finish");
    phone.element(".in-done", WAIT);
    clean(&phone, "the finished inspection", true);
    let order = phone
        .js(
            "return document.querySelector('.in-anomalies a').textContent;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_owned();
    let id = phone
        .js(
            "return decodeURIComponent(location.hash.split('/')[2]);",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_owned();

    // The order is real: the room's, from the anomaly template, the note in its comment.
    let (status, o) = get(&format!("{base}/api/v1/workorders/{order}"));
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["order"]["room"], room.as_str());
    assert_eq!(o["order"]["template"], "inspection_anomaly");
    assert!(o.to_string().contains("余氯偏低"), "{o}");
    let (_, ins) = get(&format!("{base}/api/v1/inspections/{id}"));
    assert_eq!(ins["inspection"]["inspector"], lead.as_str());
    assert!(ins["inspection"]["finished_at"].is_number(), "{ins}");
    assert_eq!(ins["inspection"]["items"][anomaly]["order"], order.as_str());

    // In English on a desktop: the inspection, the pages and the room's tabs.
    let desk = Browser::start("ui-inspection-desk");
    desk.sign_in(&base, "en");
    for (route, main) in [
        (format!("inspections/{id}"), ".in-done"),
        ("inspections".to_owned(), ".in-rows tbody tr"),
        ("cleaning".to_owned(), ".cl-table tbody tr"),
        (
            format!("room/{room}/cleaning"),
            "#rc-list .cl-table tbody tr",
        ),
        (
            format!("room/{room}/inspections"),
            "#ri-rows .in-rows tbody tr",
        ),
    ] {
        desk.goto(&format!("{base}/?lang=en#/{route}"));
        desk.element(main, WAIT);
        clean(&desk, &route, false);
    }
    // The cleaning form shows the limits and flags a reading outside them as it is typed.
    desk.goto(&format!("{base}/?lang=en#/room/{room}/cleaning"));
    desk.click(&desk.element("#rc-list .cl-record", WAIT));
    let turbidity = desk.element(".cl-form input[name=turbidity_ntu]", WAIT);
    desk.type_into(&turbidity, "3");
    desk.until(
        "the turbidity flagged",
        WAIT,
        "return !document.querySelector('[data-field=turbidity_ntu] .cl-flag').hidden || null;",
    );
    clean(&desk, "the cleaning form", false);
    // An admin gives the tank its own interval: the schedule shows it.
    let days = desk.element("#rc-interval input[name=days]", WAIT);
    let tank = desk.js(
        "return document.querySelector('#rc-interval select').value;",
        json!([]),
    );
    desk.type_into(&days, "91");
    desk.click(&desk.element("#rc-interval button[type=submit]", WAIT));
    desk.until(
        "the tank's own interval",
        WAIT,
        "return [...document.querySelectorAll('#rc-list .cl-table td')].some((td) => /\\b91\\b/.test(td.textContent)) || null;",
    );
    let (_, v) = get(&format!(
        "{base}/api/v1/cleaning/{}",
        tank.as_str().unwrap()
    ));
    assert_eq!(v["tank"]["interval_days"], 91, "{v}");
    assert_eq!(v["tank"]["own_interval"], true, "{v}");
}
