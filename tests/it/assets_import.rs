//! The archive's spreadsheet through the binary (issue 21, item 2): the demo's archive exported
//! as .xlsx imports back unchanged (a dry run and a real run), its CSV sheets too; a file with
//! wrong types, an unknown kind, a duplicate serial and an unknown room is refused with each
//! problem at its sheet, row and column, in Chinese, and changes nothing; a pump replaced in the
//! spreadsheet is the pump the running room has (no restart) and the old one is in the room's
//! history; a file that is no spreadsheet is refused whole; a viewer may export but not import;
//! `cistern assets import` does the same from the command line.

use crate::support::{call_as, post, token_for, wait_for, Cistern, Node, IT_ADMIN_PASSWORD};
use calamine::{Data, Reader};
use serde_json::Value;
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn fetch(token: &str, url: &str) -> Vec<u8> {
    let mut resp = agent()
        .get(url)
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()
        .unwrap()
}

/// Starts an import and waits for its end: the finished job.
fn import(node: &Node, token: &str, bytes: &[u8], query: &str) -> Value {
    let url = node.url(&format!("/api/v1/assets/import?{query}"));
    let mut resp = agent()
        .post(&url)
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .send(bytes)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    assert_eq!(status, 202, "{body}");
    let id = body["job"]["id"].as_u64().unwrap();
    wait_for("the import to finish", Duration::from_secs(120), || {
        let (s, v) = call_as(
            Some(token),
            "GET",
            &node.url(&format!("/api/v1/assets/import/{id}")),
            None,
        );
        assert_eq!(s, 200, "{v}");
        (!v["job"]["finished"].is_null()).then(|| v["job"].clone())
    })
}

/// Every sheet's cells as text, by sheet name (what "the same archive" means on paper).
fn cells(bytes: &[u8]) -> Vec<(String, Vec<Vec<String>>)> {
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = book.sheet_names();
    names
        .into_iter()
        .map(|n| {
            let range = book.worksheet_range(&n).unwrap();
            let rows = range
                .rows()
                .map(|r| {
                    r.iter()
                        .map(|c| match c {
                            Data::Empty => String::new(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            (n, rows)
        })
        .collect()
}

fn applied(job: &Value, key: &str) -> u64 {
    job["applied"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no applied.{key} in {job}"))
}

/// A sheet's CSV as rows of cells (the byte-order mark dropped).
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .unwrap()
        .trim_start_matches('\u{feff}');
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn csv_text(rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for r in rows {
        out.write_record(r).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn the_archive_round_trips_through_its_spreadsheet_and_a_bad_file_changes_nothing() {
    let node = Cistern::demo("assets-import").rooms(12).start();
    let admin = token_for(node.http(), "admin", IT_ADMIN_PASSWORD);
    let export = |lang: &str| {
        fetch(
            &admin,
            &node.url(&format!("/api/v1/assets/export?format=xlsx&lang={lang}")),
        )
    };

    // The template: instructions, then the three sheets, headed in the caller's language.
    let template = cells(&fetch(
        &admin,
        &node.url("/api/v1/assets/template?lang=zh-CN"),
    ));
    let names: Vec<&str> = template.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["说明", "项目", "泵房", "设备"]);
    assert_eq!(template[3].1[0][0], "泵房编号");
    assert_eq!(template[3].1[1][0], "room_id");

    // Export → import: nothing changes (checked, then for real), and the export reads the same.
    let before = export("en");
    let rooms = cells(&before)[2].1.len() - 2;
    assert_eq!(rooms, 12);
    let check = import(&node, &admin, &before, "dry_run=true&name=archive.xlsx");
    assert_eq!(check["phase"], "done", "{check}");
    assert_eq!(applied(&check, "unchanged_rooms"), 12, "{check}");
    let job = import(&node, &admin, &before, "name=archive.xlsx");
    assert_eq!(job["phase"], "done", "{job}");
    assert_eq!(
        (
            applied(&job, "unchanged_rooms"),
            applied(&job, "created_rooms"),
            applied(&job, "updated_rooms")
        ),
        (12, 0, 0),
        "{job}"
    );
    assert_eq!(cells(&export("en")), cells(&before));

    // The equipment sheet as CSV, spoiled four ways: the import is refused, every problem at its
    // row and column, in Chinese; the archive is as it was.
    let equipment = fetch(
        &admin,
        &node.url("/api/v1/assets/export?format=csv&sheet=equipment&lang=en"),
    );
    let rows = csv_rows(&equipment);
    let col = |key: &str| {
        let keys = &cells(&before)[3].1[1];
        keys.iter()
            .position(|k| k == key)
            .unwrap_or_else(|| panic!("no column {key}"))
    };
    let letter = |i: usize| ((b'A' + i as u8) as char).to_string();
    let mut bad = rows.clone();
    bad[1][col("rated_power_kw")] = "big".into(); // CSV row 2
    bad[2][col("kind")] = "spaceship".into(); // row 3
    let (v, s) = (bad[1][col("vendor")].clone(), bad[1][col("serial")].clone());
    assert!(!s.is_empty(), "the demo's equipment has serials");
    bad[4][col("vendor")] = v; // row 5: the serial of row 2 again
    bad[4][col("serial")] = s;
    bad[6][col("room_id")] = "XM-9999".into(); // row 7
    let job = import(&node, &admin, &csv_text(&bad), "lang=zh-CN&name=bad.csv");
    assert_eq!(job["phase"], "refused", "{job}");
    let got: Vec<(u64, String, String)> = job["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["column"].as_str().unwrap().to_owned(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        (2, letter(col("rated_power_kw")), "type_number"),
        (3, letter(col("kind")), "kind"),
        (5, letter(col("serial")), "duplicate_in_file"),
        (7, letter(col("room_id")), "unknown_room"),
    ] {
        assert!(
            got.contains(&(want.0, want.1.clone(), want.2.to_owned())),
            "{want:?} not in {got:?}"
        );
    }
    let first = job["problems"][0]["message"].as_str().unwrap();
    assert!(
        first.contains("设备表") && first.contains("第 2 行"),
        "{first}"
    );
    assert_eq!(
        cells(&export("en")),
        cells(&before),
        "a refused import changed the archive"
    );

    // A pump replaced in the spreadsheet: a new serial and a bigger motor. The running room has
    // it at once; the old pump is in the room's history.
    let mut replaced = rows.clone();
    let row = (1..replaced.len())
        .find(|&r| replaced[r][col("kind")] == "pump" && replaced[r][col("device")] == "P1")
        .unwrap();
    let room = replaced[row][col("room_id")].clone();
    replaced[row][col("serial")] = "SN-REPLACED-1".into();
    replaced[row][col("rated_power_kw")] = "18.5".into();
    let job = import(&node, &admin, &csv_text(&replaced), "name=replaced.csv");
    assert_eq!(job["phase"], "done", "{job}");
    assert_eq!(
        (
            applied(&job, "updated_rooms"),
            applied(&job, "retired_equipment")
        ),
        (1, 1),
        "{job}"
    );
    let (s, view) = call_as(
        Some(&admin),
        "GET",
        &node.url(&format!("/api/v1/rooms/{room}")),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        view["spec"]["pumps"][0]["rated_power_kw"], 18.5,
        "{}",
        view["spec"]
    );
    let (s, archive) = call_as(
        Some(&admin),
        "GET",
        &node.url(&format!("/api/v1/assets/rooms/{room}")),
        None,
    );
    assert_eq!(s, 200, "{archive}");
    let text = archive.to_string();
    assert!(
        text.contains("SN-REPLACED-1") && text.contains("replaced"),
        "{text}"
    );
    // The parts lifecycle follows the archive: the new pump is a replacement of the old.
    let url = node.url(&format!("/api/v1/reliability/components/{room}/P1/pump"));
    wait_for(
        "the lifecycle to take the replacement",
        Duration::from_secs(20),
        || {
            let (s, c) = call_as(Some(&admin), "GET", &url, None);
            assert_eq!(s, 200, "{c}");
            let text = c.to_string();
            (text.contains("SN-REPLACED-1") && text.contains("replacement")).then_some(())
        },
    );

    // Not a spreadsheet: refused whole.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let job = import(&node, &admin, png, "name=photo.xlsx&lang=en");
    assert_eq!(job["phase"], "refused");
    assert_eq!(job["refused"]["code"], "not_spreadsheet", "{job}");

    // A viewer reads the archive but may not import it.
    let (s, _) = post(
        &node.url("/api/v1/users"),
        r#"{"name":"reader","role":"viewer","password":"reader-password-1"}"#,
    );
    assert_eq!(s, 201);
    let viewer = token_for(node.http(), "reader", "reader-password-1");
    assert!(!fetch(
        &viewer,
        &node.url("/api/v1/assets/export?format=csv&sheet=rooms")
    )
    .is_empty());
    let resp = agent()
        .post(&node.url("/api/v1/assets/import"))
        .header("authorization", &format!("Bearer {viewer}"))
        .send(&before[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // The command line: the same import, the same report.
    let dir = crate::support::temp_dir("assets-import-cli");
    let file = dir.join("archive.xlsx");
    std::fs::write(&file, export("zh-CN")).unwrap();
    let out = Cistern::command("assets-import-cli", ["assets", "import"])
        .arg(&file)
        .args(["--dry-run", "--lang", "en", "--url"])
        .arg(format!(
            "http://{}",
            node.http().trim_start_matches("http://")
        ))
        .arg("--token")
        .arg(&admin)
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rooms: 0 created, 1 updated, 11 unchanged")
            || stdout.contains("12 unchanged"),
        "{stdout}"
    );
    let bad_file = dir.join("bad.csv");
    std::fs::write(&bad_file, csv_text(&bad)).unwrap();
    let out = Cistern::command("assets-import-cli", ["assets", "import"])
        .arg(&bad_file)
        .args(["--lang", "en", "--url"])
        .arg(format!(
            "http://{}",
            node.http().trim_start_matches("http://")
        ))
        .arg("--token")
        .arg(&admin)
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a refused import must fail the command"
    );
    assert!(
        stdout.contains("sheet equipment, row 3") && stdout.contains("spaceship"),
        "{stdout}"
    );
}

/// The import of the 2,100-room demo fleet's archive (≈ 30,000 equipment rows): run explicitly
/// (release build recommended) to measure it; prints the figures.
#[test]
#[ignore = "a measurement: run with --run-ignored only assets_import_fleet --no-capture"]
fn assets_import_fleet() {
    let node = Cistern::demo("assets-import-fleet")
        .rooms(2100)
        .ready_within(Duration::from_secs(300))
        .start();
    let admin = token_for(node.http(), "admin", IT_ADMIN_PASSWORD);
    let t = std::time::Instant::now();
    let bytes = fetch(
        &admin,
        &node.url("/api/v1/assets/export?format=xlsx&lang=zh-CN"),
    );
    let export_s = t.elapsed().as_secs_f64();
    let equipment = cells(&bytes)[3].1.len() - 2;
    // Every room changed (a new commissioning note), so that every room is written.
    let t = std::time::Instant::now();
    let job = import(&node, &admin, &bytes, "dry_run=true");
    let check_s = t.elapsed().as_secs_f64();
    assert_eq!(job["phase"], "done", "{job}");
    let rooms_csv = fetch(
        &admin,
        &node.url("/api/v1/assets/export?format=csv&sheet=rooms&lang=en"),
    );
    let mut rows = csv_rows(&rooms_csv);
    let name = rows[0].iter().position(|h| h == "Address").unwrap();
    for r in rows.iter_mut().skip(1) {
        r[name].push_str(" (re-surveyed)");
    }
    let t = std::time::Instant::now();
    let job = import(&node, &admin, &csv_text(&rows), "");
    let write_s = t.elapsed().as_secs_f64();
    assert_eq!(job["phase"], "done", "{job}");
    let t = std::time::Instant::now();
    let job = import(&node, &admin, &bytes, "");
    let full_s = t.elapsed().as_secs_f64();
    assert_eq!(job["phase"], "done", "{job}");
    println!(
        "assets import: 2,100 rooms, {equipment} equipment rows, {} KB .xlsx; export {export_s:.2} s; \
         check (dry run) {check_s:.2} s; rooms sheet with every room changed {write_s:.2} s; \
         whole workbook with every room changed back {full_s:.2} s ({} updated)",
        bytes.len() / 1024,
        applied(&job, "updated_rooms")
    );
}
