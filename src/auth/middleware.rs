//! The REST gate: every request is checked against the [policy](super::policy) before it
//! reaches a handler, and the caller's [`Principal`] is left in the request's extensions for
//! handlers ([`super::principal`]).
//!
//! Refusals are JSON (`401 unauthorized` with `WWW-Authenticate: Bearer`, `403 forbidden`
//! naming the role needed) and say nothing else: not whether a token was unknown or
//! malformed. Only a token whose whole secret matched hears that its session ended
//! (`401 session_idle`, `401 session_expired`), that it expired (`401 token_expired`) or that
//! its scope does not cover the request (`403 out_of_scope`). The reason is counted in
//! `cistern_auth_rejected_total{reason}`.
//!
//! A request that passes with a login session is a use of it (its idle timeout starts again),
//! unless it carries [`BACKGROUND_HEADER`]: the console's own timed refreshes, which must not
//! keep a session alive on an unattended screen. Public routes are no use either.

use super::policy::{self, Access};
use super::{AuthError, Principal, Security};
use crate::api::error::{envelope, ApiError, ErrorCode};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};

/// Longest `Authorization` header looked at (ours are about 90 bytes).
const MAX_AUTHORIZATION_BYTES: usize = 512;

/// Set (to anything) on a request that a timer made, not the user: it does not count as a use
/// of the session.
pub const BACKGROUND_HEADER: &str = "x-cistern-background";

/// JSON error bodies, the API's own envelope ([`crate::api::error`]).
fn refusal(e: AuthError) -> HttpResponse {
    ApiError::from(e).error_response()
}

/// An `Authorization` header that is not `Bearer <token>` (too long, not ASCII, another
/// scheme, no token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header")]
pub struct MalformedAuthorization;

/// The bearer token of a request: `Ok(None)` without an `Authorization` header.
pub fn bearer_of(req: &actix_web::HttpRequest) -> Result<Option<String>, MalformedAuthorization> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(MalformedAuthorization);
    }
    let text = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(MalformedAuthorization);
    }
    Ok(Some(token.to_owned()))
}

/// The middleware (install with `actix_web::middleware::from_fn(authenticate)`). Needs
/// `web::Data<Security>` in the app data.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let access = policy::required(req.method().as_str(), req.match_info().as_str());
    let Some(security) = req.app_data::<web::Data<Security>>().cloned() else {
        tracing::error!("authentication middleware without Security in the app data: refusing");
        let resp = HttpResponse::InternalServerError()
            .json(envelope(ErrorCode::Internal, "not configured"));
        return Ok(req.into_response(resp).map_into_right_body());
    };
    let reject = |req: ServiceRequest, e: AuthError, reason: &str| {
        security
            .auth
            .metrics()
            .rejected
            .with_label_values(&[reason])
            .inc();
        Ok(req.into_response(refusal(e)).map_into_right_body())
    };
    let presented = bearer_of(req.request());
    let principal: Option<Principal> = match presented {
        Ok(None) => None,
        Err(MalformedAuthorization) => {
            // A malformed header on a public route is ignored, not refused.
            if access == Access::Public {
                None
            } else {
                return reject(req, AuthError::Unauthorized, "malformed");
            }
        }
        Ok(Some(token)) => match security.auth.check_bearer(&token) {
            Ok(p) => Some(p),
            Err(_) if access == Access::Public => None,
            Err(r) => return reject(req, security.auth.refusal(r), r.label()),
        },
    };
    if let Access::Role(needed) = access {
        let read = matches!(req.method().as_str(), "GET" | "HEAD");
        match &principal {
            None => return reject(req, AuthError::Unauthorized, "missing"),
            Some(p) => {
                let served = req
                    .app_data::<web::Data<policy::RouteMethods>>()
                    .is_none_or(|r| r.serves(req.method().as_str(), req.match_info().as_str()));
                if let (Err(e), true) = (p.authorize(read, needed), served) {
                    let reason = match e {
                        AuthError::OutOfScope { .. } => "out_of_scope",
                        _ => "forbidden",
                    };
                    return reject(req, e, reason);
                }
                let background = req.headers().contains_key(BACKGROUND_HEADER);
                if let (Some(id), false) = (&p.session, background) {
                    security.auth.touch(id);
                }
            }
        }
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    // What the handler audits comes from this peer (`AuditEntry::source`).
    let source = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    super::audit::REQUEST_SOURCE
        .scope(source, next.call(req))
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use actix_web::{test, App, HttpRequest};

    async fn whoami(req: HttpRequest) -> HttpResponse {
        match crate::auth::principal(&req) {
            Some(p) => HttpResponse::Ok().json(p),
            None => HttpResponse::Ok().json("anonymous"),
        }
    }

    /// A request with an optional `Authorization` header.
    fn request(method: &str, path: &str, auth: Option<&str>) -> test::TestRequest {
        let mut req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(path);
        if let Some(a) = auth {
            req = req.insert_header((header::AUTHORIZATION, a.to_owned()));
        }
        req
    }

    #[actix_web::test]
    async fn the_gate_applies_the_policy_and_hands_the_principal_to_handlers() {
        let security = Security::default();
        security
            .auth
            .insert_token("viewer-token", Principal::new("v", Role::Viewer));
        security
            .auth
            .insert_token("operator-token", Principal::new("o", Role::Operator));
        security.auth.insert_token(
            "read-only-admin-token",
            Principal {
                scope: Some(crate::auth::Scope::Read),
                ..Principal::new("r", Role::Admin)
            },
        );
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(authenticate))
                .app_data(web::Data::new(security.clone()))
                .route("/healthz", web::get().to(whoami))
                .route("/api/v1/rooms", web::get().to(whoami))
                .route("/api/v1/sim/faults", web::post().to(whoami))
                .route("/api/v1/new-thing", web::post().to(whoami)),
        )
        .await;
        let cases: [(&str, &str, Option<&str>, u16, &str); 10] = [
            ("GET", "/healthz", None, 200, "\"anonymous\""),
            // A bad header on a public route is ignored.
            ("GET", "/healthz", Some("Basic xyz"), 200, "\"anonymous\""),
            ("GET", "/api/v1/rooms", None, 401, "unauthorized"),
            (
                "GET",
                "/api/v1/rooms",
                Some("Bearer nope"),
                401,
                "unauthorized",
            ),
            (
                "GET",
                "/api/v1/rooms",
                Some("Bearer viewer-token"),
                200,
                "\"user\":\"v\"",
            ),
            (
                "POST",
                "/api/v1/sim/faults",
                Some("Bearer viewer-token"),
                403,
                "operator role",
            ),
            (
                "POST",
                "/api/v1/sim/faults",
                Some("Bearer operator-token"),
                200,
                "\"role\":\"operator\"",
            ),
            // Not in the table: admin only.
            (
                "POST",
                "/api/v1/new-thing",
                Some("Bearer operator-token"),
                403,
                "admin role",
            ),
            // A read-only token reads what its role may, and changes nothing.
            (
                "GET",
                "/api/v1/rooms",
                Some("Bearer read-only-admin-token"),
                200,
                "\"user\":\"r\"",
            ),
            (
                "POST",
                "/api/v1/sim/faults",
                Some("Bearer read-only-admin-token"),
                403,
                "out_of_scope",
            ),
        ];
        for (method, path, auth, status, needle) in cases {
            let resp = test::call_service(&app, request(method, path, auth).to_request()).await;
            let got = resp.status().as_u16();
            let unauthorized_header = resp.headers().contains_key(header::WWW_AUTHENTICATE);
            let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
            assert_eq!(got, status, "{method} {path} {auth:?}: {body}");
            assert!(body.contains(needle), "{method} {path} {auth:?}: {body}");
            assert_eq!(unauthorized_header, status == 401, "{method} {path}");
        }
        let rejected = &security.auth.metrics().rejected;
        assert_eq!(rejected.with_label_values(&["missing"]).get(), 1);
        assert_eq!(rejected.with_label_values(&["malformed"]).get(), 1);
        assert_eq!(rejected.with_label_values(&["forbidden"]).get(), 2);
        assert_eq!(rejected.with_label_values(&["out_of_scope"]).get(), 1);
    }

    #[actix_web::test]
    async fn a_request_no_route_serves_is_left_to_the_router_not_refused() {
        let security = Security::default();
        security
            .auth
            .insert_token("viewer-token", Principal::new("v", Role::Viewer));
        fn served(path: &str) -> Vec<&'static str> {
            match path {
                "/healthz" => vec!["GET"],
                "/api/v1/sim/faults" => vec!["GET", "POST"],
                _ => vec![],
            }
        }
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(authenticate))
                .app_data(web::Data::new(security.clone()))
                .app_data(web::Data::new(policy::RouteMethods(served)))
                .route("/healthz", web::get().to(whoami))
                .route("/api/v1/sim/faults", web::post().to(whoami))
                .default_service(web::to(|| async {
                    HttpResponse::MethodNotAllowed().finish()
                })),
        )
        .await;
        let cases = [
            // No route serves these: the router answers, whatever the role.
            ("PUT", "/healthz", Some("Bearer viewer-token"), 405),
            (
                "TRACE",
                "/api/v1/sim/faults",
                Some("Bearer viewer-token"),
                405,
            ),
            // Served: the policy's refusal stands.
            (
                "POST",
                "/api/v1/sim/faults",
                Some("Bearer viewer-token"),
                403,
            ),
            // Without a token nothing is told.
            ("PUT", "/healthz", None, 401),
        ];
        for (method, path, auth, status) in cases {
            let resp = test::call_service(&app, request(method, path, auth).to_request()).await;
            assert_eq!(resp.status().as_u16(), status, "{method} {path} {auth:?}");
        }
    }
}
