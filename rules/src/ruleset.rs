//! Compiled rule sets: loading, compiling, linting and hot reload.
//!
//! A [`RuleSet`] is immutable once built and shared (`Arc`) by every room engine of a node:
//! each rule is compiled once to an AST by one sandboxed Rhai engine (the engine is `Sync`, so
//! the actors' threads share it). Reload builds a new set, per file: a file that fails to
//! compile is reported with file:line:column and the previous version of that rule (same id)
//! is carried over, so a typo never turns an alarm off. Room engines then swap the new set in
//! with [`crate::RoomEngine::swap_rules`], keeping the state of alarms whose rule still exists.

use crate::facts::{fact_names, Derived, FactRef};
use crate::ids::RuleId;
use crate::message::Template;
use crate::meta::{parse_header, ParamValue, Position, RuleMeta, Severity, Trigger};
use crate::sandbox::{build_engine, SandboxLimits};
use cistern_schemas::DeviceKind;
use rhai::{Dynamic, Engine, Scope, AST};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Id of the built-in alarm that consolidates chattering alarms of a room.
pub const CHATTERING: &str = "chattering";
/// Id of the cross-room alarm raised by [`crate::ZoneCorrelator`]; rules may name it as a parent.
pub const ZONE_EVENT: &str = "zone_event";

/// How serious a diagnostic is: errors stop a rule from loading, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagLevel {
    Error,
    Warning,
}

/// A problem in a rule file, with its position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    pub rule: Option<RuleId>,
    pub level: DiagLevel,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            DiagLevel::Error => "error",
            DiagLevel::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {level}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.message
        )
    }
}

/// Reading a rule directory failed.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    #[error("cannot read rule directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read rule file {file}: {source}")]
    ReadFile {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// Whose fact an input is: the room's, or the device the rule is evaluated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Room,
    Own,
}

/// A declared input, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    pub name: String,
    pub owner: Owner,
    pub fact: FactRef,
    pub optional: bool,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub meta: RuleMeta,
    /// The file it came from.
    pub path: PathBuf,
    pub(crate) ast: AST,
    pub(crate) template: Template,
    /// `message_zh`, or the English template again when the rule has none.
    pub(crate) template_zh: Template,
    pub(crate) inputs: Vec<Input>,
    pub(crate) params: Vec<(String, Dynamic)>,
    /// Touched-bits of the room's facts and of the rule's own device kind it reads.
    pub(crate) room_mask: u64,
    pub(crate) own_mask: u64,
    /// Reads the `pumps` / `tanks` / `cameras` collections.
    pub(crate) reads_children: [bool; 3],
    pub(crate) reads_transmitters: bool,
    /// The source this version was compiled from (what is in force, whatever the file now says).
    source: Arc<str>,
    disabled: AtomicBool,
}

impl Rule {
    pub fn id(&self) -> &RuleId {
        &self.meta.id
    }

    /// Stopped by the sandbox: not evaluated any more (until a reload brings a new version).
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    pub(crate) fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }

    /// The source of this version.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A newer version of a rule that a reload refused: the previous version stays in force.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// The refused source.
    pub source: String,
    /// Why (the compiler's errors).
    pub errors: Vec<Diagnostic>,
    /// When it was first refused (a later reload of the same source keeps this time).
    pub at: std::time::SystemTime,
}

/// How a parent named in metadata is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParentLink {
    /// A rule of the set, applying to devices of this kind.
    Rule(RuleId, DeviceKind),
    /// A condition set from outside the room ([`crate::RoomEngine::set_external`]), e.g.
    /// `zone_event`.
    External(RuleId),
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub rule: Arc<Rule>,
    pub parents: Vec<ParentLink>,
}

/// The outcome of loading: the rules that compiled, and what was wrong with the others.
#[derive(Debug)]
pub struct LoadOutcome {
    pub set: RuleSet,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadOutcome {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == DiagLevel::Error)
    }
}

/// A compiled, linted, ordered set of rules. Cheap to clone (everything is shared).
#[derive(Clone, Debug)]
pub struct RuleSet {
    engine: Arc<Engine>,
    limits: SandboxLimits,
    /// In evaluation order: every parent before its children.
    entries: Vec<Entry>,
    index: HashMap<RuleId, usize>,
    builtins: Vec<RuleMeta>,
    /// Rules whose file holds a version a reload refused (their previous version is in force).
    rejected: HashMap<RuleId, Rejection>,
}

impl RuleSet {
    /// An empty set (no rules) with the given sandbox limits.
    pub fn empty(limits: SandboxLimits) -> Self {
        Self {
            engine: Arc::new(build_engine(&limits)),
            limits,
            entries: Vec::new(),
            index: HashMap::new(),
            builtins: builtin_metas(),
            rejected: HashMap::new(),
        }
    }

    /// Loads every `*.rhai` file of `dir`.
    pub fn load_dir(dir: &Path, limits: SandboxLimits) -> Result<LoadOutcome, RuleSetError> {
        Ok(Self::empty(limits).build(read_sources(dir)?, false))
    }

    /// Compiles rules from (file name, source) pairs.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (PathBuf, String)>,
        limits: SandboxLimits,
    ) -> LoadOutcome {
        Self::empty(limits).build(sources.into_iter().collect(), false)
    }

    /// Hot reload: a new set from `dir`, where a file that fails to compile keeps the previous
    /// version of its rule (the id is the file stem; the refused version is kept as its
    /// [`Rejection`]), a removed file removes its rule, and a rule the sandbox disabled stays
    /// disabled while its source is unchanged (a changed source gets a new chance).
    pub fn reload_dir(&self, dir: &Path) -> Result<LoadOutcome, RuleSetError> {
        Ok(self.build(read_sources(dir)?, true))
    }

    /// Hot reload from (file name, source) pairs; see [`RuleSet::reload_dir`].
    pub fn reload_sources(
        &self,
        sources: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> LoadOutcome {
        self.build(sources.into_iter().collect(), true)
    }

    fn build(&self, mut sources: Vec<(PathBuf, String)>, keep_previous: bool) -> LoadOutcome {
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        let mut diagnostics = Vec::new();
        let mut rules: BTreeMap<RuleId, Arc<Rule>> = BTreeMap::new();
        let mut rejected = HashMap::new();
        for (path, source) in sources {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let previous = keep_previous
                .then(|| RuleId::new(stem).ok().and_then(|id| self.get_arc(&id)))
                .flatten();
            if let Some(old) = previous
                .as_ref()
                .filter(|old| old.is_disabled() && *old.source == *source && old.path == path)
            {
                // Hostile and unchanged: recompiling would only let it run (and be killed) again
                // in every room.
                diagnostics.push(diag(
                    &path,
                    Position::default(),
                    Some(old.meta.id.clone()),
                    DiagLevel::Warning,
                    "stays disabled: the sandbox stopped this rule and its source is unchanged (upload a changed version to run it again)".to_owned(),
                ));
                rules.insert(old.meta.id.clone(), old.clone());
                continue;
            }
            match compile_rule(&self.engine, &path, &source) {
                Ok((rule, warnings)) => {
                    diagnostics.extend(warnings);
                    let id = rule.meta.id.clone();
                    if rules.contains_key(&id) {
                        diagnostics.push(diag(
                            &path,
                            Position::default(),
                            Some(id.clone()),
                            DiagLevel::Error,
                            format!("duplicate rule id `{id}`"),
                        ));
                        continue;
                    }
                    rules.insert(id, Arc::new(rule));
                }
                Err(mut errs) => {
                    if let Some(old) = previous {
                        let at = self
                            .rejected
                            .get(&old.meta.id)
                            .filter(|r| r.source == source)
                            .map_or_else(std::time::SystemTime::now, |r| r.at);
                        rejected.insert(
                            old.meta.id.clone(),
                            Rejection {
                                source,
                                errors: errs.clone(),
                                at,
                            },
                        );
                        for e in &mut errs {
                            e.message
                                .push_str(" (the previous version stays in service)");
                        }
                        rules.insert(old.meta.id.clone(), old);
                    }
                    diagnostics.extend(errs);
                }
            }
        }
        let (entries, set_diags) = order_and_link(&rules);
        diagnostics.extend(set_diags);
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.rule.meta.id.clone(), i))
            .collect();
        LoadOutcome {
            set: RuleSet {
                engine: self.engine.clone(),
                limits: self.limits.clone(),
                entries,
                index,
                builtins: self.builtins.clone(),
                rejected,
            },
            diagnostics,
        }
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The rules in evaluation order (parents first).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.entries.iter().map(|e| &*e.rule)
    }

    pub fn get(&self, id: &RuleId) -> Option<&Rule> {
        self.index
            .get(id)
            .and_then(|i| self.entries.get(*i))
            .map(|e| &*e.rule)
    }

    /// The version of `id` that the last reload refused, if its file still holds one.
    pub fn rejected(&self, id: &RuleId) -> Option<&Rejection> {
        self.rejected.get(id)
    }

    fn get_arc(&self, id: &RuleId) -> Option<Arc<Rule>> {
        self.index
            .get(id)
            .and_then(|i| self.entries.get(*i))
            .map(|e| e.rule.clone())
    }

    /// The metadata of a rule of the set or of a built-in alarm (`chattering`, `zone_event`).
    pub fn meta(&self, id: &RuleId) -> Option<&RuleMeta> {
        self.get(id)
            .map(|r| &r.meta)
            .or_else(|| self.builtins.iter().find(|m| &m.id == id))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn position(&self, id: &RuleId) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// Every `*.rhai` file of `dir`, as (path, source) pairs.
pub fn read_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, RuleSetError> {
    let rd = std::fs::read_dir(dir).map_err(|source| RuleSetError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| RuleSetError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rhai") {
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|source| RuleSetError::ReadFile {
            file: path.clone(),
            source,
        })?;
        out.push((path, source));
    }
    Ok(out)
}

fn diag(
    file: &Path,
    position: Position,
    rule: Option<RuleId>,
    level: DiagLevel,
    message: String,
) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        position,
        rule,
        level,
        message,
    }
}

/// The position of a header key (and of `needle` on its line) for diagnostics about values.
fn header_position(source: &str, key: &str, needle: Option<&str>) -> Position {
    for (i, line) in source.lines().enumerate() {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("//!") else {
            if t.is_empty() {
                continue;
            }
            break;
        };
        if rest.trim_start().starts_with(key) {
            let col = needle
                .and_then(|n| line.find(n))
                .or_else(|| line.find(key))
                .unwrap_or(0);
            return Position {
                line: i as u32 + 1,
                column: col as u32 + 1,
            };
        }
    }
    Position { line: 1, column: 1 }
}

fn param_dynamic(v: &ParamValue) -> Dynamic {
    match v {
        ParamValue::Bool(b) => Dynamic::from_bool(*b),
        ParamValue::Int(i) => Dynamic::from_float(*i as f64),
        ParamValue::Float(f) => Dynamic::from_float(*f),
        ParamValue::Text(t) => Dynamic::from(t.clone()),
    }
}

const TEMPLATE_FIELDS: &[&str] = &["value", "limit", "device", "room", "severity", "rule"];

/// Compiles one rule file; warnings come with a rule, errors instead of one.
fn compile_rule(
    engine: &Engine,
    path: &Path,
    source: &str,
) -> Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>> {
    let meta = parse_header(source)
        .map_err(|e| vec![diag(path, e.position, None, DiagLevel::Error, e.message)])?;
    let id = Some(meta.id.clone());
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let err = |key: &str, needle: Option<&str>, msg: String| {
        diag(
            path,
            header_position(source, key, needle),
            id.clone(),
            DiagLevel::Error,
            msg,
        )
    };
    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
        if stem != meta.id.as_str() {
            errors.push(err(
                "id",
                None,
                format!(
                    "rule id `{}` differs from its file name `{stem}` (the id is the file stem)",
                    meta.id
                ),
            ));
        }
    }
    if meta.id.as_str() == CHATTERING || meta.id.as_str() == ZONE_EVENT {
        errors.push(err(
            "id",
            None,
            format!("`{}` is a built-in alarm id", meta.id),
        ));
    }
    let mut parse_template = |key: &str, text: &str| match Template::parse(text) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(err(key, None, e.to_string()));
            None
        }
    };
    let template = parse_template("message", &meta.message);
    let template_zh = parse_template("message_zh", meta.chinese_message());

    // Inputs: own device kind first, then the room's facts.
    let kind = meta.applies_to;
    let mut inputs = Vec::new();
    let (mut room_mask, mut own_mask) = (0u64, 0u64);
    let mut reads_children = [false; 3];
    let mut reads_transmitters = false;
    let mut seen = BTreeSet::new();
    for raw in &meta.inputs {
        let (name, optional) = match raw.strip_suffix('?') {
            Some(n) => (n, true),
            None => (raw.as_str(), false),
        };
        if !seen.insert(name.to_owned()) {
            warnings.push(diag(
                path,
                header_position(source, "inputs", Some(name)),
                id.clone(),
                DiagLevel::Warning,
                format!("input `{name}` is listed twice"),
            ));
            continue;
        }
        let own = (kind != DeviceKind::Room)
            .then(|| FactRef::lookup(kind, name))
            .flatten();
        let resolved = match own {
            Some((f, b)) => {
                own_mask |= b;
                Some((Owner::Own, f))
            }
            None => FactRef::lookup(DeviceKind::Room, name).map(|(f, b)| {
                room_mask |= b;
                (Owner::Room, f)
            }),
        };
        match resolved {
            Some((owner, fact)) => {
                match fact {
                    FactRef::Derived(
                        Derived::Pumps
                        | Derived::PumpCount
                        | Derived::PumpsTripped
                        | Derived::PumpsRunning,
                    ) => reads_children[0] = true,
                    FactRef::Derived(Derived::Tanks) => reads_children[1] = true,
                    FactRef::Derived(Derived::Cameras) => reads_children[2] = true,
                    FactRef::Derived(Derived::Transmitters) => reads_transmitters = true,
                    _ => {}
                }
                inputs.push(Input {
                    name: name.to_owned(),
                    owner,
                    fact,
                    optional,
                });
            }
            None => {
                let mut known: Vec<&str> = fact_names(DeviceKind::Room).collect();
                if kind != DeviceKind::Room {
                    known.extend(fact_names(kind));
                }
                errors.push(err(
                    "inputs",
                    Some(name),
                    format!(
                        "unknown point `{name}` for a {kind} rule (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if inputs.is_empty() && errors.is_empty() {
        warnings.push(diag(
            path,
            header_position(source, "inputs", None),
            id.clone(),
            DiagLevel::Warning,
            "no inputs declared: the rule reads no facts".into(),
        ));
    }

    let mut params = Vec::new();
    for (name, value) in &meta.params {
        let clash = FactRef::lookup(DeviceKind::Room, name).is_some()
            || FactRef::lookup(kind, name).is_some();
        if clash || rhai_ident(name).is_none() {
            errors.push(err(
                "params",
                Some(name),
                format!("param `{name}` is not a valid name or shadows a fact"),
            ));
            continue;
        }
        params.push((name.clone(), param_dynamic(value)));
    }

    for (key, t) in [("message", &template), ("message_zh", &template_zh)] {
        for f in t.iter().flat_map(Template::fields) {
            let ok = TEMPLATE_FIELDS.contains(&f)
                || inputs.iter().any(|i| i.name == f)
                || params.iter().any(|(n, _)| n == f);
            if !ok {
                errors.push(err(
                    key,
                    Some(f),
                    format!(
                        "{key} field `{{{f}}}` is neither an input, a param nor one of {}",
                        TEMPLATE_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    if meta.trigger != Trigger::Level && !meta.on_delay.is_zero() {
        warnings.push(diag(
            path,
            header_position(source, "on_delay", None),
            id.clone(),
            DiagLevel::Warning,
            "on_delay has no effect on an edge trigger (the alarm is raised at the edge)".into(),
        ));
    }
    if meta.parents.contains(&meta.id) {
        errors.push(err(
            "parents",
            Some(meta.id.as_str()),
            "a rule cannot be its own parent".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Compile against a scope holding exactly the declared inputs and params: with strict
    // variables, reading anything else is a compile error at its own line and column.
    let mut scope = Scope::new();
    for i in &inputs {
        scope.push_dynamic(i.name.clone(), Dynamic::UNIT);
    }
    for (n, v) in &params {
        scope.push_constant_dynamic(n.clone(), v.clone());
    }
    let ast = engine.compile_with_scope(&scope, source).map_err(|e| {
        let position = Position {
            line: e.1.line().unwrap_or(0) as u32,
            column: e.1.position().unwrap_or(0) as u32,
        };
        let mut message = e.0.to_string();
        if message.starts_with("Undefined variable") || message.contains("not found") {
            message.push_str(" (declare the points a rule reads in `inputs`)");
        }
        vec![diag(path, position, id.clone(), DiagLevel::Error, message)]
    })?;
    let empty = || {
        Template::parse("").map_err(|e| {
            vec![diag(
                path,
                Position::default(),
                id.clone(),
                DiagLevel::Error,
                e.to_string(),
            )]
        })
    };
    let template = template.map_or_else(empty, Ok)?;
    let template_zh = template_zh.map_or_else(empty, Ok)?;
    Ok((
        Rule {
            meta,
            path: path.to_owned(),
            ast,
            template,
            template_zh,
            inputs,
            params,
            room_mask,
            own_mask,
            reads_children,
            reads_transmitters,
            source: Arc::from(source),
            disabled: AtomicBool::new(false),
        },
        warnings,
    ))
}

fn rhai_ident(s: &str) -> Option<&str> {
    let mut b = s.bytes();
    let first = b.next()?;
    ((first.is_ascii_alphabetic() || first == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_'))
    .then_some(s)
}

/// Orders rules parents-first, resolves parent links, and reports unknown parents and cycles.
fn order_and_link(rules: &BTreeMap<RuleId, Arc<Rule>>) -> (Vec<Entry>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut links: BTreeMap<RuleId, Vec<ParentLink>> = BTreeMap::new();
    for (id, rule) in rules {
        let mut v = Vec::new();
        for p in &rule.meta.parents {
            if let Some(pr) = rules.get(p) {
                v.push(ParentLink::Rule(p.clone(), pr.meta.applies_to));
            } else {
                if p.as_str() != ZONE_EVENT {
                    diags.push(diag(
                        &rule.path,
                        header_position_of(rule, "parents", p.as_str()),
                        Some(id.clone()),
                        DiagLevel::Error,
                        format!(
                            "unknown parent `{p}` (not a rule of the set nor `{ZONE_EVENT}`); \
                             it is treated as an external condition"
                        ),
                    ));
                }
                v.push(ParentLink::External(p.clone()));
            }
        }
        links.insert(id.clone(), v);
    }
    // Kahn's algorithm, ties broken by id for a stable order.
    let mut indegree: BTreeMap<&RuleId, usize> = rules.keys().map(|k| (k, 0)).collect();
    for (id, ls) in &links {
        let n = ls
            .iter()
            .filter(|l| matches!(l, ParentLink::Rule(..)))
            .count();
        if let Some(d) = indegree.get_mut(id) {
            *d = n;
        }
    }
    let mut order: Vec<RuleId> = Vec::new();
    let mut ready: BTreeSet<&RuleId> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(next) = ready.pop_first() {
        order.push(next.clone());
        for (child, ls) in &links {
            if ls
                .iter()
                .any(|l| matches!(l, ParentLink::Rule(p, _) if p == next))
            {
                if let Some(d) = indegree.get_mut(child) {
                    *d = d.saturating_sub(1);
                    if *d == 0 {
                        ready.insert(child);
                    }
                }
            }
        }
    }
    if order.len() < rules.len() {
        let in_cycle: Vec<&RuleId> = rules.keys().filter(|k| !order.contains(k)).collect();
        let names: Vec<String> = in_cycle.iter().map(|k| k.to_string()).collect();
        for k in &in_cycle {
            if let Some(r) = rules.get(*k) {
                diags.push(diag(
                    &r.path,
                    header_position_of(r, "parents", ""),
                    Some((*k).clone()),
                    DiagLevel::Error,
                    format!(
                        "parent cycle among {}: evaluation order among them is arbitrary",
                        names.join(", ")
                    ),
                ));
            }
            order.push((*k).clone());
        }
    }
    let entries = order
        .into_iter()
        .filter_map(|id| {
            let rule = rules.get(&id)?.clone();
            let parents = links.remove(&id).unwrap_or_default();
            Some(Entry { rule, parents })
        })
        .collect();
    (entries, diags)
}

fn header_position_of(rule: &Rule, key: &str, needle: &str) -> Position {
    // The source is not kept; re-read the file if it is there, else point at the header.
    std::fs::read_to_string(&rule.path)
        .map(|s| header_position(&s, key, (!needle.is_empty()).then_some(needle)))
        .unwrap_or(Position { line: 1, column: 1 })
}

fn builtin_metas() -> Vec<RuleMeta> {
    let mk = |id: &'static str, sev: Severity, msg: &str, msg_zh: &str| -> Option<RuleMeta> {
        Some(RuleMeta {
            id: RuleId::builtin(id),
            applies_to: DeviceKind::Room,
            severity: sev,
            message: msg.to_owned(),
            message_zh: Some(msg_zh.to_owned()),
            description: None,
            description_zh: None,
            on_delay: std::time::Duration::ZERO,
            off_delay: std::time::Duration::ZERO,
            deadband: None,
            trigger: Trigger::Level,
            invert: false,
            latched: false,
            parents: Vec::new(),
            escalation: Some(Vec::new()),
            recurrence: None,
            chatter: None,
            inputs: Vec::new(),
            params: BTreeMap::new(),
            quality_rule: false,
            actions: Vec::new(),
            work_order: None,
        })
    };
    [
        mk(
            CHATTERING,
            Severity::P4,
            "Chattering alarms auto-shelved: {value}",
            "频繁抖动的报警已自动搁置：{value}",
        ),
        mk(
            ZONE_EVENT,
            Severity::P2,
            "Low inlet pressure in {value} rooms of the zone",
            "供水分区内 {value} 个泵房进水压力低",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The collection index of a derived children fact (pumps 0, tanks 1, cameras 2).
pub(crate) fn child_kind_index(kind: DeviceKind) -> Option<usize> {
    match kind {
        DeviceKind::Pump => Some(0),
        DeviceKind::Tank => Some(1),
        DeviceKind::Camera => Some(2),
        DeviceKind::Room => None,
    }
}
