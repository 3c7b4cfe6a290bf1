//! The rule author's tools as library functions; the `cistern rules check|test|backtest`
//! commands are thin wrappers around them. Reports print for a terminal (`Display`).

use crate::cases::{load_case, parse_case, run_case, Case, CaseError, CaseResult};
use crate::event::AlarmEvent;
use crate::ids::RuleId;
use crate::kpi::{compute, KpiConfig, KpiReport};
use crate::meta::Severity;
use crate::ruleset::{DiagLevel, Diagnostic, RuleSet, RuleSetError};
use crate::sandbox::SandboxLimits;
use cistern_schemas::{DeviceKind, Timestamp};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tool could not run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Rules(#[from] RuleSetError),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("cannot read case directory {dir}: {source}")]
    CasesDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// One line of the rule list.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSummary {
    pub id: RuleId,
    pub applies_to: DeviceKind,
    pub severity: Severity,
    pub parents: Vec<RuleId>,
    pub file: PathBuf,
}

/// The result of `check`: what compiled and every diagnostic.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub rules: Vec<RuleSummary>,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == DiagLevel::Error)
            .count()
    }

    pub fn ok(&self) -> bool {
        self.errors() == 0
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        writeln!(
            f,
            "{}: {} rules compiled, {} errors, {} warnings",
            self.dir.display(),
            self.rules.len(),
            self.errors(),
            self.diagnostics.len() - self.errors()
        )
    }
}

/// Compiles and lints every rule of `dir`: metadata, unknown points, undeclared reads,
/// message fields, unknown parents and parent cycles.
pub fn check(dir: &Path) -> Result<CheckReport, ToolError> {
    let out = RuleSet::load_dir(dir, SandboxLimits::default())?;
    let rules = out
        .set
        .rules()
        .map(|r| RuleSummary {
            id: r.meta.id.clone(),
            applies_to: r.meta.applies_to,
            severity: r.meta.severity,
            parents: r.meta.parents.clone(),
            file: r.path.clone(),
        })
        .collect();
    let mut diagnostics = out.diagnostics;
    diagnostics.sort_by(|a, b| {
        (&a.file, a.position.line, a.position.column).cmp(&(
            &b.file,
            b.position.line,
            b.position.column,
        ))
    });
    Ok(CheckReport {
        dir: dir.to_owned(),
        rules,
        diagnostics,
    })
}

/// The result of `test`.
#[derive(Clone, Debug)]
pub struct TestReport {
    pub load: Vec<Diagnostic>,
    pub cases: Vec<CaseResult>,
    /// Rules of the set that no case's expectations cover.
    pub uncovered: Vec<RuleId>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn ok(&self) -> bool {
        self.failed() == 0 && !self.load.iter().any(|d| d.level == DiagLevel::Error)
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.load {
            writeln!(f, "{d}")?;
        }
        for c in &self.cases {
            write!(f, "{c}")?;
        }
        if !self.uncovered.is_empty() {
            let ids: Vec<String> = self.uncovered.iter().map(ToString::to_string).collect();
            writeln!(f, "warning: no golden case covers {}", ids.join(", "))?;
        }
        writeln!(
            f,
            "golden cases: {} passed, {} failed",
            self.passed(),
            self.failed()
        )
    }
}

fn read_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, ToolError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| RuleSetError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("rhai") {
            let s = std::fs::read_to_string(&p).map_err(|source| RuleSetError::ReadFile {
                file: p.clone(),
                source,
            })?;
            out.push((p, s));
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every golden case of `cases_dir` against the rules of `dir`.
pub fn test(dir: &Path, cases_dir: &Path) -> Result<TestReport, ToolError> {
    let sources = read_sources(dir)?;
    let out = RuleSet::from_sources(sources.clone(), SandboxLimits::default());
    let rules = Arc::new(out.set);
    let cases: Vec<_> = load_cases(Some(cases_dir))?
        .iter()
        .map(|(name, case)| run_case(name, case, &rules, &sources))
        .collect();
    let uncovered = rules
        .rules()
        .map(|r| r.meta.id.clone())
        .filter(|id| !cases.iter().any(|c| c.covers.contains(id)))
        .collect();
    Ok(TestReport {
        load: out.diagnostics,
        cases,
        uncovered,
    })
}

/// The golden cases of `dir` (`*.toml`, named by file stem, in name order), or — `None` — the
/// cases built into the binary ([`crate::library::CASES`], the files of `rules/cases/`).
pub fn load_cases(dir: Option<&Path>) -> Result<Vec<(String, Case)>, ToolError> {
    let Some(dir) = dir else {
        return crate::library::CASES
            .iter()
            .map(|(file, text)| {
                let name = file.strip_suffix(".toml").unwrap_or(file).to_owned();
                Ok((name, parse_case(text, Path::new(file))?))
            })
            .collect();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ToolError::CasesDir {
            dir: dir.to_owned(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_owned();
            Ok((name, load_case(&file)?))
        })
        .collect()
}

/// Runs the cases that exercise `rule` (watch it or expect its transitions) against `rules`,
/// whose (file, source) pairs are `sources` — the rule editor's check of a draft: the set in
/// force with the draft in place of the rule.
pub fn run_cases_of(
    rule: &RuleId,
    rules: &Arc<RuleSet>,
    sources: &[(PathBuf, String)],
    cases: &[(String, Case)],
) -> Vec<CaseResult> {
    cases
        .iter()
        .filter(|(_, case)| case.covers().contains(rule))
        .map(|(name, case)| run_case(name, case, rules, sources))
        .collect()
}

/// KPIs of a backtest's events (see [`crate::kpi`]).
pub fn backtest_kpis(events: &[AlarmEvent], from: Timestamp, to: Timestamp) -> KpiReport {
    compute(events, from, to, &KpiConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library_with(rule: &str, source: Option<String>) -> Vec<(PathBuf, String)> {
        crate::library::LIBRARY
            .iter()
            .map(|(n, s)| {
                let s = match &source {
                    Some(draft) if n.strip_suffix(".rhai") == Some(rule) => draft.clone(),
                    _ => (*s).to_owned(),
                };
                (PathBuf::from(n), s)
            })
            .collect()
    }

    fn run(rule: &str, source: Option<String>) -> Vec<CaseResult> {
        let sources = library_with(rule, source);
        let out = RuleSet::from_sources(sources.clone(), SandboxLimits::default());
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        let cases = load_cases(None).unwrap();
        run_cases_of(
            &RuleId::new(rule).unwrap(),
            &Arc::new(out.set),
            &sources,
            &cases,
        )
    }

    #[test]
    fn the_cases_of_a_rule_run_against_a_draft_of_it() {
        let shipped = run("tank_high", None);
        assert!(!shipped.is_empty());
        assert!(shipped.iter().all(|c| c.passed), "{shipped:?}");
        assert!(shipped.iter().all(|c| c.difference.is_none()));

        // A limit no tank reaches: the expected alarm never comes.
        let draft = crate::library::LIBRARY
            .iter()
            .find(|(n, _)| *n == "tank_high.rhai")
            .unwrap()
            .1
            .replace("high_pct = 95.0", "high_pct = 150.0");
        let failed = run("tank_high", Some(draft));
        let case = failed.iter().find(|c| c.name == "tank_high").unwrap();
        assert!(!case.passed);
        let d = case.difference.as_ref().unwrap();
        assert_eq!(d.transition, 1);
        assert!(
            d.expected
                .as_deref()
                .unwrap()
                .starts_with("1m tank_high@T2 raised"),
            "{d:?}"
        );
        assert_eq!(d.got, None);
    }

    #[test]
    fn a_rule_no_case_exercises_has_no_cases() {
        let cases = load_cases(None).unwrap();
        assert_eq!(cases.len(), crate::library::CASES.len());
        let sources = library_with("none", None);
        let set = Arc::new(RuleSet::from_sources(sources.clone(), SandboxLimits::default()).set);
        let mine = RuleId::new("my_own_rule").unwrap();
        assert!(run_cases_of(&mine, &set, &sources, &cases).is_empty());
    }
}
