//! Energy and pump efficiency through the binary (issue 22 items 1 and 2): on the demo, once a
//! few minutes of the simulated fleet are in the historian, a room's day gives kWh, m³ and a
//! lift but says `low_coverage` rather than an intensity from two minutes of meter readings;
//! its pumps have an efficiency from the archive's nameplate curve (0 < η < 1, above the
//! measured wire-to-water) with their operating points; the fleet's
//! report of today, summed from the ledger, holds the rooms with figures; bad periods, limits,
//! zones and rooms are refused with their codes.

use crate::support::{get, post, wait_for, Cistern};
use std::time::Duration;

#[test]
fn the_demo_reports_energy_and_pump_efficiency_with_honest_refusals() {
    let demo = Cistern::demo("analysis-energy")
        .rooms(3)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    let room = "XM-0001";

    // A room's day of energy: two minutes of counters give a delta; an intensity needs the
    // meters read for 10 minutes, so until then the day says `low_coverage` instead of one.
    let day = wait_for("energy of the day", Duration::from_secs(240), || {
        let (status, body) = get(&format!("{base}/api/v1/analysis/energy/rooms/{room}"));
        assert_eq!(status, 200, "{body}");
        let e = &body["energy"];
        (e["kwh"].as_f64().is_some_and(|k| k > 0.0) && e["m3"].as_f64().is_some_and(|m| m > 0.0))
            .then_some(body)
    });
    let e = &day["energy"];
    assert!(e["kwh_per_m3"].is_null(), "{e}");
    assert!(e["set_efficiency"].is_null(), "{e}");
    assert!(
        e["missing"]
            .as_array()
            .unwrap()
            .contains(&"low_coverage".into()),
        "{e}"
    );
    let lift = e["lift_mpa"].as_f64().unwrap();
    assert!(lift > 0.1 && lift < 1.0, "{e}");
    assert_eq!(e["energy"]["hours"].as_array().unwrap().len(), 24);
    let coverage = e["energy"]["coverage"].as_f64().unwrap();
    assert!(coverage > 0.0 && coverage < 0.01, "{coverage}");

    // Its pumps: at least one ran, with its efficiency from the archive's curve.
    let (status, pumps) = get(&format!("{base}/api/v1/analysis/efficiency/rooms/{room}"));
    assert_eq!(status, 200, "{pumps}");
    let ran: Vec<_> = pumps["pumps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["point_minutes"].as_u64().unwrap_or(0) > 0)
        .cloned()
        .collect();
    assert!(!ran.is_empty(), "{pumps}");
    for p in &ran {
        assert_eq!(p["curves"]["source"], "archive", "{p}");
        let eta = p["efficiency"].as_f64().unwrap();
        assert!(eta > 0.0 && eta < 1.0, "{p}");
        // Wire-to-water includes the motor and drive: below the pump's own efficiency.
        let w2w = p["wire_to_water"].as_f64().unwrap();
        assert!(w2w > 0.0 && w2w < eta * 1.1, "{p}");
        assert!(p["bep_ratio"].as_f64().unwrap() > 0.0, "{p}");
        assert!(!p["cloud"].as_array().unwrap().is_empty(), "{p}");
        assert!(p["curves"]["hq"].as_array().unwrap().len() >= 2, "{p}");
    }

    // The fleet's report of today from the ledger (today's live figures, refreshed on demand).
    let (_, me) = get(&format!("{base}/api/v1/analysis/days?room={room}"));
    let today = me["today"].as_str().unwrap().to_owned();
    for r in ["XM-0001", "XM-0002", "XM-0003"] {
        let (status, body) = post(
            &format!("{base}/api/v1/analysis/recompute"),
            &format!(r#"{{"room":"{r}","date":"{today}"}}"#),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, report) = get(&format!("{base}/api/v1/analysis/energy?period={today}"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["room_count"], 3, "{report}");
    assert!(
        report["fleet"]["figures"]["kwh"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert_eq!(report["days"].as_array().unwrap().len(), 1);
    // No room has an intensity yet: none is compared with its peers, and each says why.
    for row in report["rooms"].as_array().unwrap() {
        assert_eq!(row["peers"]["verdict"], "no_figure", "{row}");
        assert!(row["reason_en"].is_null(), "{row}");
    }
    let month = &today[..7];
    let (status, report) = get(&format!(
        "{base}/api/v1/analysis/energy?period={month}&limit=1"
    ));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rooms"].as_array().unwrap().len(), 1);
    let (status, ranking) = get(&format!("{base}/api/v1/analysis/efficiency?period={today}"));
    assert_eq!(status, 200, "{ranking}");
    assert!(
        ranking["rooms"][0]["figures"]["pump_efficiency"].is_number(),
        "{ranking}"
    );

    // Refusals with their codes.
    for (path, status, code) in [
        (
            "/api/v1/analysis/energy?period=2026-13",
            422,
            "invalid_date",
        ),
        (
            "/api/v1/analysis/energy?period=2999-01",
            422,
            "invalid_date",
        ),
        ("/api/v1/analysis/energy?limit=0", 400, "invalid_limit"),
        ("/api/v1/analysis/energy?zone=nowhere", 400, "invalid_zone"),
        ("/api/v1/analysis/energy/rooms/XM-9999", 404, "unknown_room"),
        (
            "/api/v1/analysis/efficiency/rooms/bad%20id",
            400,
            "invalid_room_id",
        ),
        (
            "/api/v1/analysis/efficiency/rooms/XM-0001?date=2999-01-01",
            422,
            "invalid_date",
        ),
    ] {
        let (got, body) = get(&format!("{base}{path}"));
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
}
