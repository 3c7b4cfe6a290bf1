//! Work-order templates: per type and cause, what an order starts with — its title in both
//! languages, checklist (some items recording a live reading of the room), required photos,
//! expected parts, safety notes, default priority. The built-in library
//! (`templates.toml` beside this file) covers the default alarm rules; a site replaces it with
//! `[workorders] templates = "path"`. A rule names its template in its header
//! (`work_order = "pump_fault"`); a template no rule names is still there for orders by hand.

use super::model::{ChecklistEntry, OrderType};
use cistern_rules::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The built-in library.
const BUILT_IN: &str = include_str!("templates.toml");

/// One checklist step of a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub text: String,
    pub text_zh: String,
    /// A room point whose live value the crew records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
}

/// A template (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: OrderType,
    /// What it answers (the alarm rule's id for the library's templates).
    pub cause: String,
    pub priority: Severity,
    /// `{room}` is replaced by the room's name.
    pub title: String,
    pub title_zh: String,
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
    #[serde(default)]
    pub photos: u32,
    #[serde(default)]
    pub parts: Vec<String>,
    /// Skills a crew member needs (`electrical`, `water_quality`); empty: anyone.
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub safety: String,
    #[serde(default)]
    pub safety_zh: String,
}

impl Template {
    pub fn checklist(&self) -> Vec<ChecklistEntry> {
        self.checklist
            .iter()
            .map(|c| ChecklistEntry {
                text: c.text.clone(),
                text_zh: c.text_zh.clone(),
                point: c.point.clone(),
                done: false,
                reading: None,
                by: None,
                at: None,
            })
            .collect()
    }
}

/// Why a template library was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read work-order templates {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("work-order templates {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    template: Vec<Template>,
}

/// The templates by id.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    by_id: BTreeMap<String, Template>,
}

impl Templates {
    /// The built-in library.
    pub fn built_in() -> Result<Self, TemplateError> {
        Self::parse(BUILT_IN, "built-in")
    }

    /// A site's library (replacing the built-in one).
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, path: &str) -> Result<Self, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut by_id = BTreeMap::new();
        for t in file.template {
            if t.id.is_empty() || t.cause.is_empty() || t.title.is_empty() || t.title_zh.is_empty()
            {
                return Err(invalid(format!(
                    "template {:?}: id, cause, title and title_zh are required",
                    t.id
                )));
            }
            if let Some(prev) = by_id.insert(t.id.clone(), t) {
                return Err(invalid(format!("template {:?} is defined twice", prev.id)));
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_library_parses_and_covers_the_default_rules_that_send_crews() {
        let t = Templates::built_in().unwrap();
        for id in [
            "pump_fault",
            "outlet_pressure_low",
            "no_pump_available",
            "flooding",
            "chlorine_low",
            "turbidity_high",
            "comms_lost",
            "tank_cleaning",
            "inspection",
        ] {
            let tpl = t.get(id).unwrap_or_else(|| panic!("no template {id}"));
            assert!(!tpl.checklist.is_empty(), "{id} has no checklist");
        }
        assert!(t
            .iter()
            .all(|x| !x.safety_zh.is_empty() || x.safety.is_empty()));
    }

    #[test]
    fn a_duplicate_or_incomplete_template_is_refused_with_its_id() {
        let two = "[[template]]\nid='a'\ntype='corrective'\ncause='c'\npriority='P2'\ntitle='t'\ntitle_zh='t'\n";
        let err = Templates::parse(&format!("{two}{two}"), "x").unwrap_err();
        assert!(err.to_string().contains("\"a\" is defined twice"), "{err}");
        let err = Templates::parse(&two.replace("title_zh='t'", "title_zh=''"), "x").unwrap_err();
        assert!(err.to_string().contains("required"), "{err}");
    }
}
