//! Hot reload of the rule directory (see the module doc of [`crate::alarms`]).

use cistern_actors::alarms::RuleHost;
use cistern_actors::FleetRegistry;
use cistern_rules::{DiagLevel, Diagnostic, RuleSetError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a reload did.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    /// Rules in force after the reload.
    pub rules: usize,
    /// Problems found: an error leaves the previous version of its rule in service.
    pub diagnostics: Vec<DiagnosticView>,
    pub applied: bool,
}

/// A diagnostic as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosticView {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub level: DiagLevel,
    pub rule: Option<String>,
    pub message: String,
    /// `file:line:column: level: message`.
    pub text: String,
}

impl From<&Diagnostic> for DiagnosticView {
    fn from(d: &Diagnostic) -> Self {
        Self {
            file: d.file.display().to_string(),
            line: d.position.line,
            column: d.position.column,
            level: d.level,
            rule: d.rule.as_ref().map(|r| r.to_string()),
            message: d.message.clone(),
            text: d.to_string(),
        }
    }
}

/// Reloads `dir` and puts the result in force in every room. A file that fails to compile
/// keeps its previous version running; its errors are in the report and the log.
pub fn reload_now(
    dir: &Path,
    host: &RuleHost,
    registry: &FleetRegistry,
) -> Result<ReloadReport, RuleSetError> {
    let outcome = host.rules().reload_dir(dir)?;
    let errors = outcome
        .diagnostics
        .iter()
        .filter(|d| d.level == DiagLevel::Error)
        .count();
    for d in &outcome.diagnostics {
        match d.level {
            DiagLevel::Error => tracing::error!(diagnostic = %d, "rule rejected on reload"),
            DiagLevel::Warning => tracing::warn!(diagnostic = %d, "rule warning on reload"),
        }
    }
    let set = Arc::new(outcome.set);
    host.set_rules(set.clone());
    registry.swap_rules(&set);
    let result = if errors > 0 { "rejected" } else { "applied" };
    host.metrics.reloads.with_label_values(&[result]).inc();
    tracing::info!(rules = set.len(), errors, dir = %dir.display(), "rules reloaded");
    Ok(ReloadReport {
        rules: set.len(),
        diagnostics: outcome
            .diagnostics
            .iter()
            .map(DiagnosticView::from)
            .collect(),
        applied: true,
    })
}

/// What the directory looks like: (file, modified, length) of every rule file.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "rhai"))
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.path(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect();
    out.sort();
    out
}

/// Polls `dir` every `every` and reloads when a rule file changed, appeared or went, until
/// `shutdown`.
pub async fn watch(
    dir: PathBuf,
    every: Duration,
    host: Arc<RuleHost>,
    registry: Arc<FleetRegistry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let (d, h, r) = (dir.clone(), host.clone(), registry.clone());
        match tokio::task::spawn_blocking(move || reload_now(&d, &h, &r)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "rule directory not reloaded"),
            Err(error) => tracing::error!(%error, "rule reload failed"),
        }
    }
}
