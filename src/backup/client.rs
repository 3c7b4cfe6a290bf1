//! `cistern backup DEST`: asks a running node (`--url`, `--token` or `--user` with
//! `CISTERN_PASSWORD`, as `cistern assets` does) to make a backup in DEST, a path on the
//! node's machine, and prints what the manifest says.

use super::Manifest;
use std::path::Path;
use std::time::Duration;

/// Why the node made no backup.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no credentials: give --token (or CISTERN_TOKEN), or set CISTERN_PASSWORD for --user")]
    NoCredentials,
    #[error("cannot reach the node: {0}")]
    Http(String),
    #[error("the node refused: {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

fn call(
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<serde_json::Value, ClientError> {
    let mut resp = resp.map_err(|e| ClientError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
    if !(200..300).contains(&status) {
        let e = &body["error"];
        return Err(ClientError::Refused {
            status,
            code: e["code"].as_str().unwrap_or("").to_owned(),
            message: e["message"].as_str().unwrap_or("").to_owned(),
        });
    }
    Ok(body)
}

/// Asks the node at `url` for a backup in `dest` (made absolute against the current
/// directory: the node and this command share the machine's file system).
pub fn request(
    url: &str,
    token: Option<&str>,
    user: &str,
    dest: &Path,
) -> Result<(String, Manifest), ClientError> {
    let base = url.trim_end_matches('/');
    // A backup of a large store takes minutes: the answer comes when it is complete.
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(6 * 3600)))
        .http_status_as_error(false)
        .build()
        .into();
    let token = match token {
        Some(t) => t.to_owned(),
        None => {
            let password =
                std::env::var("CISTERN_PASSWORD").map_err(|_| ClientError::NoCredentials)?;
            let body = call(
                http.post(format!("{base}/api/v1/auth/login"))
                    .send_json(serde_json::json!({"user": user, "password": password})),
            )?;
            body["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ClientError::Http(format!("no token in {body}")))?
        }
    };
    let dest = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
    let body = call(
        http.post(format!("{base}/api/v1/admin/backup"))
            .header("authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({ "dest": dest })),
    )?;
    let manifest = serde_json::from_value(body["manifest"].clone())
        .map_err(|e| ClientError::Http(format!("unexpected answer: {e}")))?;
    Ok((dest.display().to_string(), manifest))
}

/// The manifest as the command prints it.
pub fn summary(m: &Manifest) -> String {
    let mut out = format!(
        "backup of node {} (cistern {}), began {} ms, took {} ms, {} bytes\n",
        m.node,
        m.cistern,
        m.started_ms,
        m.finished_ms.saturating_sub(m.started_ms),
        m.bytes()
    );
    for f in &m.files {
        out.push_str(&format!(
            "  {} {} bytes sha256 {}\n",
            f.name, f.bytes, f.sha256
        ));
        for (table, n) in m.tables.get(&f.name).into_iter().flatten() {
            out.push_str(&format!("    {table}: {n}\n"));
        }
    }
    out
}
