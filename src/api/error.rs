//! JSON errors of the API: every refusal is `{"error": {"code": "...", "message": "..."}}`
//! with a code from [`ErrorCode`], a closed set whose strings are part of the wire format
//! (pinned by a test here and listed as the `enum` of the envelope's `code` in
//! `schemas/openapi.json`, which a test checks), so that a code cannot drift or be misspelt.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// Declares [`ErrorCode`], its wire strings and the list of all of them.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $text:literal,)*) => {
        /// The machine-readable code of an API error. Its string is a wire format: clients
        /// (and the web UI) branch on it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    // Authentication and access.
    /// No valid credentials (401, with `WWW-Authenticate: Bearer`).
    Unauthorized => "unauthorized",
    /// Authenticated, but the role does not allow it (403).
    Forbidden => "forbidden",
    /// A login session unused for longer than the idle timeout (401).
    SessionIdle => "session_idle",
    /// A login session past its absolute lifetime (401).
    SessionExpired => "session_expired",
    /// An API token past its expiry (401).
    TokenExpired => "token_expired",
    /// An API token whose scope does not cover the request (403).
    OutOfScope => "out_of_scope",
    /// Too many failed logins from here (429, with `Retry-After`: a wait, never a lock).
    TooManyRequests => "too_many_requests",
    /// Logout with a token that is not a login session.
    NotASession => "not_a_session",
    /// A self-service change that needs a user, asked with an API token (409).
    NotAUser => "not_a_user",
    // The request itself.
    /// No such resource (404).
    NotFound => "not_found",
    /// The resource exists but not with this method (405, with `Allow`).
    MethodNotAllowed => "method_not_allowed",
    /// A JSON body that does not parse or does not fit the expected shape.
    InvalidJson => "invalid_json",
    /// A body of the wrong media type (415).
    UnsupportedMediaType => "unsupported_media_type",
    /// A body over the route's limit (413).
    PayloadTooLarge => "payload_too_large",
    /// A required body is missing or empty.
    MissingBody => "missing_body",
    /// A path parameter that does not parse.
    InvalidPath => "invalid_path",
    /// A query string that does not parse or names an unknown parameter.
    InvalidQuery => "invalid_query",
    /// A query parameter the endpoint does not know.
    UnknownParameter => "unknown_parameter",
    /// A request header with a value the endpoint does not know (`X-Cistern-Scope`).
    InvalidHeader => "invalid_header",
    // Users and tokens.
    InvalidName => "invalid_name",
    /// A password shorter than `[auth] password_min_chars` (or over 1024 bytes).
    WeakPassword => "weak_password",
    /// A password that is the user's own name.
    PasswordIsName => "password_is_name",
    /// A password from the list of the most common ones.
    CommonPassword => "common_password",
    /// A change of one's own password with a wrong current one (403).
    WrongPassword => "wrong_password",
    UnknownSession => "unknown_session",
    /// An API token's expiry in the past or beyond the longest lifetime.
    InvalidExpiry => "invalid_expiry",
    /// A client address that does not parse.
    InvalidAddress => "invalid_address",
    /// A user or token of that name exists already (409).
    Exists => "exists",
    UnknownUser => "unknown_user",
    UnknownToken => "unknown_token",
    /// A gateway enrolment that is not well formed (name, rooms, fingerprint, note).
    InvalidGateway => "invalid_gateway",
    UnknownGateway => "unknown_gateway",
    /// The change would leave no administrator (409).
    LastAdmin => "last_admin",
    NothingToChange => "nothing_to_change",
    /// A console language other than `zh-CN` and `en`.
    InvalidLanguage => "invalid_language",
    // Rooms, devices, points.
    InvalidRoomId => "invalid_room_id",
    InvalidRoom => "invalid_room",
    UnknownRoom => "unknown_room",
    UnknownDevice => "unknown_device",
    /// The room's actor is down (503).
    RoomDown => "room_down",
    /// The room's actor did not answer in time (503).
    Timeout => "timeout",
    RoomUnavailable => "room_unavailable",
    InvalidPoint => "invalid_point",
    /// A point that the fleet does not have (404).
    UnknownPoint => "unknown_point",
    // History.
    NoHistory => "no_history",
    InvalidTime => "invalid_time",
    InvalidStep => "invalid_step",
    InvalidRange => "invalid_range",
    TooManyBuckets => "too_many_buckets",
    TooManySamples => "too_many_samples",
    // Alarms.
    RulesDisabled => "rules_disabled",
    InvalidZone => "invalid_zone",
    InvalidRule => "invalid_rule",
    InvalidState => "invalid_state",
    InvalidSeverity => "invalid_severity",
    InvalidAlarmId => "invalid_alarm_id",
    UnknownAlarm => "unknown_alarm",
    UnknownAction => "unknown_action",
    InvalidShelve => "invalid_shelve",
    MissingUser => "missing_user",
    UserMismatch => "user_mismatch",
    /// The alarm's state does not allow the command (409).
    InvalidTransition => "invalid_transition",
    // Rules.
    UnknownRule => "unknown_rule",
    InvalidFile => "invalid_file",
    InvalidScript => "invalid_script",
    ScriptTooLarge => "script_too_large",
    /// The uploaded rule does not compile (422, with diagnostics).
    RuleRejected => "rule_rejected",
    NoRuleDir => "no_rule_dir",
    /// A backtest's `last` that is not a duration from 1 s to 7 days.
    InvalidPeriod => "invalid_period",
    /// Nothing stored in the backtest's period (409).
    EmptyHistory => "empty_history",
    // Set-points and plans.
    BadWrites => "bad_writes",
    PointNotInRoom => "point_not_in_room",
    NoFieldWriter => "no_field_writer",
    NotWritable => "not_writable",
    OutOfRange => "out_of_range",
    FieldTimeout => "field_timeout",
    RefusedByReadBack => "refused_by_read_back",
    DeviceException => "device_exception",
    FieldUnreachable => "field_unreachable",
    NoPlanning => "no_planning",
    UnknownDistrict => "unknown_district",
    // Simulation (demo only).
    NotSimulated => "not_simulated",
    UnknownFault => "unknown_fault",
    InvalidDuration => "invalid_duration",
    InjectionFailed => "injection_failed",
    // Work orders.
    /// The node keeps no work orders (404).
    NoWorkOrders => "no_workorders",
    UnknownOrder => "unknown_order",
    UnknownTemplate => "unknown_template",
    UnknownTeam => "unknown_team",
    /// The room has an open order of that cause (409; its id is in the message).
    OrderExists => "order_exists",
    /// The order is someone else's (403).
    NotAssignee => "not_assignee",
    /// A command the order cannot take as given (422: a missing cause, an unticked checklist).
    InvalidOrder => "invalid_order",
    /// Concurrent writers kept changing the record (409): try again.
    Busy => "busy",
    /// A knowledge-base problem as given is refused (422: an id, a missing text, a repeat).
    InvalidKnowledge => "invalid_knowledge",
    /// An attachment whose content is not a JPEG, PNG or WebP image (415), whatever its
    /// declared type.
    NotAnImage => "not_an_image",
    UnknownAttachment => "unknown_attachment",
    /// The order has the most attachments it keeps (409).
    TooManyAttachments => "too_many_attachments",
    /// Completion without the template's photos (422; how many are missing is in the message).
    PhotosMissing => "photos_missing",
    /// A position reported without an order en route or on site (409).
    NoActiveOrder => "no_active_order",
    /// A position off the globe, or without a fix (422).
    InvalidPosition => "invalid_position",
    // Tank cleaning.
    /// The node keeps no cleaning records (404).
    NoCleaning => "no_cleaning",
    UnknownTank => "unknown_tank",
    /// A cleaning record as given is refused (422: a date ahead, readings that cannot be).
    InvalidCleaning => "invalid_cleaning",
    /// An interval other than 1 to 730 days (422).
    InvalidInterval => "invalid_interval",
    // Inspections.
    /// The node keeps no inspections (404).
    NoInspections => "no_inspections",
    UnknownInspection => "unknown_inspection",
    UnknownInspectionTemplate => "unknown_inspection_template",
    UnknownItem => "unknown_item",
    /// The inspection is finished already (409).
    InspectionFinished => "inspection_finished",
    /// An item's result or a finish as given is refused (422).
    InvalidInspection => "invalid_inspection",
    /// The inspection is another inspector's (403).
    NotInspector => "not_inspector",
    // Notifications.
    /// The node keeps no notification outbox (404).
    NoNotifications => "no_notifications",
    // Assets.
    /// The node keeps no archive (404).
    NoArchive => "no_archive",
    /// An archive entry as given has problems (422, each with its field and code).
    InvalidArchive => "invalid_archive",
    UnknownProject => "unknown_project",
    /// A project of that id exists (409).
    ProjectExists => "project_exists",
    UnknownEquipment => "unknown_equipment",
    UnknownDocument => "unknown_document",
    /// A document whose content is not a PDF, JPEG, PNG or WebP (415).
    NotADocument => "not_a_document",
    // Parts lifecycle.
    /// The node keeps no parts lifecycle (404).
    NoLifecycle => "no_lifecycle",
    UnknownComponent => "unknown_component",
    /// An event by hand that is refused (422): kind, time, lengths.
    InvalidEvent => "invalid_event",
    /// A stock quantity or part number that is refused (422).
    InvalidStock => "invalid_stock",
    // Analysis.
    /// The node keeps no analysis (it needs records and history; 404).
    NoAnalysis => "no_analysis",
    /// A date or period of an analysis that is refused (422): malformed, reversed, in the
    /// future, too long.
    InvalidDate => "invalid_date",
    /// No cockpit indicator of that name, or none below the level asked (404/422).
    UnknownIndicator => "unknown_indicator",
    /// A cockpit board that is refused (422): empty, an indicator twice.
    InvalidBoard => "invalid_board",
    // Audit.
    InvalidLimit => "invalid_limit",
    // The server.
    StoreUnavailable => "store_unavailable",
    // The archive's spreadsheet.
    /// An import is running; one runs at a time (409).
    ImportRunning => "import_running",
    /// No import job of that id (404).
    UnknownImport => "unknown_import",
    // Backups.
    /// A backup destination that is not an absolute path, or exists already (400).
    InvalidBackupDest => "invalid_backup_dest",
    /// A backup is running; one runs at a time (409).
    BackupRunning => "backup_running",
    /// The node has no embedded store to back up (ScyllaDB: nodetool snapshot) (409).
    NoBackup => "no_backup",
    /// The backup failed on the way (a full or read-only destination); nothing was left (500).
    BackupFailed => "backup_failed",
    // The site.
    /// The inventory names no base map (404).
    NoBasemap => "no_basemap",
    Internal => "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The body of every error: `{"error": {"code", "message"}}`.
pub fn envelope(code: ErrorCode, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

/// An API error: an HTTP status, a stable machine-readable code and a message for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// `Retry-After` (whole seconds), for refusals that end.
    pub retry_after: Option<std::time::Duration>,
    /// The room this node does not run (another node of the cluster may): left in the
    /// response's extensions as [`NotHere`], so that [`super::forward`] can ask its owner.
    pub not_here: Option<String>,
}

/// In a response's extensions: the request was about a room this node does not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotHere(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            not_here: None,
        }
    }

    /// Marks the error as about `room`, which this node does not run.
    pub fn not_here(mut self, room: impl Into<String>) -> Self {
        self.not_here = Some(room.into());
        self
    }

    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The store did not answer (503): the request may be retried.
    pub fn store_unavailable(error: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            error.to_string(),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            message,
        )
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
        let mut resp = resp.json(envelope(self.code, &self.message));
        if let Some(room) = &self.not_here {
            resp.extensions_mut().insert(NotHere(room.clone()));
        }
        resp
    }
}

impl From<cistern_actors::RouteError> for ApiError {
    fn from(e: cistern_actors::RouteError) -> Self {
        use cistern_actors::RouteError as R;
        match &e {
            R::UnknownRoom(_) => Self::not_found(ErrorCode::UnknownRoom, e.to_string()),
            R::UnknownDevice { .. } => Self::not_found(ErrorCode::UnknownDevice, e.to_string()),
            R::RoomDown(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RoomDown,
                e.to_string(),
            ),
            R::Timeout(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                e.to_string(),
            ),
            // Another node runs the room (a cluster whose request was not forwarded).
            R::NotHere(room) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RoomUnavailable,
                e.to_string(),
            )
            .not_here(room.clone()),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        let (status, code) = match e {
            A::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            A::SessionIdle { .. } => (StatusCode::UNAUTHORIZED, ErrorCode::SessionIdle),
            A::SessionExpired => (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired),
            A::TokenExpired => (StatusCode::UNAUTHORIZED, ErrorCode::TokenExpired),
            A::Forbidden { .. } => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            A::OutOfScope { .. } => (StatusCode::FORBIDDEN, ErrorCode::OutOfScope),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<crate::auth::GatewayError> for ApiError {
    fn from(e: crate::auth::GatewayError) -> Self {
        use crate::auth::GatewayError as G;
        match e {
            G::Identity(e) => e.into(),
            G::Unknown(_) => Self::not_found(ErrorCode::UnknownGateway, e.to_string()),
            _ => Self::bad_request(ErrorCode::InvalidGateway, e.to_string()),
        }
    }
}

impl From<crate::auth::IdentityError> for ApiError {
    fn from(e: crate::auth::IdentityError) -> Self {
        use crate::auth::password::PasswordError as P;
        use crate::auth::IdentityError as I;
        match &e {
            I::InvalidName { .. } => Self::bad_request(ErrorCode::InvalidName, e.to_string()),
            I::Password(P::Length { .. }) => {
                Self::bad_request(ErrorCode::WeakPassword, e.to_string())
            }
            I::Password(P::IsName) => Self::bad_request(ErrorCode::PasswordIsName, e.to_string()),
            I::Password(P::Common) => Self::bad_request(ErrorCode::CommonPassword, e.to_string()),
            I::WrongPassword => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::WrongPassword,
                e.to_string(),
            ),
            I::Throttled(t) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyRequests,
                e.to_string(),
            )
            .retry_after(t.retry_after),
            I::UserExists { .. } | I::TokenExists { .. } => {
                Self::new(StatusCode::CONFLICT, ErrorCode::Exists, e.to_string())
            }
            I::UnknownUser { .. } => Self::not_found(ErrorCode::UnknownUser, e.to_string()),
            I::UnknownToken { .. } => Self::not_found(ErrorCode::UnknownToken, e.to_string()),
            I::UnknownSession { .. } => Self::not_found(ErrorCode::UnknownSession, e.to_string()),
            I::InvalidExpiry { .. } => Self::bad_request(ErrorCode::InvalidExpiry, e.to_string()),
            I::LastAdmin { .. } => {
                Self::new(StatusCode::CONFLICT, ErrorCode::LastAdmin, e.to_string())
            }
            I::Hash(_) => Self::internal(e.to_string()),
            I::Store(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                e.to_string(),
            ),
        }
    }
}

/// A JSON body the framework could not read: too large (413), not JSON (415), or not the
/// expected shape (400) — as the envelope, never actix's `text/plain`.
pub fn json_refused(e: &actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::{JsonPayloadError as J, PayloadError as P};
    match e {
        J::OverflowKnownLength { .. } | J::Overflow { .. } | J::Payload(P::Overflow) => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                e.to_string(),
            )
        }
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON (Content-Type: application/json)",
        ),
        _ => ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()),
    }
}

/// A JSON body read by hand (a handler that must look at its path before the body): the same
/// answers as the framework's extractor under [`super::configure`]'s limit — 415 when it is
/// not JSON, 413 over 16 KiB, 400 `invalid_json` when it does not parse into `T`.
pub fn json_body<T: serde::de::DeserializeOwned>(
    req: &actix_web::HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    use actix_web::HttpMessage;
    let essence = req.content_type().trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    if body.len() > JSON_LIMIT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!(
                "JSON payload ({} bytes) is larger than allowed (limit: {JSON_LIMIT} bytes).",
                body.len()
            ),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("Json deserialize error: {e}"),
        )
    })
}

/// The largest JSON body an operation takes (unless it says otherwise).
pub const JSON_LIMIT: usize = 16 * 1024;

/// A query string the framework could not read into the handler's parameters (an unknown
/// parameter, a number that is not one).
pub fn query_refused(e: &actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string())
}

/// A request for a route that exists with other methods: 405 with `Allow`.
pub fn method_not_allowed(allowed: &[&str]) -> HttpResponse {
    let allow = allowed.join(", ");
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("this resource answers {allow}"),
    )
    .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The wire string of every code, written out: renaming a variant's string (or adding a
    /// code without deciding its string here) fails this test. The match has no wildcard, so
    /// a new variant does not compile until it is listed.
    fn pinned(code: ErrorCode) -> &'static str {
        use ErrorCode as E;
        match code {
            E::Unauthorized => "unauthorized",
            E::Forbidden => "forbidden",
            E::SessionIdle => "session_idle",
            E::SessionExpired => "session_expired",
            E::TokenExpired => "token_expired",
            E::OutOfScope => "out_of_scope",
            E::TooManyRequests => "too_many_requests",
            E::NotASession => "not_a_session",
            E::NotAUser => "not_a_user",
            E::NotFound => "not_found",
            E::MethodNotAllowed => "method_not_allowed",
            E::InvalidJson => "invalid_json",
            E::UnsupportedMediaType => "unsupported_media_type",
            E::PayloadTooLarge => "payload_too_large",
            E::MissingBody => "missing_body",
            E::InvalidPath => "invalid_path",
            E::InvalidQuery => "invalid_query",
            E::UnknownParameter => "unknown_parameter",
            E::InvalidHeader => "invalid_header",
            E::InvalidName => "invalid_name",
            E::WeakPassword => "weak_password",
            E::PasswordIsName => "password_is_name",
            E::CommonPassword => "common_password",
            E::WrongPassword => "wrong_password",
            E::UnknownSession => "unknown_session",
            E::InvalidExpiry => "invalid_expiry",
            E::InvalidAddress => "invalid_address",
            E::Exists => "exists",
            E::UnknownUser => "unknown_user",
            E::UnknownToken => "unknown_token",
            E::InvalidGateway => "invalid_gateway",
            E::UnknownGateway => "unknown_gateway",
            E::LastAdmin => "last_admin",
            E::NothingToChange => "nothing_to_change",
            E::InvalidLanguage => "invalid_language",
            E::InvalidRoomId => "invalid_room_id",
            E::InvalidRoom => "invalid_room",
            E::UnknownRoom => "unknown_room",
            E::UnknownDevice => "unknown_device",
            E::RoomDown => "room_down",
            E::Timeout => "timeout",
            E::RoomUnavailable => "room_unavailable",
            E::InvalidPoint => "invalid_point",
            E::UnknownPoint => "unknown_point",
            E::NoHistory => "no_history",
            E::InvalidTime => "invalid_time",
            E::InvalidStep => "invalid_step",
            E::InvalidRange => "invalid_range",
            E::TooManyBuckets => "too_many_buckets",
            E::TooManySamples => "too_many_samples",
            E::RulesDisabled => "rules_disabled",
            E::InvalidZone => "invalid_zone",
            E::InvalidRule => "invalid_rule",
            E::InvalidState => "invalid_state",
            E::InvalidSeverity => "invalid_severity",
            E::InvalidAlarmId => "invalid_alarm_id",
            E::UnknownAlarm => "unknown_alarm",
            E::UnknownAction => "unknown_action",
            E::InvalidShelve => "invalid_shelve",
            E::MissingUser => "missing_user",
            E::UserMismatch => "user_mismatch",
            E::InvalidTransition => "invalid_transition",
            E::UnknownRule => "unknown_rule",
            E::InvalidFile => "invalid_file",
            E::InvalidScript => "invalid_script",
            E::ScriptTooLarge => "script_too_large",
            E::RuleRejected => "rule_rejected",
            E::NoRuleDir => "no_rule_dir",
            E::InvalidPeriod => "invalid_period",
            E::EmptyHistory => "empty_history",
            E::BadWrites => "bad_writes",
            E::PointNotInRoom => "point_not_in_room",
            E::NoFieldWriter => "no_field_writer",
            E::NotWritable => "not_writable",
            E::OutOfRange => "out_of_range",
            E::FieldTimeout => "field_timeout",
            E::RefusedByReadBack => "refused_by_read_back",
            E::DeviceException => "device_exception",
            E::FieldUnreachable => "field_unreachable",
            E::NoPlanning => "no_planning",
            E::UnknownDistrict => "unknown_district",
            E::NoWorkOrders => "no_workorders",
            E::UnknownOrder => "unknown_order",
            E::UnknownTemplate => "unknown_template",
            E::UnknownTeam => "unknown_team",
            E::OrderExists => "order_exists",
            E::NotAssignee => "not_assignee",
            E::InvalidOrder => "invalid_order",
            E::Busy => "busy",
            E::InvalidKnowledge => "invalid_knowledge",
            E::NotAnImage => "not_an_image",
            E::UnknownAttachment => "unknown_attachment",
            E::TooManyAttachments => "too_many_attachments",
            E::PhotosMissing => "photos_missing",
            E::NoActiveOrder => "no_active_order",
            E::InvalidPosition => "invalid_position",
            E::NoNotifications => "no_notifications",
            E::NoArchive => "no_archive",
            E::InvalidArchive => "invalid_archive",
            E::UnknownProject => "unknown_project",
            E::ProjectExists => "project_exists",
            E::UnknownEquipment => "unknown_equipment",
            E::UnknownDocument => "unknown_document",
            E::NotADocument => "not_a_document",
            E::NoCleaning => "no_cleaning",
            E::UnknownTank => "unknown_tank",
            E::InvalidCleaning => "invalid_cleaning",
            E::InvalidInterval => "invalid_interval",
            E::NoInspections => "no_inspections",
            E::UnknownInspection => "unknown_inspection",
            E::UnknownInspectionTemplate => "unknown_inspection_template",
            E::UnknownItem => "unknown_item",
            E::InspectionFinished => "inspection_finished",
            E::InvalidInspection => "invalid_inspection",
            E::NotInspector => "not_inspector",
            E::NoLifecycle => "no_lifecycle",
            E::UnknownComponent => "unknown_component",
            E::InvalidEvent => "invalid_event",
            E::InvalidStock => "invalid_stock",
            E::NoAnalysis => "no_analysis",
            E::InvalidDate => "invalid_date",
            E::UnknownIndicator => "unknown_indicator",
            E::InvalidBoard => "invalid_board",
            E::NotSimulated => "not_simulated",
            E::UnknownFault => "unknown_fault",
            E::InvalidDuration => "invalid_duration",
            E::InjectionFailed => "injection_failed",
            E::InvalidLimit => "invalid_limit",
            E::StoreUnavailable => "store_unavailable",
            E::ImportRunning => "import_running",
            E::UnknownImport => "unknown_import",
            E::InvalidBackupDest => "invalid_backup_dest",
            E::BackupRunning => "backup_running",
            E::NoBackup => "no_backup",
            E::BackupFailed => "backup_failed",
            E::NoBasemap => "no_basemap",
            E::Internal => "internal",
        }
    }

    #[test]
    fn every_code_keeps_its_wire_string() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str(), pinned(*code), "{code:?}");
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(pinned(*code).to_owned())
            );
        }
        let unique: std::collections::BTreeSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            unique.len(),
            ErrorCode::ALL.len(),
            "two codes share a string"
        );
    }

    #[test]
    fn the_openapi_error_envelope_lists_exactly_the_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/openapi.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let listed: Vec<&str> = doc
            .pointer("/components/schemas/Error/properties/error/properties/code/enum")
            .and_then(|v| v.as_array())
            .expect("the Error schema's code has an enum")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            listed, ours,
            "schemas/openapi.json's error codes differ from ErrorCode"
        );
    }
}
