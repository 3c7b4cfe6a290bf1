//! The archive's spreadsheet over REST (issue 21, item 2):
//!
//! - `GET /api/v1/assets/template?lang=` — the empty template (.xlsx) in the caller's language;
//! - `GET /api/v1/assets/export?format=xlsx|csv&sheet=projects|rooms|equipment&lang=` — the
//!   archive in the same template (CSV: one sheet);
//! - `POST /api/v1/assets/import?dry_run=true|false&name=&lang=` — the file as the body (.xlsx
//!   or CSV, at most [`MAX_IMPORT_BYTES`]); 202 with the job, which runs in the background
//!   (one at a time: 409 `import_running`);
//! - `GET /api/v1/assets/import/{job}` — its phase, progress and report: the file's problems by
//!   sheet, row and column in the caller's language, or what was created, updated, unchanged.
//!
//! Reading needs a viewer; importing an administrator or rule author (the policy), audited as
//! `asset_import` when it starts (a dry run too, so that who checked what is on record) and
//! again with what it changed (or why nothing) when it ends.

use super::error::{ApiError, ErrorCode};
use super::users::{caller, language_of};
use super::ApiState;
use crate::auth::identity::Language;
use crate::business::assets::archive::import::{ImportError, Imports};
use crate::business::assets::archive::sheet::{Lang, SheetKind};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::sync::Arc;

/// The largest file an import takes (a 2,100-room archive is about 3 MB).
pub const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

fn imports(state: &ApiState) -> Result<&Arc<Imports>, ApiError> {
    state.imports.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoArchive,
            "this node keeps no archive (it needs a store)",
        )
    })
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        let message = e.to_string();
        match e {
            ImportError::Busy(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ImportRunning, message)
            }
            ImportError::Unknown(_) => ApiError::not_found(ErrorCode::UnknownImport, message),
            ImportError::Archive(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                message,
            ),
        }
    }
}

fn lang(language: Language) -> Lang {
    match language {
        Language::ZhCn => Lang::ZhCn,
        Language::En => Lang::En,
    }
}

/// A download named `stem.ext` (RFC 5987: any language, no header injection).
fn download(bytes: Vec<u8>, content_type: &str, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes)
}

/// Audits an export of the archive (`data_export`).
fn exported<T, E: std::fmt::Display>(
    state: &ApiState,
    who: &crate::auth::Principal,
    what: &str,
    bytes: &Result<T, E>,
) {
    let (detail, ok) = match bytes {
        Ok(_) => (format!("archive as {what}"), true),
        Err(e) => (format!("failed: {e}"), false),
    };
    state
        .security
        .record(who, "data_export", "archive", detail, ok);
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangQuery {
    pub lang: Option<String>,
}

pub async fn template(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<LangQuery>,
) -> Result<HttpResponse, ApiError> {
    let imports = imports(&state)?;
    let who = caller(&req)?;
    let language = language_of(&state, &who, q.lang.as_deref())?;
    let bytes = imports.template(lang(language))?;
    Ok(download(bytes, XLSX, "cistern-archive-template.xlsx"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: Option<String>,
    pub sheet: Option<String>,
    pub lang: Option<String>,
}

pub async fn export(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let imports = imports(&state)?;
    let who = caller(&req)?;
    let language = lang(language_of(&state, &who, q.lang.as_deref())?);
    match q.format.as_deref().unwrap_or("xlsx") {
        "xlsx" => {
            if q.sheet.is_some() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    "sheet is for CSV: a workbook holds every sheet",
                ));
            }
            let bytes = imports.export_xlsx(language).await;
            exported(&state, &who, "xlsx (every sheet)", &bytes);
            Ok(download(bytes?, XLSX, "cistern-archive.xlsx"))
        }
        "csv" => {
            let sheet = q.sheet.as_deref().unwrap_or("equipment");
            let kind = SheetKind::ALL
                .into_iter()
                .find(|k| k.key() == sheet)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidQuery,
                        format!("sheet must be projects, rooms or equipment (got {sheet:?})"),
                    )
                })?;
            let bytes = imports.export_csv(kind, language).await;
            exported(&state, &who, &format!("csv ({sheet})"), &bytes);
            Ok(download(
                bytes?,
                "text/csv; charset=utf-8",
                &format!("cistern-archive-{sheet}.csv"),
            ))
        }
        other => Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("format must be xlsx or csv (got {other:?})"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub dry_run: Option<bool>,
    /// The file's name, for the report.
    pub name: Option<String>,
    pub lang: Option<String>,
}

pub async fn start(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let imports = imports(&state)?;
    let who = caller(&req)?;
    let dry_run = q.dry_run.unwrap_or(false);
    let file: String = q
        .name
        .clone()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let result = async {
        let language = lang(language_of(&state, &who, q.lang.as_deref())?);
        let bytes = super::workorder_field::body_within(&req, payload, MAX_IMPORT_BYTES).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                ErrorCode::MissingBody,
                "the body is the file to import (.xlsx or CSV)",
            ));
        }
        let now = state
            .workorders
            .as_ref()
            .map_or_else(cistern_schemas::Timestamp::now, |w| w.now());
        Ok(imports.start(
            bytes,
            file.clone(),
            who.user.clone(),
            dry_run,
            language,
            now,
        )?)
    }
    .await;
    let (detail, ok) = super::audit::outcome(&result, |job| {
        format!(
            "job {}{}: {}",
            job.id,
            if dry_run { " (dry run)" } else { "" },
            job.file
        )
    });
    state
        .security
        .record(&who, "asset_import", "archive", detail, ok);
    let job = result?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/assets/import/{}", job.id),
        ))
        .json(serde_json::json!({ "job": job })))
}

pub async fn job(
    state: web::Data<ApiState>,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let imports = imports(&state)?;
    let job = imports.job(path.into_inner())?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "job": job })))
}
