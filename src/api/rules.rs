//! The rules: `GET /api/v1/rules` (every rule in force, its metadata and counters),
//! `GET /api/v1/rules/{id}` (with its source), `POST /api/v1/rules/validate?file=NAME.rhai`
//! (compile and lint a script in the context of the rules in force; nothing changes),
//! `PUT /api/v1/rules/{id}` (upload: validated, then written to the rule directory and put in
//! force; refused with its diagnostics when it does not compile) and
//! `POST /api/v1/rules/reload`, and `POST /api/v1/rules/{id}/backtest` (a draft replayed over
//! the stored history beside the rules in force: the alarm load of an edit before it is
//! deployed) and `POST /api/v1/rules/{id}/cases` (the golden cases that exercise the rule, run
//! against the draft). A rule's entry carries its Chinese texts beside its metadata (`description_zh`,
//! `message_zh`: the header's, or the English ones for a rule without them), so a console
//! never has to know the fallback; `meta` is the header as written. Validation, backtests,
//! golden cases, uploads and reloads need the rule-author role (see
//! [`crate::auth::policy`]); every upload and reload, taken or refused, is audited.

use super::error::{ApiError, ErrorCode};
use super::{AlarmsApi, ApiState};
use crate::alarms::backtest::{load_history, replay_history};
use crate::alarms::reload::{reload_now, DiagnosticView};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_rules::{DiagLevel, RuleId, RuleSet};
use cistern_schemas::inventory::Inventory;
use cistern_schemas::Timestamp;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest rule script accepted.
const MAX_SCRIPT: usize = 64 * 1024;

fn api(state: &ApiState) -> Result<&AlarmsApi, ApiError> {
    state.alarms.as_ref().ok_or_else(|| {
        ApiError::not_found(ErrorCode::RulesDisabled, "this node runs no alarm rules")
    })
}

/// The sources of the rules in force: the directory's files, or the built-in library.
fn sources(api: &AlarmsApi) -> Result<Vec<(PathBuf, String)>, ApiError> {
    match &api.dir {
        Some(dir) => {
            cistern_rules::ruleset::read_sources(dir).map_err(|e| ApiError::internal(e.to_string()))
        }
        None => Ok(cistern_rules::library::LIBRARY
            .iter()
            .map(|(n, s)| (PathBuf::from(n), (*s).to_owned()))
            .collect()),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let api = api(&state)?;
    let rules = api.host.rules();
    let list: Vec<_> = rules
        .rules()
        .map(|r| {
            serde_json::json!({
                "id": r.id(),
                "file": file_name(&r.path),
                "disabled": r.is_disabled(),
                "rejected": rules.rejected(r.id()).is_some(),
                "description_zh": r.meta.chinese_description(),
                "message_zh": r.meta.chinese_message(),
                "meta": r.meta,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "count": list.len(),
        "source": api.dir.as_ref().map_or("built-in library".to_owned(), |d| d.display().to_string()),
        "hot_reload": api.dir.is_some(),
        "rules": list,
    })))
}

pub async fn get(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let api = api(&state)?;
    let id = RuleId::new(&id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRule, e.to_string()))?;
    let rules = api.host.rules();
    let rule = rules
        .get(&id)
        .ok_or_else(|| ApiError::not_found(ErrorCode::UnknownRule, format!("no rule {id}")))?;
    let name = file_name(&rule.path);
    // What is in force (not what the file says now: a refused reload leaves the previous
    // version running), and the refused version beside it.
    let rejected = rules.rejected(&id).map(|r| {
        serde_json::json!({
            "source": r.source,
            "version": version_of(&r.source),
            "error": r.errors.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"),
            "diagnostics": r.errors.iter().map(DiagnosticView::from).collect::<Vec<_>>(),
            "at": epoch_ms(r.at),
        })
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": rule.id(),
        "file": name,
        "disabled": rule.is_disabled(),
        "description_zh": rule.meta.chinese_description(),
        "message_zh": rule.meta.chinese_message(),
        "meta": rule.meta,
        "source": rule.source(),
        "version": version_of(rule.source()),
        "rejected": rejected,
    })))
}

/// A version of a rule: 12 hex digits of the BLAKE2b hash of its source (the same source, the
/// same version, on every node).
fn version_of(source: &str) -> String {
    use blake2::Digest;
    blake2::Blake2b512::digest(source.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Milliseconds since the Unix epoch.
fn epoch_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `?file=NAME.rhai`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateQuery {
    pub file: String,
}

fn script_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::ScriptTooLarge,
        format!("a rule script is at most {MAX_SCRIPT} bytes"),
    )
}

/// The script in a request's body: at most [`MAX_SCRIPT`] bytes (read no further), UTF-8, and
/// not empty (a missing body is a mistake, not an empty rule).
async fn script(body: web::Payload) -> Result<String, ApiError> {
    let bytes = match body.to_bytes_limited(MAX_SCRIPT).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidScript,
                e.to_string(),
            ))
        }
        Err(_) => return Err(script_too_large()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            ErrorCode::MissingBody,
            "the body must be the rule script (text/plain); it is empty",
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::bad_request(ErrorCode::InvalidScript, "a rule script must be UTF-8 text")
    })
}

/// Compiles `source` as `file` among the rules in force (so parents and cycles are checked);
/// returns the diagnostics about that file.
fn validate_in_context(
    api: &AlarmsApi,
    file: &str,
    source: String,
) -> Result<Vec<DiagnosticView>, ApiError> {
    let mut all: Vec<(PathBuf, String)> = sources(api)?
        .into_iter()
        .filter(|(p, _)| file_name(p) != file)
        .collect();
    all.push((PathBuf::from(file), source));
    let limits = api.host.rules().limits().clone();
    let out = RuleSet::from_sources(all, limits);
    Ok(out
        .diagnostics
        .iter()
        .filter(|d| file_name(&d.file) == file)
        .map(DiagnosticView::from)
        .collect())
}

fn checked_file(file: &str) -> Result<(), ApiError> {
    let stem = file.strip_suffix(".rhai").unwrap_or("");
    RuleId::new(stem).map(|_| ()).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidFile,
            "the file must be `<rule id>.rhai` (a-z, 0-9, _; starting with a letter)",
        )
    })
}

pub async fn validate(
    state: web::Data<ApiState>,
    q: web::Query<ValidateQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let api = api(&state)?;
    checked_file(&q.file)?;
    let diagnostics = validate_in_context(api, &q.file, script(body).await?)?;
    let ok = diagnostics.iter().all(|d| d.level != DiagLevel::Error);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ok": ok, "diagnostics": diagnostics })))
}

/// Records `action` on `target` by the caller, with the outcome.
fn audit(
    state: &ApiState,
    req: &HttpRequest,
    action: &str,
    target: &str,
    result: &Result<HttpResponse, ApiError>,
    done: &str,
) {
    let who = crate::auth::principal(req)
        .unwrap_or_else(|| crate::auth::Principal::new("unknown", crate::auth::Role::Viewer));
    let (ok, detail) = match result {
        Ok(r) if r.status().is_success() => (true, done.to_owned()),
        Ok(r) => (false, format!("refused ({})", r.status().as_u16())),
        Err(_) => {
            let (detail, ok) = super::audit::outcome(result, |_| String::new());
            (ok, detail)
        }
    };
    state.security.record(&who, action, target, detail, ok);
}

pub async fn put(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let result = put_rule(&state, &id, body).await;
    audit(
        &state,
        &req,
        "rule_put",
        &id,
        &result,
        "uploaded and put in force",
    );
    result
}

async fn put_rule(
    state: &ApiState,
    id: &str,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let api = api(state)?;
    let file = format!("{id}.rhai");
    checked_file(&file)?;
    let Some(dir) = api.dir.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NoRuleDir,
            "this node runs the built-in library; set [rules] dir to upload rules",
        ));
    };
    let source = script(body).await?;
    let diagnostics = validate_in_context(api, &file, source.clone())?;
    if diagnostics.iter().any(|d| d.level == DiagLevel::Error) {
        return Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": { "code": ErrorCode::RuleRejected, "message": "the rule does not compile; nothing was changed" },
            "diagnostics": diagnostics,
        })));
    }
    let (host, registry) = (api.host.clone(), state.registry.clone());
    let report = web::block(move || -> Result<_, String> {
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, source.as_bytes()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, dir.join(&file)).map_err(|e| e.to_string())?;
        reload_now(&dir, &host, &registry).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)?;
    tracing::info!(rule = %id, "rule uploaded and put in force");
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({ "diagnostics": diagnostics, "reload": report })),
    )
}

pub async fn reload(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let result = reload_rules(&state).await;
    audit(&state, &req, "rule_reload", "rules", &result, "reloaded");
    result
}

async fn reload_rules(state: &ApiState) -> Result<HttpResponse, ApiError> {
    let api = api(state)?;
    let Some(dir) = api.dir.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NoRuleDir,
            "this node runs the built-in library: there is nothing to reload",
        ));
    };
    let (host, registry) = (api.host.clone(), state.registry.clone());
    let report = web::block(move || reload_now(&dir, &host, &registry))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(report))
}

/// The longest period a backtest replays: the history is held in memory while it runs.
const MAX_BACKTEST: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// `POST /api/v1/rules/{id}/backtest` body: the draft of rule `id` and the period replayed,
/// ending now (humantime, default 24 h, at most 7 days).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    pub source: String,
    #[serde(default = "default_last")]
    pub last: String,
}

fn default_last() -> String {
    "24h".to_owned()
}

/// `POST /api/v1/rules/{id}/backtest`: replays this node's stored history over the period
/// through the rules in force and through the same rules with `id` replaced by the draft (or
/// added, for a new rule), and answers both KPI reports side by side — the alarm load an edit
/// would have caused, before it is deployed. Nothing changes; a draft that does not compile is
/// refused (422) with its diagnostics.
pub async fn backtest(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let api = api(&state)?;
    let (id, file, request) = draft_request::<BacktestRequest>(id, body).await?;
    let last = humantime::parse_duration(request.last.trim())
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_BACKTEST)
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidPeriod,
                format!(
                    "`last` must be a duration from 1s to 7d (\"24h\", \"3d\"), not {:?}",
                    request.last
                ),
            )
        })?;
    if request.source.len() > MAX_SCRIPT {
        return Err(script_too_large());
    }
    let historian = state.history.clone().ok_or_else(|| {
        ApiError::not_found(ErrorCode::NoHistory, "this node keeps no history to replay")
    })?;

    let running = api.host.rules();
    let rule_id = RuleId::new(&id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRule, e.to_string()))?;
    let Draft {
        set: draft,
        diagnostics,
        rejected,
        ..
    } = compile_draft(&running, &rule_id, &file, &request.source);
    if rejected {
        return Ok(draft_rejected(
            &diagnostics,
            "the draft does not compile; nothing was replayed",
        ));
    }

    let mut rooms = Vec::new();
    state.registry.visit(|spec, _, _| rooms.push(spec.clone()));
    rooms.sort_by(|a, b| a.id.cmp(&b.id));
    let inventory = Inventory {
        zones: Vec::new(),
        rooms,
    };
    let to = Timestamp::now();
    let readings = load_history(&historian, &inventory, to - last, to)
        .await
        .map_err(ApiError::store_unavailable)?;
    // From the first stored reading on: a node younger than the period replays what it has,
    // not hours of silence.
    let Some(from) = readings.first().map(|r| r.t) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::EmptyHistory,
            format!(
                "no stored history in the last {}: nothing to replay",
                humantime::format_duration(last)
            ),
        ));
    };
    let count = readings.len();
    let (running_version, draft_version) = (
        running.get(&rule_id).map(|r| version_of(r.source())),
        version_of(&request.source),
    );
    let (before, after) = web::block(move || {
        let before = replay_history(running, &inventory, readings.iter().cloned(), from, to);
        let after = replay_history(draft, &inventory, readings, from, to);
        (before, after)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "rule": id,
        "from": from.0,
        "to": to.0,
        "rooms": before.rooms,
        "readings": count,
        "diagnostics": diagnostics,
        "running": { "version": running_version, "result": before },
        "draft": { "version": draft_version, "result": after },
    })))
}

/// The backtest's JSON body: a script of up to [`MAX_SCRIPT`] bytes and a little more.
/// A request about a draft of rule `id` (backtest, golden cases): the id, its file name
/// (checked) and the JSON body.
async fn draft_request<T: serde::de::DeserializeOwned>(
    id: web::Path<String>,
    body: web::Payload,
) -> Result<(String, String, T), ApiError> {
    let id = id.into_inner();
    let file = format!("{id}.rhai");
    checked_file(&file)?;
    let request = serde_json::from_str(&backtest_body(body).await?)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()))?;
    Ok((id, file, request))
}

async fn backtest_body(body: web::Payload) -> Result<String, ApiError> {
    match body.to_bytes_limited(MAX_SCRIPT + 4096).await {
        Ok(Ok(bytes)) if !bytes.iter().all(u8::is_ascii_whitespace) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::bad_request(ErrorCode::InvalidJson, "the body must be UTF-8 JSON")
            })
        }
        Ok(Ok(_)) => Err(ApiError::bad_request(
            ErrorCode::MissingBody,
            "the body must be `{\"source\": \"...\", \"last\": \"24h\"}`",
        )),
        Ok(Err(e)) => Err(ApiError::bad_request(ErrorCode::InvalidJson, e.to_string())),
        Err(_) => Err(script_too_large()),
    }
}

/// A draft of a rule compiled among the rules in force (not the files: they may hold a refused
/// version), in place of the running rule of its id (or beside them, for a new rule).
struct Draft {
    set: Arc<RuleSet>,
    /// The (file, source) pairs of the set, the draft's among them.
    sources: Vec<(PathBuf, String)>,
    /// The diagnostics about the draft's file.
    diagnostics: Vec<DiagnosticView>,
    /// The set has errors: it does not compile.
    rejected: bool,
}

fn compile_draft(running: &RuleSet, rule_id: &RuleId, file: &str, source: &str) -> Draft {
    let mut sources: Vec<(PathBuf, String)> = running
        .rules()
        .filter(|r| r.id() != rule_id)
        .map(|r| (r.path.clone(), r.source().to_owned()))
        .collect();
    sources.push((PathBuf::from(file), source.to_owned()));
    let out = RuleSet::from_sources(sources.clone(), running.limits().clone());
    let diagnostics = out
        .diagnostics
        .iter()
        .filter(|d| file_name(&d.file) == file)
        .map(DiagnosticView::from)
        .collect();
    Draft {
        rejected: out.has_errors(),
        set: Arc::new(out.set),
        sources,
        diagnostics,
    }
}

/// 422 `rule_rejected` with the draft's diagnostics: nothing was run.
fn draft_rejected(diagnostics: &[DiagnosticView], message: &str) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(serde_json::json!({
        "error": { "code": ErrorCode::RuleRejected, "message": message },
        "diagnostics": diagnostics,
    }))
}

/// `POST /api/v1/rules/{id}/cases` body: the draft of rule `id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesRequest {
    pub source: String,
}

/// `POST /api/v1/rules/{id}/cases`: runs the golden cases that exercise rule `id` (watch it or
/// expect its transitions) against the rules in force with the draft in place of the running
/// rule, and answers each case — passed, or the first transition that differs (expected vs
/// got) — with the totals. Nothing changes. A draft that does not compile is refused (422
/// `rule_rejected`) with its diagnostics; a rule not in force is 404 `unknown_rule` (a new
/// rule has no cases yet); a rule no case exercises answers an empty list.
pub async fn cases(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let api = api(&state)?;
    let (id, file, request) = draft_request::<CasesRequest>(id, body).await?;
    if request.source.len() > MAX_SCRIPT {
        return Err(script_too_large());
    }
    let rule_id = RuleId::new(&id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRule, e.to_string()))?;
    let running = api.host.rules();
    if running.get(&rule_id).is_none() {
        return Err(ApiError::not_found(
            ErrorCode::UnknownRule,
            format!("no rule {id} in force: golden cases are run against a rule's draft"),
        ));
    }
    let draft = compile_draft(&running, &rule_id, &file, &request.source);
    if draft.rejected {
        return Ok(draft_rejected(
            &draft.diagnostics,
            "the draft does not compile; no case was run",
        ));
    }
    let dir = api.cases.clone();
    let source = dir
        .as_ref()
        .map_or("built-in".to_owned(), |d| d.display().to_string());
    let version = version_of(&request.source);
    let (set, sources) = (draft.set, draft.sources);
    let results = web::block(move || -> Result<_, String> {
        let cases = cistern_rules::tools::load_cases(dir.as_deref()).map_err(|e| e.to_string())?;
        Ok(cistern_rules::tools::run_cases_of(
            &rule_id, &set, &sources, &cases,
        ))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)?;
    let passed = results.iter().filter(|c| c.passed).count();
    let cases: Vec<_> = results
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "description": c.description,
                "passed": c.passed,
                "difference": c.difference,
                "error": c.error,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "rule": id,
        "version": version,
        "source": source,
        "total": results.len(),
        "passed": passed,
        "failed": results.len() - passed,
        "cases": cases,
        "diagnostics": draft.diagnostics,
    })))
}
