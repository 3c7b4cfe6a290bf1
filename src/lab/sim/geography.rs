//! Where the simulated rooms may stand: on land, inside their real district. The demo's base
//! map (`ops/maps/xiamen-districts.geojson`) gives each district's boundary and coastline; a
//! room drawn in its district's bounding box but in the sea (Xiamen is an island and a coast)
//! is drawn again from a stream of its own, so that the rest of the room's draws, and so the
//! fleet a seed gives, stay as they were.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A polygon: its outer ring first, then its holes; (longitude, latitude).
type Polygon = Vec<Vec<(f64, f64)>>;

/// The districts' land, by Chinese name.
fn districts() -> &'static BTreeMap<String, Vec<Polygon>> {
    static LAND: OnceLock<BTreeMap<String, Vec<Polygon>>> = OnceLock::new();
    LAND.get_or_init(|| parse(include_str!("../../../ops/maps/xiamen-districts.geojson")))
}

fn parse(text: &str) -> BTreeMap<String, Vec<Polygon>> {
    let mut out = BTreeMap::new();
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return out;
    };
    let ring = |r: &Value| -> Vec<(f64, f64)> {
        r.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
            .collect()
    };
    let polygon = |p: &Value| -> Polygon { p.as_array().into_iter().flatten().map(ring).collect() };
    for f in v["features"].as_array().into_iter().flatten() {
        let Some(name) = f.pointer("/properties/name").and_then(Value::as_str) else {
            continue;
        };
        let g = &f["geometry"];
        let polygons = match g["type"].as_str() {
            Some("Polygon") => vec![polygon(&g["coordinates"])],
            Some("MultiPolygon") => g["coordinates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(polygon)
                .collect(),
            _ => continue,
        };
        out.insert(name.to_owned(), polygons);
    }
    out
}

/// Whether (lon, lat) is inside `ring` (ray casting).
fn in_ring(ring: &[(f64, f64)], lon: f64, lat: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len().wrapping_sub(1);
    for i in 0..ring.len() {
        let (xi, yi) = ring[i];
        let (xj, yj) = ring[j];
        if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Whether (lon, lat) is on the land of the district named `name`; `None` when the map does
/// not know the district.
pub(crate) fn on_land(name: &str, lon: f64, lat: f64) -> Option<bool> {
    let polygons = districts().get(name)?;
    Some(polygons.iter().any(|p| {
        p.first().is_some_and(|outer| in_ring(outer, lon, lat))
            && !p.iter().skip(1).any(|hole| in_ring(hole, lon, lat))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_knows_the_six_districts_and_tells_land_from_sea() {
        assert_eq!(districts().len(), 6);
        // Zhongshan Road in Siming, on Xiamen island; the strait east of Xiamen island.
        assert_eq!(on_land("思明区", 118.083, 24.456), Some(true));
        assert_eq!(on_land("思明区", 118.25, 24.40), Some(false));
        assert_eq!(
            on_land("思明区", 118.032, 24.484),
            Some(false),
            "that is Haicang"
        );
        assert_eq!(on_land("海沧区", 118.032, 24.484), Some(true));
        assert_eq!(on_land("未知区", 118.0, 24.5), None);
    }
}
