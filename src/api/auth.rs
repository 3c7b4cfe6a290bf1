//! Sessions over REST: `POST /api/v1/auth/login` (public) → a session token,
//! `POST /api/v1/auth/logout` ends the presented one, `GET /api/v1/auth/me` says who the token
//! stands for.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::auth::{self, LoginError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub user: String,
    pub password: String,
}

// Never print the password.
impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("user", &self.user)
            .finish()
    }
}

pub async fn login(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let address = req.peer_addr().map(|a| a.ip());
    match state
        .security
        .login(&body.user, &body.password, address)
        .await
    {
        Ok(session) => Ok(HttpResponse::Ok().json(session)),
        Err(LoginError::BadCredentials) => Err(auth::AuthError::Unauthorized.into()),
        Err(LoginError::Limited(l)) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            "too many failed logins; try again later",
        )
        .retry_after(l.retry_after)),
        Err(LoginError::Internal(e)) => {
            tracing::error!(error = %e, "login failed");
            Err(ApiError::internal("login failed"))
        }
    }
}

pub async fn logout(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let who = auth::principal(&req).ok_or(auth::AuthError::Unauthorized)?;
    let token = auth::middleware::bearer_of(&req)
        .ok()
        .flatten()
        .ok_or(auth::AuthError::Unauthorized)?;
    let ended = state.security.auth.logout(&token);
    state.security.record(
        &who,
        "logout",
        "session",
        if ended { "" } else { "not a session token" },
        ended,
    );
    if !ended {
        return Err(ApiError::bad_request(
            ErrorCode::NotASession,
            "this token is not a login session (API tokens are revoked under /api/v1/tokens)",
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "logged_out": true })))
}

pub async fn me(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let who = auth::principal(&req).ok_or(auth::AuthError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": who.user, "role": who.role })))
}
