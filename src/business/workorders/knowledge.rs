//! The knowledge base (解决方案库): failure class → problem → cause → remedy (Maximo's
//! hierarchy). A problem is what an order answers (its cause: the alarm rule). The starter
//! library (`knowledge.toml` beside this file) covers the default rules; every verified order
//! that recorded a cause and remedy is tallied on the records port (kind `kb_tally`), so the
//! suggestions for an order are ranked by how often each remedy closed orders of that problem
//! in this fleet, and a cause or remedy the library does not know joins the suggestions the
//! first time it closes an order.
//!
//! Engineers edit the library (`PUT /api/v1/knowledge/{problem}`): an edited or new problem is
//! a record of its own (kind `kb_problem`), written before it takes effect and laid over the
//! starter library at start, so an edit survives restarts and upgrades of the built-in file.

use super::model::Resolution;
use super::WorkOrdersError;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, Records, RecordsError,
};
use blake2::{Blake2s256, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const BUILT_IN: &str = include_str!("knowledge.toml");

/// A remedy of a cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remedy {
    pub id: String,
    pub text: String,
    pub text_zh: String,
}

/// A cause of a problem, with its remedies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub id: String,
    pub text: String,
    pub text_zh: String,
    pub remedies: Vec<Remedy>,
}

/// A problem (an alarm rule, or a template's cause) with its failure class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    pub id: String,
    pub class: String,
    pub text: String,
    pub text_zh: String,
    #[serde(rename = "cause")]
    pub causes: Vec<Cause>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    problem: Vec<Problem>,
}

/// One suggestion for an order: a cause and a remedy, in both languages (a learned one's text
/// is what the crew wrote), with how many orders of the problem it closed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    pub cause: String,
    pub cause_text: String,
    pub cause_zh: String,
    pub remedy: String,
    pub remedy_text: String,
    pub remedy_zh: String,
    pub closed: u64,
    /// From the starter library (else learned from closed orders).
    pub library: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Tally {
    problem: String,
    cause: String,
    remedy: String,
    closed: u64,
}

/// The library and the fleet's tallies.
#[derive(Debug)]
pub struct Knowledge {
    problems: std::sync::RwLock<BTreeMap<String, Problem>>,
    records: Arc<dyn Records>,
    kind: RecordKind,
    edited: RecordKind,
    by_problem: IndexName,
    by_class: IndexName,
}

/// Longest text of a problem, cause or remedy, in characters.
const MAX_TEXT: usize = 500;
/// Most causes per problem and remedies per cause.
const MAX_ITEMS: usize = 50;

/// Why an edit of the library was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidProblem(pub String);

impl Problem {
    /// Checks an edit: ids are names (letters, digits, `_`, `-`), every text is given in both
    /// languages within its length, ids are unique within their list, and there is a cause.
    pub fn validate(&self) -> Result<(), InvalidProblem> {
        let bad = |m: String| Err(InvalidProblem(m));
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let text_ok = |what: &str, t: &str| -> Result<(), InvalidProblem> {
            if t.trim().is_empty() {
                return Err(InvalidProblem(format!("{what} is empty")));
            }
            if t.chars().count() > MAX_TEXT {
                return Err(InvalidProblem(format!(
                    "{what} is longer than {MAX_TEXT} characters"
                )));
            }
            if t.chars().any(char::is_control) {
                return Err(InvalidProblem(format!("{what} has control characters")));
            }
            Ok(())
        };
        for id in [&self.id, &self.class] {
            if !id_ok(id) {
                return bad(format!(
                    "{id:?} is not an id (letters, digits, _ and -, at most 64)"
                ));
            }
        }
        text_ok("the problem's text", &self.text)?;
        text_ok("the problem's Chinese text", &self.text_zh)?;
        if self.causes.is_empty() || self.causes.len() > MAX_ITEMS {
            return bad(format!("a problem has 1 to {MAX_ITEMS} causes"));
        }
        let mut causes = std::collections::BTreeSet::new();
        for c in &self.causes {
            if !id_ok(&c.id) || !causes.insert(&c.id) {
                return bad(format!("cause id {:?} is not an id or is repeated", c.id));
            }
            text_ok(&format!("cause {}", c.id), &c.text)?;
            text_ok(&format!("cause {} (Chinese)", c.id), &c.text_zh)?;
            if c.remedies.is_empty() || c.remedies.len() > MAX_ITEMS {
                return bad(format!("cause {} has 1 to {MAX_ITEMS} remedies", c.id));
            }
            let mut remedies = std::collections::BTreeSet::new();
            for r in &c.remedies {
                if !id_ok(&r.id) || !remedies.insert(&r.id) {
                    return bad(format!(
                        "remedy id {:?} of cause {} is not an id or is repeated",
                        r.id, c.id
                    ));
                }
                text_ok(&format!("remedy {}", r.id), &r.text)?;
                text_ok(&format!("remedy {} (Chinese)", r.id), &r.text_zh)?;
            }
        }
        Ok(())
    }
}

impl Knowledge {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, WorkOrdersError> {
        let file: File = toml::from_str(BUILT_IN)
            .map_err(|e| WorkOrdersError::Corrupt(format!("the built-in knowledge base: {e}")))?;
        Ok(Self {
            problems: std::sync::RwLock::new(
                file.problem
                    .into_iter()
                    .map(|p| (p.id.clone(), p))
                    .collect(),
            ),
            records,
            kind: RecordKind::new("kb_tally")?,
            edited: RecordKind::new("kb_problem")?,
            by_problem: IndexName::new("by_problem")?,
            by_class: IndexName::new("by_class")?,
        })
    }

    /// Lays the engineers' edits over the starter library (at start).
    pub async fn load_edits(&self) -> Result<usize, WorkOrdersError> {
        let mut edits = Vec::new();
        for r in self
            .records
            .list_by_index(
                &self.edited,
                &self.by_class,
                IndexRange::between("", "\u{10FFFF}"),
                100_000,
            )
            .await?
        {
            let p: Problem = serde_json::from_slice(&r.body).map_err(|e| {
                WorkOrdersError::Corrupt(format!("knowledge problem {}: {e}", r.id))
            })?;
            edits.push(p);
        }
        let n = edits.len();
        let mut problems = self.problems.write().unwrap_or_else(|e| e.into_inner());
        for p in edits {
            problems.insert(p.id.clone(), p);
        }
        Ok(n)
    }

    /// Puts an engineer's version of a problem (new, or replacing the library's): validated,
    /// durable, then in effect. Returns whether it was new.
    pub async fn edit(&self, problem: Problem) -> Result<bool, WorkOrdersError> {
        problem
            .validate()
            .map_err(|e| WorkOrdersError::InvalidKnowledge(e.0))?;
        let id = RecordId::new(&problem.id)?;
        let body = serde_json::to_vec(&problem)
            .map_err(|e| WorkOrdersError::Corrupt(format!("knowledge problem: {e}")))?;
        for _ in 0..8 {
            let expected = self
                .records
                .record(&self.edited, &id)
                .await?
                .map(|r| r.version);
            let put = RecordPut {
                kind: self.edited.clone(),
                id: id.clone(),
                expected,
                body: body.clone(),
                index: vec![IndexEntry::new(&self.by_class, problem.class.clone())],
            };
            match self.records.put_record(put).await {
                Ok(_) => {
                    let mut problems = self.problems.write().unwrap_or_else(|e| e.into_inner());
                    let new = problems
                        .insert(problem.id.clone(), problem.clone())
                        .is_none();
                    return Ok(new);
                }
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the knowledge base"))
    }

    pub fn problem(&self, id: &str) -> Option<Problem> {
        self.problems
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Problems whose texts (either language) or ids contain `query` (all for an empty one).
    pub fn search(&self, query: &str) -> Vec<Problem> {
        let q = query.trim().to_lowercase();
        let problems = self.problems.read().unwrap_or_else(|e| e.into_inner());
        problems
            .values()
            .filter(|p| {
                q.is_empty()
                    || [&p.id, &p.class, &p.text, &p.text_zh]
                        .iter()
                        .any(|s| s.to_lowercase().contains(&q))
                    || p.causes.iter().any(|c| {
                        c.text.to_lowercase().contains(&q)
                            || c.text_zh.contains(&q)
                            || c.remedies.iter().any(|r| {
                                r.text.to_lowercase().contains(&q) || r.text_zh.contains(&q)
                            })
                    })
            })
            .cloned()
            .collect()
    }

    fn tally_id(problem: &str, cause: &str, remedy: &str) -> Result<RecordId, RecordsError> {
        let mut h = Blake2s256::new();
        for part in [problem, cause, remedy] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest: String = h
            .finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        RecordId::new(&digest)
    }

    async fn tallies(&self, problem: &str) -> Result<Vec<Tally>, WorkOrdersError> {
        self.records
            .list_by_index(
                &self.kind,
                &self.by_problem,
                IndexRange::value(problem),
                10_000,
            )
            .await?
            .iter()
            .map(|r| {
                serde_json::from_slice(&r.body)
                    .map_err(|e| WorkOrdersError::Corrupt(format!("knowledge tally {}: {e}", r.id)))
            })
            .collect()
    }

    /// The suggestions for an order of `problem`: most often closing first, the library's
    /// order among equals.
    pub async fn suggest(&self, problem: &str) -> Result<Vec<Suggestion>, WorkOrdersError> {
        let tallies = self.tallies(problem).await?;
        let closed = |cause: &str, remedy: &str| {
            tallies
                .iter()
                .find(|t| t.cause == cause && t.remedy == remedy)
                .map_or(0, |t| t.closed)
        };
        let mut out: Vec<Suggestion> = Vec::new();
        if let Some(p) = self.problem(problem) {
            for c in &p.causes {
                for r in &c.remedies {
                    out.push(Suggestion {
                        cause: c.id.clone(),
                        cause_text: c.text.clone(),
                        cause_zh: c.text_zh.clone(),
                        remedy: r.id.clone(),
                        remedy_text: r.text.clone(),
                        remedy_zh: r.text_zh.clone(),
                        closed: closed(&c.id, &r.id),
                        library: true,
                    });
                }
            }
        }
        for t in &tallies {
            if !out
                .iter()
                .any(|s| s.cause == t.cause && s.remedy == t.remedy)
            {
                out.push(Suggestion {
                    cause: t.cause.clone(),
                    cause_text: t.cause.clone(),
                    cause_zh: t.cause.clone(),
                    remedy: t.remedy.clone(),
                    remedy_text: t.remedy.clone(),
                    remedy_zh: t.remedy.clone(),
                    closed: t.closed,
                    library: false,
                });
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.closed));
        Ok(out)
    }

    /// Counts a verified order's cause and remedy for `problem`.
    pub async fn record(
        &self,
        problem: &str,
        resolution: &Resolution,
    ) -> Result<(), WorkOrdersError> {
        let (cause, remedy) = (resolution.cause.trim(), resolution.remedy.trim());
        let id = Self::tally_id(problem, cause, remedy)?;
        for _ in 0..8 {
            let current = self.records.record(&self.kind, &id).await?;
            let (mut tally, expected) = match &current {
                Some(r) => (
                    serde_json::from_slice::<Tally>(&r.body).map_err(|e| {
                        WorkOrdersError::Corrupt(format!("knowledge tally {id}: {e}"))
                    })?,
                    Some(r.version),
                ),
                None => (
                    Tally {
                        problem: problem.to_owned(),
                        cause: cause.to_owned(),
                        remedy: remedy.to_owned(),
                        closed: 0,
                    },
                    None,
                ),
            };
            tally.closed += 1;
            let body = serde_json::to_vec(&tally)
                .map_err(|e| WorkOrdersError::Corrupt(format!("knowledge tally: {e}")))?;
            let put = RecordPut {
                kind: self.kind.clone(),
                id: id.clone(),
                expected,
                body,
                index: vec![IndexEntry::new(&self.by_problem, problem)],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(()),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the knowledge tally"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn suggestions_rank_by_closures_and_learn_new_remedies() {
        let d = std::env::temp_dir().join(format!("cistern-kb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let kb = Knowledge::new(Arc::new(EmbeddedStore::open(&d).unwrap())).unwrap();
        let first = kb.suggest("pump_fault").await.unwrap();
        assert_eq!(
            first[0].remedy, "reset_and_megger",
            "library order with no history"
        );
        assert!(first.iter().all(|s| s.closed == 0 && s.library));
        let r = |c: &str, m: &str| Resolution {
            cause: c.into(),
            remedy: m.into(),
        };
        for _ in 0..2 {
            kb.record("pump_fault", &r("vfd_overcurrent", "check_impeller"))
                .await
                .unwrap();
        }
        kb.record("pump_fault", &r("蛇进了电柜", "清理并封堵电缆孔"))
            .await
            .unwrap();
        let ranked = kb.suggest("pump_fault").await.unwrap();
        assert_eq!(
            (ranked[0].remedy.as_str(), ranked[0].closed),
            ("check_impeller", 2)
        );
        let learned = ranked.iter().find(|s| !s.library).unwrap();
        assert_eq!(
            (learned.cause_zh.as_str(), learned.closed),
            ("蛇进了电柜", 1)
        );
        assert!(kb.suggest("smoke").await.unwrap().is_empty());
        assert_eq!(
            kb.search("变频器").len(),
            2,
            "pump_fault and no_pump_available"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn an_engineers_edit_is_validated_kept_and_laid_over_the_library_after_a_restart() {
        let d = std::env::temp_dir().join(format!("cistern-kb-edit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let open = || Knowledge::new(Arc::new(EmbeddedStore::open(&d).unwrap())).unwrap();
        let kb = open();
        let mut p = kb.problem("pump_fault").unwrap();
        p.causes[0].remedies.push(Remedy {
            id: "swap_drive".into(),
            text: "Swap in the spare drive".into(),
            text_zh: "换上备用变频器".into(),
        });
        assert!(!kb.edit(p.clone()).await.unwrap(), "replaced, not new");
        let mut bad = p.clone();
        bad.causes[0].remedies[0].text_zh = " ".into();
        assert!(matches!(
            kb.edit(bad).await,
            Err(WorkOrdersError::InvalidKnowledge(m)) if m.contains("Chinese")
        ));
        let mut repeated = p.clone();
        let again = repeated.causes[0].clone();
        repeated.causes.push(again);
        assert!(kb.edit(repeated).await.is_err(), "a repeated cause id");
        let new = Problem {
            id: "pump_noise".into(),
            class: "pump".into(),
            text: "A pump is noisy".into(),
            text_zh: "水泵噪声大".into(),
            causes: vec![Cause {
                id: "cavitation".into(),
                text: "Cavitation".into(),
                text_zh: "汽蚀".into(),
                remedies: vec![Remedy {
                    id: "raise_suction".into(),
                    text: "Raise the tank's minimum level".into(),
                    text_zh: "提高水箱最低液位".into(),
                }],
            }],
        };
        assert!(kb.edit(new).await.unwrap(), "new");
        drop(kb);
        let kb = open();
        assert!(
            kb.problem("pump_noise").is_none(),
            "not before the edits are loaded"
        );
        assert_eq!(kb.load_edits().await.unwrap(), 2);
        assert_eq!(kb.search("汽蚀")[0].id, "pump_noise");
        let suggested = kb.suggest("pump_fault").await.unwrap();
        assert!(
            suggested.iter().any(|s| s.remedy == "swap_drive"),
            "{suggested:?}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
