//! `POST /api/v1/admin/backup` `{dest}` (admin only): the node makes a backup of its data in
//! `dest`, an absolute path on the node's machine that must not exist yet, and answers with
//! the backup's manifest once it is complete (`crate::backup`; `cistern backup DEST` calls
//! it). One backup runs at a time; each is audited (`backup`) and counted
//! (`cistern_backup_*`).

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::backup::BackupError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::path::PathBuf;

/// `POST /api/v1/admin/backup` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute path on the node's machine, not existing yet.
    pub dest: PathBuf,
}

pub async fn post(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<BackupRequest>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let Some(backups) = &state.backups else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NoBackup,
            BackupError::NotEmbedded.to_string(),
        ));
    };
    let dest = body.into_inner().dest;
    // A NUL byte is no path on any machine (the file system refuses it mid-backup: a 500 then).
    let nul = dest.as_os_str().as_encoded_bytes().contains(&0);
    if !dest.is_absolute() || dest.file_name().is_none() || nul {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBackupDest,
            format!(
                "dest {:?} must be an absolute path on the node's machine",
                dest.display().to_string()
            ),
        ));
    }
    match backups.backup_to(dest.clone(), &who.user).await {
        Ok(manifest) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "dest": dest,
            "manifest": manifest,
        }))),
        Err(e) => Err(match e {
            BackupError::Exists { .. } => {
                ApiError::bad_request(ErrorCode::InvalidBackupDest, e.to_string())
            }
            BackupError::Running => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::BackupRunning,
                e.to_string(),
            ),
            BackupError::NotEmbedded => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NoBackup, e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::BackupFailed,
                other.to_string(),
            ),
        }),
    }
}
