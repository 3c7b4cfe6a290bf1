//! The demo's maintenance organisation: per district a team (维修班) with a lead who dispatches
//! and two crew members on call around the clock (one for pumps and electrics, one for water
//! quality and networks), and a city manager at the top of every escalation ladder. Their
//! logins are created with one demo password (`cistern demo` prints them), so that a visitor
//! can open the crew page on a phone as one of them. Unless `--manual-crews`, simulated crews
//! work every order given to a demo crew member ([`work`]).

use crate::auth::{IdentityError, Role, Security};
use crate::business::workorders::attachments::Upload;
use crate::business::workorders::model::{
    Caller, Command, Context, OrderState, PartUse, Position, Resolution, WorkOrder,
};
use crate::business::workorders::store::OrderFilter;
use crate::business::workorders::teams::{Day, Member, Shift, Team};
use crate::business::workorders::WorkOrders;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::RoomId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Every demo crew login's password.
pub const CREW_PASSWORD: &str = "crew-demo-2026";
/// The manager every escalation ends with.
pub const MANAGER: &str = "manager";

fn skills(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

/// A team per zone of `inventory`.
pub fn teams(inventory: &Inventory) -> Vec<Team> {
    inventory
        .zones
        .iter()
        .map(|z| {
            let id = z.id.as_str();
            let crew = [format!("crew-{id}-1"), format!("crew-{id}-2")];
            Team {
                id: id.to_owned(),
                name: format!("{}维修班", z.name),
                name_en: format!("{} crew", z.name_pinyin),
                zones: vec![z.id.clone()],
                lead: format!("lead-{id}"),
                manager: MANAGER.to_owned(),
                members: vec![
                    Member {
                        user: crew[0].clone(),
                        skills: skills(&["electrical", "mechanical"]),
                    },
                    Member {
                        user: crew[1].clone(),
                        skills: skills(&["water_quality", "network", "mechanical"]),
                    },
                ],
                // From 00:00 to 00:00: all day.
                on_call: vec![Shift {
                    days: Day::EVERY.to_vec(),
                    from: "00:00".into(),
                    to: "00:00".into(),
                    users: crew.to_vec(),
                }],
            }
        })
        .collect()
}

/// Creates the logins of `teams` (leads and the manager dispatch: operators; crews: viewers
/// who work their own orders) unless they exist. Returns the crew members' names.
pub async fn create_logins(
    security: &Security,
    teams: &[Team],
) -> Result<Vec<String>, IdentityError> {
    let mut logins = vec![(MANAGER.to_owned(), Role::Operator)];
    let mut crews = Vec::new();
    for t in teams {
        logins.push((t.lead.clone(), Role::Operator));
        for m in &t.members {
            logins.push((m.user.clone(), Role::Viewer));
            crews.push(m.user.clone());
        }
    }
    for (name, role) in logins {
        match security.auth.create_user(&name, role, CREW_PASSWORD).await {
            Ok(_) | Err(IdentityError::UserExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(crews)
}

/// A 1×1 PNG: the demo crews' photo of the job.
const DEMO_PHOTO: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Where each zone's crew sets out from: a depot a kilometre or so off the middle of its rooms.
fn bases(inventory: &Inventory) -> HashMap<String, (f64, f64)> {
    let mut sums: HashMap<String, (f64, f64, f64)> = HashMap::new();
    for r in &inventory.rooms {
        let s = sums.entry(r.zone.as_str().to_owned()).or_default();
        *s = (s.0 + r.lat, s.1 + r.lon, s.2 + 1.0);
    }
    sums.into_iter()
        .map(|(z, (lat, lon, n))| (z, (lat / n + 0.009, lon / n - 0.009)))
        .collect()
}

/// Where a crew is `fraction` of the way from `from` to `to`.
fn along(from: (f64, f64), to: (f64, f64), fraction: f64) -> Position {
    let f = fraction.clamp(0.0, 1.0);
    Position {
        lat: from.0 + (to.0 - from.0) * f,
        lon: from.1 + (to.1 - from.1) * f,
        accuracy_m: Some(15.0),
    }
}

/// The demo's crews at work (so that orders, the map and the figures have life): every few
/// seconds each open order of a demo crew member moves on once its step's time has come —
/// accepted 20–90 s after dispatch, on the way at once from the team's depot, on site after
/// 1–4 min of travel (their position reported every few seconds on the way, as a phone would,
/// and recorded at the room), the photos the template asks for, the checklist and completion
/// 3–8 min later with the knowledge base's favourite cause and remedy, verified by the lead
/// 1–2 min after.
/// The pace is a demo's, a few times real life's; each order's delays follow from its id.
pub async fn work(
    service: Arc<WorkOrders>,
    inventory: &Inventory,
    crews: Vec<String>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let rooms: HashMap<RoomId, (f64, f64)> = inventory
        .rooms
        .iter()
        .map(|r| (r.id.clone(), (r.lat, r.lon)))
        .collect();
    let bases = bases(inventory);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let open = match service
            .list(&OrderFilter {
                open: Some(true),
                limit: 1_000,
                ..Default::default()
            })
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "the demo's crews cannot read their orders");
                continue;
            }
        };
        let now = service.now();
        for order in open {
            let Some(assignee) = order.assignee.clone().filter(|a| crews.contains(a)) else {
                continue;
            };
            let since = order.transitions.last().map_or(order.created_at, |t| t.at);
            let waited = now.as_millis() - since.as_millis();
            let room = order.room.as_ref().and_then(|r| rooms.get(r)).copied();
            let base = order
                .zone
                .as_ref()
                .and_then(|z| bases.get(z.as_str()))
                .copied();
            let (Some(room), Some(base)) = (room, base) else {
                continue;
            };
            let Some(step) = next_step(&order, waited) else {
                if order.state == OrderState::EnRoute {
                    // On the way: the phone reports where it is.
                    let fraction = waited as f64 / travel_ms(&order) as f64;
                    if let Err(e) = service
                        .report_position(&assignee, along(base, room, fraction))
                        .await
                    {
                        tracing::debug!(order = %order.id, error = %e, "a demo crew's position was refused");
                    }
                }
                continue;
            };
            let position = Some(if step == Step::EnRoute {
                along(base, room, 0.0)
            } else {
                along(base, room, 1.0)
            });
            if let Err(e) = advance(&service, &order, step, &assignee, position).await {
                tracing::debug!(order = %order.id, error = %e, "a demo crew's step was refused");
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Accept,
    EnRoute,
    OnSite,
    Complete,
    Verify,
}

/// A delay in `[lo, hi)` seconds, the same for an order and step on every run.
fn delay_ms(order: &WorkOrder, salt: u8, lo: i64, hi: i64) -> i64 {
    let h = order
        .id
        .as_str()
        .bytes()
        .fold(u64::from(salt) * 0x9e37_79b9, |h, b| {
            h.rotate_left(5) ^ u64::from(b).wrapping_mul(0x0100_0000_01b3)
        });
    (lo + (h % (hi - lo).max(1) as u64) as i64) * 1000
}

/// How long the crew of `order` travels.
fn travel_ms(order: &WorkOrder) -> i64 {
    delay_ms(order, 2, 60, 240)
}

fn next_step(order: &WorkOrder, waited_ms: i64) -> Option<Step> {
    let (step, due) = match order.state {
        OrderState::Dispatched => (Step::Accept, delay_ms(order, 1, 20, 90)),
        OrderState::Accepted => (Step::EnRoute, 0),
        OrderState::EnRoute => (Step::OnSite, travel_ms(order)),
        OrderState::OnSite => (Step::Complete, delay_ms(order, 3, 180, 480)),
        OrderState::Completed => (Step::Verify, delay_ms(order, 4, 60, 120)),
        _ => return None,
    };
    (waited_ms >= due).then_some(step)
}

async fn advance(
    service: &WorkOrders,
    order: &WorkOrder,
    step: Step,
    assignee: &str,
    position: Option<Position>,
) -> Result<(), crate::business::workorders::WorkOrdersError> {
    let crew = Caller {
        user: assignee.to_owned(),
        dispatcher: false,
    };
    let at = |position| Context {
        comment: None,
        position,
    };
    let command = match step {
        Step::Accept => Command::Accept,
        Step::EnRoute => Command::EnRoute,
        Step::OnSite => Command::OnSite,
        Step::Complete => {
            for n in order.attachments.len()..order.photos_required as usize {
                let photo = Upload::check(
                    DEMO_PHOTO.to_vec(),
                    Some(&format!("photo-{}.png", n + 1)),
                    u64::MAX,
                )?;
                service.attach(&order.id, photo, &crew).await?;
            }
            for item in 0..order.checklist.len() {
                service
                    .command(
                        &order.id,
                        Command::Check {
                            item,
                            done: true,
                            reading: None,
                        },
                        &crew,
                        at(None),
                    )
                    .await?;
            }
            let favourite = service
                .knowledge()
                .suggest(&order.cause)
                .await?
                .into_iter()
                .next();
            Command::Complete {
                resolution: Some(match favourite {
                    Some(s) => Resolution {
                        cause: s.cause,
                        remedy: s.remedy,
                    },
                    None => Resolution {
                        cause: "inspected".into(),
                        remedy: "fixed_on_site".into(),
                    },
                }),
                parts: order
                    .expected_parts
                    .iter()
                    .take(1)
                    .map(|p| PartUse {
                        part: p.clone(),
                        quantity: 1,
                    })
                    .collect(),
                minutes: 45,
            }
        }
        Step::Verify => {
            let lead = order
                .team
                .as_deref()
                .and_then(|t| service.roster().team(t))
                .map_or_else(|| MANAGER.to_owned(), |t| t.lead.clone());
            let lead = Caller {
                user: lead,
                dispatcher: true,
            };
            service
                .command(&order.id, Command::Verify, &lead, at(None))
                .await?;
            return Ok(());
        }
    };
    service
        .command(&order.id, command, &crew, at(position))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::workorders::service::{AlarmOrder, OrderMetrics};
    use crate::business::workorders::WorkOrdersConfig;
    use crate::store::embedded::EmbeddedStore;
    use cistern_actors::{Clock, ManualClock};
    use cistern_rules::Severity;
    use cistern_schemas::Timestamp;

    #[test]
    fn a_crew_on_the_way_is_between_its_depot_and_the_room() {
        let inventory = crate::lab::sim::generate_fleet(6, 1);
        let bases = bases(&inventory);
        let room = &inventory.rooms[0];
        let base = bases[room.zone.as_str()];
        let start = along(base, (room.lat, room.lon), -1.0);
        let half = along(base, (room.lat, room.lon), 0.5);
        let end = along(base, (room.lat, room.lon), 7.0);
        assert_eq!((start.lat, start.lon), base);
        assert_eq!((end.lat, end.lon), (room.lat, room.lon));
        assert!((half.lat - (base.0 + room.lat) / 2.0).abs() < 1e-9);
        assert!(crate::business::workorders::positions::valid(&half));
    }

    #[tokio::test]
    async fn a_simulated_crew_takes_an_order_from_dispatch_to_closed_with_positions() {
        let d = std::env::temp_dir().join(format!("cistern-crews-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let inventory = crate::lab::sim::generate_fleet(6, 1);
        let room = inventory.rooms[0].clone();
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        let service = WorkOrders::start(
            &WorkOrdersConfig {
                teams: teams(&inventory),
                ..Default::default()
            },
            Arc::new(EmbeddedStore::open(&d).unwrap()),
            &inventory,
            clock.clone(),
            crate::auth::Security::default(),
            OrderMetrics::register(&prometheus::Registry::new()).unwrap(),
        )
        .await
        .unwrap();
        let alarm = AlarmOrder {
            alarm: format!("{}/pump_fault@P1", room.id),
            room: room.id.clone(),
            device: None,
            rule: "pump_fault".into(),
            template: "pump_fault".into(),
            severity: Severity::P2,
            raised_at: clock.now(),
            message: "Pump P1 fault".into(),
            message_zh: "水泵 P1 故障".into(),
        };
        service.from_alarm(&alarm).await.unwrap();
        let mut order = service
            .list(&OrderFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .remove(0);
        let crew = order.assignee.clone().unwrap();
        assert!(crew.starts_with("crew-"), "{crew}");
        // Nothing happens before its time.
        assert_eq!(next_step(&order, 0), None);
        for _ in 0..10 {
            clock.advance(Duration::from_secs(600));
            let waited = 600_000;
            let Some(step) = next_step(&order, waited) else {
                break;
            };
            let position = Some(Position {
                lat: room.lat,
                lon: room.lon,
                accuracy_m: Some(15.0),
            });
            advance(&service, &order, step, &crew, position)
                .await
                .unwrap();
            order = service.get(&order.id).await.unwrap();
            if order.state == OrderState::EnRoute {
                // Half way from the depot, as `work` reports it on a tick; a second report at
                // once is refused (a phone's rate).
                clock.advance(Duration::from_secs(30));
                let base = bases(&inventory)[room.zone.as_str()];
                let half = along(base, (room.lat, room.lon), 0.5);
                service.report_position(&crew, half).await.unwrap();
                assert!(service.report_position(&crew, half).await.is_err());
            }
        }
        assert_eq!(order.state, OrderState::Closed, "{:?}", order.transitions);
        // The crew's last position, and the trail: the report on the way, then the stops.
        let last = service.positions().last();
        assert_eq!(
            (last.len(), last[0].user.as_str(), &last[0].order),
            (1, crew.as_str(), &order.id)
        );
        let trail = service
            .positions()
            .trail(&order.id, &order.transitions)
            .await
            .unwrap();
        let actions: Vec<Option<&str>> = trail.iter().map(|p| p.action.as_deref()).collect();
        assert_eq!(
            actions,
            [
                Some("accept"),
                Some("en_route"),
                None,
                Some("on_site"),
                Some("complete")
            ]
        );
        let on_site = order
            .transitions
            .iter()
            .find(|t| t.to == OrderState::OnSite)
            .unwrap();
        assert_eq!(on_site.position.map(|p| p.lat), Some(room.lat));
        // The template's photos, taken before completing.
        assert!(order.photos_required >= 1);
        assert_eq!(order.attachments.len(), order.photos_required as usize);
        let (meta, bytes) = service
            .attachment(&order.id, order.attachments[0].id)
            .await
            .unwrap();
        assert_eq!(
            (meta.content_type.as_str(), &bytes[..]),
            ("image/png", DEMO_PHOTO)
        );
        // Completed with the knowledge base's favourite, which now counts it.
        let resolution = order.resolution.clone().unwrap();
        assert_eq!(resolution.remedy, "reset_and_megger");
        let top = &service.knowledge().suggest("pump_fault").await.unwrap()[0];
        assert_eq!((top.remedy.as_str(), top.closed), ("reset_and_megger", 1));
        let _ = std::fs::remove_dir_all(&d);
    }
}
