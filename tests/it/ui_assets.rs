//! The archives page and the room's archive tab (issue 21 items 1, 8 and 9) in a real headless
//! Chromium: on a 390×844 phone in Chinese, an engineer (rule author) filters the rooms by
//! kind, opens a room and its pump P1 (nameplate, H-Q and η-Q curves, warranty), replaces it
//! through the form with a new unit — the running room takes the new rating at once and the old
//! pump is in the retired history; on a desktop in English the room's archive tab shows the
//! retired pump and its curves. No key missing, nothing overflowing, no Latin word in zh-CN.

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
