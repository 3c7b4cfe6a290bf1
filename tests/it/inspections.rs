//! Online inspection and tank cleaning through the binary's REST API (issue 21 items 6, 7, 9):
//! a team lead (an operator) starts a daily remote inspection, records its items, turns an
//! anomaly into a work order in one call, finishes it on time; the plans, coverage, period
//! report, the room's list and the inspector's figures follow; refusals carry their codes
//! (a viewer, another inspector, an unfinished finish, a second finish, an unknown item or
//! template, a bad photo). The cleaning API: a schedule for every tank, a failing water test
//! recorded with its follow-up order, intervals set by admins only, and every write audited.

use crate::support::{call_as, get, rooms_by_zone, token_for, Cistern};
use cistern::lab::crews::CREW_PASSWORD;
use serde_json::{json, Value};

fn as_user(token: &str, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    call_as(Some(token), method, url, body.as_deref())
}

#[test]
fn an_inspection_is_walked_an_anomaly_becomes_an_order_and_the_figures_follow() {
    let mut demo = Cistern::demo("inspections")
        .rooms(6)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let (zone, rooms) = rooms_by_zone(&base).into_iter().next().unwrap();
    let room = rooms[0].clone();
    let (status, teams) = get(&format!("{base}/api/v1/teams"));
    assert_eq!(status, 200, "{teams}");
    let team = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["zones"].as_array().unwrap().iter().any(|z| z == &zone))
        .unwrap_or_else(|| panic!("no team serves {zone}: {teams}"))
        .clone();
    let lead = team["lead"].as_str().unwrap().to_owned();
    let member = team["members"][0]["user"].as_str().unwrap().to_owned();
    let manager = team["manager"].as_str().unwrap().to_owned();
    assert_ne!(lead, manager);
    let lead_t = token_for(&base, &lead, CREW_PASSWORD);
    let member_t = token_for(&base, &member, CREW_PASSWORD);
    let manager_t = token_for(&base, &manager, CREW_PASSWORD);
    let api = |p: &str| format!("{base}/api/v1/{p}");

    // Templates and plans: every room has both plans, due today.
    let (status, tpl) = get(&api("inspection-templates"));
    assert_eq!(status, 200, "{tpl}");
    let ids: Vec<&str> = (tpl["templates"].as_array().unwrap().iter())
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["daily_remote", "monthly_onsite"]);
    let items = tpl["templates"][0]["item"].as_array().unwrap().len();
    let (_, plans) = get(&api("inspection-plans"));
    assert_eq!(plans["count"], 12, "{plans}");
    let (_, cov) = get(&api("inspection-coverage"));
    assert_eq!(cov["coverage"][0]["zone"], Value::Null);
    assert_eq!(cov["coverage"][0]["plans"], 12);

    // A viewer reads but does not inspect; an unknown template is refused.
    let start = json!({ "room": room, "template": "daily_remote" });
    let (status, v) = as_user(&member_t, "POST", &api("inspections"), Some(start.clone()));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &api("inspections"),
        Some(json!({ "room": room, "template": "weekly" })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("unknown_inspection_template"))
    );

    let (status, v) = as_user(&lead_t, "POST", &api("inspections"), Some(start));
    assert_eq!(status, 201, "{v}");
    let id = v["inspection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["inspection"]["items"].as_array().unwrap().len(), items);
    let item = |n: usize| api(&format!("inspections/{id}/items/{n}"));

    let (status, v) = as_user(
        &lead_t,
        "POST",
        &item(0),
        Some(json!({ "status": "ok", "value": 0.45 })),
    );
    assert_eq!(status, 200, "{v}");
    // Another operator may not record someone else's inspection; an unknown item; a photo
    // that is not an image.
    let (status, v) = as_user(
        &manager_t,
        "POST",
        &item(1),
        Some(json!({ "status": "ok" })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("not_inspector"))
    );
    let (status, v) = as_user(&lead_t, "POST", &item(99), Some(json!({ "status": "ok" })));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown_item"))
    );
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &item(1),
        Some(json!({ "status": "ok", "photo": "https://example.invalid/x.jpg" })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_inspection"))
    );
    // A photo larger than the API's usual JSON bodies is taken; a body past the photo's limit
    // is refused as too large.
    let photo = format!("data:image/jpeg;base64,{}", "A".repeat(100_000));
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &item(0),
        Some(json!({ "status": "ok", "value": 0.45, "photo": photo })),
    );
    assert_eq!(status, 200, "{}", v["error"]);
    assert_eq!(
        v["inspection"]["items"][0]["photo"].as_str().map(str::len),
        Some(photo.len())
    );
    let huge = format!("data:image/jpeg;base64,{}", "A".repeat(2_000_000));
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &item(0),
        Some(json!({ "status": "ok", "photo": huge })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Not finished before every item has its result.
    let finish = api(&format!("inspections/{id}/finish"));
    let (status, v) = as_user(&lead_t, "POST", &finish, None);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_inspection"))
    );

    // Item 1 (free chlorine) is an anomaly: one call raises the order; a second returns it.
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &item(1),
        Some(json!({ "status": "anomaly", "value": 0.02, "note": "余氯偏低" })),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &api(&format!("inspections/{id}/items/0/order")),
        None,
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_inspection")),
        "an item found ok raises nothing"
    );
    let raise = api(&format!("inspections/{id}/items/1/order"));
    let (status, v) = as_user(&lead_t, "POST", &raise, None);
    assert_eq!(status, 201, "{v}");
    let order = v["order"].as_str().unwrap().to_owned();
    assert_eq!(v["inspection"]["items"][1]["order"], order.as_str());
    let (_, again) = as_user(&lead_t, "POST", &raise, None);
    assert_eq!(again["order"], order.as_str());
    let (status, o) = get(&api(&format!("workorders/{order}")));
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["order"]["room"], room.as_str());
    assert_eq!(o["order"]["template"], "inspection_anomaly");

    for n in 2..items {
        let (status, v) = as_user(&lead_t, "POST", &item(n), Some(json!({ "status": "ok" })));
        assert_eq!(status, 200, "item {n}: {v}");
    }
    let (status, v) = as_user(&lead_t, "POST", &finish, None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["inspection"]["on_time"], true);
    let (status, v) = as_user(&lead_t, "POST", &finish, None);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("inspection_finished"))
    );

    // The plan moved on; the report, the room's list and the inspector's figures count it.
    let (_, plans) = get(&api(&format!("inspection-plans?room={room}")));
    let daily = (plans["plans"].as_array().unwrap().iter())
        .find(|p| p["template"] == "daily_remote")
        .unwrap();
    assert!(
        daily["last"].is_string() && daily["overdue"] == false,
        "{daily}"
    );
    assert_ne!(daily["last"], daily["due"]);
    let (status, report) = get(&api("inspections"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["inspections"],
            &report["finished"],
            &report["on_time"],
            &report["anomalies"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1))
    );
    assert_eq!(report["orders"], json!([order]));
    let (_, of_room) = get(&api(&format!("inspections?room={room}")));
    assert_eq!(of_room["rows"][0]["id"], id.as_str());
    let (_, people) = get(&api("inspectors"));
    let me = (people["inspectors"].as_array().unwrap().iter())
        .find(|p| p["inspector"] == lead.as_str())
        .unwrap();
    assert_eq!(
        (&me["finished"], &me["anomalies"], &me["orders"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert!(me["mean_minutes"].as_f64().unwrap() >= 0.0);
    let (status, v) = get(&api("inspections?from=2026-12-07&to=2026-01-01"));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_range"))
    );

    // Tank cleaning through the API.
    let (status, sched) = get(&api("cleaning"));
    assert_eq!(status, 200, "{sched}");
    assert!(sched["count"].as_u64().unwrap() >= 6, "{sched}");
    // The demo's tanks were all cleaned within the last 150 days: none overdue, none never.
    for t in sched["tanks"].as_array().unwrap() {
        assert_eq!(t["status"], "ok", "{t}");
    }
    assert_eq!(sched["limits"].as_array().unwrap().len(), 7);
    let tank = format!("cleaning/{room}/T1");
    let today = report["to"].as_str().unwrap().to_owned();
    let test = json!({ "colour": 5, "turbidity_ntu": 2.5, "odour": false, "ph": 7.1,
        "free_chlorine_mg_l": 0.3, "coliforms_per_100ml": 0, "bacteria_cfu_ml": 10 });
    let body = json!({ "date": today, "crew": "张伟", "test": test });
    let (status, v) = as_user(
        &member_t,
        "POST",
        &api(&format!("{tank}/records")),
        Some(body.clone()),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &api(&format!("{tank}/records")),
        Some(body),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["record"]["passed"], false);
    assert_eq!(v["record"]["failures"][0]["parameter"], "turbidity_ntu");
    assert!(v["record"]["follow_up"].is_string(), "{v}");
    assert_eq!(v["tank"]["status"], "failed");
    let (status, v) = as_user(
        &lead_t,
        "POST",
        &api(&format!("{tank}/records")),
        Some(json!({ "date": "2099-01-01", "crew": "张伟", "test": test })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_cleaning"))
    );
    let (status, v) = as_user(
        &lead_t,
        "PUT",
        &api(&format!("{tank}/interval")),
        Some(json!({ "days": 91 })),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, v) = crate::support::put(&api(&format!("{tank}/interval")), r#"{"days": 91}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tank"]["interval_days"], 91);
    let (status, v) = crate::support::put(&api(&format!("{tank}/interval")), r#"{"days": 0}"#);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_interval"))
    );
    let (status, v) = get(&api(&format!("cleaning/{room}/T9")));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown_tank"))
    );
    let (status, v) = get(&api(&tank));
    assert_eq!(status, 200, "{v}");
    let log = v["log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "the demo's cleaning and ours: {v}");
    assert_eq!(log[0]["crew"], "张伟", "newest first");
    assert_eq!(log[1]["recorded_by"], "demo");

    // Every write that reached its handler audited, refusals included (a role the policy
    // refuses never gets there).
    for (action, n) in [
        ("inspection_start", 2),
        ("inspection_item", items + 5),
        ("inspection_order", 3),
        ("inspection_finish", 3),
        ("cleaning_record", 2),
        ("cleaning_interval", 2),
    ] {
        let (_, audit) = get(&api(&format!("audit?action={action}&limit=100")));
        assert_eq!(audit["count"], n, "{action}: {audit}");
    }

    // After a restart on the same data: the plan, the inspection, the log and the interval.
    demo.terminate();
    demo.restart();
    let base = demo.http().to_owned();
    let api = |p: &str| format!("{base}/api/v1/{p}");
    let (_, plans) = get(&api(&format!("inspection-plans?room={room}")));
    let after = (plans["plans"].as_array().unwrap().iter())
        .find(|p| p["template"] == "daily_remote")
        .unwrap();
    assert_eq!(after, daily, "the plan after the restart");
    let (_, v) = get(&api(&format!("inspections/{id}")));
    assert_eq!(v["inspection"]["items"][1]["order"], order.as_str());
    let (_, v) = get(&api(&tank));
    assert_eq!(v["log"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["tank"]["interval_days"], 91);
}
