//! The default rule library, built into the binary: a node started without a rule directory
//! (the demo from anywhere, a packaged install) runs exactly `rules/library/`. A test keeps the
//! two identical.

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
