//! Feeds each room's rule engine its nightly leak facts (`leak_index`, `leak_baseline`,
//! `leak_spread`, `leak_nights`: the library rule `night_flow_leak`).
//!
//! The facts are a pure function of the room's closed days' leak indices in the analysis
//! ledger ([`super::leak_rule::leak_facts`]), which the service persists (month ledgers): at
//! start every room is told its facts as of its last closed night, and again whenever one of its
//! days closes. A process restart therefore rebuilds them whole; a room actor restarted in
//! place keeps what it was last told. Today's live figures are never sent: a night counts once
//! its day has closed.

use super::leak_rule::{leak_facts, LeakFacts};
use super::service::Analysis;
use cistern_actors::pump_room::NightLeak;
use cistern_actors::registry::FleetRegistry;
use cistern_schemas::RoomId;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The facts of `room` as of its last closed night, when it has any.
pub fn room_facts(svc: &Analysis, room: &RoomId) -> Option<LeakFacts> {
    let cfg = &svc.config().leakage;
    let last = svc.today().plus_days(-1);
    let from = last.plus_days(-(cfg.baseline_nights as i32 + cfg.recent_nights as i32 + 3));
    let history: Vec<_> = svc
        .figures(room, from, last)
        .into_iter()
        .map(|(d, f)| (d, f.leak_index))
        .collect();
    leak_facts(&history, cfg).pop()
}

/// The message a room actor takes for `facts`.
pub fn message(facts: &LeakFacts) -> NightLeak {
    NightLeak {
        index: facts.index,
        baseline: facts.baseline,
        spread: facts.spread,
        nights: facts.recent.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
    }
}

fn tell(svc: &Analysis, registry: &FleetRegistry, room: &RoomId) {
    if let Some(facts) = room_facts(svc, room) {
        if !registry.night_leak(room, message(&facts)) {
            tracing::debug!(%room, "room did not take its night-flow facts");
        }
    }
}

fn tell_all(svc: &Analysis, registry: &FleetRegistry) {
    for spec in svc.rooms() {
        tell(svc, registry, &spec.id);
    }
}

/// Tells every room its facts, then each room again when one of its days closes, until
/// shutdown.
pub async fn run(
    svc: Arc<Analysis>,
    registry: Arc<FleetRegistry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut closed = svc.subscribe();
    tell_all(&svc, &registry);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            msg = closed.recv() => match msg {
                Ok(day) => tell(&svc, &registry, &day.room),
                Err(RecvError::Lagged(_)) => tell_all(&svc, &registry),
                Err(RecvError::Closed) => return,
            },
        }
    }
}
