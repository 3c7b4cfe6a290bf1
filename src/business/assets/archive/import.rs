//! Imports of the archive's spreadsheet as jobs (issue 21, item 2): a file of two thousand
//! rooms takes seconds, so an import runs in the background and reports its phase and
//! progress (rooms written of rooms to write) until its report is ready; the console polls it
//! and the CLI prints it.
//!
//! An import is all-or-nothing: the file is read and checked whole — its own problems
//! ([`super::sheet::parse`]) and the archive's ([`Target::apply`] validates every room against
//! the fleet's zones, the projects and every serial before writing any) — and nothing is
//! written while any problem stands. Re-importing the same file changes nothing (rooms are
//! matched by id, equipment by tag). One import runs at a time.
//!
//! A job lives in memory (the last [`KEPT`] are kept): what an import changed is in the
//! archive and the audit log, and a node that stops mid-write leaves every room either old or
//! new — importing the file again completes it.

use super::model::{Project, RoomArchive};
use super::sheet::{self, ImportProblem, Lang, SheetError, SheetKind, Words};
use cistern_schemas::{RoomId, Timestamp};
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Finished jobs kept for their reports.
pub const KEPT: usize = 16;

/// What an apply found or did: the archive's report ([`super::service::ApplyReport`]; when it
/// lists problems, nothing was written).
pub type Applied = super::service::ApplyReport;

/// Every project and room of an archive.
pub type Snapshot = (Vec<Project>, Vec<RoomArchive>);

/// The archive an import reads and writes.
pub trait Target: Send + Sync + 'static {
    /// Every project and room of the archive.
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, String>>;

    /// Checks the whole batch and, when nothing is wrong and not `dry_run`, writes it (see the
    /// module doc), calling `progress(done, total)` as rooms are written.
    fn apply<'a>(
        &'a self,
        projects: Vec<Project>,
        rooms: Vec<RoomArchive>,
        author: &'a str,
        dry_run: bool,
        progress: &'a (dyn Fn(usize, usize) + Send + Sync),
    ) -> BoxFuture<'a, Result<Applied, String>>;
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Reading,
    Checking,
    Writing,
    Done,
    /// Checked and found wrong: nothing written.
    Refused,
    /// The store failed mid-way (see the module doc).
    Failed,
}

/// A job as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: u64,
    pub file: String,
    pub dry_run: bool,
    pub by: String,
    pub started: Timestamp,
    pub phase: Phase,
    /// Rooms written (or checked) of `total`.
    pub done: usize,
    pub total: usize,
    /// Data rows read per sheet.
    pub rows: BTreeMap<SheetKind, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    /// The file refused whole (not a workbook, a sheet or column missing), worded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Every problem (at most [`sheet::MAX_PROBLEMS`]), worded in the job's language.
    pub problems: Vec<ImportProblem>,
    /// How many problems there were in all.
    pub problem_count: usize,
    /// Headings ignored, `sheet: heading`.
    pub ignored_columns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
}

/// A file refused whole: the reason's code and its words.
#[derive(Clone, Debug, Serialize)]
pub struct Refusal {
    #[serde(flatten)]
    pub error: SheetError,
    pub message: String,
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import {0} is still running: wait for it to finish")]
    Busy(u64),
    #[error("no import {0} (only the last {KEPT} are kept)")]
    Unknown(u64),
    #[error("the archive cannot be read: {0}")]
    Archive(String),
}

/// The imports of a node.
pub struct Imports {
    target: Arc<dyn Target>,
    words: Arc<dyn Words>,
    jobs: Mutex<VecDeque<Job>>,
    next: std::sync::atomic::AtomicU64,
    /// Told of every job that ends (the audit log records what it changed).
    finished: Box<dyn Fn(&Job) + Send + Sync>,
}

/// A job's outcome in a line (the audit log's detail).
pub fn summary(job: &Job) -> String {
    let dry = if job.dry_run { " (dry run)" } else { "" };
    match (&job.applied, &job.refused, &job.error) {
        (Some(a), _, _) => format!(
            "job {}{dry}: {} — projects {} created, {} updated; rooms {} created, {} updated, {} unchanged; {} equipment retired",
            job.id, job.file, a.created_projects, a.updated_projects, a.created_rooms, a.updated_rooms, a.unchanged_rooms, a.retired_equipment
        ),
        (_, Some(r), _) => format!("job {}{dry}: {} refused: {}", job.id, job.file, r.error),
        (_, _, Some(e)) => format!("job {}{dry}: {} failed: {e}", job.id, job.file),
        _ => format!("job {}{dry}: {} refused: {} problems", job.id, job.file, job.problem_count),
    }
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imports").finish_non_exhaustive()
    }
}

impl Imports {
    pub fn new(
        target: Arc<dyn Target>,
        words: Arc<dyn Words>,
        finished: Box<dyn Fn(&Job) + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Self {
            target,
            words,
            finished,
            jobs: Mutex::new(VecDeque::new()),
            next: std::sync::atomic::AtomicU64::new(1),
        })
    }

    pub fn words(&self) -> &dyn Words {
        &*self.words
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.jobs().iter_mut().find(|j| j.id == id) {
            f(job);
        }
    }

    pub fn job(&self, id: u64) -> Result<Job, ImportError> {
        (self.jobs().iter().find(|j| j.id == id).cloned()).ok_or(ImportError::Unknown(id))
    }

    /// Starts importing `bytes` (named `file`) by `by`; the job runs on the runtime.
    pub fn start(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        file: String,
        by: String,
        dry_run: bool,
        lang: Lang,
        now: Timestamp,
    ) -> Result<Job, ImportError> {
        let job = {
            let mut jobs = self.jobs();
            if let Some(busy) = jobs.iter().find(|j| j.finished.is_none()) {
                return Err(ImportError::Busy(busy.id));
            }
            let job = Job {
                id: self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                file,
                dry_run,
                by,
                started: now,
                phase: Phase::Reading,
                done: 0,
                total: 0,
                rows: BTreeMap::new(),
                applied: None,
                refused: None,
                problems: Vec::new(),
                problem_count: 0,
                ignored_columns: Vec::new(),
                error: None,
                finished: None,
            };
            jobs.push_back(job.clone());
            while jobs.len() > KEPT {
                match jobs.iter().position(|j| j.finished.is_some()) {
                    Some(i) => {
                        jobs.remove(i);
                    }
                    None => break,
                }
            }
            job
        };
        let me = self.clone();
        let id = job.id;
        // The job's audit entries come from whoever started it (the request's address).
        tokio::spawn(crate::auth::audit::carry_source(async move {
            let outcome = me.run(id, bytes, dry_run, lang).await;
            me.update(id, |j| {
                if let Err(e) = outcome {
                    j.phase = Phase::Failed;
                    j.error = Some(e);
                }
                j.finished = Some(Timestamp::now());
            });
            if let Ok(job) = me.job(id) {
                if job.phase == Phase::Failed {
                    tracing::error!(job = id, error = ?job.error, "archive import failed");
                }
                (me.finished)(&job);
            }
        }));
        Ok(job)
    }

    /// Runs a job to its end (its result is in the job).
    async fn run(
        self: &Arc<Self>,
        id: u64,
        bytes: Vec<u8>,
        dry_run: bool,
        lang: Lang,
    ) -> Result<(), String> {
        let (_, stored) = self.target.snapshot().await?;
        let stored: HashMap<RoomId, RoomArchive> =
            stored.into_iter().map(|r| (r.site.id.clone(), r)).collect();
        // Reading and checking a large file is CPU work: off the runtime's threads.
        let words = self.words.clone();
        let read = tokio::task::spawn_blocking(move || {
            let sheets = sheet::read(&bytes, &*words)?;
            Ok::<_, SheetError>(sheet::parse(&sheets, &|r| stored.get(r).cloned()))
        })
        .await
        .map_err(|e| format!("the reader stopped: {e}"))?;
        let parsed = match read {
            Err(error) => {
                let message = refusal_words(&error, &*self.words, lang);
                self.update(id, |j| {
                    j.phase = Phase::Refused;
                    j.refused = Some(Refusal { error, message });
                });
                return Ok(());
            }
            Ok(Err(problems)) => {
                self.refuse(id, problems, lang);
                return Ok(());
            }
            Ok(Ok(parsed)) => parsed,
        };
        let total = parsed.rooms.len();
        self.update(id, |j| {
            j.phase = Phase::Checking;
            j.total = total;
            j.rows = parsed.rows.clone();
            j.ignored_columns = (parsed.unknown_columns.iter())
                .map(|(s, c)| format!("{s}: {c}"))
                .collect();
        });
        let me = self.clone();
        let progress = move |done: usize, total: usize| {
            me.update(id, |j| {
                j.phase = Phase::Writing;
                j.done = done;
                j.total = total;
            })
        };
        let applied = self
            .target
            .apply(
                parsed.projects.clone(),
                parsed.rooms.clone(),
                &self.by(id),
                dry_run,
                &progress,
            )
            .await?;
        if !applied.problems.is_empty() {
            let problems = (applied.problems.iter())
                .map(|p| sheet::locate(&parsed, p.room.as_ref(), p.project.as_ref(), &p.problem))
                .collect();
            self.refuse(id, problems, lang);
            return Ok(());
        }
        self.update(id, |j| {
            j.phase = Phase::Done;
            j.done = total;
            j.applied = Some(applied);
        });
        Ok(())
    }

    fn by(&self, id: u64) -> String {
        self.job(id).map(|j| j.by).unwrap_or_default()
    }

    fn refuse(&self, id: u64, mut problems: Vec<ImportProblem>, lang: Lang) {
        problems.sort_by(|a, b| (a.sheet, a.row, &a.column).cmp(&(b.sheet, b.row, &b.column)));
        let count = problems.len();
        problems.truncate(sheet::MAX_PROBLEMS);
        sheet::word_problems(&mut problems, &*self.words, lang);
        self.update(id, |j| {
            j.phase = Phase::Refused;
            j.problem_count = count;
            j.problems = problems;
        });
    }

    /// The archive as a workbook in `lang` (the template when it is empty).
    pub async fn export_xlsx(&self, lang: Lang) -> Result<Vec<u8>, ImportError> {
        let (projects, rooms) = self.target.snapshot().await.map_err(ImportError::Archive)?;
        sheet::write_xlsx(&projects, &rooms, &*self.words, lang)
            .map_err(|e| ImportError::Archive(e.to_string()))
    }

    /// One sheet of the archive as CSV in `lang`.
    pub async fn export_csv(&self, kind: SheetKind, lang: Lang) -> Result<Vec<u8>, ImportError> {
        let (projects, rooms) = self.target.snapshot().await.map_err(ImportError::Archive)?;
        sheet::write_csv(kind, &projects, &rooms, &*self.words, lang)
            .map_err(|e| ImportError::Archive(e.to_string()))
    }

    /// The empty template in `lang`.
    pub fn template(&self, lang: Lang) -> Result<Vec<u8>, ImportError> {
        sheet::write_xlsx(&[], &[], &*self.words, lang)
            .map_err(|e| ImportError::Archive(e.to_string()))
    }
}

/// A whole-file refusal in words: `assets.refused_<code>` with its fields.
pub fn refusal_words(e: &SheetError, words: &dyn Words, lang: Lang) -> String {
    let text = |key: &str| words.text(lang, key).unwrap_or_else(|| key.to_owned());
    let sheet = |k: SheetKind| sheet::sheet_name(words, lang, k);
    match e {
        SheetError::NotSpreadsheet { detail } => {
            text("assets.refused_not_spreadsheet").replace("{detail}", detail)
        }
        SheetError::MissingSheet { sheet: s } => {
            text("assets.refused_missing_sheet").replace("{sheet}", &sheet(*s))
        }
        SheetError::NoHeader { sheet: s } => {
            text("assets.refused_no_header").replace("{sheet}", &sheet(*s))
        }
        SheetError::MissingColumn { sheet: s, column } => text("assets.refused_missing_column")
            .replace("{sheet}", &sheet(*s))
            .replace("{column}", &text(&format!("assets.col_{column}"))),
        SheetError::TooManyRows {
            sheet: s,
            rows,
            max,
        } => text("assets.refused_too_many_rows")
            .replace("{sheet}", &sheet(*s))
            .replace("{rows}", &rows.to_string())
            .replace("{max}", &max.to_string()),
        SheetError::UnknownCsv => text("assets.refused_unknown_csv"),
        SheetError::Write(detail) => detail.clone(),
    }
}

/// The node's archive is what imports read and write.
impl Target for super::service::Archive {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, String>> {
        Box::pin(async move {
            let mut projects = self.projects().await;
            projects.sort_by(|a, b| a.id.cmp(&b.id));
            let mut rooms: Vec<RoomArchive> =
                self.rooms().await.iter().map(|r| (**r).clone()).collect();
            rooms.sort_by(|a, b| a.site.id.cmp(&b.site.id));
            Ok((projects, rooms))
        })
    }

    fn apply<'a>(
        &'a self,
        projects: Vec<Project>,
        rooms: Vec<RoomArchive>,
        author: &'a str,
        dry_run: bool,
        progress: &'a (dyn Fn(usize, usize) + Send + Sync),
    ) -> BoxFuture<'a, Result<Applied, String>> {
        Box::pin(async move {
            let batch = super::service::ArchiveBatch { projects, rooms };
            super::service::Archive::apply(self, batch, author, dry_run, progress)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
