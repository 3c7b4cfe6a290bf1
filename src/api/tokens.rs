//! API tokens for machines (admin only): `GET /api/v1/tokens` (never a secret),
//! `POST /api/v1/tokens` `{name, role}` → the token, shown this once, `DELETE
//! /api/v1/tokens/{id}` revokes. A token acts as `token:<name>`. Every change is audited.

use super::error::ApiError;
use super::users::{audited, caller};
use super::ApiState;
use crate::auth::Role;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
}

pub async fn list(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "tokens": state.security.auth.tokens() }))
}

pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let result = state
        .security
        .auth
        .create_token(&body.name, body.role, &who.user)
        .await;
    let detail = format!("role {}", body.role);
    let (view, secret) = audited(&state, &who, "token_create", &body.name, &detail, result)?;
    let mut body = serde_json::to_value(&view).map_err(|e| ApiError::internal(e.to_string()))?;
    body["token"] = secret.into();
    Ok(HttpResponse::Created().json(body))
}

pub async fn revoke(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let result = state.security.auth.revoke_token(&id).await;
    let view = audited(&state, &who, "token_revoke", &id, "", result)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked": view })))
}
