//! `cistern backup DEST`: asks a running node (`--url`, `--token` or `--user` with
//! `CISTERN_PASSWORD`: the client of `cistern assets`) to make a backup in DEST, a path on the
//! node's machine, and prints what the manifest says.

use super::Manifest;
use crate::business::assets::archive::client::{ClientError, Remote};
use std::path::Path;
use std::time::Duration;

/// Asks the node at `remote` for a backup in `dest` (made absolute against the current
/// directory: the node and this command share the machine's file system).
pub fn request(remote: &Remote, dest: &Path) -> Result<(String, Manifest), ClientError> {
    let dest = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
    // A backup of a large store takes minutes: the answer comes when it is complete.
    let body = remote.post_json(
        "/api/v1/admin/backup",
        &serde_json::json!({ "dest": dest }),
        Duration::from_secs(6 * 3600),
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
