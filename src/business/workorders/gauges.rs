//! The work orders' gauges on `/metrics` (issue 20 item 8), labelled by team and priority only
//! (bounded: the configured teams, `none` for an order no team holds, P1–P4 — never a person):
//! the open backlog, how many of it are overdue, the oldest open order's age, and the SLA
//! compliance of the orders created in the last 30 days. Computed off the scrape path by a task
//! every `check_every` (a scrape only reads the last values): over a large store the 30 days'
//! orders take longer to read than a scrape should wait.

use super::kpi::met_sla;
use super::model::WorkOrder;
use super::{WorkOrders, WorkOrdersError};
use cistern_schemas::Timestamp;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The SLA window of the compliance gauge.
const SLA_WINDOW_MS: i64 = 30 * 86_400_000;

/// The gauges (see the module doc).
#[derive(Clone, Debug)]
pub struct OrderGauges {
    pub open: IntGaugeVec,
    pub overdue: IntGaugeVec,
    pub oldest_open_age: GaugeVec,
    pub sla_compliance: GaugeVec,
    /// The label sets last written, so that a group that emptied is removed, not left stale.
    written: Arc<std::sync::Mutex<HashSet<(String, String)>>>,
}

impl OrderGauges {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let labels = &["team", "priority"];
        let g = Self {
            open: IntGaugeVec::new(
                Opts::new(
                    "cistern_workorders_open",
                    "Open work orders, by team and priority",
                ),
                labels,
            )?,
            overdue: IntGaugeVec::new(
                Opts::new(
                    "cistern_workorders_overdue",
                    "Open work orders past a target, by team and priority",
                ),
                labels,
            )?,
            oldest_open_age: GaugeVec::new(
                Opts::new(
                    "cistern_workorders_oldest_open_age_seconds",
                    "Age of the oldest open work order, by team and priority",
                ),
                labels,
            )?,
            sla_compliance: GaugeVec::new(
                Opts::new(
                    "cistern_workorders_sla_compliance_ratio",
                    "Share of the work orders created in the last 30 days that met their \
                     response and resolution targets (of those that can be judged), by team and \
                     priority",
                ),
                labels,
            )?,
            written: Arc::default(),
        };
        registry.register(Box::new(g.open.clone()))?;
        registry.register(Box::new(g.overdue.clone()))?;
        registry.register(Box::new(g.oldest_open_age.clone()))?;
        registry.register(Box::new(g.sla_compliance.clone()))?;
        Ok(g)
    }

    /// Recomputes every gauge from the store at the service's now.
    pub async fn refresh(&self, svc: &WorkOrders) -> Result<(), WorkOrdersError> {
        let now = svc.now();
        let open = svc.open_orders().await?;
        let recent = svc
            .created_between(Timestamp(now.as_millis() - SLA_WINDOW_MS), now)
            .await?;
        self.write(&open, &recent, now);
        Ok(())
    }

    /// Writes the gauges of `open` and `recent` (created in the SLA window) at `now`.
    pub fn write(&self, open: &[WorkOrder], recent: &[WorkOrder], now: Timestamp) {
        #[derive(Default)]
        struct Group {
            open: i64,
            overdue: i64,
            oldest_s: f64,
            met: u64,
            judged: u64,
        }
        let key = |o: &WorkOrder| {
            (
                o.team.clone().unwrap_or_else(|| "none".to_owned()),
                o.priority.as_str().to_owned(),
            )
        };
        let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
        for o in open.iter().filter(|o| o.state.is_open()) {
            let g = groups.entry(key(o)).or_default();
            g.open += 1;
            g.overdue += i64::from(o.overdue(now));
            let age = (now.as_millis() - o.created_at.as_millis()).max(0) as f64 / 1000.0;
            g.oldest_s = g.oldest_s.max(age);
        }
        for o in recent {
            if let Some(met) = met_sla(o, now) {
                let g = groups.entry(key(o)).or_default();
                g.judged += 1;
                g.met += u64::from(met);
            }
        }
        let Ok(mut written) = self.written.lock() else {
            return;
        };
        for (team, priority) in written.iter() {
            if !groups.contains_key(&(team.clone(), priority.clone())) {
                let labels = [team.as_str(), priority.as_str()];
                let _ = self.open.remove_label_values(&labels);
                let _ = self.overdue.remove_label_values(&labels);
                let _ = self.oldest_open_age.remove_label_values(&labels);
                let _ = self.sla_compliance.remove_label_values(&labels);
            }
        }
        written.clear();
        for ((team, priority), g) in &groups {
            let labels = [team.as_str(), priority.as_str()];
            self.open.with_label_values(&labels).set(g.open);
            self.overdue.with_label_values(&labels).set(g.overdue);
            self.oldest_open_age
                .with_label_values(&labels)
                .set(g.oldest_s);
            if g.judged > 0 {
                self.sla_compliance
                    .with_label_values(&labels)
                    .set(g.met as f64 / g.judged as f64);
            } else {
                let _ = self.sla_compliance.remove_label_values(&labels);
            }
            written.insert((team.clone(), priority.clone()));
        }
    }
}

/// Refreshes `gauges` every `every` until `shutdown` turns true.
pub async fn run(
    svc: Arc<WorkOrders>,
    gauges: OrderGauges,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = gauges.refresh(&svc).await {
                    tracing::warn!(error = %e, "work-order gauges not refreshed");
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
