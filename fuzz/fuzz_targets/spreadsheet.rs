//! The archive's spreadsheet import (src/business/assets/archive/sheet.rs), as an import job
//! runs it on an uploaded file (archive/import.rs): `sheet::read` (an .xlsx workbook when the
//! bytes start like a zip, else CSV) with the console's words, then `sheet::parse` into
//! archive records, and each problem the archive's validation finds located in the file.
//!
//! Beyond "no panic" it checks the report's promises: a refused file comes with at least one
//! problem, each at a row a sheet can have.
//!
//! A panic inside calamine (the third-party reader) ends the input as it ends the product's
//! import job — the job reads on a blocking task, whose panic the job reports as "the reader
//! stopped" — and is counted, not a finding: calamine 0.38's column letters overflow a `u32`
//! (`fuzz/known/calamine-column-overflow.xlsx`, ARCHITECTURE.md § Fuzzing), an upstream bug this
//! target would otherwise hit again and again. A panic anywhere else is a finding, as in every
//! target.
#![no_main]

use cistern::api::webui::ConsoleWords;
use cistern::business::assets::archive::model::Known;
use cistern::business::assets::archive::sheet;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where the last panic was raised (file, line, message), as the hook below saw it.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// Inputs that ended in calamine's own panic.
static CALAMINE_PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `f`; `None` when it panicked inside calamine. Any other panic aborts (a finding).
fn within_calamine<T>(f: impl FnOnce() -> T) -> Option<T> {
    let fuzzer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{place}: {info}"));
    }));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(fuzzer_hook);
    match result {
        Ok(value) => Some(value),
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            if what.contains("/calamine-") {
                let n = CALAMINE_PANICS.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    eprintln!(
                        "spreadsheet: {n} inputs ended in calamine's own panic (latest: {what})"
                    );
                }
                None
            } else {
                eprintln!("spreadsheet: a panic outside calamine: {what}");
                std::process::abort();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(Ok(sheets)) = within_calamine(|| sheet::read(data, &ConsoleWords)) else {
        return;
    };
    match sheet::parse(&sheets, &|_| None) {
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for p in &problems {
                assert!(
                    p.row == 0 || p.row as usize <= sheet::MAX_ROWS,
                    "a row past the sheet"
                );
            }
        }
        Ok(parsed) => {
            let zones = HashSet::new();
            let projects = parsed.projects.iter().map(|p| p.id.clone()).collect();
            let known = Known {
                zones: &zones,
                projects: &projects,
            };
            for room in &parsed.rooms {
                for problem in room.validate(known) {
                    let _ = sheet::locate(&parsed, Some(&room.site.id), None, &problem);
                }
            }
            for project in &parsed.projects {
                for problem in project.validate() {
                    let _ = sheet::locate(&parsed, None, Some(&project.id), &problem);
                }
            }
        }
    }
});
