//! The room score and the cockpit through the API on a demo node (issue 22 items 5, 6): once
//! today's figures are computed, every room has a score whose explanation adds up to it (the
//! exact contributions and the tenths shown), ranks in its zone and the fleet, zones name their
//! weakest dimension; the cockpit's board gives each tile a figure, an indicator drills from the
//! fleet to a zone, a room and its pumps with rows that make up their total; a user's board is
//! kept (audited) and bad boards are refused with their codes; the daily report is an .xlsx.

use crate::support::{call, get, wait_for, Cistern};
use serde_json::{json, Value};
use std::time::Duration;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Today's figures of every room, computed again on request until they have data.
fn compute_today(base: &str, rooms: &[String]) {
    let today = today(base, &rooms[0]);
    wait_for("today's figures with data", Duration::from_secs(60), || {
        let mut ok = true;
        for r in rooms {
            let (s, v) = call(
                "POST",
                &format!("{base}/api/v1/analysis/recompute"),
                Some(&json!({ "room": r, "date": today }).to_string()),
            );
            assert_eq!(s, 200, "{v}");
            ok &= v["figures"]["completeness"].as_f64().unwrap_or(0.0) > 0.0
                && v["figures"]["availability"].is_number();
        }
        ok.then_some(())
    });
}

fn today(base: &str, room: &str) -> String {
    let (s, v) = get(&format!("{base}/api/v1/analysis/days?room={room}"));
    assert_eq!(s, 200, "{v}");
    v["today"].as_str().unwrap().to_owned()
}

#[test]
fn scores_explain_themselves_and_the_cockpit_drills_to_a_pump() {
    let demo = Cistern::demo("analysis-score")
        .rooms(6)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let (_, inv) = get(&format!("{base}/api/v1/rooms"));
    let rooms: Vec<String> = inv["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rooms.len(), 6);
    compute_today(&base, &rooms);

    // The ranking: every room scored and ranked; zones name their weakest dimension.
    let (s, ranking) = get(&format!("{base}/api/v1/analysis/scores"));
    assert_eq!(s, 200, "{ranking}");
    let ranked = ranking["rooms"].as_array().unwrap();
    assert_eq!(ranked.len(), 6);
    let mut last = f64::INFINITY;
    for r in ranked {
        let score = f(&r["score"]);
        assert!((0.0..=100.0).contains(&score), "{r}");
        assert!(score <= last, "ranked best first");
        last = score;
        assert!(r["fleet_rank"].as_u64().unwrap() >= 1);
        assert!(r["zone_rank"].as_u64().unwrap() <= r["zone_of"].as_u64().unwrap());
        assert!(r["weakest"].is_string(), "{r}");
    }
    assert_eq!(ranked[0]["fleet_rank"], 1);
    let zones = ranking["zones"].as_array().unwrap();
    assert!(!zones.is_empty());
    assert!(zones.iter().all(|z| z["weakest"].is_string()));

    // Every room's explanation adds up to its score.
    for r in &rooms {
        let (s, v) = get(&format!("{base}/api/v1/analysis/score?room={r}"));
        assert_eq!(s, 200, "{v}");
        let score = f(&v["score"]["score"]);
        let mut total = 0.0;
        let mut shares = 0.0;
        for d in v["score"]["dimensions"].as_array().unwrap() {
            let mut dim = 0.0;
            for fact in d["facts"].as_array().unwrap() {
                dim += f(&fact["contribution"]);
                assert!(f(&fact["value"]).is_finite());
            }
            assert!((dim - f(&d["contribution"])).abs() < 1e-9, "{d}");
            total += dim;
            shares += f(&d["share"]);
            if d["score"].is_null() {
                assert_eq!(
                    f(&d["share"]),
                    0.0,
                    "a dimension left out carries no weight"
                );
                assert!(!d["missing"].as_array().unwrap().is_empty());
            }
        }
        assert!((total - score).abs() < 1e-9, "{r}: {total} != {score}");
        assert!((shares - 1.0).abs() < 1e-9);
        // The tenths shown add up to the score shown.
        let shown = &v["shown"];
        let sum: f64 = shown["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["facts"].as_array().unwrap().iter().map(f))
            .sum();
        assert!((sum - f(&shown["score"])).abs() < 1e-6, "{shown}");
        assert!((f(&shown["score"]) - score).abs() <= 0.05 + 1e-9);
        // The demo node has no security alarms yet, but knows it: a fact, not a gap.
        assert!(!v["trend"].as_array().unwrap().is_empty());
    }
    // A closed day (yesterday, computed again) is scored and stored as it closes: the trend
    // shows the stored score.
    let (_, days) = get(&format!("{base}/api/v1/analysis/days?room={}", rooms[0]));
    let today = days["today"].as_str().unwrap();
    let yesterday = {
        let (y, m, d) = (&today[..4], &today[5..7], &today[8..]);
        let date =
            chrono_free_yesterday(y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap());
        format!("{:04}-{:02}-{:02}", date.0, date.1, date.2)
    };
    let (s, v) = call(
        "POST",
        &format!("{base}/api/v1/analysis/recompute"),
        Some(&json!({ "room": rooms[0], "date": yesterday }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["day"]["closed"], true, "{v}");
    wait_for("yesterday's score stored", Duration::from_secs(30), || {
        let (_, v) = get(&format!("{base}/api/v1/analysis/score?room={}", rooms[0]));
        v["trend"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["date"] == yesterday.as_str() && d["stored"] == true)
            .then_some(())
    });
    let (s, v) = get(&format!("{base}/api/v1/analysis/score?room=XM-9999"));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_room"))
    );

    // The cockpit: the caller's board (the admin's default: the engineer's), each tile a figure.
    let (s, board) = get(&format!("{base}/api/v1/cockpit/board"));
    assert_eq!(s, 200, "{board}");
    assert_eq!(board["board"]["kind"], "engineer");
    assert_eq!(board["own"], false);
    assert_eq!(board["rooms"], 6);
    let tiles = board["tiles"].as_array().unwrap();
    assert!(!tiles.is_empty());
    let completeness = tiles
        .iter()
        .find(|t| t["indicator"]["id"] == "completeness")
        .expect("the engineer follows data completeness");
    let fleet_value = f(&completeness["value"]);
    assert!(fleet_value > 0.0 && fleet_value <= 1.0, "{completeness}");

    // Drill-down fleet → zone → room → pump, each level's rows making up its total. The board
    // and the drill read today's live figures a moment apart: the same value once nothing
    // arrived in between (asked again until then).
    let d = wait_for(
        "the drill's fleet value equal to the board's tile",
        Duration::from_secs(30),
        || {
            let tile = |b: &Value| {
                (b["tiles"].as_array().unwrap().iter())
                    .find(|t| t["indicator"]["id"] == "completeness")
                    .map(|t| f(&t["value"]))
            };
            let (_, board) = get(&format!("{base}/api/v1/cockpit/board"));
            let (s, d) = get(&format!(
                "{base}/api/v1/cockpit/drill?indicator=completeness"
            ));
            assert_eq!(s, 200, "{d}");
            let board_value = tile(&board)?;
            ((f(&d["drill"]["value"]) - board_value).abs() < 1e-9).then_some(d)
        },
    );
    let made_up = |d: &Value| {
        let (mut sum, mut w) = (0.0, 0.0);
        for r in d["drill"]["rows"].as_array().unwrap() {
            sum += f(&r["value"]) * f(&r["weight"]);
            w += f(&r["weight"]);
        }
        sum / w
    };
    assert!((made_up(&d) - f(&d["drill"]["value"])).abs() < 1e-9);
    let zone = d["drill"]["rows"][0]["key"].as_str().unwrap().to_owned();
    let (s, z) = get(&format!(
        "{base}/api/v1/cockpit/drill?indicator=completeness&zone={zone}"
    ));
    assert_eq!(s, 200, "{z}");
    assert!((made_up(&z) - f(&z["drill"]["value"])).abs() < 1e-9);
    let room = z["drill"]["rows"][0]["key"].as_str().unwrap().to_owned();
    let (s, r) = get(&format!(
        "{base}/api/v1/cockpit/drill?indicator=completeness&room={room}"
    ));
    assert_eq!(s, 200, "{r}");
    let devices: Vec<&str> = r["drill"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    assert!(devices.contains(&"P1") && devices.contains(&"room"), "{r}");
    assert!(r["drill"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| f(&x["value"]) > 0.0 && f(&x["value"]) <= 1.0));
    // Pump efficiency drills to the pumps only (those with an operating point today).
    let (s, pe) = get(&format!(
        "{base}/api/v1/cockpit/drill?indicator=pump_efficiency&room={room}"
    ));
    assert_eq!(s, 200, "{pe}");
    assert!(pe["drill"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["key"].as_str().unwrap().starts_with('P') && f(&x["value"]) <= 1.0));
    let (s, v) = get(&format!(
        "{base}/api/v1/cockpit/drill?indicator=crews_on_duty&zone={zone}"
    ));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("unknown_indicator"))
    );
    let (s, v) = get(&format!("{base}/api/v1/cockpit/drill?indicator=nope"));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_indicator"))
    );

    // A board of one's own: kept, audited; bad ones refused.
    let mine =
        json!({ "kind": "director", "tiles": ["room_score", "availability", "open_orders"] });
    let (s, v) = call(
        "PUT",
        &format!("{base}/api/v1/cockpit/board"),
        Some(&mine.to_string()),
    );
    assert_eq!(s, 200, "{v}");
    let (_, board) = get(&format!("{base}/api/v1/cockpit/board?period=month"));
    assert_eq!(board["own"], true);
    let ids: Vec<&str> = board["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["indicator"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["room_score", "availability", "open_orders"]);
    for (body, code) in [
        (json!({ "kind": "director", "tiles": [] }), "invalid_board"),
        (
            json!({ "kind": "director", "tiles": ["availability", "availability"] }),
            "invalid_board",
        ),
        (
            json!({ "kind": "director", "tiles": ["nope"] }),
            "unknown_indicator",
        ),
    ] {
        let (s, v) = call(
            "PUT",
            &format!("{base}/api/v1/cockpit/board"),
            Some(&body.to_string()),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}"
        );
    }
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=cockpit_board"));
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["ok"] == true), "{audit}");
    assert!(entries.iter().any(|e| e["ok"] == false), "{audit}");

    // The daily report: the fleet and its zones, then the rooms, in English.
    let token = crate::support::admin_token(&base, false);
    let mut resp = ureq::get(&format!(
        "{base}/api/v1/cockpit/report.xlsx?period=day&lang=en"
    ))
    .header("authorization", &format!("Bearer {token}"))
    .call()
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.body_mut().read_to_vec().unwrap();
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["Zones", "Rooms"]);
    let zones = book.worksheet_range("Zones").unwrap();
    let fleet_row: Vec<String> = zones
        .rows()
        .nth(3)
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(fleet_row[1], "Fleet", "{fleet_row:?}");
    let rooms_sheet = book.worksheet_range("Rooms").unwrap();
    assert_eq!(
        rooms_sheet.rows().count(),
        3 + 6,
        "title, blank, header and six rooms"
    );
}

/// The day before `y-m-d` (the test's own arithmetic, no date crate).
fn chrono_free_yesterday(y: i32, m: u32, d: u32) -> (i32, u32, u32) {
    if d > 1 {
        return (y, m, d - 1);
    }
    let (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (y, m, days[(m - 1) as usize])
}
