//! Work-order export, KPIs and gauges through the HTTP API (issue 20 item 8), on a node's API
//! assembled in the test around a hand-moved clock, so that every timing is known: orders are
//! created and worked through REST by a dispatcher and three crew members, minutes apart; the
//! KPIs come back exact; the .xlsx export opens with calamine and matches the filtered list row
//! for row (Chinese titles and headers intact, times as real dates); the CSV starts with a
//! byte-order mark and parses back; /metrics carries the backlog gauges by team and priority
//! only.

use actix_web::{test, web, App};
use cistern::api::{self, ApiState};
use cistern::auth::{Principal, Role, Security};
use cistern::business::workorders::gauges::OrderGauges;
use cistern::business::workorders::service::OrderMetrics;
use cistern::business::workorders::{WorkOrders, WorkOrdersConfig};
use cistern::store::embedded::EmbeddedStore;
use cistern::store::records::Records;
use cistern_actors::{FleetRegistry, ManualClock};
use cistern_schemas::Timestamp;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-07 00:00 UTC (08:00 in Xiamen).
const T0: i64 = 1_796_601_600_000;
const MIN: u64 = 60;

const INVENTORY: &str = r#"
    [[zones]]
    id = "siming"
    name = "思明"
    [[zones]]
    id = "huli"
    name = "湖里"
    [[rooms]]
    id = "XM-0001"
    name = "金山花园泵房"
    lat = 24.48
    lon = 118.09
    zone = "siming"
    pumps = []
    tanks = []
    [[rooms]]
    id = "XM-0002"
    name = "莲花小区泵房"
    lat = 24.49
    lon = 118.12
    zone = "siming"
    pumps = []
    tanks = []
    [[rooms]]
    id = "XM-0003"
    name = "湖里大道泵房"
    lat = 24.51
    lon = 118.11
    zone = "huli"
    pumps = []
    tanks = []
"#;

const ORDERS: &str = r#"
    [[teams]]
    id = "siming"
    name = "思明维修班"
    name_en = "Siming crew"
    zones = ["siming"]
    lead = "boss"
    manager = "boss"
    members = [{ user = "li" }, { user = "wang" }]
    [[teams]]
    id = "huli"
    name = "湖里维修班"
    name_en = "Huli crew"
    zones = ["huli"]
    lead = "boss"
    manager = "boss"
    members = [{ user = "zhao" }]
"#;

/// The API of a node holding work orders, its clock, the service and its gauges.
struct Node {
    clock: ManualClock,
    svc: Arc<WorkOrders>,
    gauges: OrderGauges,
    state: web::Data<ApiState>,
    security: web::Data<Security>,
    _dir: Scratch,
}

struct Scratch(std::path::PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn node(name: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("cistern-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let records: Arc<dyn Records> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let clock = ManualClock::new(Timestamp(T0));
    let metrics = prometheus::Registry::new();
    let security = Security::default();
    for (user, role) in [
        ("boss", Role::Operator),
        ("li", Role::Viewer),
        ("wang", Role::Viewer),
        ("zhao", Role::Viewer),
    ] {
        security
            .auth
            .insert_token(format!("token-{user}"), Principal::new(user, role));
    }
    let config: WorkOrdersConfig = toml::from_str(ORDERS).unwrap();
    let inventory = toml::from_str(INVENTORY).unwrap();
    let svc = Arc::new(
        WorkOrders::start(
            &config,
            records,
            &inventory,
            Arc::new(clock.clone()),
            security.clone(),
            OrderMetrics::register(&metrics).unwrap(),
        )
        .await
        .unwrap(),
    );
    let gauges = OrderGauges::register(&metrics).unwrap();
    let state = web::Data::new(ApiState {
        registry: Arc::new(FleetRegistry::default()),
        metrics,
        field: None,
        history: None,
        alarms: None,
        security: security.clone(),
        ws: None,
        readiness: None,
        writer: None,
        plans: None,
        basemap: None,
        workorders: Some(svc.clone()),
        lifecycle: None,
        analysis: None,
        notify: None,
        imports: None,
        archive: None,
        cleaning: None,
        inspections: None,
        cluster: None,
        backups: None,
    });
    Node {
        clock,
        svc,
        gauges,
        state,
        security: web::Data::new(security),
        _dir: Scratch(dir),
    }
}

macro_rules! app {
    ($node:expr) => {
        test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    cistern::auth::middleware::authenticate,
                ))
                .app_data($node.security.clone())
                .app_data($node.state.clone())
                .configure(api::configure),
        )
        .await
    };
}

/// A request as `user`: (status, headers, body bytes).
macro_rules! call {
    ($app:expr, $user:expr, $method:ident, $path:expr, $body:expr) => {{
        let req = test::TestRequest::$method()
            .uri(&$path)
            .insert_header(("Authorization", format!("Bearer token-{}", $user)));
        let req = match $body {
            Some(b) => req.set_json(&b),
            None => req,
        };
        let res = test::call_service(&$app, req.to_request()).await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = test::read_body(res).await.to_vec();
        (status, headers, body)
    }};
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// The orders of the scenario, created and worked at known minutes (see the KPI test).
macro_rules! seed {
    ($node:expr, $app:expr) => {{
        let node = &$node;
        let at = |minutes: u64| node.clock.set(Timestamp(T0 + (minutes * MIN * 1000) as i64));
        let create = |room: &str, assignee: &str, priority: &str| {
            json!({ "template": "inspection", "room": room, "assignee": assignee, "priority": priority })
        };
        let mut ids = Vec::new();
        // A: 0 min, XM-0001, li, P4: accepted at 10, en route at 20, on site at 40, done at
        // 100, verified at 110.
        at(0);
        let (s, _, b) = call!($app, "boss", post, "/api/v1/workorders", Some(create("XM-0001", "li", "P4")));
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        let a = json_of(&b)["order"]["id"].as_str().unwrap().to_owned();
        // B: 60 min, XM-0002, wang, P1 (30 min / 4 h): accepted at 105 (late), on site at
        // 120, done at 240, sent back at 250, done again at 260, verified at 270.
        at(60);
        let (s, _, b) = call!($app, "boss", post, "/api/v1/workorders", Some(create("XM-0002", "wang", "P1")));
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        let bb = json_of(&b)["order"]["id"].as_str().unwrap().to_owned();
        // C: 120 min, XM-0003 (Huli), zhao, P1: never accepted.
        at(120);
        let (s, _, b) = call!($app, "boss", post, "/api/v1/workorders", Some(create("XM-0003", "zhao", "P1")));
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        let c = json_of(&b)["order"]["id"].as_str().unwrap().to_owned();
        let step = |id: &str, action: &str, body: Value| {
            (format!("/api/v1/workorders/{id}/{action}"), body)
        };
        let work: Vec<(u64, &str, (String, Value))> = vec![
            (10, "li", step(&a, "accept", json!({}))),
            (20, "li", step(&a, "en_route", json!({}))),
            (40, "li", step(&a, "on_site", json!({}))),
            (41, "li", step(&a, "check", json!({ "item": 0 }))),
            (42, "li", step(&a, "check", json!({ "item": 1, "reading": 0.42 }))),
            (43, "li", step(&a, "check", json!({ "item": 2 }))),
            (100, "li", step(&a, "complete", json!({}))),
            (105, "wang", step(&bb, "accept", json!({}))),
            (110, "boss", step(&a, "verify", json!({}))),
            (120, "wang", step(&bb, "on_site", json!({}))),
            (121, "wang", step(&bb, "check", json!({ "item": 0 }))),
            (122, "wang", step(&bb, "check", json!({ "item": 1, "reading": 0.40 }))),
            (123, "wang", step(&bb, "check", json!({ "item": 2 }))),
            (240, "wang", step(&bb, "complete", json!({}))),
            (250, "boss", step(&bb, "reject", json!({ "comment": "回访仍有异响" }))),
            (260, "wang", step(&bb, "complete", json!({}))),
            (270, "boss", step(&bb, "verify", json!({}))),
        ];
        for (minute, user, (path, body)) in work {
            at(minute);
            let (s, _, b) = call!($app, user, post, path.clone(), Some(body));
            assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&b));
        }
        // D: 180 min, XM-0001 again (a repeat of A's cause), li, P4: accepted at 185.
        at(180);
        let (s, _, b) = call!($app, "boss", post, "/api/v1/workorders", Some(create("XM-0001", "li", "P4")));
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        let d = json_of(&b)["order"]["id"].as_str().unwrap().to_owned();
        at(185);
        let (s, _, b) = call!($app, "li", post, format!("/api/v1/workorders/{d}/accept"), Some(json!({})));
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        ids.extend([a, bb, c, d]);
        at(300);
        ids
    }};
}

fn group<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {rows}"))
}

#[actix_web::test]
async fn kpis_of_orders_with_known_timings_are_exact_and_the_gauges_have_bounded_labels() {
    let node = node("wo-kpis").await;
    let app = app!(node);
    let _ids = seed!(node, app);
    let (from, to) = (T0, T0 + 300 * 60_000);
    let (s, _, b) = call!(
        app,
        "li",
        get,
        format!("/api/v1/workorder-kpis?from={from}&to={to}&by=team"),
        None::<Value>
    );
    assert_eq!(s, 200);
    let rows = json_of(&b);
    let siming = group(&rows, "siming");
    // A, B and D: two closed, D open for 2 h.
    assert_eq!(siming["created"], 3, "{siming}");
    assert_eq!(siming["closed"], 2);
    assert_eq!(siming["open"], 1);
    // Acknowledged after 10, 45 and 5 minutes.
    assert_eq!(
        siming["mean_acknowledge_s"],
        json!((600.0 + 2_700.0 + 300.0) / 3.0)
    );
    // Set off after 20 (en route) and 60 (straight on site) minutes; D has not.
    assert_eq!(siming["mean_response_s"], json!((1_200.0 + 3_600.0) / 2.0));
    // First completed after 100 and 180 minutes.
    assert_eq!(
        siming["mean_resolution_s"],
        json!((6_000.0 + 10_800.0) / 2.0)
    );
    // A met its targets, B accepted 15 min late, D cannot be judged yet.
    assert_eq!(siming["sla_compliance"], json!(0.5));
    // B was sent back.
    assert_eq!(siming["first_time_fix"], json!(0.5));
    assert_eq!(siming["close_rate"], json!(2.0 / 3.0));
    assert_eq!(siming["backlog_age_s"], json!(7_200.0));
    assert_eq!(siming["oldest_open_s"], json!(7_200.0));
    assert_eq!(siming["repeat_failures"], 1, "D repeats A's room and cause");
    let huli = group(&rows, "huli");
    assert_eq!(
        (huli["created"].as_u64(), huli["open"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(huli["mean_acknowledge_s"], Value::Null);
    assert_eq!(
        huli["sla_compliance"],
        json!(0.0),
        "P1 unaccepted after 30 min"
    );
    assert_eq!(huli["backlog_age_s"], json!(10_800.0));
    assert_eq!(huli["repeat_failures"], 0);
    // Per person: li's two orders.
    let (_, _, b) = call!(
        app,
        "li",
        get,
        format!("/api/v1/workorder-kpis?from={from}&to={to}&by=assignee"),
        None::<Value>
    );
    let li = group(&json_of(&b), "li").clone();
    assert_eq!(li["created"], 2);
    assert_eq!(li["mean_acknowledge_s"], json!((600.0 + 300.0) / 2.0));
    assert_eq!(li["sla_compliance"], json!(1.0));

    // The gauges, as a scrape reads them after a refresh.
    node.gauges.refresh(&node.svc).await.unwrap();
    let (s, _, b) = call!(app, "li", get, "/metrics", None::<Value>);
    assert_eq!(s, 200);
    let text = String::from_utf8(b).unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
    };
    assert_eq!(
        value(r#"cistern_workorders_open{priority="P4",team="siming"}"#),
        1.0
    );
    assert_eq!(
        value(r#"cistern_workorders_open{priority="P1",team="huli"}"#),
        1.0
    );
    assert_eq!(
        value(r#"cistern_workorders_overdue{priority="P1",team="huli"}"#),
        1.0
    );
    assert_eq!(
        value(r#"cistern_workorders_overdue{priority="P4",team="siming"}"#),
        0.0
    );
    assert_eq!(
        value(r#"cistern_workorders_oldest_open_age_seconds{priority="P1",team="huli"}"#),
        10_800.0
    );
    assert_eq!(
        value(r#"cistern_workorders_sla_compliance_ratio{priority="P1",team="siming"}"#),
        0.0
    );
    assert_eq!(
        value(r#"cistern_workorders_sla_compliance_ratio{priority="P4",team="siming"}"#),
        1.0
    );
    assert_eq!(
        value(r#"cistern_workorders_sla_compliance_ratio{priority="P1",team="huli"}"#),
        0.0
    );
    // Bounded: team and priority only, never a person.
    for line in text.lines().filter(|l| {
        [
            "open",
            "overdue",
            "oldest_open_age_seconds",
            "sla_compliance_ratio",
        ]
        .iter()
        .any(|m| l.starts_with(&format!("cistern_workorders_{m}{{")))
    }) {
        let labels = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
        let mut names: Vec<&str> = labels
            .split(',')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["priority", "team"], "{line}");
        for person in ["li", "wang", "zhao"] {
            assert!(!line.contains(&format!("\"{person}\"")), "{line}");
        }
    }
    // An order closed empties its group: the gauge goes, not stays stale.
    node.clock.advance(Duration::from_secs(60));
    let (s, _, b) = call!(
        app,
        "boss",
        post,
        format!("/api/v1/workorders/{}/cancel", _ids[2]),
        Some(json!({ "comment": "重复" }))
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    node.gauges.refresh(&node.svc).await.unwrap();
    let (_, _, b) = call!(app, "li", get, "/metrics", None::<Value>);
    let text = String::from_utf8(b).unwrap();
    assert!(
        !text.contains(r#"cistern_workorders_open{priority="P1",team="huli"}"#),
        "{text}"
    );
}

/// The catalogue word `orders.<key>` in `lang`.
fn word(lang: &str, key: &str) -> String {
    let path = format!(
        "{}/src/api/web/i18n-{lang}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut at = &v["orders"];
    for part in key.split('.') {
        at = &at[part];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("no orders.{key} in {lang}"))
        .to_owned()
}

#[actix_web::test]
async fn the_export_matches_the_filtered_list_in_xlsx_and_csv_with_chinese_intact() {
    use calamine::{Data, Reader};
    let node = node("wo-export").await;
    let app = app!(node);
    let _ = seed!(node, app);
    let filter = "team=siming&open=false";
    let (s, _, b) = call!(
        app,
        "boss",
        get,
        format!("/api/v1/workorders?{filter}"),
        None::<Value>
    );
    assert_eq!(s, 200);
    let list = json_of(&b);
    let orders = list["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 2, "A and B are closed: {list}");

    // .xlsx in the caller's default language (Chinese).
    let (s, headers, bytes) = call!(
        app,
        "boss",
        get,
        format!("/api/v1/workorders/export?format=xlsx&{filter}"),
        None::<Value>
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
    let disposition = headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"workorders-20261207")
            && disposition.ends_with(".xlsx\""),
        "{disposition}"
    );
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("workorders").unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 1 + orders.len());
    let text = |d: &Data| d.to_string();
    assert_eq!(text(&rows[0][0]), word("zh-CN", "col_id"));
    assert_eq!(text(&rows[0][4]), word("zh-CN", "col_title"));
    assert_eq!(text(&rows[0][9]), word("zh-CN", "col_created"));
    for (row, o) in rows[1..].iter().zip(&orders) {
        assert_eq!(text(&row[0]), o["id"].as_str().unwrap());
        assert_eq!(text(&row[1]), o["priority"].as_str().unwrap());
        assert_eq!(text(&row[3]), word("zh-CN", "states.closed"));
        assert_eq!(text(&row[4]), o["title_zh"].as_str().unwrap());
        assert!(text(&row[4]).contains("泵房"), "{}", text(&row[4]));
        assert_eq!(text(&row[5]), o["room"].as_str().unwrap());
        assert_eq!(text(&row[7]), "siming");
        assert_eq!(text(&row[8]), o["assignee"].as_str().unwrap());
        // A real date, in Xiamen's time (UTC+8).
        let Data::DateTime(created) = &row[9] else {
            panic!("created is not a date: {:?}", row[9])
        };
        let expected =
            (o["created_at"].as_i64().unwrap() + 8 * 3_600_000) as f64 / 86_400_000.0 + 25_569.0;
        assert!(
            (created.as_f64() - expected).abs() < 1e-9,
            "{} vs {expected}",
            created.as_f64()
        );
    }

    // CSV in English: the byte-order mark, then what the list shows.
    let (s, headers, bytes) = call!(
        app,
        "boss",
        get,
        format!("/api/v1/workorders/export?format=csv&lang=en&{filter}"),
        None::<Value>
    );
    assert_eq!(s, 200);
    assert!(headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "a UTF-8 byte-order mark");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(&reader.headers().unwrap()[0], word("en", "col_id"));
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), orders.len());
    for (r, o) in records.iter().zip(&orders) {
        assert_eq!(&r[0], o["id"].as_str().unwrap());
        assert_eq!(&r[3], word("en", "states.closed"));
        assert_eq!(
            &r[4],
            o["title"].as_str().unwrap(),
            "English titles in English"
        );
    }
    // Chinese in a CSV too (the caller's language by default), intact.
    let (_, _, bytes) = call!(
        app,
        "boss",
        get,
        format!("/api/v1/workorders/export?format=csv&{filter}"),
        None::<Value>
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(
        text.contains(orders[0]["title_zh"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.starts_with(&word("zh-CN", "col_id")));

    // Bad input: a clear refusal.
    for bad in ["format=pdf", "lang=fr", "limit=0", "priority=P9"] {
        let (s, _, b) = call!(
            app,
            "boss",
            get,
            format!("/api/v1/workorders/export?{bad}"),
            None::<Value>
        );
        assert_eq!(s, 400, "{bad}: {}", String::from_utf8_lossy(&b));
    }
}
