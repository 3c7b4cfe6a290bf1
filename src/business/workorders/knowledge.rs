//! The knowledge base (解决方案库): failure class → problem → cause → remedy (Maximo's
//! hierarchy). A problem is what an order answers (its cause: the alarm rule). The starter
//! library (`knowledge.toml` beside this file) covers the default rules; every verified order
//! that recorded a cause and remedy is tallied on the records port (kind `kb_tally`), so the
//! suggestions for an order are ranked by how often each remedy closed orders of that problem
//! in this fleet, and a cause or remedy the library does not know joins the suggestions the
//! first time it closes an order.

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
#[derive(Debug, Clone)]
pub struct Knowledge {
    problems: BTreeMap<String, Problem>,
    records: Arc<dyn Records>,
    kind: RecordKind,
    by_problem: IndexName,
}

impl Knowledge {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, WorkOrdersError> {
        let file: File = toml::from_str(BUILT_IN)
            .map_err(|e| WorkOrdersError::Corrupt(format!("the built-in knowledge base: {e}")))?;
        Ok(Self {
            problems: file
                .problem
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            records,
            kind: RecordKind::new("kb_tally")?,
            by_problem: IndexName::new("by_problem")?,
        })
    }

    pub fn problem(&self, id: &str) -> Option<&Problem> {
        self.problems.get(id)
    }

    /// Problems whose texts (either language) or ids contain `query` (all for an empty one).
    pub fn search(&self, query: &str) -> Vec<&Problem> {
        let q = query.trim().to_lowercase();
        self.problems
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
        if let Some(p) = self.problems.get(problem) {
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
}
