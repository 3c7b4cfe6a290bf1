//! The console's performance figures (issue 19), measured in a real headless Chromium against a
//! demo of the city's 2,100 rooms: the fleet map's first paint and frame rate while zooming, a
//! room page's time to its first live values, and a 30-day trend over history written for it.
//! A benchmark, not a test of budgets: it is ignored in the suite and run on demand,
//!
//! ```text
//! cargo nextest run -p cistern --test it --run-ignored only ui_perf --no-capture
//! ```
//!
//! and prints the figures (also written to `target/tmp/ui-perf.json`). The page marks its own
//! moments with User Timing (`cistern:map-drawn`, `cistern:room-live`, `cistern:trends-drawn`).

use crate::browser::Browser;
use crate::support::{get, Cistern};
use cistern_schemas::telemetry;
use cistern_schemas::{DeviceId, DeviceKind, Timestamp};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::time::Duration;

const ROOMS: usize = 2_100;
const ROOM: &str = "XM-0001";
const DAY_MS: i64 = 86_400_000;
/// History written for the trend: one sample a minute for 29 days (the ingest refuses samples
/// older than 30 days).
const HISTORY_DAYS: i64 = 29;
const STEP_MS: i64 = 60_000;

/// Writes `HISTORY_DAYS` of one-minute history for the points the room page's trends show,
/// through the demo's own broker as the room's gateway would replay it. Returns the rows
/// written, one point of every device written to, and the time of the last row.
fn write_history(mqtt: &str, room: &Value) -> (usize, Vec<String>, i64) {
    let (host, port) = mqtt
        .trim_start_matches("mqtt://")
        .trim_start_matches("tcp://")
        .rsplit_once(':')
        .unwrap();
    let mut opts = MqttOptions::new("ui-perf-backfill", host, port.parse().unwrap());
    opts.set_inflight(100);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(opts, 200);
    let now = Timestamp::now().0;
    let start = now - HISTORY_DAYS * DAY_MS;
    let rows = (HISTORY_DAYS * DAY_MS / STEP_MS) as usize;
    let mut devices: Vec<(String, DeviceKind, Vec<&str>)> = vec![(
        "room".into(),
        DeviceKind::Room,
        vec![
            "outlet_pressure",
            "outlet_setpoint",
            "inlet_pressure",
            "outlet_flow",
            "inlet_flow",
            "chlorine",
            "active_power",
        ],
    )];
    for (list, kind, point) in [
        ("tanks", DeviceKind::Tank, "level"),
        ("pumps", DeviceKind::Pump, "frequency"),
    ] {
        for d in room[list].as_array().unwrap() {
            let unit = d["id"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .unwrap()
                .to_owned();
            devices.push((unit, kind, vec![point]));
        }
    }
    // Rows per message: a room record carries every point of the room kind (absent ones too),
    // so 1,000 of them pass the ingest's payload limit (256 KiB) and were refused as too large;
    // 250 stay far below it for every kind.
    const ROWS_PER_MESSAGE: usize = 250;
    let chunks = rows.div_ceil(ROWS_PER_MESSAGE);
    let probes: Vec<String> = devices
        .iter()
        .map(|(unit, kind, points)| match kind {
            DeviceKind::Room => format!("{ROOM}.{}", points[0]),
            _ => format!("{ROOM}/{unit}.{}", points[0]),
        })
        .collect();
    let last = start + (rows as i64 - 1) * STEP_MS;
    let total = devices.len() * chunks;
    let publisher = std::thread::spawn(move || {
        for (unit, kind, points) in &devices {
            let device: DeviceId = format!("{ROOM}/{unit}").parse().unwrap();
            let width = kind.points().len();
            let index: Vec<usize> = points
                .iter()
                .map(|p| kind.point_index(p).unwrap())
                .collect();
            for c in 0..chunks {
                let values: Vec<(Timestamp, Vec<f64>)> = (c * ROWS_PER_MESSAGE
                    ..((c + 1) * ROWS_PER_MESSAGE).min(rows))
                    .map(|i| {
                        let t = start + i as i64 * STEP_MS;
                        let mut v = vec![f64::NAN; width];
                        // A daily cycle, so that the chart has a shape to draw.
                        let phase = (t % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU;
                        for (k, &at) in index.iter().enumerate() {
                            v[at] = 0.3 + 0.1 * (phase + k as f64).sin().abs();
                        }
                        (Timestamp(t), v)
                    })
                    .collect();
                let records: Vec<(Timestamp, &[f64])> =
                    values.iter().map(|(t, v)| (*t, v.as_slice())).collect();
                let payload = telemetry::encode(*kind, &records, true);
                assert!(
                    payload.len() <= telemetry::PayloadLimits::default().max_bytes,
                    "a backfill message of {} bytes would be refused as too large",
                    payload.len()
                );
                client
                    .publish(telemetry::topic(&device), QoS::AtLeastOnce, false, payload)
                    .unwrap();
                if c == 0 {
                    eprintln!("backfill: writing {chunks} messages for {device}");
                }
            }
        }
    });
    // The connection is polled here while the thread publishes; done once the broker has
    // acknowledged every message (it has them; the node stores them after).
    let mut acked = 0;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                if acked % 200 == 0 {
                    eprintln!("backfill: {acked} of {total} acknowledged");
                }
                if acked == total {
                    break;
                }
            }
            Ok(_) => {}
            Err(error) => panic!("the backfill's connection failed after {acked} of {total} acknowledgements: {error}"),
        }
    }
    publisher.join().unwrap();
    (rows * total / chunks, probes, last)
}

fn mark(browser: &Browser, name: &str) -> Option<f64> {
    browser
        .js(
            &format!(
                "const m = performance.getEntriesByName('{name}'); \
                 return m.length ? m[m.length - 1].startTime : null;"
            ),
            json!([]),
        )
        .as_f64()
}

#[test]
#[ignore = "a benchmark: run on demand (see the module's doc)"]
fn console_figures_at_2100_rooms() {
    let demo = Cistern::demo("ui-perf")
        .rooms(ROOMS)
        .ready_within(Duration::from_secs(300))
        .start();
    let base = demo.http().to_owned();
    let (_, room) = get(&format!("{base}/api/v1/rooms/{ROOM}"));
    let (_, ready) = get(&format!("{base}/readyz"));
    let browser = Browser::start("ui-perf-chromium");
    browser.sign_in(&base, "zh-CN");
    // The map's first paint in a fresh page (the session survives a reload).
    browser.goto(&format!("{base}/?lang=zh-CN#/map"));
    browser.until(
        "the map drawn",
        Duration::from_secs(60),
        "return performance.getEntriesByName('cistern:map-drawn').length > 0 || null;",
    );
    let map_drawn = mark(&browser, "cistern:map-drawn").unwrap();
    // Of which building the drawing (the base map, the rooms, their clusters) in the page.
    let map_build = browser.js(
        "const m = performance.getEntriesByName('cistern:map-drawn'); \
         return m.length ? m[m.length - 1].detail.build_ms : null;",
        json!([]),
    );
    let first_paint = browser
        .js(
            "const p = performance.getEntriesByName('first-contentful-paint'); \
             return p.length ? p[0].startTime : null;",
            json!([]),
        )
        .as_f64();
    let circles = browser.js(
        "return document.querySelectorAll('#map circle.room').length",
        json!([]),
    );
    assert_eq!(circles, ROOMS, "every room on the map");
    // What the overview paints: cluster markers and the rooms outside any cluster.
    let markers = browser.js(
        "return { clusters: document.querySelectorAll('#map g.cluster').length, \
                  rooms: document.querySelectorAll('#map circle.room:not(.clustered)').length };",
        json!([]),
    );

    // Frames while the operator zooms in and out with the wheel for 3 s: one wheel event per
    // animation frame, as a trackpad sends them.
    let frames = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [], "script":
            "const done = arguments[arguments.length - 1]; \
             const svg = document.getElementById('map'); \
             const box = svg.getBoundingClientRect(); \
             const gaps = []; let last = performance.now(); const end = last + 3000; \
             const step = (now) => { gaps.push(now - last); last = now; \
               const dy = Math.sin(now / 400) * 40; \
               svg.dispatchEvent(new WheelEvent('wheel', { deltaY: dy, clientX: box.left + box.width / 2, \
                 clientY: box.top + box.height / 2, bubbles: true, cancelable: true })); \
               if (now < end) requestAnimationFrame(step); else done(gaps); }; \
             requestAnimationFrame(step);" })),
    );
    let mut gaps: Vec<f64> = frames
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|g| g.as_f64().unwrap())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let fps = gaps.len() as f64 / (gaps.iter().sum::<f64>() / 1000.0);
    let p95_frame = gaps[gaps.len() * 95 / 100];
    // A committed view (the zoom-in button): the viewBox set and the rooms clustered again,
    // through to the next frame painted.
    let commit = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [], "script":
            "const done = arguments[arguments.length - 1]; \
             document.getElementById('map-zoom-reset').click(); \
             requestAnimationFrame(() => setTimeout(() => { \
               const t0 = performance.now(); document.getElementById('map-zoom-in').click(); \
               const sync = performance.now() - t0; \
               requestAnimationFrame(() => done({ sync_ms: sync, to_frame_ms: performance.now() - t0, \
                 clusters: document.querySelectorAll('#map g.cluster').length })); }, 200));" })),
    );

    // A room page: from the click (the hash change) to its mimic drawn with live values.
    let room_live = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [ROOM], "script":
            "const done = arguments[arguments.length - 1]; const id = arguments[0]; \
             performance.clearMarks('cistern:room-live'); \
             const t0 = performance.now(); location.hash = `#/room/${id}`; \
             const poll = () => { const m = performance.getEntriesByName('cistern:room-live'); \
               if (m.length) done(m[0].startTime - t0); else setTimeout(poll, 5); }; poll();" })),
    );
    // The figures so far, in case the month of history below does not arrive.
    eprintln!(
        "map drawn {map_drawn:.0} ms (first contentful paint {first_paint:?} ms), zoom {fps:.1} \
         frames/s (p95 frame {p95_frame:.1} ms), overview markers {markers}, a committed zoom \
         {commit}, map built in {map_build} ms of it, room's first live values {room_live} ms"
    );
    // A month of history for the room's trend points, then the 30-day trend over it.
    let (written, probes, last) = write_history(demo.mqtt(), &room);
    // The broker acknowledged the backfill when it had it, not when the node had stored it:
    // wait until the last row of every device is in history, so that the trend is measured on
    // the whole month and not while the node still takes it in.
    crate::support::wait_for(
        "the last written row of every device in history",
        Duration::from_secs(600),
        || {
            probes
                .iter()
                .all(|point| {
                    let (_, v) = get(&format!(
                        "{base}/api/v1/history?point={point}&from={}&to={}",
                        last - 10 * STEP_MS,
                        last
                    ));
                    v["series"][0]["samples"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x[0] == last))
                })
                .then_some(())
        },
    );

    // The trends over 30 days: from the range's button to every chart drawn with its history.
    browser.element("#r-range button[data-range]", Duration::from_secs(30));
    let trend = browser.call(
        "POST",
        "/execute/async",
        Some(json!({ "args": [], "script":
            "const done = arguments[arguments.length - 1]; \
             const buttons = [...document.querySelectorAll('#r-range button[data-range]')]; \
             const b = buttons[buttons.length - 1]; \
             performance.clearMarks('cistern:trends-drawn'); \
             const t0 = performance.now(); b.click(); \
             const poll = () => { const m = performance.getEntriesByName('cistern:trends-drawn'); \
               if (!m.length) { setTimeout(poll, 5); return; } \
               const reqs = performance.getEntriesByType('resource') \
                 .filter((e) => e.name.includes('/api/v1/history') && e.startTime >= t0); \
               done({ ms: m[0].startTime - t0, points: m[0].detail.points, range: b.dataset.range, \
                 history_requests: reqs.length, \
                 history_request_ms: Math.max(0, ...reqs.map((e) => e.duration)), \
                 history_bytes: reqs.reduce((n, e) => n + e.encodedBodySize, 0) }); }; poll();" })),
    );
    // What the 30-day chart of the outlet pressure holds: hourly buckets over the month.
    let now = Timestamp::now().0;
    let (_, month) = get(&format!(
        "{base}/api/v1/history?point={ROOM}.outlet_pressure&from={}&to={now}&step=1h",
        now - 30 * DAY_MS
    ));
    let buckets = month["series"][0]["buckets"].as_array().map_or(0, Vec::len);
    assert!(
        buckets as i64 >= HISTORY_DAYS * 24 - 24,
        "the month's hourly buckets of the outlet pressure: {buckets}"
    );
    browser.js(
        "document.getElementById('r-trends').scrollIntoView(); return null;",
        json!([]),
    );
    browser.screenshot(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-perf-trend-30d.png"),
    );

    let figures = json!({
        "rooms": ROOMS,
        "map_first_contentful_paint_ms": first_paint,
        "map_drawn_ms": map_drawn,
        "map_zoom_fps": (fps * 10.0).round() / 10.0,
        "map_zoom_p95_frame_ms": (p95_frame * 10.0).round() / 10.0,
        "map_overview_markers": markers,
        "map_build_ms": map_build,
        "map_commit": commit,
        "room_first_live_values_ms": room_live,
        "trend": trend,
        "trend_outlet_pressure_hourly_buckets": buckets,
        "history_rows_written": written,
        "history_days": HISTORY_DAYS,
        "node_ready_at_start": ready["ready"],
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-perf.json"),
        serde_json::to_string_pretty(&figures).unwrap(),
    )
    .unwrap();
    assert_eq!(
        trend["range"], "30d",
        "the longest range is 30 days: {trend}"
    );
}
