//! Live figures of the fleet for its gauges: each room's outlet flow and active power, each
//! tank's level as a share of its overflow level. Actors write their own entry when their
//! live state changes (one map insert, no message); the metrics collector reads the whole
//! board when Prometheus scrapes, so the fleet's zone totals cost nothing per sample.

use cistern_schemas::{DeviceId, RoomId};
use dashmap::DashMap;

/// A room's figures (none: no good value at present).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoomFigures {
    pub outlet_flow_m3h: Option<f64>,
    pub active_power_kw: Option<f64>,
}

/// The fleet's live figures (see the module doc).
#[derive(Debug, Default)]
pub struct LiveFigures {
    rooms: DashMap<RoomId, RoomFigures>,
    /// Level / overflow level, 0..1 (may exceed 1 when the tank overflows).
    tanks: DashMap<DeviceId, f64>,
}

impl LiveFigures {
    pub fn set_room(&self, room: &RoomId, figures: RoomFigures) {
        match self.rooms.get_mut(room) {
            Some(mut e) => *e = figures,
            None => {
                self.rooms.insert(room.clone(), figures);
            }
        }
    }

    /// Records a tank's level ratio; `None` (no good level) takes it off the board.
    pub fn set_tank(&self, tank: &DeviceId, level_ratio: Option<f64>) {
        match level_ratio {
            Some(r) => match self.tanks.get_mut(tank) {
                Some(mut e) => *e = r,
                None => {
                    self.tanks.insert(tank.clone(), r);
                }
            },
            None => {
                self.tanks.remove(tank);
            }
        }
    }

    /// Takes a room and its tanks off the board (the room stopped on this node).
    pub fn remove_room(&self, room: &RoomId) {
        self.rooms.remove(room);
        self.tanks.retain(|t, _| &t.room != room);
    }

    pub fn room(&self, room: &RoomId) -> RoomFigures {
        self.rooms.get(room).map(|e| *e).unwrap_or_default()
    }

    /// Every tank with a good level: its room and its level ratio.
    pub fn tanks(&self) -> Vec<(RoomId, f64)> {
        self.tanks
            .iter()
            .map(|e| (e.key().room.clone(), *e.value()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::DeviceUnit;

    #[test]
    fn a_tank_without_a_good_level_leaves_the_board() {
        let figures = LiveFigures::default();
        let room: RoomId = "XM-0001".parse().unwrap();
        let tank = DeviceId::new(room.clone(), DeviceUnit::Tank(1));
        figures.set_tank(&tank, Some(0.5));
        figures.set_tank(&tank, Some(0.6));
        assert_eq!(figures.tanks(), vec![(room.clone(), 0.6)]);
        figures.set_tank(&tank, None);
        assert!(figures.tanks().is_empty());
        assert_eq!(figures.room(&room), RoomFigures::default());
    }
}
