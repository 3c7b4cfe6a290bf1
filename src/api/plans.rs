//! Peak-shaving plans (issue 7), read-only: `GET /api/v1/districts` lists the districts whose
//! tanks are planned; `GET /api/v1/districts/{id}/plan` gives each tank's current plan and its
//! delivery to the controller (written and read back, or why not), the last round's figures,
//! and the district timeline: planned against actual inflow, 15-min slots, two days back and
//! one day ahead. Viewers may read them (the policy's default for a GET under /api/).

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use cistern_schemas::Timestamp;

fn board(state: &ApiState) -> Result<&crate::control::plans::PlanBoard, ApiError> {
    state.plans.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NoPlanning,
            "this node does not plan tank filling",
        )
    })
}

/// Every planned district.
pub async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let districts = board(&state)?.districts();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "districts": districts })))
}

/// One district's plans and timeline.
pub async fn get(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = board(&state)?.district(&id, Timestamp::now())?;
    Ok(HttpResponse::Ok().json(view))
}
