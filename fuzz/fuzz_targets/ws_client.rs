//! WebSocket client messages (schemas/json/ws/PROTOCOL.md), as a session reads each text
//! frame (src/api/ws/session.rs): `ClientMessage::parse`, strict, whose refusal is the error
//! the session answers (echoing the frame's `id`); a subscription's topic and filter
//! checked against the fleet (`topics::parse`, the example inventory's rooms, the default
//! point limit).
//!
//! Beyond "no panic" it checks that every answer the session would send is valid JSON of the
//! protocol's error shape, and that an accepted points subscription names at most the
//! configured number of distinct points, each of a known room.
#![no_main]

use cistern::api::ws::protocol::{ClientMessage, ServerMessage};
use cistern::api::ws::topics::{self, SubSpec};
use cistern::api::ws::WsConfig;
use cistern_actors::FleetRegistry;
use cistern_schemas::inventory::Inventory;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn registry() -> &'static FleetRegistry {
    static REGISTRY: OnceLock<FleetRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/inventory.example.toml");
        let inventory = Inventory::load(&path).expect("the example inventory loads");
        FleetRegistry::known_only(&inventory)
    })
}

/// An answer as the session sends it must be JSON of the error shape.
fn check_error(id: Option<&str>, code: &'static str, message: String) {
    let text = ServerMessage::error(id, code, message).to_text();
    let v: serde_json::Value = serde_json::from_str(&text).expect("an answer is JSON");
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], code);
    assert_eq!(v.get("id").and_then(|i| i.as_str()), id);
}

fuzz_target!(|data: &[u8]| {
    // A text frame is UTF-8 (a frame that is not is refused before parsing).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let msg = match ClientMessage::parse(text) {
        Ok(m) => m,
        Err(refusal) => {
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned));
            let v: serde_json::Value =
                serde_json::from_str(&refusal.to_text()).expect("an answer is JSON");
            assert_eq!(v["type"], "error");
            assert_eq!(v["code"], "bad_message");
            assert_eq!(
                v["id"].as_str(),
                id.as_deref(),
                "the refusal names another id"
            );
            return;
        }
    };
    let _ = msg.id();
    if let ClientMessage::Subscribe {
        id, topic, filter, ..
    } = msg
    {
        let max_points = WsConfig::default().max_points;
        match topics::parse(&topic, &filter, registry(), max_points) {
            Err(e) => check_error(Some(&id), e.code(), e.to_string()),
            Ok(SubSpec::Points(points)) => {
                assert!(!points.is_empty() && points.len() <= max_points);
                for (i, p) in points.iter().enumerate() {
                    assert!(!points[..i].contains(p), "a point twice");
                    assert!(registry().known_spec(&p.device.room).is_some());
                }
            }
            Ok(_) => {}
        }
    }
});
