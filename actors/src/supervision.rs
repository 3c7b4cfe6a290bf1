//! Panic containment for actor handlers.
//!
//! actix's `Supervisor` restarts an actor that *stops*, but a panic unwinding out of a handler
//! would kill the arbiter's task and the actor's mailbox with it. So every handler body runs
//! inside [`guarded`]: a panic is caught at the handler boundary, counted, logged with the
//! actor's id, and turned into `ctx.stop()`; the supervisor then calls `restarting`, where the
//! actor rebuilds its state from its last snapshot. The address and mailbox stay the same, so
//! the registry and the room's children never see the restart.

use crate::metrics::ActorMetrics;
use actix::{Actor, ActorContext};
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why an actor could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("{0} failed while handling a message and is restarting")]
    Restarting(String),
    #[error("{0} did not answer")]
    Unreachable(String),
}

/// Runs `f` on `act`; on panic, stops the actor (its supervisor restarts it) and returns
/// `ActorError::Restarting`.
pub fn guarded<A, C, R>(
    act: &mut A,
    ctx: &mut C,
    kind: &'static str,
    id: &dyn Display,
    metrics: &ActorMetrics,
    f: impl FnOnce(&mut A, &mut C) -> R,
) -> Result<R, ActorError>
where
    A: Actor<Context = C>,
    C: ActorContext,
{
    match catch_unwind(AssertUnwindSafe(|| f(act, ctx))) {
        Ok(r) => Ok(r),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            metrics.restarts.with_label_values(&[kind]).inc();
            tracing::error!(actor = kind, id = %id, panic = %what, "actor panicked; restarting it from its last snapshot");
            ctx.stop();
            Err(ActorError::Restarting(id.to_string()))
        }
    }
}
