//! `cistern assets import|export|template`: the archive's spreadsheet through a running node's
//! REST API (the node owns the archive and runs the fleet that follows it, so the command line
//! goes through the same import as the console — same checks, same audit, same report).
//!
//! The node is `--url` (else `CISTERN_URL`, else `http://127.0.0.1:8080`); the caller is an API
//! token (`--token`, else `CISTERN_TOKEN`) or a user signing in (`--user`, default `admin`, with
//! the password in `CISTERN_PASSWORD`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Where and as whom.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: String,
    pub token: Option<String>,
    pub user: String,
    pub lang: String,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("no credentials: give --token (or CISTERN_TOKEN), or set CISTERN_PASSWORD for --user")]
    NoCredentials,
    #[error("{0}")]
    Http(String),
    #[error("the node refused: {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the import was not applied ({0})")]
    NotApplied(String),
}

fn agent() -> ureq::Agent {
    agent_for(Duration::from_secs(600))
}

fn agent_for(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

impl Remote {
    fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// The bearer token: the one given, or a session for `user`.
    fn token(&self, http: &ureq::Agent) -> Result<String, ClientError> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let password = std::env::var("CISTERN_PASSWORD").map_err(|_| ClientError::NoCredentials)?;
        let body = json(
            http.post(format!("{}/api/v1/auth/login", self.base()))
                .send_json(serde_json::json!({"user": self.user, "password": password})),
        )?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Http(format!("no token in {body}")))
    }

    /// `GET path` as JSON (other commands that talk to the node reuse this client).
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let http = agent();
        let token = self.token(&http)?;
        json(
            http.get(format!("{}{path}", self.base()))
                .header("authorization", &format!("Bearer {token}"))
                .call(),
        )
    }

    /// `POST path` with a JSON body, as JSON; the answer may take up to `timeout` (a backup).
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let http = agent_for(timeout);
        let token = self.token(&http)?;
        json(
            http.post(format!("{}{path}", self.base()))
                .header("authorization", &format!("Bearer {token}"))
                .send_json(body),
        )
    }

    /// Downloads `path` (an export or the template) into `out`.
    pub fn download(&self, path: &str, out: &Path) -> Result<usize, ClientError> {
        let http = agent();
        let token = self.token(&http)?;
        let mut resp = http
            .get(format!("{}{path}", self.base()))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(refused(
                resp.status().as_u16(),
                resp.body_mut().read_json().ok(),
            ));
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        std::fs::write(out, &bytes).map_err(|source| ClientError::Write {
            path: out.display().to_string(),
            source,
        })?;
        Ok(bytes.len())
    }

    /// Imports `file`, printing progress to stderr and the report to stdout; an import that
    /// was refused or failed is an error (after its report).
    pub fn import(&self, file: &Path, dry_run: bool) -> Result<(), ClientError> {
        let bytes = std::fs::read(file).map_err(|source| ClientError::Read {
            path: file.display().to_string(),
            source,
        })?;
        let http = agent();
        let token = self.token(&http)?;
        let auth = format!("Bearer {token}");
        let name: String = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let query = format!(
            "dry_run={dry_run}&lang={}&name={}",
            self.lang,
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        );
        let started = json(
            http.post(format!("{}/api/v1/assets/import?{query}", self.base()))
                .header("authorization", &auth)
                .header("content-type", "application/octet-stream")
                .send(&bytes[..]),
        )?;
        let id = started["job"]["id"].as_u64().unwrap_or(0);
        let mut job = started["job"].clone();
        let mut err = std::io::stderr();
        while job["finished"].is_null() {
            // A command-line process with no runtime: parking the thread is the wait.
            std::thread::park_timeout(Duration::from_millis(300));
            job = json(
                http.get(format!("{}/api/v1/assets/import/{id}", self.base()))
                    .header("authorization", &auth)
                    .call(),
            )?["job"]
                .clone();
            let _ = write!(
                err,
                "\r{} {}/{}   ",
                job["phase"].as_str().unwrap_or("?"),
                job["done"],
                job["total"]
            );
        }
        let _ = writeln!(err);
        print!("{}", report(&job));
        match job["phase"].as_str() {
            Some("done") => Ok(()),
            other => Err(ClientError::NotApplied(other.unwrap_or("?").to_owned())),
        }
    }
}

/// A JSON answer, or the node's refusal.
fn json(
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<serde_json::Value, ClientError> {
    let mut resp = resp.map_err(|e| ClientError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body: Option<serde_json::Value> = resp.body_mut().read_json().ok();
    if !(200..300).contains(&status) {
        return Err(refused(status, body));
    }
    body.ok_or_else(|| ClientError::Http(format!("HTTP {status} without a JSON body")))
}

fn refused(status: u16, body: Option<serde_json::Value>) -> ClientError {
    let e = body.map(|b| b["error"].clone()).unwrap_or_default();
    ClientError::Refused {
        status,
        code: e["code"].as_str().unwrap_or("").to_owned(),
        message: e["message"].as_str().unwrap_or("").to_owned(),
    }
}

/// A finished job as text.
pub fn report(job: &serde_json::Value) -> String {
    let mut out = String::new();
    let rows: Vec<String> = (job["rows"].as_object().into_iter().flatten())
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out.push_str(&format!(
        "import {} ({}){}: {}\nrows read: {}\n",
        job["id"],
        job["file"].as_str().unwrap_or(""),
        if job["dry_run"].as_bool() == Some(true) {
            ", dry run"
        } else {
            ""
        },
        job["phase"].as_str().unwrap_or("?"),
        rows.join(", ")
    ));
    if let Some(r) = job["refused"].as_object() {
        out.push_str(&format!(
            "refused: {}\n",
            r.get("message").and_then(|m| m.as_str()).unwrap_or("")
        ));
    }
    if let Some(e) = job["error"].as_str() {
        out.push_str(&format!("failed: {e}\n"));
    }
    for p in job["problems"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", p["message"].as_str().unwrap_or("")));
    }
    let shown = job["problems"].as_array().map_or(0, Vec::len) as u64;
    let count = job["problem_count"].as_u64().unwrap_or(0);
    if count > shown {
        out.push_str(&format!("  … and {} more\n", count - shown));
    }
    if let Some(a) = job["applied"].as_object() {
        let n = |k: &str| a.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        out.push_str(&format!(
            "projects: {} created, {} updated\nrooms: {} created, {} updated, {} unchanged\nequipment retired: {}\n",
            n("created_projects"),
            n("updated_projects"),
            n("created_rooms"),
            n("updated_rooms"),
            n("unchanged_rooms"),
            n("retired_equipment")
        ));
    }
    for c in job["ignored_columns"].as_array().into_iter().flatten() {
        out.push_str(&format!("column ignored: {}\n", c.as_str().unwrap_or("")));
    }
    out
}
