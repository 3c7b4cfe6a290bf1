//! Sessions over REST: `POST /api/v1/auth/login` (public) → a session token,
//! `POST /api/v1/auth/logout` ends the presented one, `GET /api/v1/auth/me` says who the token
//! stands for, and `PUT /api/v1/auth/me/language` keeps the console language the signed-in
//! user chose — with the user, on the node, so that it follows them to any browser (the login
//! answer and `me` carry it; null: never chose, the browser's language applies). Choosing is
//! audited like the other changes to a user.

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
    let ended = state.security.auth.logout(&token).await;
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

pub async fn me(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let who = auth::principal(&req).ok_or(auth::AuthError::Unauthorized)?;
    // An API token is no user: it has no language.
    let language = state.security.auth.user(&who.user).and_then(|u| u.language);
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "user": who.user, "role": who.role, "language": language })))
}

/// `PUT /api/v1/auth/me/language` body: `zh-CN`, `en`, or null (back to the browser's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    pub language: Option<String>,
}

pub async fn set_language(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<LanguageBody>,
) -> Result<HttpResponse, ApiError> {
    let who = auth::principal(&req).ok_or(auth::AuthError::Unauthorized)?;
    let language = match body.language.as_deref() {
        None => None,
        Some(tag) => Some(auth::Language::from_tag(tag).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidLanguage,
                format!(
                    "`language` must be one of {} (or null), not {tag:?}",
                    auth::Language::TAGS.join(", ")
                ),
            )
        })?),
    };
    if state.security.auth.user(&who.user).is_none() {
        let e = ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NotAUser,
            "an API token has no console language: sign in as a user to choose one",
        );
        let detail = format!("refused: {}", e.message);
        state
            .security
            .record(&who, "language_set", &who.user, detail, false);
        return Err(e);
    }
    let result = state.security.auth.set_language(&who.user, language).await;
    let detail = language.map_or("the browser's", auth::Language::tag);
    let user = super::users::audited(&state, &who, "language_set", &who.user, detail, result)?;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({ "user": user.name, "language": user.language })),
    )
}
