//! The archive's spreadsheet import (src/business/assets/archive/sheet.rs), as an import job
//! runs it on an uploaded file (archive/import.rs): `sheet::read` (an .xlsx workbook when the
//! bytes start like a zip, else CSV) with the console's words, then `sheet::parse` into
//! archive records, and each problem the archive's validation finds located in the file.
//!
//! Beyond "no panic" it checks the report's promises: a refused file comes with at least one
//! problem, each at a row a sheet can have.
#![no_main]

use cistern::api::webui::ConsoleWords;
use cistern::business::assets::archive::model::Known;
use cistern::business::assets::archive::sheet;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Ok(sheets) = sheet::read(data, &ConsoleWords) else {
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
