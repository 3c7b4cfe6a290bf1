//! The diagnosis hint on an alarm (the seed's 设备异常 / 网络连接异常 / 平台异常): before a crew
//! is sent, the dispatcher should know whether the fault is in the room's equipment, in the
//! link between the room and the platform, or in the platform itself — three different people
//! fix those, and only the first needs a van.
//!
//! The hint is read from what the node knows at the moment of asking, not stored with the
//! alarm (it changes as the situation does):
//! - **platform**: the node's own ingest (broker subscription, Modbus pollers) or its store is
//!   not ready — every room looks silent, so nothing else can be concluded;
//! - **network**: the alarm's room is silent (no data arriving). If a good share of the other
//!   rooms behind the same carrier (the inventory's `carrier`, else the room's zone) are silent
//!   too, it is that carrier's outage; otherwise the room's own gateway or line;
//! - **device**: the platform is well and the room's data arrive, so the alarm is about what
//!   they say — the equipment.

use serde::Serialize;

/// Where the fault most likely is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Device,
    Network,
    Platform,
}

/// The hint, with its reason in both languages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    pub layer: Layer,
    pub reason: String,
    pub reason_zh: String,
}

/// What the node knows when asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Situation {
    /// The node's parts that are not ready (`ingest`, `store` …); empty when all are.
    pub platform_down: Vec<&'static str>,
    /// The alarm's room sends no data (none for a zone's alarm).
    pub room_silent: Option<bool>,
    /// What the room's peers are grouped by: the carrier's name, else the zone's id.
    pub peers: String,
    /// Whether `peers` is a carrier (else a zone).
    pub by_carrier: bool,
    /// The room's peers (itself excluded), and how many of them are silent.
    pub peer_rooms: usize,
    pub peers_silent: usize,
}

/// At least this many silent peers, and at least this share of them, make an outage of the
/// carrier rather than of one room's line.
const OUTAGE_PEERS: usize = 2;
const OUTAGE_SHARE: f64 = 0.2;

/// The hint for an alarm in `situation` (see the module doc).
pub fn diagnose(situation: &Situation) -> Diagnosis {
    if !situation.platform_down.is_empty() {
        let parts = situation.platform_down.join(", ");
        let parts_zh = situation
            .platform_down
            .iter()
            .map(|p| match *p {
                "ingest" => "数据接入",
                "ingest_lag" => "数据接入延迟",
                "store" => "存储",
                "actors" => "泵房进程",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("、");
        return Diagnosis {
            layer: Layer::Platform,
            reason: format!("The platform is not ready ({parts}): rooms may only look silent"),
            reason_zh: format!("平台异常：{parts_zh}未就绪，泵房可能只是看起来无数据"),
        };
    }
    if situation.room_silent != Some(true) {
        return Diagnosis {
            layer: Layer::Device,
            reason: "The room's data arrive and the platform is well: the fault is in the room's equipment".into(),
            reason_zh: "设备异常：泵房数据正常到达、平台正常，故障在泵房设备".into(),
        };
    }
    let (what, what_zh) = if situation.by_carrier {
        (
            format!("carrier {}", situation.peers),
            format!("运营商 {}", situation.peers),
        )
    } else {
        (
            format!("zone {}", situation.peers),
            format!("片区 {}", situation.peers),
        )
    };
    let share = situation.peers_silent as f64 / situation.peer_rooms.max(1) as f64;
    if situation.peers_silent >= OUTAGE_PEERS && share >= OUTAGE_SHARE {
        Diagnosis {
            layer: Layer::Network,
            reason: format!(
                "The room is silent, and so are {} of the {} other rooms on {what}: an outage of the {}",
                situation.peers_silent,
                situation.peer_rooms,
                if situation.by_carrier { "carrier" } else { "zone's network or mains" }
            ),
            reason_zh: format!(
                "网络连接异常：本泵房无数据，{what_zh}的其他 {} 座泵房中也有 {} 座无数据，{}",
                situation.peer_rooms,
                situation.peers_silent,
                if situation.by_carrier { "疑为运营商故障" } else { "疑为片区网络或供电故障" }
            ),
        }
    } else {
        Diagnosis {
            layer: Layer::Network,
            reason: format!(
                "The room is silent while the other rooms on {what} report: its gateway, SIM or line"
            ),
            reason_zh: format!("网络连接异常：本泵房无数据而{what_zh}的其他泵房正常，查网关、SIM 卡或线路"),
        }
    }
}

/// Gathers the situation of `room` (none: a zone's alarm) from the fleet's status board and
/// the node's readiness.
pub fn situation(
    registry: &cistern_actors::FleetRegistry,
    readiness: Option<&crate::monitor::ready::Readiness>,
    room: Option<&cistern_schemas::RoomId>,
) -> Situation {
    let platform_down = readiness
        .map(|r| {
            r.check()
                .not_ready
                .into_iter()
                .filter(|p| *p != "actors")
                .collect()
        })
        .unwrap_or_default();
    let Some(spec) = room.and_then(|r| registry.spec(r)) else {
        return Situation {
            platform_down,
            ..Situation::default()
        };
    };
    let (peers, by_carrier) = match &spec.carrier {
        Some(c) => (c.clone(), true),
        None => (spec.zone.to_string(), false),
    };
    let mut s = Situation {
        platform_down,
        room_silent: Some(false),
        peers,
        by_carrier,
        peer_rooms: 0,
        peers_silent: 0,
    };
    registry.visit(|r, online, _| {
        if r.id == spec.id {
            s.room_silent = Some(!online);
            return;
        }
        let same = match &spec.carrier {
            Some(c) => r.carrier.as_ref() == Some(c),
            None => r.zone == spec.zone,
        };
        if same {
            s.peer_rooms += 1;
            s.peers_silent += usize::from(!online);
        }
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silent_room(peer_rooms: usize, peers_silent: usize) -> Situation {
        Situation {
            platform_down: vec![],
            room_silent: Some(true),
            peers: "中国移动".into(),
            by_carrier: true,
            peer_rooms,
            peers_silent,
        }
    }

    #[test]
    fn a_room_whose_data_arrive_has_a_device_fault() {
        let s = Situation {
            room_silent: Some(false),
            ..silent_room(10, 9)
        };
        assert_eq!(diagnose(&s).layer, Layer::Device);
    }

    #[test]
    fn a_silent_room_alone_on_its_carrier_is_its_own_line_and_many_are_the_carrier() {
        let alone = diagnose(&silent_room(10, 1));
        assert_eq!(alone.layer, Layer::Network);
        assert!(alone.reason.contains("gateway"), "{}", alone.reason);
        let outage = diagnose(&silent_room(10, 4));
        assert_eq!(outage.layer, Layer::Network);
        assert!(outage.reason.contains("4 of the 10"), "{}", outage.reason);
        assert!(outage.reason_zh.contains("运营商"), "{}", outage.reason_zh);
        // Two silent among a hundred is a coincidence, not an outage.
        assert!(diagnose(&silent_room(100, 2)).reason.contains("gateway"));
    }

    #[test]
    fn a_platform_that_is_not_ready_explains_everything_first() {
        let s = Situation {
            platform_down: vec!["ingest"],
            ..silent_room(10, 10)
        };
        let d = diagnose(&s);
        assert_eq!(d.layer, Layer::Platform);
        assert!(d.reason_zh.contains("数据接入"), "{}", d.reason_zh);
    }

    #[test]
    fn a_zones_alarm_with_a_well_platform_is_about_the_plant() {
        assert_eq!(diagnose(&Situation::default()).layer, Layer::Device);
    }
}
