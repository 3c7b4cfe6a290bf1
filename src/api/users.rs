//! Users (admin only, see [`crate::auth::policy`]): `GET /api/v1/users`,
//! `POST /api/v1/users` `{name, role, password}`, `GET /api/v1/users/{name}`,
//! `PATCH /api/v1/users/{name}` `{role?, password?}`, `DELETE /api/v1/users/{name}`. The last
//! admin can be neither deleted nor demoted. A new role or password ends every session of the
//! user (an admin resetting their own password keeps the session doing it); the answer says
//! how many. Every change, taken or refused, is audited.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::auth::{self, Principal, Role};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// `POST /api/v1/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub role: Role,
    pub password: String,
}

/// `PATCH /api/v1/users/{name}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub password: Option<String>,
}

// Never print a password.
impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUser")
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "<new>"))
            .finish()
    }
}

/// The caller (the middleware put it there; its absence is a wiring fault, refused as such).
/// The language an answer is worded in: `lang` when given (`zh-CN`, `en`), else the caller's
/// chosen language, else Chinese.
pub(crate) fn language_of(
    state: &ApiState,
    who: &Principal,
    lang: Option<&str>,
) -> Result<crate::auth::identity::Language, ApiError> {
    use crate::auth::identity::Language;
    match lang {
        Some(tag) => Language::from_tag(tag).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("lang must be one of {:?}", Language::TAGS),
            )
        }),
        None => Ok(state
            .security
            .auth
            .user(&who.user)
            .and_then(|u| u.language)
            .unwrap_or(Language::ZhCn)),
    }
}

pub(crate) fn caller(req: &HttpRequest) -> Result<Principal, ApiError> {
    auth::principal(req).ok_or_else(|| auth::AuthError::Unauthorized.into())
}

/// Audits an admin action with its outcome and passes the result on.
pub(crate) fn audited<T>(
    state: &ApiState,
    who: &Principal,
    action: &str,
    target: &str,
    detail: &str,
    result: Result<T, auth::IdentityError>,
) -> Result<T, ApiError> {
    match result {
        Ok(v) => {
            state.security.record(who, action, target, detail, true);
            Ok(v)
        }
        Err(e) => {
            state
                .security
                .record(who, action, target, format!("refused: {e}"), false);
            Err(e.into())
        }
    }
}

pub async fn list(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "users": state.security.auth.users() }))
}

pub async fn get(
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = state.security.auth.user(&name).ok_or_else(|| {
        ApiError::not_found(ErrorCode::UnknownUser, format!("no user {}", name.as_str()))
    })?;
    Ok(HttpResponse::Ok().json(user))
}

pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let result = state
        .security
        .auth
        .create_user(&body.name, body.role, &body.password)
        .await;
    let detail = format!("role {}", body.role);
    let user = audited(&state, &who, "user_create", &body.name, &detail, result)?;
    Ok(HttpResponse::Created().json(user))
}

pub async fn update(
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    if body.role.is_none() && body.password.is_none() {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give a `role`, a `password`, or both",
        ));
    }
    // An admin changing only their own password keeps the session doing it, as a user does
    // through `PUT /api/v1/auth/me/password`.
    let keep = (who.user == name.as_str())
        .then_some(who.session.as_deref())
        .flatten();
    let result = state
        .security
        .auth
        .update_user(&name, body.role, body.password.as_deref(), keep)
        .await;
    let mut detail = Vec::new();
    if let Some(r) = body.role {
        detail.push(format!("role {r}"));
    }
    if body.password.is_some() {
        detail.push("password changed".to_owned());
    }
    if let Ok(c) = &result {
        detail.push(format!("{} sessions ended", c.sessions_ended));
    }
    let change = audited(
        &state,
        &who,
        "user_update",
        &name,
        &detail.join(", "),
        result,
    )?;
    let mut out =
        serde_json::to_value(&change.user).map_err(|e| ApiError::internal(e.to_string()))?;
    out["sessions_ended"] = change.sessions_ended.into();
    Ok(HttpResponse::Ok().json(out))
}

pub async fn delete(
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let result = state.security.auth.delete_user(&name).await;
    let user = audited(&state, &who, "user_delete", &name, "", result)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": user })))
}
