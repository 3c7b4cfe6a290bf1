//! Work-order KPIs (DOMAIN.md §7) over the orders created in a period, per team, zone,
//! priority or person: mean time to acknowledge (created → first accepted), to respond
//! (created → the crew first set off: en route, or on site when it skipped that step) and to
//! resolve (created → first completed), SLA compliance (responded by the response target and completed by the
//! resolution target, of the orders whose targets have passed or were met), first-time fix
//! (closed without being sent back), close rate, the open backlog's mean and oldest age, and
//! repeat failures (another order for the same room and cause created within 30 days before).
//! Pure: the API hands it the orders. There is no vendor grouping: the inventory names no
//! maintenance contractors (its `vendor` is a device register map's maker).

use super::model::{ActionKind, OrderState, WorkOrder};
use cistern_schemas::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What the figures are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Team,
    Zone,
    Priority,
    Assignee,
    /// One row for everything.
    All,
}

/// The figures of one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Kpis {
    pub group: String,
    pub created: u64,
    pub closed: u64,
    pub open: u64,
    /// Seconds to the first acceptance; none without an accepted order.
    pub mean_acknowledge_s: Option<f64>,
    /// Seconds until the crew first set off (en route, else on site); none without one.
    pub mean_response_s: Option<f64>,
    pub mean_resolution_s: Option<f64>,
    /// 0–1 over the orders whose targets can be judged; none when none can.
    pub sla_compliance: Option<f64>,
    pub first_time_fix: Option<f64>,
    pub close_rate: Option<f64>,
    /// Mean age of the group's open orders now, seconds.
    pub backlog_age_s: Option<f64>,
    /// Age of the group's oldest open order now, seconds.
    pub oldest_open_s: Option<f64>,
    /// Orders whose room and cause had another order within the 30 days before.
    pub repeat_failures: u64,
}

const REPEAT_WINDOW_MS: i64 = 30 * 86_400_000;

fn first(o: &WorkOrder, action: ActionKind) -> Option<Timestamp> {
    o.transitions
        .iter()
        .find(|t| t.action == action)
        .map(|t| t.at)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn share(hits: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| hits as f64 / of as f64)
}

/// When the crew first set off: en route, or on site when it went straight there.
fn set_off(o: &WorkOrder) -> Option<Timestamp> {
    o.transitions
        .iter()
        .find(|t| matches!(t.action, ActionKind::EnRoute | ActionKind::OnSite))
        .map(|t| t.at)
}

/// Whether `o` met its targets; none while it cannot be told yet.
pub(crate) fn met_sla(o: &WorkOrder, now: Timestamp) -> Option<bool> {
    let responded = first(o, ActionKind::Accept);
    let completed = first(o, ActionKind::Complete);
    if o.state == OrderState::Cancelled {
        return None;
    }
    let response_ok = match responded {
        Some(t) => t <= o.response_due,
        None if now > o.response_due => return Some(false),
        None => return None,
    };
    match completed {
        Some(t) => Some(response_ok && t <= o.resolution_due),
        None if now > o.resolution_due => Some(false),
        None => None,
    }
}

/// The KPIs of `orders` (those created in the period) grouped by `by`, at `now`. `history`
/// holds the orders of the 30 days before the period too, for repeat failures.
pub fn compute(
    orders: &[WorkOrder],
    history: &[WorkOrder],
    by: GroupBy,
    now: Timestamp,
) -> Vec<Kpis> {
    let mut earlier: HashMap<(String, String), Vec<Timestamp>> = HashMap::new();
    for o in history.iter().chain(orders) {
        if let Some(room) = &o.room {
            earlier
                .entry((room.to_string(), o.cause.clone()))
                .or_default()
                .push(o.created_at);
        }
    }
    let key = |o: &WorkOrder| -> String {
        match by {
            GroupBy::Team => o.team.clone().unwrap_or_default(),
            GroupBy::Zone => o.zone.as_ref().map(|z| z.to_string()).unwrap_or_default(),
            GroupBy::Priority => o.priority.as_str().to_owned(),
            GroupBy::Assignee => o.assignee.clone().unwrap_or_default(),
            GroupBy::All => "all".to_owned(),
        }
    };
    let mut groups: BTreeMap<String, Vec<&WorkOrder>> = BTreeMap::new();
    for o in orders {
        groups.entry(key(o)).or_default().push(o);
    }
    groups
        .into_iter()
        .map(|(group, list)| {
            let ms = |a: Timestamp, b: Timestamp| (b.as_millis() - a.as_millis()) as f64 / 1000.0;
            let acknowledge: Vec<f64> = list
                .iter()
                .filter_map(|o| first(o, ActionKind::Accept).map(|t| ms(o.created_at, t)))
                .collect();
            let response: Vec<f64> = list
                .iter()
                .filter_map(|o| set_off(o).map(|t| ms(o.created_at, t)))
                .collect();
            let resolution: Vec<f64> = list
                .iter()
                .filter_map(|o| first(o, ActionKind::Complete).map(|t| ms(o.created_at, t)))
                .collect();
            let judged: Vec<bool> = list.iter().filter_map(|o| met_sla(o, now)).collect();
            let closed: Vec<&&WorkOrder> = list
                .iter()
                .filter(|o| o.state == OrderState::Closed)
                .collect();
            let fixed_first = closed
                .iter()
                .filter(|o| !o.transitions.iter().any(|t| t.action == ActionKind::Reject))
                .count() as u64;
            let open: Vec<f64> = list
                .iter()
                .filter(|o| o.state.is_open())
                .map(|o| ms(o.created_at, now))
                .collect();
            let repeat = list
                .iter()
                .filter(|o| {
                    o.room.as_ref().is_some_and(|room| {
                        earlier
                            .get(&(room.to_string(), o.cause.clone()))
                            .is_some_and(|ts| {
                                ts.iter().any(|t| {
                                    *t < o.created_at
                                        && o.created_at.as_millis() - t.as_millis()
                                            <= REPEAT_WINDOW_MS
                                })
                            })
                    })
                })
                .count() as u64;
            Kpis {
                group,
                created: list.len() as u64,
                closed: closed.len() as u64,
                open: open.len() as u64,
                mean_acknowledge_s: mean(&acknowledge),
                mean_response_s: mean(&response),
                mean_resolution_s: mean(&resolution),
                sla_compliance: share(
                    judged.iter().filter(|m| **m).count() as u64,
                    judged.len() as u64,
                ),
                first_time_fix: share(fixed_first, closed.len() as u64),
                close_rate: share(closed.len() as u64, list.len() as u64),
                backlog_age_s: mean(&open),
                oldest_open_s: open.iter().copied().reduce(f64::max),
                repeat_failures: repeat,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::order;
    use super::super::model::{Caller, Command, Context, Resolution};
    use super::*;

    fn worked(
        id: u64,
        created: i64,
        accept_after: i64,
        complete_after: i64,
        reject: bool,
    ) -> WorkOrder {
        let mut o = order();
        o.id = super::super::model::OrderId::from_sequence(id);
        o.created_at = Timestamp(created);
        o.response_due = Timestamp(created + 7_200_000);
        o.resolution_due = Timestamp(created + 86_400_000);
        o.checklist.clear();
        let boss = Caller {
            user: "boss".into(),
            dispatcher: true,
        };
        let li = Caller {
            user: "li".into(),
            dispatcher: false,
        };
        let at = |dt: i64| Timestamp(created + dt);
        let go =
            |o: &mut WorkOrder, c, who: &Caller, t| o.apply(c, who, Context::default(), t).unwrap();
        go(
            &mut o,
            Command::Dispatch {
                team: Some("siming".into()),
                assignee: Some("li".into()),
            },
            &boss,
            at(0),
        );
        go(&mut o, Command::Accept, &li, at(accept_after));
        go(&mut o, Command::OnSite, &li, at(accept_after + 1));
        let done = |o: &mut WorkOrder, t| {
            go(
                o,
                Command::Complete {
                    resolution: Some(Resolution {
                        cause: "c".into(),
                        remedy: "r".into(),
                    }),
                    parts: vec![],
                    minutes: 1,
                },
                &li,
                t,
            )
        };
        done(&mut o, at(complete_after));
        if reject {
            go(&mut o, Command::Reject, &boss, at(complete_after + 1));
            done(&mut o, at(complete_after + 2));
        }
        go(&mut o, Command::Verify, &boss, at(complete_after + 3));
        o
    }

    #[test]
    fn response_resolution_sla_first_time_fix_and_repeats() {
        let day = 86_400_000;
        // Accepted in 10 min, done in 1 h; accepted in 3 h (late), done in 2 h with a send-back.
        let a = worked(1, 0, 600_000, 3_600_000, false);
        let b = worked(2, day, 3 * 3_600_000, 2 * 3_600_000 + 3 * 3_600_000, true);
        let rows = compute(&[a, b], &[], GroupBy::All, Timestamp(10 * day));
        let k = &rows[0];
        assert_eq!((k.created, k.closed, k.open), (2, 2, 0));
        assert_eq!(k.mean_acknowledge_s, Some((600.0 + 10_800.0) / 2.0));
        assert_eq!(
            k.mean_response_s,
            Some((600.001 + 10_800.001) / 2.0),
            "on site 1 ms later"
        );
        assert_eq!(k.sla_compliance, Some(0.5));
        assert_eq!(k.first_time_fix, Some(0.5));
        assert_eq!(k.close_rate, Some(1.0));
        assert_eq!(k.repeat_failures, 1, "the same room and cause a day later");
        assert_eq!(k.backlog_age_s, None);
    }
}
