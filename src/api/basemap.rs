//! The site's base map (`GET /api/v1/basemap`): district boundaries and coastline as GeoJSON,
//! drawn by the fleet map under the rooms so that a control room without internet still sees
//! where its rooms are. The node reads the file named by `[inventory] basemap` once at start-up,
//! checks its shape (a FeatureCollection of named Polygon and MultiPolygon features in
//! longitude/latitude) and serves the text as read: a bad file stops start-up with the reason,
//! rather than a blank map later.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::Value;
use std::sync::Arc;

/// A checked base map, ready to serve.
#[derive(Clone, Debug)]
pub struct Basemap {
    body: Arc<str>,
    features: usize,
}

/// Why a base map was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BasemapError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a GeoJSON FeatureCollection with a `features` list")]
    NotACollection,
    #[error("feature {index}: {reason}")]
    Feature { index: usize, reason: String },
}

impl Basemap {
    /// Checks `text` and keeps it.
    pub fn parse(text: &str) -> Result<Self, BasemapError> {
        let v: Value = serde_json::from_str(text).map_err(|e| BasemapError::Json(e.to_string()))?;
        let features = match (v.get("type").and_then(Value::as_str), v.get("features")) {
            (Some("FeatureCollection"), Some(Value::Array(f))) => f,
            _ => return Err(BasemapError::NotACollection),
        };
        for (index, f) in features.iter().enumerate() {
            check_feature(f).map_err(|reason| BasemapError::Feature { index, reason })?;
        }
        Ok(Self {
            body: Arc::from(text),
            features: features.len(),
        })
    }

    /// How many features it draws.
    pub fn features(&self) -> usize {
        self.features
    }
}

fn check_feature(f: &Value) -> Result<(), String> {
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err("not a Feature".into());
    }
    let named = f
        .pointer("/properties/name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.trim().is_empty());
    if !named {
        return Err("no `name` property".into());
    }
    let geometry = f.get("geometry").ok_or("no geometry")?;
    let coords = geometry.get("coordinates").ok_or("no coordinates")?;
    match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => check_polygon(coords),
        Some("MultiPolygon") => coords
            .as_array()
            .ok_or("MultiPolygon coordinates are not a list")?
            .iter()
            .try_for_each(check_polygon),
        other => Err(format!(
            "geometry {} is not a Polygon or MultiPolygon",
            other.unwrap_or("without a type")
        )),
    }
}

/// Rings of at least four [longitude, latitude] positions, each on the globe.
fn check_polygon(rings: &Value) -> Result<(), String> {
    let rings = rings.as_array().ok_or("polygon is not a list of rings")?;
    if rings.is_empty() {
        return Err("polygon without a ring".into());
    }
    for ring in rings {
        let ring = ring.as_array().ok_or("ring is not a list")?;
        if ring.len() < 4 {
            return Err(format!("a ring of {} positions (at least 4)", ring.len()));
        }
        for p in ring {
            let (lon, lat) = match p.as_array().map(Vec::as_slice) {
                Some([lon, lat, ..]) => (lon.as_f64(), lat.as_f64()),
                _ => (None, None),
            };
            match (lon, lat) {
                (Some(lon), Some(lat)) if lon.abs() <= 180.0 && lat.abs() <= 90.0 => {}
                _ => return Err(format!("{p} is not a [longitude, latitude] position")),
            }
        }
    }
    Ok(())
}

/// `GET /api/v1/basemap`: the GeoJSON as configured, or 404 `no_basemap`.
pub async fn get(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let map = state.basemap.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NoBasemap,
            "this site has no base map ([inventory] basemap)",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/geo+json")
        .body(map.body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_map_of_xiamen_is_six_named_districts() {
        let map = Basemap::parse(include_str!("../../ops/maps/xiamen-districts.geojson")).unwrap();
        assert_eq!(map.features(), 6);
    }

    #[test]
    fn malformed_maps_are_refused_with_the_reason() {
        let square = "[[118.0,24.4],[118.1,24.4],[118.1,24.5],[118.0,24.4]]";
        let feature = |props: &str, geometry: &str| {
            format!(
                r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},"geometry":{geometry}}}]}}"#
            )
        };
        let good = feature(
            r#"{"name":"思明区"}"#,
            &format!(r#"{{"type":"Polygon","coordinates":[{square}]}}"#),
        );
        assert_eq!(Basemap::parse(&good).unwrap().features(), 1);
        assert!(matches!(Basemap::parse("{"), Err(BasemapError::Json(_))));
        assert_eq!(
            Basemap::parse(r#"{"type":"Feature"}"#).unwrap_err(),
            BasemapError::NotACollection
        );
        let cases = [
            (
                feature(
                    "{}",
                    &format!(r#"{{"type":"Polygon","coordinates":[{square}]}}"#),
                ),
                "no `name` property",
            ),
            (
                feature(
                    r#"{"name":"x"}"#,
                    r#"{"type":"Point","coordinates":[118,24]}"#,
                ),
                "geometry Point is not a Polygon or MultiPolygon",
            ),
            (
                feature(
                    r#"{"name":"x"}"#,
                    r#"{"type":"Polygon","coordinates":[[[1,2],[3,4]]]}"#,
                ),
                "a ring of 2 positions (at least 4)",
            ),
            (
                feature(
                    r#"{"name":"x"}"#,
                    r#"{"type":"Polygon","coordinates":[[[1,2],[3,4],[200,4],[1,2]]]}"#,
                ),
                "[200,4] is not a [longitude, latitude] position",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                Basemap::parse(&text).unwrap_err(),
                BasemapError::Feature {
                    index: 0,
                    reason: reason.into()
                },
                "{text}"
            );
        }
    }
}
