//! Sessions over REST: `POST /api/v1/auth/login` (public) → a session token (and, for a
//! browser signing in for the first time, its device token: see [`crate::auth::throttle`]),
//! `POST /api/v1/auth/logout` ends the presented one, `GET /api/v1/auth/me` says who the token
//! stands for (and, for a session, when it ends), `PUT /api/v1/auth/me/password` changes the
//! signed-in user's own password (the current one first; their other sessions end, this one
//! stays), and `PUT /api/v1/auth/me/language` keeps the console language the signed-in
//! user chose — with the user, on the node, so that it follows them to any browser (the login
//! answer and `me` carry it; null: never chose, the browser's language applies). Choosing a
//! language or a password is audited like the other changes to a user.

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
    /// The device token this browser was given at an earlier login of the same user.
    #[serde(default)]
    pub device: Option<String>,
}

/// Where a request comes from: its TCP peer, its `User-Agent`, and a device token.
pub(crate) fn login_from(req: &HttpRequest, device: Option<String>) -> auth::LoginFrom {
    auth::LoginFrom {
        address: req.peer_addr().map(|a| a.ip()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        device,
    }
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
    let body = body.into_inner();
    let from = login_from(&req, body.device);
    match state
        .security
        .login(&body.user, &body.password, &from)
        .await
    {
        Ok(session) => Ok(HttpResponse::Ok().json(session)),
        Err(LoginError::BadCredentials { .. }) => Err(auth::AuthError::Unauthorized.into()),
        Err(e @ LoginError::Throttled(t)) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            e.to_string(),
        )
        .retry_after(t.retry_after)),
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
    let session = who.session.as_deref().and_then(|id| {
        (state
            .security
            .auth
            .sessions(Some(&who.user), Some(id))
            .into_iter())
        .find(|s| s.current)
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user": who.user,
        "role": who.role,
        "language": language,
        "scope": who.scope,
        "session": session,
        "password_min_chars": state.security.auth.password_min_chars(),
    })))
}

/// `PUT /api/v1/auth/me/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
    /// This browser's device token (throttling of wrong current passwords, as for a login).
    #[serde(default)]
    pub device: Option<String>,
}

// Never print a password.
impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordBody").finish_non_exhaustive()
    }
}

/// The signed-in user changes their own password: the current one is checked (a wrong one is
/// throttled like a failed login), the new one must pass the policy; their other sessions end
/// and the one making the change stays (ASVS 5.0 7.4.3: a user who changes a password because
/// it leaked wants every other session gone, and to stay signed in where they are).
pub async fn change_password(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let who = auth::principal(&req).ok_or(auth::AuthError::Unauthorized)?;
    if state.security.auth.user(&who.user).is_none() || who.session.is_none() {
        let e = ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NotAUser,
            "an API token has no password: sign in as a user to change one",
        );
        let detail = format!("refused: {}", e.message);
        state
            .security
            .record(&who, "password_change", &who.user, detail, false);
        return Err(e);
    }
    let body = body.into_inner();
    let from = login_from(&req, body.device);
    let result = state
        .security
        .auth
        .change_own_password(
            &who.user,
            &body.current_password,
            &body.new_password,
            &from,
            who.session.as_deref(),
        )
        .await;
    let detail = match &result {
        Ok(c) => format!(
            "own password changed ({} other sessions ended)",
            c.sessions_ended
        ),
        Err(_) => String::new(),
    };
    let change =
        super::users::audited(&state, &who, "password_change", &who.user, &detail, result)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user": change.user.name,
        "sessions_ended": change.sessions_ended,
    })))
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
