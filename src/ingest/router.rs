//! The production [`BatchSink`]: counts, then routes each batch through the fleet registry to
//! its room actor.

use super::field_log::FieldLog;
use super::metrics::IngestMetrics;
use super::{BatchSink, DeliveryError};
use cistern_actors::{Clock, FleetRegistry, Receipt};
use cistern_schemas::reading::{DeviceBatch, IngestSource};
use futures::future::BoxFuture;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// Routes decoded batches to room actors.
#[derive(Debug)]
pub struct IngestRouter {
    registry: Arc<FleetRegistry>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    log: FieldLog,
}

impl IngestRouter {
    pub fn new(
        registry: Arc<FleetRegistry>,
        metrics: IngestMetrics,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registry,
            metrics,
            clock,
            log: FieldLog::new(Duration::from_secs(60)),
        }
    }
}

impl BatchSink for IngestRouter {
    fn deliver(
        &self,
        batch: DeviceBatch,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            let source = batch.source.label();
            let points = batch.point_count() as u64;
            let device = batch.device.clone();
            if let Some(newest) = batch.records.last() {
                let lag = self.clock.now().since(newest.t);
                self.metrics.backfill_lag.observe(lag.as_secs_f64());
            }
            // The span travels with the batch (`Intake::span`): through the room and device
            // actors, to the historian handover and the rule evaluation it triggers.
            let span = tracing::debug_span!("ingest", source, device = %device, points);
            match self.registry.route(batch, receipt).instrument(span).await {
                Ok(()) => {
                    self.metrics.messages.with_label_values(&[source]).inc();
                    self.metrics
                        .points
                        .with_label_values(&[source])
                        .inc_by(points);
                    Ok(())
                }
                Err(e) => {
                    self.reject_label(source, &device.to_string(), e.label(), &e);
                    Err(e)
                }
            }
        })
    }

    fn reject(
        &self,
        source: IngestSource,
        device: &str,
        reason: &'static str,
        detail: &dyn Display,
    ) {
        self.reject_label(source.label(), device, reason, detail);
    }
}

impl IngestRouter {
    fn reject_label(&self, source: &str, device: &str, reason: &'static str, detail: &dyn Display) {
        self.metrics
            .rejected
            .with_label_values(&[source, reason])
            .inc();
        if let Some(suppressed) = self.log.admit(device) {
            tracing::warn!(source, device, reason, suppressed, error = %detail, "field input rejected");
        }
        self.log_summary();
    }

    /// One line per interval with the rejections the rate limit kept out of the log (called
    /// on every rejection and by the node's timer, so that a flood that stops still shows).
    pub fn log_summary(&self) {
        if let Some(suppressed) = self.log.summary(std::time::Instant::now()) {
            tracing::warn!(
                suppressed,
                interval = ?self.log.interval(),
                "field input rejections not logged in the last interval (rate limit); cistern_ingest_rejected_total counts them all"
            );
        }
    }
}
