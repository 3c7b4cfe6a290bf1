//! The node's configuration parser (`ops/cistern.example.toml` documents every key), as
//! `cistern run` runs it at start-up: `Config::load` is `from_toml` on the file's text, then
//! `resolve` (relative paths against the file's directory, every section's checks); then what
//! start-up derives from it first (the actors' settings, the thread count).
//!
//! Beyond "no panic" it checks that what an accepted configuration sets up is sane: the
//! actors' time limits, added to or taken from a timestamp, move it the right way (a
//! duration the config allows must not wrap the clock arithmetic the actors use).
#![no_main]

use cistern::config::Config;
use cistern_schemas::Timestamp;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const NOW: Timestamp = Timestamp(1_732_170_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, "fuzz.toml") else {
        return;
    };
    let Ok(config) = config.resolve(Path::new("/nonexistent/fuzz")) else {
        return;
    };
    let actors = config.actors.actor_config();
    assert!(config.actors.thread_count() >= 1);
    for d in [
        actors.offline_after,
        actors.sweep_every,
        actors.max_future_skew,
        actors.max_ingest_lag,
    ] {
        assert!(NOW + d >= NOW, "now + {d:?} went back in time");
        assert!(NOW - d <= NOW, "now - {d:?} went forward in time");
    }
});
