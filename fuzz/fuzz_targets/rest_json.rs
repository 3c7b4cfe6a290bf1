//! REST JSON bodies, as the API reads them (actix-web's `web::Json<T>` and the handlers' own
//! `serde_json::from_slice` are serde_json over the body): byte 0 chooses a request type, the
//! rest is the body. Each body is deserialised into the handler's own request type, and an
//! accepted one runs through the pure checks its handler applies before touching a service:
//! the password policy (users, password change), the archive's validation of a room and a
//! project, the knowledge base's validation of a problem.
//!
//! Beyond "no panic": a refused body is an error value (serde's), never a panic, and an
//! accepted archive room or project that validates clean round-trips through JSON unchanged.
#![no_main]

use cistern::api;
use cistern::auth::identity::GatewayWrite;
use cistern::auth::password;
use cistern::business::assets::archive::model::{Known, Project, RoomArchive};
use cistern::business::assets::cleaning::service::NewCleaning;
use cistern::business::assets::inspection::ItemInput;
use cistern::business::workorders::knowledge::Problem as KnowledgeProblem;
use cistern::business::workorders::model::Position;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{ProjectId, ZoneId};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice::<T>(body).ok()
}

fn zones() -> &'static HashSet<ZoneId> {
    static ZONES: OnceLock<HashSet<ZoneId>> = OnceLock::new();
    ZONES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/inventory.example.toml");
        let inventory = Inventory::load(&path).expect("the example inventory loads");
        inventory.zones.iter().map(|z| z.id.clone()).collect()
    })
}

/// The smallest password length the product allows by default.
const MIN_CHARS: usize = 12;

fn body(selector: u8, body: &[u8]) {
    match selector % 24 {
        0 => {
            if let Some(b) = parse::<api::users::CreateUser>(body) {
                let _ = password::check(&b.name, &b.password, MIN_CHARS);
            }
        }
        1 => drop(parse::<api::users::UpdateUser>(body)),
        2 => {
            if let Some(b) = parse::<api::auth::PasswordBody>(body) {
                let _ = password::check("fuzz", &b.new_password, MIN_CHARS);
            }
        }
        3 => drop(parse::<api::auth::LoginBody>(body)),
        4 => drop(parse::<api::auth::LanguageBody>(body)),
        5 => drop(parse::<api::alarms::CommandBody>(body)),
        6 => drop(parse::<api::workorders::CommandBody>(body)),
        7 => drop(parse::<api::workorders::CreateBody>(body)),
        8 => drop(parse::<api::setpoints::SetpointRequest>(body)),
        9 => drop(parse::<api::sessions::UnlockBody>(body)),
        10 => drop(parse::<api::reliability::StockBody>(body)),
        11 => drop(parse::<api::reliability::EventBody>(body)),
        12 => drop(parse::<api::inspections::StartBody>(body)),
        13 => drop(parse::<api::cockpit::SaveBoard>(body)),
        14 => drop(parse::<api::analysis::RecomputeBody>(body)),
        15 => drop(parse::<api::cleaning::IntervalBody>(body)),
        16 => drop(parse::<api::tokens::CreateToken>(body)),
        17 => drop(parse::<api::backup::BackupRequest>(body)),
        18 => drop(parse::<GatewayWrite>(body)),
        19 => drop(parse::<NewCleaning>(body)),
        20 => drop(parse::<Position>(body)),
        21 => {
            if let Some(p) = parse::<KnowledgeProblem>(body) {
                let _ = p.validate();
            }
        }
        22 => {
            if let Some(p) = parse::<Project>(body) {
                if p.validate().is_empty() {
                    let again = serde_json::to_vec(&p).expect("serialises");
                    let back: Project = serde_json::from_slice(&again).expect("round-trips");
                    assert_eq!(p, back, "a project changed in a round trip");
                }
            }
        }
        _ => {
            if let Some(r) = parse::<RoomArchive>(body) {
                let projects: HashSet<ProjectId> = r.project.iter().cloned().collect();
                let known = Known {
                    zones: zones(),
                    projects: &projects,
                };
                if r.validate(known).is_empty() {
                    let again = serde_json::to_vec(&r).expect("serialises");
                    let back: RoomArchive = serde_json::from_slice(&again).expect("round-trips");
                    assert_eq!(r, back, "a room archive changed in a round trip");
                }
            }
        }
    }
    // Every body is also read as the inspection item the field app posts.
    let _ = parse::<ItemInput>(body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    body(selector, rest);
});
