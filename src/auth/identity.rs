//! Users, API tokens and login sessions: who may present which bearer token, and as what role.
//!
//! Where they persist is an [`IdentityPersistence`]:
//! - a single node: its store (state kinds `auth_user` and `auth_token`, [`IdentityStore`]),
//!   or memory without one. Sessions live in memory only: a restart logs everyone out, which
//!   costs a login and keeps no bearer secret on disk.
//! - a cluster node: etcd, shared by every node (`cluster::identity`), sessions included (the
//!   digest of their secret, with a lease of their lifetime), so that a token issued by one
//!   node is accepted by all. Each node keeps its in-memory copy current from a watch on the
//!   keys ([`Auth::reload`], [`Auth::apply`]).
//!
//! A change is written to the store before it takes effect in memory, one change at a time
//! per node, so that the two never disagree; a new user is created only if its name is free in
//! the store (two nodes cannot both create the first admin).

use super::limiter::{Limited, LoginLimiter};
use super::secret::{self, TokenKind};
use super::{AuthConfig, AuthError, Principal, Role};
use crate::store::{StateRecords, Store, StoreError};
use cistern_schemas::Timestamp;
use dashmap::DashMap;
use futures::future::BoxFuture;
use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const USER_KIND: &str = "auth_user";
const TOKEN_KIND: &str = "auth_token";
const SESSION_KIND: &str = "auth_session";
/// The first admin's name.
pub const FIRST_ADMIN: &str = "admin";
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted (argon2 takes any length; a megabyte of it is an attack).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Most live sessions of one user; a new login beyond it ends the oldest.
const MAX_SESSIONS_PER_USER: usize = 64;

/// Why an identity change or lookup failed. Messages name the user or token (they go to an
/// admin, never to an anonymous caller).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid name {name:?}: 1 to 64 characters of letters, digits, '.', '_', '-', '@'")]
    InvalidName { name: String },
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes")]
    WeakPassword,
    #[error("user {name} already exists")]
    UserExists { name: String },
    #[error("no user {name}")]
    UnknownUser { name: String },
    #[error("user {name} is the last admin: there must always be one")]
    LastAdmin { name: String },
    #[error("an API token named {name} already exists")]
    TokenExists { name: String },
    #[error("no API token {id}")]
    UnknownToken { id: String },
    #[error(transparent)]
    Hash(#[from] secret::HashError),
    #[error("cannot persist identities: {0}")]
    Store(#[from] StoreError),
}

/// A language of the console, as a user chooses it (the web UI's catalogues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Language {
    /// Every language, as its tag.
    pub const TAGS: &'static [&'static str] = &["zh-CN", "en"];

    /// The language of a tag, exactly as written (`zh-CN`, `en`).
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "zh-CN" => Some(Self::ZhCn),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }
}

/// A user as kept (and stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UserRecord {
    name: String,
    role: Role,
    password_hash: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    /// The console language the user chose (none: never chose; the browser's applies).
    /// Records stored before users chose a language read as none.
    #[serde(default)]
    language: Option<Language>,
}

/// A user as shown (no hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    #[serde(default)]
    pub language: Option<Language>,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            name: u.name.clone(),
            role: u.role,
            created_at_ms: u.created_at_ms,
            updated_at_ms: u.updated_at_ms,
            language: u.language,
        }
    }
}

/// An API token as kept (and stored): a digest of its secret, never the secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    name: String,
    role: Role,
    digest: String,
    created_at_ms: i64,
    created_by: String,
}

/// An API token as listed (no secret, no digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
    pub created_by: String,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at_ms: t.created_at_ms,
            created_by: t.created_by.clone(),
        }
    }
}

impl TokenView {
    /// The name a token acts under (in principals and the audit log).
    pub fn principal_name(&self) -> String {
        token_principal(&self.name)
    }
}

fn token_principal(name: &str) -> String {
    format!("token:{name}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    digest: String,
    expires_at_ms: i64,
}

/// A successful login.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    pub token: String,
    pub user: String,
    pub role: Role,
    pub expires_at_ms: i64,
    /// The user's chosen console language (none: never chose).
    pub language: Option<Language>,
}

/// Why a login failed (deliberately without saying whether the user exists).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("authentication required")]
    BadCredentials,
    #[error("too many failed logins; try again later")]
    Limited(Limited),
    #[error("login failed: {0}")]
    Internal(String),
}

/// Why a bearer token was refused (for the metrics; the caller only ever hears
/// "authentication required").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not shaped like any token of ours.
    Malformed,
    /// Unknown, revoked, or its secret is wrong.
    Unknown,
    /// A session past its expiry.
    Expired,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Unknown => "unknown",
            Rejection::Expired => "expired",
        }
    }
}

/// Counters of logins and refused requests.
#[derive(Clone, Debug)]
pub struct AuthMetrics {
    /// `cistern_auth_logins_total{result="ok|bad_credentials|rate_limited|error"}`
    pub logins: IntCounterVec,
    /// `cistern_auth_rejected_total{reason="missing|malformed|unknown|expired|forbidden"}`
    pub rejected: IntCounterVec,
}

impl Default for AuthMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthMetrics {
    #[allow(clippy::expect_used)] // constant, valid metric definitions
    pub fn new() -> Self {
        Self {
            logins: IntCounterVec::new(
                Opts::new("cistern_auth_logins_total", "Login attempts by result"),
                &["result"],
            )
            .expect("valid metric"),
            rejected: IntCounterVec::new(
                Opts::new(
                    "cistern_auth_rejected_total",
                    "Requests refused by authentication or authorisation, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        }
    }

    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.logins.clone()))?;
        registry.register(Box::new(self.rejected.clone()))
    }
}

/// A kind of identity record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    User,
    Token,
    /// A login session (digest of its secret, user, expiry): persisted only where the nodes of
    /// a cluster share them; a single node keeps them in memory.
    Session,
}

impl IdentityKind {
    pub const ALL: [IdentityKind; 3] = [Self::User, Self::Token, Self::Session];

    /// The state kind in a node's store.
    pub fn store_kind(self) -> &'static str {
        match self {
            Self::User => USER_KIND,
            Self::Token => TOKEN_KIND,
            Self::Session => SESSION_KIND,
        }
    }

    /// The kind's segment in a key path (`user`, `token`, `session`).
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Token => "token",
            Self::Session => "session",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One stored identity record: its kind, key (user name, token id, session id) and JSON.
pub type IdentityRecord = (IdentityKind, String, Vec<u8>);

/// Where identities persist: the node's store ([`IdentityStore`]), or etcd, shared by the
/// nodes of a cluster (`cluster::identity`). Writes are awaited before a change takes effect in
/// memory.
pub trait IdentityPersistence: Send + Sync + std::fmt::Debug + 'static {
    /// Every record of `kind`, as (key, JSON).
    fn load(&self, kind: IdentityKind) -> BoxFuture<'_, Result<StateRecords, StoreError>>;
    /// Puts (or, with `None`, deletes) one record.
    fn put(
        &self,
        kind: IdentityKind,
        key: String,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Puts one record only if its key is free; false: it was taken (by another node).
    fn create(
        &self,
        kind: IdentityKind,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Keeps a login session for `ttl` (its lifetime), or ends it (`None`). By default
    /// sessions live in memory only, and this does nothing.
    fn put_session(
        &self,
        _id: String,
        _record: Option<(Vec<u8>, Duration)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Where a single node's identities persist: its store, driven on its I/O runtime. Sessions
/// are not written (memory only).
#[derive(Clone, Debug)]
pub struct IdentityStore {
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
}

impl IdentityStore {
    pub fn new(store: Arc<dyn Store>, io: tokio::runtime::Handle) -> Self {
        Self { store, io }
    }
}

impl IdentityPersistence for IdentityStore {
    fn put(
        &self,
        kind: IdentityKind,
        key: String,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let store = self.store.clone();
        let kind = kind.store_kind();
        Box::pin(async move {
            self.io
                .spawn(async move { store.put_state(kind, vec![(key, value)]).await })
                .await
                .map_err(|e| StoreError::Unavailable(format!("identity write task failed: {e}")))?
        })
    }

    /// One node: the caller checked, under its change lock, that the key is free.
    fn create(
        &self,
        kind: IdentityKind,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { self.put(kind, key, Some(value)).await.map(|()| true) })
    }

    fn load(&self, kind: IdentityKind) -> BoxFuture<'_, Result<StateRecords, StoreError>> {
        let store = self.store.clone();
        let kind = kind.store_kind();
        Box::pin(async move {
            self.io
                .spawn(async move { store.state(kind).await })
                .await
                .map_err(|e| StoreError::Unavailable(format!("identity read task failed: {e}")))?
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    kind: IdentityKind,
    key: &str,
    bytes: &[u8],
) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(error) => {
            tracing::error!(kind = kind.name(), %key, %error, "unreadable identity record skipped");
            None
        }
    }
}

#[derive(Debug, Default)]
struct Identities {
    users: BTreeMap<String, UserRecord>,
    /// API tokens by id.
    tokens: BTreeMap<String, TokenRecord>,
    /// Sessions by id.
    sessions: HashMap<String, SessionRecord>,
}

impl Identities {
    fn apply(&mut self, kind: IdentityKind, key: &str, value: Option<&[u8]>) {
        match (kind, value) {
            (IdentityKind::User, Some(b)) => {
                if let Some(u) = decode::<UserRecord>(kind, key, b) {
                    self.users.insert(u.name.clone(), u);
                }
            }
            (IdentityKind::User, None) => {
                self.users.remove(key);
                self.sessions.retain(|_, s| s.user != key);
            }
            (IdentityKind::Token, Some(b)) => {
                if let Some(t) = decode::<TokenRecord>(kind, key, b) {
                    self.tokens.insert(t.id.clone(), t);
                }
            }
            (IdentityKind::Token, None) => {
                self.tokens.remove(key);
            }
            (IdentityKind::Session, Some(b)) => {
                if let Some(s) = decode::<SessionRecord>(kind, key, b) {
                    if s.expires_at_ms > now_ms() {
                        self.sessions.insert(key.to_owned(), s);
                    }
                }
            }
            (IdentityKind::Session, None) => {
                self.sessions.remove(key);
            }
        }
    }

    fn admins(&self) -> usize {
        self.users
            .values()
            .filter(|u| u.role == Role::Admin)
            .count()
    }
}

/// What [`Auth::bootstrap`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users existed: nothing changed.
    Existing,
    /// The first admin was created with the configured password.
    Configured,
    /// The first admin was created with this generated password (print it once).
    Generated(String),
}

/// Verifies credentials and keeps users, API tokens and sessions (see the module doc).
#[derive(Debug)]
pub struct Auth {
    ids: RwLock<Identities>,
    /// Tokens set directly by [`Auth::insert_token`], by digest of the whole token.
    fixed: DashMap<String, Principal>,
    store: Option<Box<dyn IdentityPersistence>>,
    /// One change at a time, held across its store write.
    changes: tokio::sync::Mutex<()>,
    limiter: LoginLimiter,
    session_lifetime: Duration,
    metrics: AuthMetrics,
}

impl Default for Auth {
    fn default() -> Self {
        Self::with_config(&AuthConfig::default())
    }
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn check_password(password: &str) -> Result<(), IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(IdentityError::WeakPassword);
    }
    Ok(())
}

async fn hash_off_thread(password: &str) -> Result<String, IdentityError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || secret::hash_password(&password))
        .await
        .map_err(|e| {
            IdentityError::Store(StoreError::Unavailable(format!("hashing task failed: {e}")))
        })?
        .map_err(IdentityError::from)
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, IdentityError> {
    serde_json::to_vec(v).map_err(|e| IdentityError::Store(StoreError::Invalid(e.to_string())))
}

impl Auth {
    /// In memory, with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// In memory, with `config`'s settings.
    pub fn with_config(config: &AuthConfig) -> Self {
        Self {
            ids: RwLock::new(Identities::default()),
            fixed: DashMap::new(),
            store: None,
            changes: tokio::sync::Mutex::new(()),
            limiter: LoginLimiter::new(
                config.login_failures_per_user,
                config.login_failures_per_address,
                config.login_window,
            ),
            session_lifetime: config.session_lifetime.max(Duration::from_secs(1)),
            metrics: AuthMetrics::new(),
        }
    }

    /// With `config`'s settings, keeping users and tokens (and, where the store shares them,
    /// sessions) in `store` (loaded now).
    pub async fn open(
        config: &AuthConfig,
        store: impl IdentityPersistence,
    ) -> Result<Self, IdentityError> {
        let mut records = Vec::new();
        for kind in IdentityKind::ALL {
            for (key, bytes) in store.load(kind).await? {
                records.push((kind, key, bytes));
            }
        }
        let auth = Self {
            store: Some(Box::new(store)),
            ..Self::with_config(config)
        };
        auth.reload(records);
        let ids = auth.read();
        tracing::info!(
            users = ids.users.len(),
            tokens = ids.tokens.len(),
            sessions = ids.sessions.len(),
            "identities loaded"
        );
        drop(ids);
        Ok(auth)
    }

    /// Replaces every user, API token and session by `records` (what the shared store holds:
    /// at start, and when a cluster node's watch on it starts again).
    pub fn reload(&self, records: Vec<IdentityRecord>) {
        let mut fresh = Identities::default();
        for (kind, key, bytes) in records {
            fresh.apply(kind, &key, Some(&bytes));
        }
        *self.write() = fresh;
    }

    /// One change made elsewhere (another node of the cluster, through the shared store):
    /// `value` is the record's JSON, `None` when it was deleted. Takes effect at once: a
    /// deleted user's or token's bearer, or an ended session, authenticates nothing from now on.
    pub fn apply(&self, kind: IdentityKind, key: &str, value: Option<&[u8]>) {
        self.write().apply(kind, key, value);
    }

    pub fn metrics(&self) -> &AuthMetrics {
        &self.metrics
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Identities> {
        self.ids.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Identities> {
        self.ids.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn persist(
        &self,
        kind: IdentityKind,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), IdentityError> {
        match &self.store {
            Some(s) => Ok(s.put(kind, key.to_owned(), value).await?),
            None => Ok(()),
        }
    }

    /// Persists a new record; false when its key was taken meanwhile (by another node).
    async fn persist_new(
        &self,
        kind: IdentityKind,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, IdentityError> {
        match &self.store {
            Some(s) => Ok(s.create(kind, key.to_owned(), value).await?),
            None => Ok(true),
        }
    }

    /// Ends sessions in the store (memory is the caller's).
    async fn end_sessions(&self, ids: Vec<String>) -> Result<(), IdentityError> {
        if let Some(s) = &self.store {
            for id in ids {
                s.put_session(id, None).await?;
            }
        }
        Ok(())
    }

    fn sessions_of(&self, user: &str) -> Vec<String> {
        (self.read().sessions.iter())
            .filter(|(_, s)| s.user == user)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The principal a bearer token stands for.
    pub fn verify_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        self.check_bearer(token)
            .map_err(|_| AuthError::Unauthorized)
    }

    /// As [`Auth::verify_bearer`], saying why (for the metrics only).
    pub fn check_bearer(&self, token: &str) -> Result<Principal, Rejection> {
        if !self.fixed.is_empty() {
            if let Some(p) = self.fixed.get(&secret::digest(token)) {
                return Ok(p.value().clone());
            }
        }
        let (kind, id, presented) = secret::parse(token).ok_or(Rejection::Malformed)?;
        let ids = self.read();
        match kind {
            TokenKind::Session => {
                let s = ids.sessions.get(id).ok_or(Rejection::Unknown)?;
                if !secret::secret_matches(presented, &s.digest) {
                    return Err(Rejection::Unknown);
                }
                if s.expires_at_ms <= now_ms() {
                    return Err(Rejection::Expired);
                }
                let user = ids.users.get(&s.user).ok_or(Rejection::Unknown)?;
                Ok(Principal {
                    user: user.name.clone(),
                    role: user.role,
                })
            }
            TokenKind::Api => {
                let t = ids.tokens.get(id).ok_or(Rejection::Unknown)?;
                if !secret::secret_matches(presented, &t.digest) {
                    return Err(Rejection::Unknown);
                }
                Ok(Principal {
                    user: token_principal(&t.name),
                    role: t.role,
                })
            }
        }
    }

    /// Makes `token` stand for `principal` (tests and tools; never persisted).
    pub fn insert_token(&self, token: impl Into<String>, principal: Principal) {
        self.fixed.insert(secret::digest(&token.into()), principal);
    }

    /// Creates the first admin when no user exists (see [`Bootstrap`]).
    pub async fn bootstrap(&self, password: Option<&str>) -> Result<Bootstrap, IdentityError> {
        if !self.read().users.is_empty() {
            if password.is_some() {
                tracing::info!("users exist: the configured first-admin password is not used");
            }
            return Ok(Bootstrap::Existing);
        }
        let (password, outcome) = match password {
            Some(p) => (p.to_owned(), Bootstrap::Configured),
            None => {
                let p = secret::random_password();
                (p.clone(), Bootstrap::Generated(p))
            }
        };
        match self.create_user(FIRST_ADMIN, Role::Admin, &password).await {
            Ok(_) => Ok(outcome),
            // Created meanwhile by someone else: theirs stands.
            Err(IdentityError::UserExists { .. }) => Ok(Bootstrap::Existing),
            Err(e) => Err(e),
        }
    }

    /// Checks a user's password and opens a session. Failures are counted per user and per
    /// client address; over the limit, attempts are refused before any password is checked.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Session, LoginError> {
        let result = self.login_inner(user, password, address).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(LoginError::BadCredentials) => "bad_credentials",
            Err(LoginError::Limited(_)) => "rate_limited",
            Err(LoginError::Internal(_)) => "error",
        };
        self.metrics.logins.with_label_values(&[label]).inc();
        result
    }

    async fn login_inner(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Session, LoginError> {
        // Names are bounded so that the limiter's keys are too.
        let user: String = user.chars().take(128).collect();
        self.limiter
            .begin(&user, address, Instant::now())
            .map_err(LoginError::Limited)?;
        let hash = self
            .read()
            .users
            .get(&user)
            .map(|u| u.password_hash.clone());
        let presented = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(h) if presented.len() <= MAX_PASSWORD_BYTES => {
                secret::verify_password(&presented, &h)
            }
            _ => {
                secret::verify_nobody(&presented);
                false
            }
        })
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
        if !ok {
            return Err(LoginError::BadCredentials);
        }
        self.limiter.succeeded(&user, address);
        let minted = secret::mint(TokenKind::Session);
        let now = now_ms();
        let expires_at_ms = now
            .saturating_add(i64::try_from(self.session_lifetime.as_millis()).unwrap_or(i64::MAX));
        let (role, language) = self
            .read()
            .users
            .get(&user)
            .map(|u| (u.role, u.language))
            .ok_or(LoginError::BadCredentials)?;
        let record = SessionRecord {
            user: user.clone(),
            digest: minted.digest,
            expires_at_ms,
        };
        if let Some(store) = &self.store {
            let bytes =
                serde_json::to_vec(&record).map_err(|e| LoginError::Internal(e.to_string()))?;
            store
                .put_session(minted.id.clone(), Some((bytes, self.session_lifetime)))
                .await
                .map_err(|e| LoginError::Internal(format!("cannot keep the session: {e}")))?;
        }
        let evicted = {
            let mut ids = self.write();
            ids.sessions.retain(|_, s| s.expires_at_ms > now);
            let mut mine: Vec<(i64, String)> = ids
                .sessions
                .iter()
                .filter(|(_, s)| s.user == user)
                .map(|(id, s)| (s.expires_at_ms, id.clone()))
                .collect();
            let mut evicted = Vec::new();
            if mine.len() >= MAX_SESSIONS_PER_USER {
                mine.sort();
                for (_, id) in mine.iter().take(mine.len() + 1 - MAX_SESSIONS_PER_USER) {
                    ids.sessions.remove(id);
                    evicted.push(id.clone());
                }
            }
            ids.sessions.insert(minted.id, record);
            evicted
        };
        if let Err(error) = self.end_sessions(evicted).await {
            tracing::warn!(%user, %error, "an ended session stays in the shared store until it expires");
        }
        Ok(Session {
            token: minted.bearer,
            user,
            role,
            expires_at_ms,
            language,
        })
    }

    /// Ends the session `token` stands for; false when it is not a live session token.
    pub async fn logout(&self, token: &str) -> bool {
        let Some((TokenKind::Session, id, presented)) = secret::parse(token) else {
            return false;
        };
        let matches = (self.read().sessions.get(id))
            .is_some_and(|s| secret::secret_matches(presented, &s.digest));
        if !matches {
            return false;
        }
        if let Err(error) = self.end_sessions(vec![id.to_owned()]).await {
            // Ended here all the same; the other nodes drop it when it expires.
            tracing::warn!(%error, "cannot end the session in the shared store");
        }
        self.write().sessions.remove(id).is_some()
    }

    // -- users --

    pub fn users(&self) -> Vec<UserView> {
        self.read().users.values().map(UserView::from).collect()
    }

    pub fn user(&self, name: &str) -> Option<UserView> {
        self.read().users.get(name).map(UserView::from)
    }

    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<UserView, IdentityError> {
        if !valid_name(name) {
            return Err(IdentityError::InvalidName { name: name.into() });
        }
        check_password(password)?;
        let password_hash = hash_off_thread(password).await?;
        let _one = self.changes.lock().await;
        if self.read().users.contains_key(name) {
            return Err(IdentityError::UserExists { name: name.into() });
        }
        let now = now_ms();
        let record = UserRecord {
            name: name.into(),
            role,
            password_hash,
            created_at_ms: now,
            updated_at_ms: now,
            language: None,
        };
        if !self
            .persist_new(IdentityKind::User, name, encode(&record)?)
            .await?
        {
            return Err(IdentityError::UserExists { name: name.into() });
        }
        let view = UserView::from(&record);
        self.write().users.insert(name.into(), record);
        Ok(view)
    }

    /// Changes a user's role and/or password. A new password ends the user's sessions; the
    /// last admin cannot be demoted.
    pub async fn update_user(
        &self,
        name: &str,
        role: Option<Role>,
        password: Option<&str>,
    ) -> Result<UserView, IdentityError> {
        let password_hash = match password {
            Some(p) => {
                check_password(p)?;
                Some(hash_off_thread(p).await?)
            }
            None => None,
        };
        let _one = self.changes.lock().await;
        let mut record = {
            let ids = self.read();
            let current = ids
                .users
                .get(name)
                .ok_or_else(|| IdentityError::UnknownUser { name: name.into() })?;
            if current.role == Role::Admin
                && role.is_some_and(|r| r != Role::Admin)
                && ids.admins() == 1
            {
                return Err(IdentityError::LastAdmin { name: name.into() });
            }
            current.clone()
        };
        if let Some(r) = role {
            record.role = r;
        }
        if let Some(h) = password_hash.clone() {
            record.password_hash = h;
        }
        record.updated_at_ms = now_ms();
        self.persist(IdentityKind::User, name, Some(encode(&record)?))
            .await?;
        if password_hash.is_some() {
            self.end_sessions(self.sessions_of(name)).await?;
        }
        let view = UserView::from(&record);
        let mut ids = self.write();
        ids.users.insert(name.into(), record);
        if password_hash.is_some() {
            ids.sessions.retain(|_, s| s.user != name);
        }
        Ok(view)
    }

    /// Keeps the console language a user chose (none: back to the browser's). Sessions stay.
    pub async fn set_language(
        &self,
        name: &str,
        language: Option<Language>,
    ) -> Result<UserView, IdentityError> {
        let _one = self.changes.lock().await;
        let mut record = self
            .read()
            .users
            .get(name)
            .cloned()
            .ok_or_else(|| IdentityError::UnknownUser { name: name.into() })?;
        record.language = language;
        record.updated_at_ms = now_ms();
        self.persist(IdentityKind::User, name, Some(encode(&record)?))
            .await?;
        let view = UserView::from(&record);
        self.write().users.insert(name.into(), record);
        Ok(view)
    }

    /// Deletes a user and ends their sessions; the last admin cannot be deleted.
    pub async fn delete_user(&self, name: &str) -> Result<UserView, IdentityError> {
        let _one = self.changes.lock().await;
        let view = {
            let ids = self.read();
            let current = ids
                .users
                .get(name)
                .ok_or_else(|| IdentityError::UnknownUser { name: name.into() })?;
            if current.role == Role::Admin && ids.admins() == 1 {
                return Err(IdentityError::LastAdmin { name: name.into() });
            }
            UserView::from(current)
        };
        self.persist(IdentityKind::User, name, None).await?;
        self.end_sessions(self.sessions_of(name)).await?;
        let mut ids = self.write();
        ids.users.remove(name);
        ids.sessions.retain(|_, s| s.user != name);
        Ok(view)
    }

    // -- API tokens --

    /// Every API token, without secrets.
    pub fn tokens(&self) -> Vec<TokenView> {
        self.read().tokens.values().map(TokenView::from).collect()
    }

    /// Issues an API token; the returned bearer string is its only copy.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(TokenView, String), IdentityError> {
        if !valid_name(name) {
            return Err(IdentityError::InvalidName { name: name.into() });
        }
        let _one = self.changes.lock().await;
        if self.read().tokens.values().any(|t| t.name == name) {
            return Err(IdentityError::TokenExists { name: name.into() });
        }
        let minted = secret::mint(TokenKind::Api);
        let record = TokenRecord {
            id: minted.id.clone(),
            name: name.into(),
            role,
            digest: minted.digest,
            created_at_ms: now_ms(),
            created_by: created_by.into(),
        };
        self.persist(IdentityKind::Token, &record.id, Some(encode(&record)?))
            .await?;
        let view = TokenView::from(&record);
        self.write().tokens.insert(record.id.clone(), record);
        Ok((view, minted.bearer))
    }

    /// Revokes an API token: it authenticates nothing from now on.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenView, IdentityError> {
        let _one = self.changes.lock().await;
        let view = self
            .read()
            .tokens
            .get(id)
            .map(TokenView::from)
            .ok_or_else(|| IdentityError::UnknownToken { id: id.into() })?;
        self.persist(IdentityKind::Token, id, None).await?;
        self.write().tokens.remove(id);
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip() -> Option<IpAddr> {
        "127.0.0.1".parse().ok()
    }

    async fn with_admin() -> Auth {
        let auth = Auth::new();
        assert_eq!(
            auth.bootstrap(Some("admin-password")).await.unwrap(),
            Bootstrap::Configured
        );
        auth
    }

    #[tokio::test]
    async fn a_login_gives_a_session_token_that_stands_for_the_user() {
        let auth = with_admin().await;
        let s = auth.login("admin", "admin-password", ip()).await.unwrap();
        assert_eq!(s.role, Role::Admin);
        let p = auth.verify_bearer(&s.token).unwrap();
        assert_eq!(
            p,
            Principal {
                user: "admin".into(),
                role: Role::Admin
            }
        );
        assert!(auth.logout(&s.token).await);
        assert_eq!(auth.verify_bearer(&s.token), Err(AuthError::Unauthorized));
        assert!(!auth.logout(&s.token).await);
    }

    #[tokio::test]
    async fn wrong_passwords_and_unknown_users_fail_alike() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.login("admin", "wrong-password", ip()).await,
            Err(LoginError::BadCredentials)
        ));
        assert!(matches!(
            auth.login("nobody", "admin-password", ip()).await,
            Err(LoginError::BadCredentials)
        ));
    }

    #[tokio::test]
    async fn bootstrap_happens_once_and_generates_a_password_when_none_is_given() {
        let auth = Auth::new();
        let Bootstrap::Generated(pw) = auth.bootstrap(None).await.unwrap() else {
            panic!("expected a generated password")
        };
        assert_eq!(
            auth.bootstrap(Some("another-one")).await.unwrap(),
            Bootstrap::Existing
        );
        auth.login("admin", &pw, ip()).await.unwrap();
        assert!(auth.login("admin", "another-one", ip()).await.is_err());
    }

    #[tokio::test]
    async fn an_expired_session_is_refused() {
        let auth = Auth::with_config(&AuthConfig {
            session_lifetime: Duration::from_secs(1),
            ..AuthConfig::default()
        });
        auth.bootstrap(Some("admin-password")).await.unwrap();
        let s = auth.login("admin", "admin-password", ip()).await.unwrap();
        assert!(auth.check_bearer(&s.token).is_ok());
        // Age the session rather than wait for it.
        for sess in auth.write().sessions.values_mut() {
            sess.expires_at_ms = now_ms() - 1;
        }
        assert_eq!(auth.check_bearer(&s.token), Err(Rejection::Expired));
    }

    #[tokio::test]
    async fn a_tampered_token_is_refused() {
        let auth = with_admin().await;
        let s = auth.login("admin", "admin-password", ip()).await.unwrap();
        let mut bad = s.token.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(auth.check_bearer(&bad), Err(Rejection::Unknown));
        assert_eq!(auth.check_bearer("Bearer x"), Err(Rejection::Malformed));
    }

    #[tokio::test]
    async fn the_last_admin_can_be_neither_deleted_nor_demoted() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.delete_user("admin").await,
            Err(IdentityError::LastAdmin { .. })
        ));
        assert!(matches!(
            auth.update_user("admin", Some(Role::Operator), None).await,
            Err(IdentityError::LastAdmin { .. })
        ));
        auth.create_user("second", Role::Admin, "second-password")
            .await
            .unwrap();
        auth.update_user("admin", Some(Role::Viewer), None)
            .await
            .unwrap();
        assert!(matches!(
            auth.delete_user("second").await,
            Err(IdentityError::LastAdmin { .. })
        ));
    }

    #[tokio::test]
    async fn role_changes_apply_to_live_sessions_and_deletion_ends_them() {
        let auth = with_admin().await;
        auth.create_user("op1", Role::Operator, "op1-password")
            .await
            .unwrap();
        let s = auth.login("op1", "op1-password", ip()).await.unwrap();
        auth.update_user("op1", Some(Role::Viewer), None)
            .await
            .unwrap();
        assert_eq!(auth.verify_bearer(&s.token).unwrap().role, Role::Viewer);
        auth.delete_user("op1").await.unwrap();
        assert!(auth.verify_bearer(&s.token).is_err());
    }

    #[tokio::test]
    async fn weak_passwords_and_odd_names_are_refused() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.create_user("x", Role::Viewer, "short").await,
            Err(IdentityError::WeakPassword)
        ));
        assert!(matches!(
            auth.create_user("bad name", Role::Viewer, "long-enough")
                .await,
            Err(IdentityError::InvalidName { .. })
        ));
        assert!(matches!(
            auth.create_user("admin", Role::Viewer, "long-enough").await,
            Err(IdentityError::UserExists { .. })
        ));
    }

    #[tokio::test]
    async fn api_tokens_authenticate_until_revoked_and_are_listed_without_secrets() {
        let auth = with_admin().await;
        let (view, bearer) = auth
            .create_token("scada-bridge", Role::Viewer, "admin")
            .await
            .unwrap();
        let p = auth.verify_bearer(&bearer).unwrap();
        assert_eq!(
            p,
            Principal {
                user: "token:scada-bridge".into(),
                role: Role::Viewer
            }
        );
        let listed = serde_json::to_string(&auth.tokens()).unwrap();
        assert!(!listed.contains(&bearer[20..]), "{listed}");
        assert!(matches!(
            auth.create_token("scada-bridge", Role::Viewer, "admin")
                .await,
            Err(IdentityError::TokenExists { .. })
        ));
        auth.revoke_token(&view.id).await.unwrap();
        assert!(auth.verify_bearer(&bearer).is_err());
        assert!(matches!(
            auth.revoke_token(&view.id).await,
            Err(IdentityError::UnknownToken { .. })
        ));
    }

    #[tokio::test]
    async fn failed_logins_are_limited_and_counted() {
        let auth = Auth::with_config(&AuthConfig {
            login_failures_per_user: 2,
            ..AuthConfig::default()
        });
        auth.bootstrap(Some("admin-password")).await.unwrap();
        for _ in 0..2 {
            assert!(matches!(
                auth.login("admin", "nope-nope", ip()).await,
                Err(LoginError::BadCredentials)
            ));
        }
        // Even the right password is refused while the name is locked.
        assert!(matches!(
            auth.login("admin", "admin-password", ip()).await,
            Err(LoginError::Limited(_))
        ));
        let m = auth.metrics();
        assert_eq!(m.logins.with_label_values(&["bad_credentials"]).get(), 2);
        assert_eq!(m.logins.with_label_values(&["rate_limited"]).get(), 1);
    }

    /// One store shared by several nodes' `Auth`s, as etcd is in a cluster (changes reach the
    /// other nodes when the test applies them, as the watch would).
    #[derive(Clone, Debug, Default)]
    struct Shared(Arc<std::sync::Mutex<Records>>);

    /// (kind name, key) → JSON.
    type Records = BTreeMap<(&'static str, String), Vec<u8>>;

    impl Shared {
        fn records(&self) -> Vec<IdentityRecord> {
            let map = self.0.lock().unwrap();
            map.iter()
                .map(|((k, key), v)| (IdentityKind::from_name(k).unwrap(), key.clone(), v.clone()))
                .collect()
        }
    }

    impl IdentityPersistence for Shared {
        fn load(&self, kind: IdentityKind) -> BoxFuture<'_, Result<StateRecords, StoreError>> {
            let map = self.0.lock().unwrap();
            let out = (map.iter())
                .filter(|((k, _), _)| *k == kind.name())
                .map(|((_, key), v)| (key.clone(), v.clone()))
                .collect();
            Box::pin(async move { Ok(out) })
        }
        fn put(
            &self,
            kind: IdentityKind,
            key: String,
            value: Option<Vec<u8>>,
        ) -> BoxFuture<'_, Result<(), StoreError>> {
            let mut map = self.0.lock().unwrap();
            match value {
                Some(v) => map.insert((kind.name(), key), v),
                None => map.remove(&(kind.name(), key)),
            };
            Box::pin(async { Ok(()) })
        }
        fn create(
            &self,
            kind: IdentityKind,
            key: String,
            value: Vec<u8>,
        ) -> BoxFuture<'_, Result<bool, StoreError>> {
            let mut map = self.0.lock().unwrap();
            let free = !map.contains_key(&(kind.name(), key.clone()));
            if free {
                map.insert((kind.name(), key), value);
            }
            Box::pin(async move { Ok(free) })
        }
        fn put_session(
            &self,
            id: String,
            record: Option<(Vec<u8>, Duration)>,
        ) -> BoxFuture<'_, Result<(), StoreError>> {
            self.put(IdentityKind::Session, id, record.map(|(v, _)| v))
        }
    }

    #[tokio::test]
    async fn nodes_sharing_a_store_accept_each_others_sessions_and_changes() {
        let shared = Shared::default();
        let a = Auth::open(&AuthConfig::default(), shared.clone())
            .await
            .unwrap();
        let b = Auth::open(&AuthConfig::default(), shared.clone())
            .await
            .unwrap();
        assert_eq!(
            a.bootstrap(Some("admin-password")).await.unwrap(),
            Bootstrap::Configured
        );
        // B has not heard of A's admin yet: its own bootstrap loses the create, and stands back.
        assert_eq!(
            b.bootstrap(Some("other-password")).await.unwrap(),
            Bootstrap::Existing
        );
        a.create_user("op1", Role::Operator, "op1-password")
            .await
            .unwrap();
        let s = a.login("op1", "op1-password", ip()).await.unwrap();
        assert!(b.check_bearer(&s.token).is_err());
        b.reload(shared.records());
        assert_eq!(b.verify_bearer(&s.token).unwrap().user, "op1");
        assert!(b.login("admin", "admin-password", ip()).await.is_ok());
        // A demotes op1: B applies the change, the session's role follows.
        a.update_user("op1", Some(Role::Viewer), None)
            .await
            .unwrap();
        let key = ("user", "op1".to_owned());
        let record = shared.0.lock().unwrap().get(&key).cloned();
        b.apply(IdentityKind::User, "op1", record.as_deref());
        assert_eq!(b.verify_bearer(&s.token).unwrap().role, Role::Viewer);
        // A logs op1 out: the session is gone from the store, and from B once applied.
        let id = secret::parse(&s.token).unwrap().1.to_owned();
        assert!(a.logout(&s.token).await);
        assert!(!shared
            .0
            .lock()
            .unwrap()
            .contains_key(&("session", id.clone())));
        b.apply(IdentityKind::Session, &id, None);
        assert!(b.check_bearer(&s.token).is_err());
        // A deletes a user: on B their sessions end with them.
        let s2 = a.login("op1", "op1-password", ip()).await.unwrap();
        b.reload(shared.records());
        assert!(b.check_bearer(&s2.token).is_ok());
        a.delete_user("op1").await.unwrap();
        b.apply(IdentityKind::User, "op1", None);
        assert!(b.check_bearer(&s2.token).is_err());
        assert!(b.user("op1").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_and_tokens_survive_reopening_the_store() {
        let dir = crate::store::embedded::tests::dir("identities");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::embedded::EmbeddedStore::open(&dir).unwrap());
        let ids = IdentityStore::new(store, tokio::runtime::Handle::current());
        let bearer = {
            let auth = Auth::open(&AuthConfig::default(), ids.clone())
                .await
                .unwrap();
            auth.bootstrap(Some("admin-password")).await.unwrap();
            auth.create_user("op1", Role::Operator, "op1-password")
                .await
                .unwrap();
            auth.create_user("gone", Role::Viewer, "gone-password")
                .await
                .unwrap();
            auth.delete_user("gone").await.unwrap();
            auth.create_token("bridge", Role::Viewer, "admin")
                .await
                .unwrap()
                .1
        };
        let auth = Auth::open(&AuthConfig::default(), ids).await.unwrap();
        assert_eq!(
            auth.bootstrap(Some("other-password")).await.unwrap(),
            Bootstrap::Existing
        );
        let names: Vec<String> = auth.users().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["admin", "op1"]);
        auth.login("op1", "op1-password", ip()).await.unwrap();
        assert_eq!(auth.verify_bearer(&bearer).unwrap().role, Role::Viewer);
    }
}
