//! The default rule library, built into the binary: a node started without a rule directory
//! (the demo from anywhere, a packaged install) runs exactly `rules/library/`, and its rule
//! editor runs exactly the golden cases of `rules/cases/`. A test keeps each pair identical.

/// `(file name, source)` of every rule of `rules/library/`.
pub const LIBRARY: &[(&str, &str)] = &[
    (
        "bad_analog.rhai",
        include_str!("../library/bad_analog.rhai"),
    ),
    (
        "camera_fault.rhai",
        include_str!("../library/camera_fault.rhai"),
    ),
    (
        "chlorine_high.rhai",
        include_str!("../library/chlorine_high.rhai"),
    ),
    (
        "chlorine_low.rhai",
        include_str!("../library/chlorine_low.rhai"),
    ),
    (
        "chlorine_warning.rhai",
        include_str!("../library/chlorine_warning.rhai"),
    ),
    (
        "comms_lost.rhai",
        include_str!("../library/comms_lost.rhai"),
    ),
    (
        "door_held_open.rhai",
        include_str!("../library/door_held_open.rhai"),
    ),
    ("flooding.rhai", include_str!("../library/flooding.rhai")),
    (
        "inlet_pressure_low.rhai",
        include_str!("../library/inlet_pressure_low.rhai"),
    ),
    ("intrusion.rhai", include_str!("../library/intrusion.rhai")),
    (
        "mains_loss.rhai",
        include_str!("../library/mains_loss.rhai"),
    ),
    (
        "night_flow_leak.rhai",
        include_str!("../library/night_flow_leak.rhai"),
    ),
    (
        "no_pump_available.rhai",
        include_str!("../library/no_pump_available.rhai"),
    ),
    (
        "outlet_pressure_high.rhai",
        include_str!("../library/outlet_pressure_high.rhai"),
    ),
    (
        "outlet_pressure_low.rhai",
        include_str!("../library/outlet_pressure_low.rhai"),
    ),
    ("overflow.rhai", include_str!("../library/overflow.rhai")),
    (
        "ph_out_of_range.rhai",
        include_str!("../library/ph_out_of_range.rhai"),
    ),
    (
        "pump_at_max.rhai",
        include_str!("../library/pump_at_max.rhai"),
    ),
    (
        "pump_fault.rhai",
        include_str!("../library/pump_fault.rhai"),
    ),
    (
        "room_environment.rhai",
        include_str!("../library/room_environment.rhai"),
    ),
    ("smoke.rhai", include_str!("../library/smoke.rhai")),
    (
        "tank_cleaning_overdue.rhai",
        include_str!("../library/tank_cleaning_overdue.rhai"),
    ),
    ("tank_high.rhai", include_str!("../library/tank_high.rhai")),
    ("tank_low.rhai", include_str!("../library/tank_low.rhai")),
    (
        "tank_low_low.rhai",
        include_str!("../library/tank_low_low.rhai"),
    ),
    (
        "tank_not_refilling.rhai",
        include_str!("../library/tank_not_refilling.rhai"),
    ),
    (
        "turbidity_high.rhai",
        include_str!("../library/turbidity_high.rhai"),
    ),
    (
        "voltage_deviation.rhai",
        include_str!("../library/voltage_deviation.rhai"),
    ),
];

/// `(file name, text)` of every golden case of `rules/cases/`: the rule editor runs the cases
/// of the rule being edited on a node that names no case directory (`[rules] cases`).
pub const CASES: &[(&str, &str)] = &[
    (
        "ack_stops_escalation.toml",
        include_str!("../cases/ack_stops_escalation.toml"),
    ),
    ("bad_analog.toml", include_str!("../cases/bad_analog.toml")),
    (
        "bad_analog_zero_flow.toml",
        include_str!("../cases/bad_analog_zero_flow.toml"),
    ),
    (
        "bad_quality_holds.toml",
        include_str!("../cases/bad_quality_holds.toml"),
    ),
    (
        "camera_fault.toml",
        include_str!("../cases/camera_fault.toml"),
    ),
    ("chatter.toml", include_str!("../cases/chatter.toml")),
    (
        "chatter_consolidated.toml",
        include_str!("../cases/chatter_consolidated.toml"),
    ),
    (
        "chlorine_high.toml",
        include_str!("../cases/chlorine_high.toml"),
    ),
    (
        "chlorine_low.toml",
        include_str!("../cases/chlorine_low.toml"),
    ),
    (
        "chlorine_warning.toml",
        include_str!("../cases/chlorine_warning.toml"),
    ),
    (
        "clear_stops_escalation.toml",
        include_str!("../cases/clear_stops_escalation.toml"),
    ),
    ("comms_lost.toml", include_str!("../cases/comms_lost.toml")),
    (
        "door_held_open.toml",
        include_str!("../cases/door_held_open.toml"),
    ),
    ("escalation.toml", include_str!("../cases/escalation.toml")),
    (
        "flip_triggers.toml",
        include_str!("../cases/flip_triggers.toml"),
    ),
    (
        "flooding_latched.toml",
        include_str!("../cases/flooding_latched.toml"),
    ),
    (
        "inlet_pressure_low.toml",
        include_str!("../cases/inlet_pressure_low.toml"),
    ),
    ("intrusion.toml", include_str!("../cases/intrusion.toml")),
    (
        "intrusion_episode.toml",
        include_str!("../cases/intrusion_episode.toml"),
    ),
    (
        "intrusion_forced.toml",
        include_str!("../cases/intrusion_forced.toml"),
    ),
    (
        "mains_loss_suppression.toml",
        include_str!("../cases/mains_loss_suppression.toml"),
    ),
    (
        "night_flow_leak.toml",
        include_str!("../cases/night_flow_leak.toml"),
    ),
    (
        "night_flow_leak_absolute.toml",
        include_str!("../cases/night_flow_leak_absolute.toml"),
    ),
    (
        "night_flow_leak_quiet.toml",
        include_str!("../cases/night_flow_leak_quiet.toml"),
    ),
    (
        "no_pump_available.toml",
        include_str!("../cases/no_pump_available.toml"),
    ),
    ("off_delay.toml", include_str!("../cases/off_delay.toml")),
    (
        "on_delay_blip.toml",
        include_str!("../cases/on_delay_blip.toml"),
    ),
    (
        "out_of_service.toml",
        include_str!("../cases/out_of_service.toml"),
    ),
    (
        "outlet_pressure_high.toml",
        include_str!("../cases/outlet_pressure_high.toml"),
    ),
    (
        "outlet_pressure_low_deadband.toml",
        include_str!("../cases/outlet_pressure_low_deadband.toml"),
    ),
    ("overflow.toml", include_str!("../cases/overflow.toml")),
    (
        "ph_out_of_range.toml",
        include_str!("../cases/ph_out_of_range.toml"),
    ),
    (
        "pump_at_max.toml",
        include_str!("../cases/pump_at_max.toml"),
    ),
    ("pump_fault.toml", include_str!("../cases/pump_fault.toml")),
    ("recurrence.toml", include_str!("../cases/recurrence.toml")),
    (
        "room_environment.toml",
        include_str!("../cases/room_environment.toml"),
    ),
    ("sandbox.toml", include_str!("../cases/sandbox.toml")),
    (
        "shelve_expiry.toml",
        include_str!("../cases/shelve_expiry.toml"),
    ),
    ("smoke.toml", include_str!("../cases/smoke.toml")),
    (
        "tank_cleaning_overdue.toml",
        include_str!("../cases/tank_cleaning_overdue.toml"),
    ),
    ("tank_high.toml", include_str!("../cases/tank_high.toml")),
    ("tank_low.toml", include_str!("../cases/tank_low.toml")),
    (
        "tank_low_low.toml",
        include_str!("../cases/tank_low_low.toml"),
    ),
    (
        "tank_not_refilling.toml",
        include_str!("../cases/tank_not_refilling.toml"),
    ),
    (
        "turbidity_high.toml",
        include_str!("../cases/turbidity_high.toml"),
    ),
    (
        "voltage_deviation.toml",
        include_str!("../cases/voltage_deviation.toml"),
    ),
    (
        "zone_inhibition.toml",
        include_str!("../cases/zone_inhibition.toml"),
    ),
];

/// The built-in library as a rule set.
pub fn load(limits: crate::SandboxLimits) -> crate::LoadOutcome {
    crate::RuleSet::from_sources(
        LIBRARY
            .iter()
            .map(|(name, src)| (std::path::PathBuf::from(name), (*src).to_owned())),
        limits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_library_is_the_library_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let built_in: Vec<(String, String)> = LIBRARY
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        assert_eq!(
            built_in, on_disk,
            "rules/src/library.rs must list every file of rules/library/"
        );
        let out = load(crate::SandboxLimits::default());
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        assert_eq!(out.set.len(), LIBRARY.len());
    }

    #[test]
    fn the_built_in_cases_are_the_case_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let built_in: Vec<(String, String)> = CASES
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        assert_eq!(
            built_in, on_disk,
            "rules/src/library.rs must list every file of rules/cases/"
        );
    }

    /// Every shipped rule speaks Chinese: `description_zh` and `message_zh` present, written in
    /// Chinese (CJK characters, not a copied English text) and with the same fields as the
    /// English message (a missing `{value}` would hide the reading from a Chinese operator).
    #[test]
    fn every_shipped_rule_has_its_chinese_texts() {
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for (name, src) in LIBRARY {
            let meta = crate::meta::parse_header(src).unwrap();
            let description = meta.description_zh.as_deref().unwrap_or_default();
            let message = meta.message_zh.as_deref().unwrap_or_default();
            assert!(cjk(description), "{name}: description_zh {description:?}");
            assert!(cjk(message), "{name}: message_zh {message:?}");
            let fields = |t: &str| {
                let mut f: Vec<String> = crate::message::Template::parse(t)
                    .unwrap()
                    .fields()
                    .map(str::to_owned)
                    .collect();
                f.sort();
                f
            };
            assert_eq!(fields(message), fields(&meta.message), "{name}: fields");
        }
    }
}
