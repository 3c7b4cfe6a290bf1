//! `/api/v1/assets/…`: the rooms' archives (档案) — projects, rooms' site data and equipment,
//! documents and photos, the retired history. Viewers read; rule authors and admins write
//! (see [`crate::auth::policy`]). Every write is validated whole (`invalid_archive`, 422, with
//! every problem: `{"error": {"code", "message", "problems": [{field, code, value}]}}`),
//! audited with its author by the archive service (`asset_*`), and put in force in the
//! running fleet at once: the answer's `live` is null when the running room follows, else why
//! it will at the next start (a pump added to a running room).

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::business::assets::archive::{
    Archive, ArchiveError, DocumentUpload, Equipment, EquipmentKind, Problem, Project, RoomArchive,
};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{Date, EquipmentTag, ProjectId, RoomId, ZoneId};
use serde::Deserialize;
use std::sync::Arc;

/// The largest JSON body of a room's archive.
const MAX_ROOM_BYTES: u64 = 1024 * 1024;

fn archive(state: &ApiState) -> Result<&Arc<Archive>, ApiError> {
    state.archive.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoArchive,
            "this node keeps no archive (it needs a store)",
        )
    })
}

/// A refusal with its problems: answered as the error envelope with `problems` beside.
fn invalid(problems: &[Problem]) -> HttpResponse {
    let message = problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(serde_json::json!({
        "error": {
            "code": ErrorCode::InvalidArchive,
            "message": message,
            "problems": problems,
        }
    }))
}

/// What a failed archive call answers.
enum Refused {
    Api(ApiError),
    Invalid(Vec<Problem>),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

impl From<ArchiveError> for Refused {
    fn from(e: ArchiveError) -> Self {
        let message = e.to_string();
        Refused::Api(match e {
            ArchiveError::Invalid(problems) => return Refused::Invalid(problems),
            ArchiveError::UnknownRoom(_) => ApiError::not_found(ErrorCode::UnknownRoom, message),
            ArchiveError::UnknownProject(_) => {
                ApiError::not_found(ErrorCode::UnknownProject, message)
            }
            ArchiveError::ProjectExists(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ProjectExists, message)
            }
            ArchiveError::UnknownEquipment { .. } => {
                ApiError::not_found(ErrorCode::UnknownEquipment, message)
            }
            ArchiveError::UnknownDocument(_) => {
                ApiError::not_found(ErrorCode::UnknownDocument, message)
            }
            ArchiveError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                message,
            ),
            ArchiveError::EmptyDocument => ApiError::bad_request(ErrorCode::MissingBody, message),
            ArchiveError::NotADocument => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::NotADocument,
                message,
            ),
            ArchiveError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Busy, message)
            }
            ArchiveError::Records(e) => ApiError::store_unavailable(e),
            ArchiveError::Corrupt(_) => ApiError::internal(message),
        })
    }
}

impl Refused {
    fn respond(self) -> HttpResponse {
        match self {
            Refused::Api(e) => actix_web::ResponseError::error_response(&e),
            Refused::Invalid(p) => invalid(&p),
        }
    }
}

/// Runs a handler body, answering its refusal.
async fn answer(
    f: impl std::future::Future<Output = Result<HttpResponse, Refused>>,
) -> HttpResponse {
    f.await.unwrap_or_else(Refused::respond)
}

fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::new(raw).map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))
}

fn project_id(raw: &str) -> Result<ProjectId, Refused> {
    ProjectId::new(raw).map_err(|e| Refused::Invalid(vec![Problem::new("id", "id", e)]))
}

fn tag(raw: &str) -> Result<EquipmentTag, Refused> {
    EquipmentTag::new(raw).map_err(|e| Refused::Invalid(vec![Problem::new("tag", "id", e)]))
}

/// A JSON body of up to `max` bytes as `T` (`invalid_json` when it is not).
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    max: u64,
) -> Result<T, ApiError> {
    let bytes = super::workorder_field::body_within(req, payload, max).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()))
}

/// `GET /api/v1/assets/rooms` query: every filter optional, all must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsQuery {
    pub zone: Option<String>,
    pub project: Option<String>,
    /// A vendor's name, or a part of it (case-insensitive).
    pub vendor: Option<String>,
    /// An equipment kind the room has (`pump`, `vfd`, …).
    pub kind: Option<String>,
    /// Text in the room's id, name, address, or an equipment's model or serial.
    pub q: Option<String>,
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

/// The line of the room list.
fn summary(a: &RoomArchive, today: Date, project: Option<&Project>) -> serde_json::Value {
    let in_warranty = (a.equipment.iter())
        .filter(|e| e.warranty_end.is_some_and(|w| w >= today))
        .count();
    let mut vendors: Vec<&str> = (a.equipment.iter())
        .map(|e| e.vendor.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    vendors.sort_unstable();
    vendors.dedup();
    serde_json::json!({
        "id": a.site.id,
        "name": a.site.name,
        "name_pinyin": a.site.name_pinyin,
        "address": a.site.address,
        "zone": a.site.zone,
        "project": a.project,
        "project_name": project.map(|p| p.name.as_str()),
        "commissioned": a.commissioned,
        "equipment": a.equipment.len(),
        "pumps": a.equipment.iter().filter(|e| e.kind == EquipmentKind::Pump).count(),
        "in_warranty": in_warranty,
        "retired": a.retired.len(),
        "vendors": vendors,
    })
}

pub async fn rooms(state: web::Data<ApiState>, q: web::Query<RoomsQuery>) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let zone = match &q.zone {
            Some(z) => Some(
                ZoneId::new(z)
                    .map_err(|e| ApiError::bad_request(ErrorCode::InvalidZone, e.to_string()))?,
            ),
            None => None,
        };
        let kind = match &q.kind {
            Some(k) => Some(
                EquipmentKind::parse(k)
                    .ok_or_else(|| Refused::Invalid(vec![Problem::new("kind", "kind", k)]))?,
            ),
            None => None,
        };
        let vendor = q.vendor.as_deref().map(str::to_lowercase);
        let text = q.q.as_deref().map(|t| t.trim().to_lowercase());
        let projects: std::collections::HashMap<ProjectId, Project> = (svc.projects().await)
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let today = Date::of(svc.now(), 8 * 60);
        let rooms: Vec<serde_json::Value> = (svc.rooms().await.iter())
            .filter(|a| zone.as_ref().is_none_or(|z| &a.site.zone == z))
            .filter(|a| {
                q.project
                    .as_deref()
                    .is_none_or(|p| a.project.as_ref().is_some_and(|x| x.as_str() == p))
            })
            .filter(|a| kind.is_none_or(|k| a.equipment.iter().any(|e| e.kind == k)))
            .filter(|a| {
                vendor
                    .as_deref()
                    .is_none_or(|v| a.equipment.iter().any(|e| contains(&e.vendor, v)))
            })
            .filter(|a| {
                text.as_deref().is_none_or(|t| {
                    t.is_empty()
                        || contains(a.site.id.as_str(), t)
                        || contains(&a.site.name, t)
                        || contains(&a.site.name_pinyin, t)
                        || contains(&a.site.address, t)
                        || a.equipment.iter().any(|e| {
                            contains(&e.model, t)
                                || contains(&e.serial, t)
                                || contains(&e.part_number, t)
                        })
                })
            })
            .map(|a| summary(a, today, a.project.as_ref().and_then(|p| projects.get(p))))
            .collect();
        Ok(HttpResponse::Ok().json(serde_json::json!({ "count": rooms.len(), "rooms": rooms })))
    })
    .await
}

/// A room's archive with its project and today's date (for warranty status).
fn room_body(svc: &Archive, a: &RoomArchive, project: Option<Project>) -> serde_json::Value {
    serde_json::json!({
        "archive": a,
        "project": project,
        "today": Date::of(svc.now(), 8 * 60),
    })
}

pub async fn room(state: web::Data<ApiState>, path: web::Path<String>) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let id = room_id(&path)?;
        let a = svc.room(&id).await.ok_or(ArchiveError::UnknownRoom(id))?;
        let project = match &a.project {
            Some(p) => svc.project(p).await,
            None => None,
        };
        Ok(HttpResponse::Ok().json(room_body(svc, &a, project)))
    })
    .await
}

/// The answer of a write that changed a room: its archive and whether the running room
/// followed.
fn written(
    status: StatusCode,
    svc: &Archive,
    (a, live): (Arc<RoomArchive>, Option<String>),
) -> HttpResponse {
    let mut body = room_body(svc, &a, None);
    if let Some(o) = body.as_object_mut() {
        o.insert("live".into(), serde_json::json!(live));
    }
    HttpResponse::build(status).json(body)
}

/// `PUT /api/v1/assets/rooms/{id}`: creates a room (which starts at once) or replaces its
/// archive; equipment is matched by tag (a changed serial retires the old unit as
/// `replaced`, a tag left out retires it as `removed`).
pub async fn put_room(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path)?;
        let body: RoomArchive = json_body(&req, payload, MAX_ROOM_BYTES).await?;
        if body.site.id != id {
            return Err(Refused::Invalid(vec![Problem::new(
                "id",
                "mismatch",
                &body.site.id,
            )]));
        }
        let existed = svc.room(&id).await.is_some();
        let out = svc.put_room(body, &who.user).await?;
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok(written(status, svc, out))
    })
    .await
}

pub async fn retired(state: web::Data<ApiState>, path: web::Path<String>) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let id = room_id(&path)?;
        let a = svc.room(&id).await.ok_or(ArchiveError::UnknownRoom(id))?;
        Ok(HttpResponse::Ok().json(serde_json::json!({ "retired": a.retired })))
    })
    .await
}

// ---- Projects.

pub async fn projects(state: web::Data<ApiState>) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let projects = svc.projects().await;
        let mut rooms: std::collections::HashMap<ProjectId, usize> = Default::default();
        for r in svc.rooms().await {
            if let Some(p) = &r.project {
                *rooms.entry(p.clone()).or_default() += 1;
            }
        }
        let list: Vec<serde_json::Value> = projects
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "rooms".into(),
                        rooms.get(&p.id).copied().unwrap_or(0).into(),
                    );
                }
                v
            })
            .collect();
        Ok(HttpResponse::Ok().json(serde_json::json!({ "count": list.len(), "projects": list })))
    })
    .await
}

pub async fn project(state: web::Data<ApiState>, path: web::Path<String>) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let id = project_id(&path)?;
        let p = svc
            .project(&id)
            .await
            .ok_or(ArchiveError::UnknownProject(id.clone()))?;
        let rooms: Vec<RoomId> = (svc.rooms().await.iter())
            .filter(|r| r.project.as_ref() == Some(&id))
            .map(|r| r.site.id.clone())
            .collect();
        Ok(HttpResponse::Ok().json(serde_json::json!({ "project": p, "rooms": rooms })))
    })
    .await
}

pub async fn create_project(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<Project>,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let p = svc.create_project(body.into_inner(), &who.user).await?;
        Ok(HttpResponse::Created().json(serde_json::json!({ "project": p })))
    })
    .await
}

pub async fn update_project(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Project>,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = project_id(&path)?;
        let p = body.into_inner();
        if p.id != id {
            return Err(Refused::Invalid(vec![Problem::new(
                "id", "mismatch", &p.id,
            )]));
        }
        let p = svc.update_project(p, &who.user).await?;
        Ok(HttpResponse::Ok().json(serde_json::json!({ "project": p })))
    })
    .await
}

pub async fn delete_project(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = project_id(&path)?;
        svc.delete_project(&id, &who.user).await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}

// ---- Equipment.

pub async fn add_equipment(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path)?;
        let e: Equipment = json_body(&req, payload, MAX_ROOM_BYTES).await?;
        let out = svc.add_equipment(&id, e, &who.user).await?;
        Ok(written(StatusCode::CREATED, svc, out))
    })
    .await
}

pub async fn edit_equipment(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path.0)?;
        let t = tag(&path.1)?;
        let e: Equipment = json_body(&req, payload, MAX_ROOM_BYTES).await?;
        let out = svc.edit_equipment(&id, &t, e, &who.user).await?;
        Ok(written(StatusCode::OK, svc, out))
    })
    .await
}

pub async fn replace_equipment(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path.0)?;
        let t = tag(&path.1)?;
        let e: Equipment = json_body(&req, payload, MAX_ROOM_BYTES).await?;
        let out = svc.replace_equipment(&id, &t, e, &who.user).await?;
        Ok(written(StatusCode::OK, svc, out))
    })
    .await
}

pub async fn remove_equipment(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path.0)?;
        let t = tag(&path.1)?;
        let out = svc.remove_equipment(&id, &t, &who.user).await?;
        Ok(written(StatusCode::OK, svc, out))
    })
    .await
}

// ---- Documents.

/// `POST /api/v1/assets/rooms/{id}/documents` query: the equipment it is of (none: the
/// room's), what it is and its file name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    pub tag: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

pub async fn upload(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let who = caller(&req)?;
        let id = room_id(&path)?;
        let t = match &query.tag {
            Some(t) => Some(tag(t)?),
            None => None,
        };
        let max = svc.max_document_bytes();
        let bytes = super::workorder_field::body_within(&req, payload, max).await?;
        let upload = DocumentUpload::check(
            bytes,
            query.name.as_deref(),
            query.kind.as_deref().unwrap_or("other"),
            max,
        )?;
        let doc = svc
            .attach_document(&id, t.as_ref(), upload, &who.user)
            .await?;
        Ok(HttpResponse::Created().json(serde_json::json!({ "document": doc })))
    })
    .await
}

pub async fn document(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    answer(async {
        let svc = archive(&state)?;
        let id = room_id(&path.0)?;
        let (doc, bytes) = svc.document(&id, &path.1).await?;
        let name: String = doc
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, doc.content_type.clone()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(bytes))
    })
    .await
}
