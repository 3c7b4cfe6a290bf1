//! Stable string ids as newtypes.
//!
//! Room `XM-0001`, pump `XM-0001/P1`, tank `XM-0001/T1`, camera `XM-0001/C1`; a point is a
//! device plus a point name: `XM-0001/P1.freq`, or `XM-0001.outlet_pressure` for the room's
//! own instruments (power meter, hydraulics, water quality, environment, security).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why an id string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("empty id")]
    Empty,
    #[error("id {0:?} is longer than 64 characters")]
    TooLong(String),
    #[error("id {0:?} may contain only letters, digits, '-' and '_'")]
    BadCharacter(String),
    #[error("device {0:?} is not `room`, `P<n>`, `T<n>` or `C<n>` with n in 1..=99")]
    BadDevice(String),
    #[error("point {0:?} is not `<room>[/<device>].<name>`")]
    BadPoint(String),
}

fn check_segment(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > 64 {
        return Err(IdError::TooLong(s.to_owned()));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadCharacter(s.to_owned()));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(s: &str) -> Result<Self, IdError> {
                check_segment(s)?;
                Ok(Self(Arc::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A pump room (or booster station), e.g. `XM-0001`.
    RoomId
);
string_id!(
    /// A district / supply zone, e.g. `siming`.
    ZoneId
);
string_id!(
    /// A project or compound (小区) of the archive, which rooms belong to, e.g. `XM-P0001`.
    ProjectId
);
string_id!(
    /// An equipment of a room's archive, unique within the room: `P1` (a pump), `P1-M` (its
    /// motor), `P1-VFD`, `T1`, `CAB1`, `WQ1`, `EM1`, `C1`, `AC1`.
    EquipmentTag
);

/// Which equipment of a room a device id names. The room itself carries the room-level
/// instruments (power meter, hydraulics, water-quality analyser, environment, security).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceUnit {
    Room,
    Pump(u8),
    Tank(u8),
    Camera(u8),
}

impl DeviceUnit {
    /// The kind of equipment, which selects the point catalog.
    pub fn kind(self) -> crate::DeviceKind {
        match self {
            DeviceUnit::Room => crate::DeviceKind::Room,
            DeviceUnit::Pump(_) => crate::DeviceKind::Pump,
            DeviceUnit::Tank(_) => crate::DeviceKind::Tank,
            DeviceUnit::Camera(_) => crate::DeviceKind::Camera,
        }
    }
}

impl fmt::Display for DeviceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceUnit::Room => f.write_str("room"),
            DeviceUnit::Pump(n) => write!(f, "P{n}"),
            DeviceUnit::Tank(n) => write!(f, "T{n}"),
            DeviceUnit::Camera(n) => write!(f, "C{n}"),
        }
    }
}

impl FromStr for DeviceUnit {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s == "room" {
            return Ok(DeviceUnit::Room);
        }
        let bad = || IdError::BadDevice(s.chars().take(64).collect());
        let mut chars = s.chars();
        let prefix = chars.next().ok_or_else(bad)?;
        let rest = chars.as_str();
        if rest.is_empty() || rest.len() > 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u8 = rest.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match prefix {
            'P' => Ok(DeviceUnit::Pump(n)),
            'T' => Ok(DeviceUnit::Tank(n)),
            'C' => Ok(DeviceUnit::Camera(n)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for DeviceUnit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A live device's equipment tag in the archive (`P1`): always a valid tag.
impl From<DeviceUnit> for EquipmentTag {
    fn from(unit: DeviceUnit) -> Self {
        Self(Arc::from(unit.to_string()))
    }
}

/// A device: a room plus which of its equipment. Displays as `XM-0001` or `XM-0001/P1`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId {
    pub room: RoomId,
    pub unit: DeviceUnit,
}

impl DeviceId {
    pub fn new(room: RoomId, unit: DeviceUnit) -> Self {
        Self { room, unit }
    }

    pub fn room(room: RoomId) -> Self {
        Self {
            room,
            unit: DeviceUnit::Room,
        }
    }

    /// The point `name` of this device.
    pub fn point(&self, name: &str) -> PointId {
        PointId {
            device: self.clone(),
            name: Arc::from(name),
        }
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            DeviceUnit::Room => write!(f, "{}", self.room),
            unit => write!(f, "{}/{}", self.room, unit),
        }
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.split_once('/') {
            None => Ok(DeviceId::room(RoomId::new(s)?)),
            Some((room, unit)) => Ok(DeviceId {
                room: RoomId::new(room)?,
                unit: unit.parse()?,
            }),
        }
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A point: `XM-0001/P1.freq` or `XM-0001.outlet_pressure`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointId {
    pub device: DeviceId,
    pub name: Arc<str>,
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.device, self.name)
    }
}

impl fmt::Debug for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PointId({self})")
    }
}

impl FromStr for PointId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (device, name) = s
            .rsplit_once('.')
            .ok_or_else(|| IdError::BadPoint(s.to_owned()))?;
        check_segment(name).map_err(|_| IdError::BadPoint(s.to_owned()))?;
        Ok(PointId {
            device: device.parse()?,
            name: Arc::from(name),
        })
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        for s in ["XM-0001", "XM-0001/P1", "XM-0001/T2", "XM-0001/C12"] {
            let d: DeviceId = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        let p: PointId = "XM-0001/P1.freq".parse().unwrap();
        assert_eq!(p.device.unit, DeviceUnit::Pump(1));
        assert_eq!(&*p.name, "freq");
        let p: PointId = "XM-0001.outlet_pressure".parse().unwrap();
        assert_eq!(p.device.unit, DeviceUnit::Room);
        assert_eq!(p.to_string(), "XM-0001.outlet_pressure");
    }

    #[test]
    fn bad_ids_are_refused_with_a_reason() {
        assert_eq!(RoomId::new(""), Err(IdError::Empty));
        assert!(matches!(RoomId::new("a b"), Err(IdError::BadCharacter(_))));
        assert!(matches!(
            "XM-1/Q1".parse::<DeviceId>(),
            Err(IdError::BadDevice(_))
        ));
        assert!(matches!(
            "XM-1/P0".parse::<DeviceId>(),
            Err(IdError::BadDevice(_))
        ));
        assert!(matches!(
            "XM-1/P".parse::<DeviceId>(),
            Err(IdError::BadDevice(_))
        ));
        assert!(matches!(
            "XM-1".parse::<PointId>(),
            Err(IdError::BadPoint(_))
        ));
        assert!(RoomId::new(&"x".repeat(65)).is_err());
    }
}
