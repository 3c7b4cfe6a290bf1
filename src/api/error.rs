//! JSON errors of the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// An API error: an HTTP status, a stable machine-readable code and a message for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` (whole seconds), for refusals that end.
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        resp.json(Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
    }
}

impl From<cistern_actors::RouteError> for ApiError {
    fn from(e: cistern_actors::RouteError) -> Self {
        use cistern_actors::RouteError as R;
        match &e {
            R::UnknownRoom(_) | R::UnknownDevice { .. } => {
                Self::not_found(e.label(), e.to_string())
            }
            R::RoomDown(_) | R::Timeout(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.label(), e.to_string())
            }
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        match e {
            A::Unauthorized => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            A::Forbidden { .. } => Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        }
    }
}

impl From<crate::auth::IdentityError> for ApiError {
    fn from(e: crate::auth::IdentityError) -> Self {
        use crate::auth::IdentityError as I;
        match &e {
            I::InvalidName { .. } => Self::bad_request("invalid_name", e.to_string()),
            I::WeakPassword => Self::bad_request("weak_password", e.to_string()),
            I::UserExists { .. } | I::TokenExists { .. } => {
                Self::new(StatusCode::CONFLICT, "exists", e.to_string())
            }
            I::UnknownUser { .. } => Self::not_found("unknown_user", e.to_string()),
            I::UnknownToken { .. } => Self::not_found("unknown_token", e.to_string()),
            I::LastAdmin { .. } => Self::new(StatusCode::CONFLICT, "last_admin", e.to_string()),
            I::Hash(_) => Self::internal(e.to_string()),
            I::Store(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ),
        }
    }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such resource"))
}
