//! Every page of the console in both languages and both viewports (issue 19's Tests): one demo
//! node and one headless Chromium per viewport (a 1366×900 desktop and a 390×844 phone) visit the
//! sign-in page, the fleet map, the alarm list, a room page (mimic, alarms, trends, tanks, pumps),
//! the tank plans and a district's plan, the work orders (with a fault report's form), their KPIs and a team's dispatch board and one order, the parts reliability page and a room's lifecycle tab, the energy report and a room's pump efficiency, the leakage page (the fleet and a room's nights), the comparisons page (two points with last week overlaid), the cockpit (with a drill-down), the room ranking (with a score's explanation) and the wall screen, the knowledge base and a problem (with its editor), the archives, an equipment (with its editor) and a room's archive tab, and the administration tabs (users, API tokens, sessions, audit
//! log, rules and one rule) and the user's own account, in zh-CN and in English. On each the page's main element is drawn,
//! no catalogue key is missing, every character has a glyph in the installed fonts, nothing reaches past the viewport, and in zh-CN no Latin word is
//! left outside data marked `translate="no"`; the same in the dialogs and results the pages'
//! buttons open (acknowledge, shelve, an alarm's history, a set-point's confirmation, a user's
//! new password, a rule's syntax check and backtest). Every problem of every page is gathered and
//! reported at once; the screenshots go under the target directory (`target/tmp/pages/`).

use crate::browser::Browser;
use crate::support::{get, post, Cistern, IT_ADMIN_PASSWORD};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// The key under which WebDriver passes an element to a script.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A page: its route, a script returning its main element once it is drawn (null before), and
/// the dialogs and results its buttons open: a name, the selector of the button and a script
/// true once what it opens is filled in.
struct Page {
    route: String,
    main: &'static str,
    dialogs: Vec<(&'static str, &'static str, &'static str)>,
}

fn pages(room: &str, district: &str, rule: &str, order: &str, inspection: &str) -> Vec<Page> {
    let page = |route: String, main: &'static str| Page {
        route,
        main,
        dialogs: Vec::new(),
    };
    let with = |mut page: Page, dialogs: Vec<(&'static str, &'static str, &'static str)>| {
        page.dialogs = dialogs;
        page
    };
    vec![
        page(
            "map".into(),
            "return document.querySelector('#map g.cluster, #map circle.room:not(.clustered)');",
        ),
        with(
            page(
                "alarms".into(),
                "return document.querySelector('#alarm-rows tr[data-alarm]');",
            ),
            vec![
                (
                    "ack",
                    "#alarm-rows button[data-action=ack]",
                    "return document.querySelector('#command-dialog[open]');",
                ),
                (
                    "shelve",
                    "#alarm-rows button[data-action=shelve]",
                    "return document.querySelector('#command-dialog[open]');",
                ),
                (
                    "history",
                    "#alarm-rows button[data-action=history]",
                    "return document.querySelector('#history-dialog[open][data-loaded]');",
                ),
            ],
        ),
        with(
            page(
                format!("room/{room}"),
                "return document.querySelector('#r-trends .trend canvas') \
                   && document.querySelector('#r-tanks *') \
                   && document.querySelector('#r-mimic svg.mimic-svg');",
            ),
            vec![(
                "set-point",
                "#r-sp:not([hidden]) #r-sp-write",
                "return document.querySelector('dialog.confirm-write[open]');",
            )],
        ),
        page(
            "plans".into(),
            "return document.querySelector('.plan-tanks tr[data-tank]') \
               && document.querySelector('#p-timeline svg.timeline');",
        ),
        page(
            format!("plans/{district}"),
            "return document.querySelector('.plan-tanks tr[data-tank]') \
               && document.querySelector('#p-timeline svg.timeline');",
        ),
        with(
            page(
                "orders".into(),
                "return document.querySelector('#view-orders a.order-card');",
            ),
            vec![(
                "report",
                "#o-report",
                "return document.querySelector('#o-report-form .new-order select[name=template]');",
            )],
        ),
        page(
            "orders/kpis?period=30d&by=team".into(),
            "return document.querySelector('#k-table tr[data-group]');",
        ),
        page(
            "orders/board".into(),
            "return document.querySelector('#b-board .b-col h3');",
        ),
        with(
            page(
                format!("orders/{order}"),
                "return document.querySelector('#view-orders .order .timeline li');",
            ),
            vec![(
                "cancel",
                "#view-orders button.cmd-cancel",
                "return document.querySelector('#view-orders .o-form:not([hidden]) input');",
            )],
        ),
        with(
            page(
                "cleaning".into(),
                "return document.querySelector('#view-cleaning .cl-table tbody tr');",
            ),
            vec![(
                "record a cleaning",
                "#view-cleaning .cl-record",
                "return document.querySelector('#view-cleaning .cl-form input[name=crew]');",
            )],
        ),
        page(
            format!("room/{room}/cleaning"),
            "return document.querySelector('#rc-list .cl-table tbody tr');",
        ),
        page(
            "inspections".into(),
            "return document.querySelector('#view-inspections .in-cov') \
               && document.querySelector('#view-inspections .in-rows tbody tr');",
        ),
        page(
            format!("inspections/{inspection}"),
            "return document.querySelector('#view-inspections .in-item') \
               && document.querySelector('#in-values .in-val');",
        ),
        page(
            format!("room/{room}/inspections"),
            "return document.querySelector('#ri-rows .in-rows tbody tr');",
        ),
        page(
            "reliability".into(),
            "return document.querySelector('#rel-classes svg.rel-chart polyline.rel-fit') \
               && document.querySelector('#rel-suppliers tbody tr');",
        ),
        page(
            "energy".into(),
            "return document.querySelector('#en-fleet .en-card') \
               && document.querySelector('#en-rooms tbody tr');",
        ),
        page(
            format!("efficiency/{room}"),
            "return document.querySelector('#ef-cards .ef-card') \
               && document.querySelector('#ef-rooms tbody tr');",
        ),
        page(
            "leakage".into(),
            "return document.querySelector('#lk-rows tbody tr');",
        ),
        page(
            format!("leakage/{room}"),
            "return document.querySelector('#lk-rows tbody tr') \
               && document.querySelector('#lk-room h3');",
        ),
        page(
            format!("compare?point={room}.outlet_flow&point={room}.outlet_pressure&range=1d&earlier=week"),
            "return document.querySelector('#cmp-body svg.cmp-chart polyline.cmp-line') \
               && document.querySelector('#cmp-body .cmp-legend li');",
        ),
        page(
            format!("room/{room}/lifecycle"),
            "return document.querySelector('#lc-table tbody tr');",
        ),
        with(
            page(
                "cockpit".into(),
                "return document.querySelector('#ck-tiles .ck-tile .ck-value');",
            ),
            vec![(
                "drill-down",
                "#ck-tiles .ck-tile .ck-name",
                "return document.querySelector('#ck-drill-rows tbody tr');",
            )],
        ),
        with(
            page(
                "ranking".into(),
                "return document.querySelector('#rk-rooms tbody tr.rk-room');",
            ),
            vec![(
                "explanation",
                "#rk-rooms tr.rk-room td",
                "return document.querySelector('#rk-explain-rows tbody tr.rk-dim');",
            )],
        ),
        page(
            "wall".into(),
            "return document.querySelector('#wall-body .wall-tile .wall-value');",
        ),
        page(
            "knowledge".into(),
            "return document.querySelector('#view-knowledge a.kb-problem');",
        ),
        page(
            "assets".into(),
            "return document.querySelector('#view-assets a.as-room');",
        ),
        with(
            page(
                format!("assets/{room}/P1"),
                "return document.querySelector('#view-assets .curve svg polyline');",
            ),
            vec![(
                "edit equipment",
                "#view-assets #as-edit",
                "return document.querySelector('#as-form:not([hidden]) input[name=serial]');",
            )],
        ),
        page(
            format!("room/{room}/archive"),
            "return document.querySelector('#r-tab .room-archive .assets-eq tbody tr');",
        ),
        with(
            page(
                "knowledge/pump_fault".into(),
                "return document.querySelector('#view-knowledge .kb-cause li');",
            ),
            vec![(
                "edit",
                "#view-knowledge #kb-edit",
                "return document.querySelector('#view-knowledge .kb-editor input');",
            )],
        ),
        with(
            page(
                "admin/users".into(),
                "return document.querySelector('.admin-body table.admin-users tbody tr');",
            ),
            vec![(
                "password",
                ".admin-body button[data-act=password]",
                "return document.querySelector('.admin-ask[open]');",
            )],
        ),
        page(
            "admin/tokens".into(),
            "return document.querySelector('.admin-body table.admin-tokens tbody tr');",
        ),
        page(
            "admin/sessions".into(),
            "return document.querySelector('.admin-body table.admin-sessions tbody tr');",
        ),
        with(
            page(
                "account".into(),
                "const rules = document.querySelector('#view-account .password-rules'); \
                 return document.querySelector('#view-account table.my-sessions tbody tr[data-session]') \
                   && rules && rules.textContent ? rules.closest('.account') : null;",
            ),
            vec![(
                "end a session",
                "#view-account table.my-sessions button[data-session]",
                "return document.querySelector('.account-ask[open]');",
            )],
        ),
        page(
            "admin/audit".into(),
            "return document.querySelector('.admin-body table.admin-audit tbody tr');",
        ),
        page(
            "admin/rules".into(),
            "return document.querySelector('.admin-body tbody tr[data-rule]');",
        ),
        with(
            page(
                format!("admin/rules/{rule}"),
                "return document.querySelector('.admin-body .rule-source');",
            ),
            vec![
                (
                    "syntax check",
                    ".rule-actions button.check",
                    "return document.querySelector('.diagnostics .diag');",
                ),
                (
                    "backtest",
                    ".rule-actions button.backtest",
                    "return document.querySelector('.backtest-result table.compare');",
                ),
            ],
        ),
    ]
}

/// The page's problems: missing keys, characters no font draws, overflow, and in zh-CN Latin
/// words.
fn problems(browser: &Browser, lang: &str, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in browser.missing_keys() {
        out.push(format!("{at}: missing key {key}"));
    }
    for g in browser.missing_glyphs() {
        out.push(format!("{at}: no font draws {g}"));
    }
    for e in browser.overflowing() {
        out.push(format!("{at}: overflowing {e}"));
    }
    if lang == "zh-CN" {
        for w in browser.latin_words() {
            out.push(format!("{at}: Latin word {w}"));
        }
    }
    out
}

#[test]
fn every_page_in_both_languages_on_a_desktop_and_a_phone() {
    let demo = Cistern::demo("ui-pages").rooms(12).modbus_rooms(2).start();
    let base = demo.http().to_owned();
    let (status, inventory) = get(&format!("{base}/api/v1/rooms"));
    assert_eq!(status, 200, "{inventory}");
    let room = inventory["rooms"][0]["id"].as_str().unwrap().to_owned();
    // An alarm on the board, so that the alarm list and the room page show one.
    let (status, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{room}","fault":"intrusion","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    // The intrusion's work order, for the orders pages.
    let order = crate::support::wait_for("the intrusion's order", WAIT, || {
        let (_, v) = get(&format!("{base}/api/v1/workorders?room={room}"));
        v["orders"][0]["id"].as_str().map(str::to_owned)
    });
    let (_, plans) = get(&format!("{base}/api/v1/districts"));
    let district = plans["districts"]
        .as_array()
        .and_then(|ds| ds.last())
        .and_then(|d| d["district"].as_str())
        .unwrap_or_else(|| panic!("a planned district: {plans}"))
        .to_owned();
    let (_, rules) = get(&format!("{base}/api/v1/rules"));
    let rule = rules["rules"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a rule: {rules}"))
        .to_owned();
    // An inspection under way, for the guided page and the reports.
    let (status, v) = post(
        &format!("{base}/api/v1/inspections"),
        &format!(r#"{{"room":"{room}","template":"daily_remote"}}"#),
    );
    assert_eq!(status, 201, "{v}");
    let inspection = v["inspection"]["id"].as_str().unwrap().to_owned();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pages");
    std::fs::create_dir_all(&shots).unwrap();

    let mut found = Vec::new();
    let mut visited = 0;
    let mut dialogs = 0;
    for (viewport, width, height) in [("desktop", 1366, 900), ("phone", 390, 844)] {
        let browser = Browser::start_sized(&format!("ui-pages-{viewport}"), width, height);
        for lang in ["zh-CN", "en"] {
            // Signed out: the sign-in page in this language.
            browser.goto(&format!("{base}/"));
            browser.js("sessionStorage.clear();", json!([]));
            browser.goto(&format!("{base}/?lang={lang}"));
            browser.until(
                "the sign-in page",
                WAIT,
                &format!(
                    "return !document.getElementById('login').hidden \
                       && document.documentElement.lang === '{lang}' || null;"
                ),
            );
            let at = format!("{viewport} {lang} sign-in");
            found.extend(problems(&browser, lang, &at));
            browser.submit_sign_in("admin", IT_ADMIN_PASSWORD);
            browser.until(
                "the console after sign-in",
                WAIT,
                "return !document.getElementById('shell').hidden || null;",
            );
            let viewport_width = browser.js("return innerWidth", json!([]));
            assert_eq!(viewport_width, width, "{viewport}'s width");
            for page in pages(&room, &district, &rule, &order, &inspection) {
                let at = format!("{viewport} {lang} #/{}", page.route);
                browser.goto(&format!("{base}/?lang={lang}#/{}", page.route));
                let drawn = browser.until(
                    &format!("{at}: its main element drawn"),
                    WAIT,
                    &format!(
                        "const main = (() => {{ {} }})(); \
                         if (!main) return null; const r = main.getBoundingClientRect(); \
                         return r.width > 0 && r.height > 0 \
                           && document.documentElement.lang === '{lang}' || null;",
                        page.main
                    ),
                );
                assert_eq!(drawn, true, "{at}");
                visited += 1;
                browser.screenshot(&shots.join(format!(
                    "{viewport}-{lang}-{}.png",
                    page.route.replace('/', "-")
                )));
                found.extend(problems(&browser, lang, &at));
                for (name, button, ready) in &page.dialogs {
                    let at = format!("{at} ({name} dialog)");
                    let opener = browser.element(button, WAIT);
                    let mut element = serde_json::Map::new();
                    element.insert(ELEMENT.into(), opener.into());
                    browser.js(
                        "arguments[0].scrollIntoView({ block: 'center' }); arguments[0].click();",
                        json!([element]),
                    );
                    browser.until(&format!("{at} open"), WAIT, ready);
                    browser.screenshot(&shots.join(format!(
                        "{viewport}-{lang}-{}-{name}.png",
                        page.route.replace('/', "-")
                    )));
                    found.extend(problems(&browser, lang, &at));
                    browser.js(
                        "for (const d of document.querySelectorAll('dialog[open]')) d.close();",
                        json!([]),
                    );
                    dialogs += 1;
                }
            }
        }
    }
    assert_eq!(
        dialogs, 60,
        "15 dialogs and results × 2 languages × 2 viewports"
    );
    assert_eq!(visited, 144, "36 pages × 2 languages × 2 viewports");
    assert!(
        found.is_empty(),
        "{} problems:\n{}",
        found.len(),
        found.join("\n")
    );
}
