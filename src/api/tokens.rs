//! API tokens for machines (admin only): `GET /api/v1/tokens` (never a secret),
//! `POST /api/v1/tokens` `{name, role, scope?, expires_at_ms?}` → the token, shown this once,
//! `DELETE /api/v1/tokens/{id}` revokes. A token acts as `token:<name>` with its role, narrowed
//! by its scope (`read`, `operate`, `admin`; default: all its role allows), until it expires
//! (default `[auth] token_lifetime`; at most `token_max_lifetime`). Every change is audited.

use super::error::ApiError;
use super::users::{audited, caller};
use super::ApiState;
use crate::auth::{Role, Scope};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub scope: Option<Scope>,
    /// When it expires (ms since the epoch).
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
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
        .create_token(
            &body.name,
            body.role,
            body.scope,
            body.expires_at_ms,
            &who.user,
        )
        .await;
    let detail = match &result {
        Ok((view, _)) => format!(
            "role {}, scope {}, expires {}",
            view.role,
            view.scope,
            view.expires_at_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
                )
                .to_string())
                .unwrap_or_default()
        ),
        Err(_) => format!("role {}", body.role),
    };
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
