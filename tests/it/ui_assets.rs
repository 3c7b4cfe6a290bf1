//! The archives page and the room's archive tab (issue 21 items 1, 8 and 9) in a real headless
//! Chromium: on a 390×844 phone in Chinese, an engineer (rule author) filters the rooms by
//! kind, opens a room and its pump P1 (nameplate, H-Q and η-Q curves, warranty), replaces it
//! through the form with a new unit — the running room takes the new rating at once and the old
//! pump is in the retired history; on a desktop in English the room's archive tab shows the
//! retired pump and its curves. No key missing, nothing overflowing, no Latin word in zh-CN.
//! The archive's spreadsheet through the page's import dialog: the demo's export checked and
//! imported with its progress and report, and a spoiled file refused with its problems listed
//! by sheet, row and column, in Chinese, on a phone.

use crate::browser::Browser;
use crate::support::{get, post, wait_for, Cistern, IT_ADMIN_PASSWORD};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn clean(b: &Browser, at: &str, zh: bool) {
    assert_eq!(b.missing_keys(), Vec::<String>::new(), "{at}");
    assert_eq!(b.overflowing(), Vec::<String>::new(), "{at}");
    if zh {
        assert_eq!(b.latin_words(), Vec::<String>::new(), "{at}");
    }
}

#[test]
fn an_engineer_replaces_a_pump_on_a_phone_and_the_room_runs_with_it() {
    let demo = Cistern::demo("ui-assets").rooms(4).modbus_rooms(0).start();
    let base = demo.http().to_owned();
    let (status, v) = post(
        &format!("{base}/api/v1/users"),
        &json!({ "name": "gong", "role": "rule-author", "password": IT_ADMIN_PASSWORD })
            .to_string(),
    );
    assert_eq!(status, 201, "{v}");
    let (_, list) = get(&format!("{base}/api/v1/assets/rooms"));
    let room = list["rooms"][0]["id"].as_str().unwrap().to_owned();
    let (_, before) = get(&format!("{base}/api/v1/assets/rooms/{room}"));
    let old_serial = before["archive"]["equipment"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();

    let phone = Browser::start_sized("ui-assets-phone", 390, 844);
    phone.goto(&format!("{base}/?lang=zh-CN"));
    phone.submit_sign_in("gong", IT_ADMIN_PASSWORD);
    phone.until(
        "the console",
        Duration::from_secs(30),
        "return !document.getElementById('shell').hidden || null;",
    );
    phone.click(&phone.element("nav a[data-view=assets]", WAIT));
    phone.element("#view-assets a.as-room", WAIT);
    assert!(
        phone
            .js(
                "return !!document.getElementById('assets-tools');",
                json!([])
            )
            .as_bool()
            .unwrap(),
        "the import tools' place in the header"
    );
    clean(&phone, "the archives", true);
    // Filtered by kind (access control: every demo room has one).
    phone.js(
        "const s = document.getElementById('as-kind'); s.value = 'access_control'; \
         s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    phone.until(
        "the filtered list",
        WAIT,
        "return document.querySelectorAll('#view-assets a.as-room').length === 4 || null;",
    );
    phone.click(&phone.element(&format!("a.as-room[data-room=\"{room}\"]"), WAIT));
    phone.click(&phone.element("#view-assets table.assets-eq a[href$=\"/P1\"]", WAIT));
    phone.element("#view-assets .curve svg polyline", WAIT);
    assert_eq!(
        phone
            .js(
                "return document.querySelectorAll('#view-assets .curve svg').length;",
                json!([])
            )
            .as_u64(),
        Some(2),
        "the H-Q and η-Q curves"
    );
    clean(&phone, "the pump", true);

    // Replace it: a new unit, a new serial and rating.
    phone.click(&phone.element("#as-replace", WAIT));
    let serial = phone.element("#as-form input[name=serial]", WAIT);
    phone.type_into(&serial, "IT-UI-0001");
    phone.js(
        "const f = document.getElementById('as-form'); \
         f.elements['np_rated_power_kw'].value = '22'; \
         f.elements['installed'].value = '2026-12-01'; \
         f.elements['commissioned'].value = '2026-12-02'; \
         f.elements['warranty_end'].value = '2029-12-02';",
        json!([]),
    );
    clean(&phone, "the replacement form", true);
    phone.click(&phone.element("#as-form button[type=submit]", WAIT));
    wait_for("the running room's new pump", WAIT, || {
        let (_, v) = get(&format!("{base}/api/v1/rooms/{room}"));
        (v["spec"]["pumps"][0]["rated_power_kw"].as_f64() == Some(22.0)).then_some(())
    });
    let (_, after) = get(&format!("{base}/api/v1/assets/rooms/{room}"));
    let retired = after["archive"]["retired"].as_array().unwrap();
    assert_eq!(retired.last().unwrap()["equipment"]["serial"], old_serial);
    assert_eq!(retired.last().unwrap()["by"], "gong");
    assert_eq!(after["archive"]["equipment"][0]["serial"], "IT-UI-0001");

    // The room's archive tab, on a desktop in English: the new pump and the retired one.
    let desk = Browser::start("ui-assets-desktop");
    desk.sign_in(&base, "en");
    desk.goto(&format!("{base}/#/room/{room}/archive"));
    desk.until(
        "the archive tab with the retired pump",
        WAIT,
        &format!(
            "const t = document.querySelector('#r-tab .room-archive'); \
             return t && t.textContent.includes('IT-UI-0001') && t.textContent.includes('{old_serial}') \
               && t.querySelector('.curve svg') || null;"
        ),
    );
    clean(&desk, "the archive tab", false);
    // And in Chinese on the phone.
    phone.goto(&format!("{base}/?lang=zh-CN#/room/{room}/archive"));
    phone.until(
        "the archive tab on the phone",
        WAIT,
        "return document.querySelector('#r-tab .room-archive .assets-eq tbody tr') || null;",
    );
    clean(&phone, "the archive tab", true);
}

/// The page's import dialog on a phone in Chinese: a file checked, then imported, its report
/// shown; a spoiled file's problems listed by sheet, row and column, and nothing imported.
#[test]
fn the_archive_is_imported_through_the_pages_dialog_on_a_phone() {
    let demo = Cistern::demo("ui-assets-import")
        .rooms(4)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let token = crate::support::admin_token(&base, false);
    let dir = crate::support::temp_dir("ui-assets-import-files");
    let download = |path: &str| {
        let mut resp = ureq::get(&format!("{base}{path}"))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        resp.body_mut().read_to_vec().unwrap()
    };
    let good = dir.join("archive.xlsx");
    std::fs::write(
        &good,
        download("/api/v1/assets/export?format=xlsx&lang=zh-CN"),
    )
    .unwrap();
    // The equipment sheet with an unknown kind on its second data row.
    let csv = download("/api/v1/assets/export?format=csv&sheet=equipment&lang=zh-CN");
    let mut rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&csv[3..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let kind = rows[0].iter().position(|h| h == "设备类型").unwrap();
    rows[2][kind] = "spaceship".into();
    let mut out = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        out.write_record(r).unwrap();
    }
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, out.into_inner().unwrap()).unwrap();

    let phone = Browser::start_sized("ui-assets-import-phone", 390, 844);
    phone.sign_in(&base, "zh-CN");
    phone.click(&phone.element("nav a[data-view=assets]", WAIT));
    phone.element("#view-assets a.as-room", WAIT);
    let open_dialog = || {
        phone.click(&phone.element("#assets-tools .a-import", WAIT));
        phone.element("dialog.asset-import[open]", WAIT);
    };
    open_dialog();
    clean(&phone, "the import dialog", true);
    phone.send_keys(
        &phone.element("dialog.asset-import .a-file", WAIT),
        good.to_str().unwrap(),
    );
    phone.click(&phone.element("dialog.asset-import .a-check:not([disabled])", WAIT));
    let checked = phone.until(
        "the check's report",
        Duration::from_secs(60),
        "const el = document.querySelector('dialog.asset-import .a-ok'); return el && el.textContent;",
    );
    assert!(checked.as_str().unwrap().contains("校验通过"), "{checked}");
    clean(&phone, "the check's report", false);
    phone.click(&phone.element("dialog.asset-import .a-apply:not([disabled])", WAIT));
    let done = phone.until(
        "the import's report",
        Duration::from_secs(60),
        "const el = document.querySelector('dialog.asset-import .a-ok'); return el && el.textContent.includes('已导入') && el.textContent;",
    );
    assert!(done.as_str().unwrap().contains("4 个不变"), "{done}");
    let bar = phone.js(
        "const p = document.querySelector('dialog.asset-import progress'); return p.value === p.max && p.max >= 1;",
        json!([]),
    );
    assert_eq!(bar, json!(true), "the progress bar ends full");
    phone.click(&phone.element("dialog.asset-import button.cancel", WAIT));

    open_dialog();
    phone.send_keys(
        &phone.element("dialog.asset-import .a-file", WAIT),
        bad.to_str().unwrap(),
    );
    phone.click(&phone.element("dialog.asset-import .a-check:not([disabled])", WAIT));
    let rows = phone.until(
        "the problems",
        Duration::from_secs(60),
        "const rows = [...document.querySelectorAll('dialog.asset-import .a-problems tbody tr')]; return rows.length ? rows.map((r) => [...r.cells].map((c) => c.textContent)) : null;",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let letter = char::from(b'A' + kind as u8).to_string();
    assert_eq!(rows[0][0], "设备");
    assert_eq!(rows[0][1], "3");
    assert_eq!(rows[0][2], letter.as_str());
    assert!(
        rows[0][3].as_str().unwrap().contains("未知设备类型"),
        "{rows:?}"
    );
    assert!(
        phone
            .js(
                "return document.querySelector('dialog.asset-import .a-apply').disabled;",
                json!([])
            )
            .as_bool()
            .unwrap(),
        "a refused file cannot be imported"
    );
    assert_eq!(phone.missing_keys(), Vec::<String>::new());
    assert_eq!(phone.overflowing(), Vec::<String>::new());
}
