//! The room score (泵房评分, issue 22 item 5, DOMAIN.md §9): a configurable multi-dimensional
//! model whose every score explains itself down to the facts behind it.

use serde::{Deserialize, Serialize};

/// `[analysis.score]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {}
