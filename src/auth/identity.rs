//! Users, API tokens and login sessions: who may present which bearer token, and as what role.
//!
//! Where they persist is an [`IdentityPersistence`]:
//! - a single node: its store (state kinds `auth_user` and `auth_token`, [`IdentityStore`]),
//!   or memory without one. Sessions live in memory only: a restart logs everyone out, which
//!   costs a login and keeps no bearer secret on disk.
//! - a cluster node: etcd, shared by every node (`cluster::identity`), sessions included (the
//!   digest of their secret, with a lease of their lifetime, and their last use written back
//!   now and then: see [`super::session`]), so that a token issued by one node is accepted by
//!   all. Each node keeps its in-memory copy current from a watch on the keys
//!   ([`Auth::reload`], [`Auth::apply`]); an admin's unlock of login throttling is announced
//!   the same way, briefly.
//!
//! A change is written to the store before it takes effect in memory, one change at a time
//! per node, so that the two never disagree; a new user is created only if its name is free in
//! the store (two nodes cannot both create the first admin).
//!
//! A login is throttled ([`super::throttle`]) before any password is checked. A successful one
//! gives the browser a device token (kept as a digest with the user, the last
//! `MAX_DEVICES_PER_USER` browsers): presented at a later login, it makes that browser its own
//! origin for throttling, which is how a user behind a guessing address still gets in.

use super::password::{self, PasswordError, MAX_PASSWORD_BYTES};
use super::secret::{self, TokenKind};
use super::session::{
    clean_user_agent, LiveSession, SessionRecord, SessionState, SessionView, Timeouts,
};
use super::throttle::{
    Kind as ThrottleKind, LoginThrottle, ThrottleConfig, ThrottleView, Throttled,
};
use super::{AuthConfig, AuthError, Principal, Role, Scope};
use crate::store::{StateRecords, Store, StoreError};
use cistern_schemas::Timestamp;
use dashmap::DashMap;
use futures::future::BoxFuture;
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const USER_KIND: &str = "auth_user";
const TOKEN_KIND: &str = "auth_token";
const SESSION_KIND: &str = "auth_session";
const UNLOCK_KIND: &str = "auth_unlock";
const GATEWAY_KIND: &str = "auth_gateway";

mod gateways;
pub use gateways::{GatewayError, GatewayRecord, GatewayWrite};
/// The first admin's name.
pub const FIRST_ADMIN: &str = "admin";
/// Most live sessions of one user; a new login beyond it ends the oldest.
const MAX_SESSIONS_PER_USER: usize = 64;
/// Most browsers kept as known per user; a new one beyond it replaces the oldest.
const MAX_DEVICES_PER_USER: usize = 8;
/// How long an admin's unlock is announced to the other nodes of a cluster.
const UNLOCK_ANNOUNCED_FOR: Duration = Duration::from_secs(60);

/// Why an identity change or lookup failed. Messages name the user or token (they go to an
/// admin, or to the signed-in user about themself, never to an anonymous caller).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid name {name:?}: 1 to 64 characters of letters, digits, '.', '_', '-', '@'")]
    InvalidName { name: String },
    /// The password policy refused a new password ([`super::password`]).
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A change of one's own password with the wrong current one.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Too many wrong current passwords: wait.
    #[error("too many failed attempts; try again in {}", humantime::format_duration(round_up(.0.retry_after)))]
    Throttled(Throttled),
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
    #[error("no session {id}")]
    UnknownSession { id: String },
    /// An API token's expiry in the past or beyond `[auth] token_max_lifetime`.
    #[error("expires_at_ms {reason}")]
    InvalidExpiry { reason: String },
    #[error(transparent)]
    Hash(#[from] secret::HashError),
    #[error("cannot persist identities: {0}")]
    Store(#[from] StoreError),
}

/// Whole seconds, rounded up (what `Retry-After` says).
pub fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
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

/// A browser its user signed in from: the digest of its device token.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeviceRecord {
    id: String,
    digest: String,
    issued_at_ms: i64,
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
    /// The browsers the user signed in from (newest last); a password change forgets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    devices: Vec<DeviceRecord>,
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

/// What a change to a user did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserChange {
    pub user: UserView,
    /// The user's sessions it ended (a new password or role ends them).
    pub sessions_ended: usize,
}

/// An API token as kept (and stored): a digest of its secret, never the secret. Tokens issued
/// before scopes and expiry read with neither: all their role allows, until revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    name: String,
    role: Role,
    digest: String,
    created_at_ms: i64,
    created_by: String,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    expires_at_ms: Option<i64>,
}

impl TokenRecord {
    fn scope(&self) -> Scope {
        self.scope.unwrap_or(Scope::Admin)
    }
}

/// An API token as listed (no secret, no digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// What it may do within its role.
    pub scope: Scope,
    pub created_at_ms: i64,
    pub created_by: String,
    /// None: a token issued before tokens expired (until revoked).
    pub expires_at_ms: Option<i64>,
    pub expired: bool,
}

impl TokenView {
    fn of(t: &TokenRecord, now: i64) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            scope: t.scope(),
            created_at_ms: t.created_at_ms,
            created_by: t.created_by.clone(),
            expires_at_ms: t.expires_at_ms,
            expired: t.expires_at_ms.is_some_and(|e| e <= now),
        }
    }

    /// The name a token acts under (in principals and the audit log).
    pub fn principal_name(&self) -> String {
        token_principal(&self.name)
    }
}

fn token_principal(name: &str) -> String {
    format!("token:{name}")
}

/// A successful login.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    pub token: String,
    pub user: String,
    pub role: Role,
    /// The session's absolute end.
    pub expires_at_ms: i64,
    /// Unused this long, the session ends (ms).
    pub idle_timeout_ms: u64,
    /// The user's chosen console language (none: never chose).
    pub language: Option<Language>,
    /// A device token for this browser, to present at its next logins (none: the one it
    /// presented stays valid).
    pub device: Option<String>,
}

/// Where a login comes from.
#[derive(Clone, Default)]
pub struct LoginFrom {
    /// The client address (the TCP peer).
    pub address: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The device token the browser was given at an earlier login.
    pub device: Option<String>,
}

impl LoginFrom {
    /// From `address`, nothing else known.
    pub fn address(address: Option<IpAddr>) -> Self {
        Self {
            address,
            ..Self::default()
        }
    }
}

// Never print the device token.
impl std::fmt::Debug for LoginFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFrom")
            .field("address", &self.address)
            .field("user_agent", &self.user_agent)
            .field("device", &self.device.as_ref().map(|_| "<presented>"))
            .finish()
    }
}

/// Why a login failed (deliberately without saying whether the user exists).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong name or password; `starts_waiting` when this failure made a throttling key wait
    /// for the first time (for the audit log; the caller hears only 401).
    #[error("authentication required")]
    BadCredentials {
        starts_waiting: Option<(ThrottleKind, Duration)>,
    },
    #[error("too many failed logins; try again in {}", humantime::format_duration(round_up(.0.retry_after)))]
    Throttled(Throttled),
    #[error("login failed: {0}")]
    Internal(String),
}

/// Why a bearer token was refused (for the metrics and, once its whole secret matched, the
/// caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not shaped like any token of ours.
    Malformed,
    /// Unknown, revoked, or its secret is wrong.
    Unknown,
    /// A session unused for longer than the idle timeout.
    Idle,
    /// A session past its absolute lifetime.
    Expired,
    /// An API token past its expiry.
    TokenExpired,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Unknown => "unknown",
            Rejection::Idle => "idle",
            Rejection::Expired => "expired",
            Rejection::TokenExpired => "token_expired",
        }
    }
}

/// Counters of logins, throttling, sessions and refused requests.
#[derive(Clone, Debug)]
pub struct AuthMetrics {
    /// `cistern_auth_logins_total{result="ok|bad_credentials|throttled|error"}`
    pub logins: IntCounterVec,
    /// `cistern_auth_rejected_total{reason="missing|malformed|unknown|idle|expired|token_expired|forbidden|out_of_scope"}`
    pub rejected: IntCounterVec,
    /// `cistern_auth_login_throttled_total{key="pair|address|user|full"}`: attempts refused
    /// (and wrong current passwords' retries) while a key waits.
    pub throttled: IntCounterVec,
    /// `cistern_auth_login_unlocks_total`: throttling keys an admin cleared.
    pub unlocks: IntCounter,
    /// `cistern_auth_sessions_ended_total{reason="logout|ended_by_admin|ended_by_user|password_change|role_change|user_deleted|evicted|idle|expired"}`
    pub sessions_ended: IntCounterVec,
}

impl Default for AuthMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthMetrics {
    #[allow(clippy::expect_used)] // constant, valid metric definitions
    pub fn new() -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
        };
        Self {
            logins: vec(
                "cistern_auth_logins_total",
                "Login attempts by result",
                "result",
            ),
            rejected: vec(
                "cistern_auth_rejected_total",
                "Requests refused by authentication or authorisation, by reason",
                "reason",
            ),
            throttled: vec(
                "cistern_auth_login_throttled_total",
                "Login attempts refused while a throttling key waits, by key",
                "key",
            ),
            unlocks: IntCounter::new(
                "cistern_auth_login_unlocks_total",
                "Login throttling keys cleared by an admin",
            )
            .expect("valid metric"),
            sessions_ended: vec(
                "cistern_auth_sessions_ended_total",
                "Login sessions ended, by reason",
                "reason",
            ),
        }
    }

    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.logins.clone()))?;
        registry.register(Box::new(self.rejected.clone()))?;
        registry.register(Box::new(self.throttled.clone()))?;
        registry.register(Box::new(self.unlocks.clone()))?;
        registry.register(Box::new(self.sessions_ended.clone()))
    }

    fn ended(&self, reason: &str, n: usize) {
        if n > 0 {
            self.sessions_ended
                .with_label_values(&[reason])
                .inc_by(n as u64);
        }
    }
}

/// A kind of identity record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    User,
    Token,
    /// A login session (digest of its secret, user, times, client): persisted only where the
    /// nodes of a cluster share them; a single node keeps them in memory.
    Session,
    /// An admin's unlock of login throttling, announced to a cluster's nodes for a minute
    /// (never loaded: it acts when it arrives).
    Unlock,
    /// An enrolled gateway ([`GatewayRecord`]).
    Gateway,
}

impl IdentityKind {
    /// The kinds that persist (and are loaded at start).
    pub const ALL: [IdentityKind; 4] = [Self::User, Self::Token, Self::Session, Self::Gateway];

    /// The state kind in a node's store.
    pub fn store_kind(self) -> &'static str {
        match self {
            Self::User => USER_KIND,
            Self::Token => TOKEN_KIND,
            Self::Session => SESSION_KIND,
            Self::Unlock => UNLOCK_KIND,
            Self::Gateway => GATEWAY_KIND,
        }
    }

    /// The kind's segment in a key path (`user`, `token`, `session`, `unlock`).
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Token => "token",
            Self::Session => "session",
            Self::Unlock => "unlock",
            Self::Gateway => "gateway",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::User,
            Self::Token,
            Self::Session,
            Self::Unlock,
            Self::Gateway,
        ]
        .into_iter()
        .find(|k| k.name() == name)
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
    /// Whether sessions are kept here (shared by a cluster's nodes). By default they live in
    /// memory only, and the session methods below do nothing.
    fn shares_sessions(&self) -> bool {
        false
    }
    /// Keeps a login session for `ttl` (its lifetime), or ends it (`None`).
    fn put_session(
        &self,
        _id: String,
        _record: Option<(Vec<u8>, Duration)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    /// Rewrites a live session's record (its last use) without extending its lifetime; a
    /// session ended meanwhile stays ended.
    fn touch_session(
        &self,
        _id: String,
        _record: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    /// Tells the other nodes something for `ttl` (an [`IdentityKind::Unlock`]); they hear it
    /// through [`Auth::apply`]. A single node has no one to tell.
    fn announce(
        &self,
        _kind: IdentityKind,
        _key: String,
        _value: Vec<u8>,
        _ttl: Duration,
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

/// An admin's unlock, as announced to the other nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UnlockRecord {
    user: Option<String>,
    address: Option<IpAddr>,
}

#[derive(Debug, Default)]
struct Identities {
    users: BTreeMap<String, UserRecord>,
    /// API tokens by id.
    tokens: BTreeMap<String, TokenRecord>,
    /// Sessions by id.
    sessions: HashMap<String, LiveSession>,
    /// Enrolled gateways by name.
    gateways: BTreeMap<String, GatewayRecord>,
}

impl Identities {
    fn apply(&mut self, kind: IdentityKind, key: &str, value: Option<&[u8]>, now: i64) {
        match (kind, value) {
            (IdentityKind::User, Some(b)) => {
                if let Some(u) = decode::<UserRecord>(kind, key, b) {
                    self.users.insert(u.name.clone(), u);
                }
            }
            (IdentityKind::User, None) => {
                self.users.remove(key);
                self.sessions.retain(|_, s| s.record.user != key);
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
                    if s.expires_at_ms <= now {
                        return;
                    }
                    match self.sessions.get_mut(key) {
                        Some(live) => live.merge(s),
                        None => {
                            self.sessions
                                .insert(key.to_owned(), LiveSession::new(s, now));
                        }
                    }
                }
            }
            (IdentityKind::Session, None) => {
                self.sessions.remove(key);
            }
            (IdentityKind::Gateway, Some(b)) => {
                if let Some(g) = decode::<GatewayRecord>(kind, key, b) {
                    self.gateways.insert(g.id.clone(), g);
                }
            }
            (IdentityKind::Gateway, None) => {
                self.gateways.remove(key);
            }
            // Announcements act in `Auth::apply`; nothing is kept.
            (IdentityKind::Unlock, _) => {}
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
    throttle: LoginThrottle,
    timeouts: Timeouts,
    password_min_chars: usize,
    token_lifetime: Duration,
    token_max_lifetime: Duration,
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
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

/// Whether `presented` is the password of `hash` (none: no such user, which costs the same
/// time), on the blocking pool.
async fn verify_off_thread(presented: &str, hash: Option<String>) -> Result<bool, String> {
    let presented = presented.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(h) if presented.len() <= MAX_PASSWORD_BYTES => secret::verify_password(&presented, &h),
        _ => {
            secret::verify_nobody(&presented);
            false
        }
    })
    .await
    .map_err(|e| e.to_string())
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
        let lifetime = config.session_lifetime.max(Duration::from_secs(1));
        Self {
            ids: RwLock::new(Identities::default()),
            fixed: DashMap::new(),
            store: None,
            changes: tokio::sync::Mutex::new(()),
            throttle: LoginThrottle::new(ThrottleConfig::from(config)),
            timeouts: Timeouts {
                idle: config
                    .idle_timeout
                    .clamp(Duration::from_millis(100), lifetime),
                lifetime,
            },
            password_min_chars: config
                .password_min_chars
                .max(super::config::LEAST_PASSWORD_MIN_CHARS),
            token_lifetime: config.token_lifetime,
            token_max_lifetime: config.token_max_lifetime.max(config.token_lifetime),
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
            gateways = ids.gateways.len(),
            "identities loaded"
        );
        drop(ids);
        Ok(auth)
    }

    /// Replaces every user, API token and session by `records` (what the shared store holds:
    /// at start, and when a cluster node's watch on it starts again). The last use this node
    /// knows of a session it keeps stands when it is later than the stored one.
    pub fn reload(&self, records: Vec<IdentityRecord>) {
        let now = now_ms();
        let mut fresh = Identities::default();
        let mut ids = self.write();
        for (kind, key, bytes) in records {
            if kind == IdentityKind::Session {
                if let Some(old) = ids.sessions.remove(&key) {
                    fresh.sessions.insert(key.clone(), old);
                }
            }
            fresh.apply(kind, &key, Some(&bytes), now);
        }
        // Sessions no longer stored were ended elsewhere: gone with the old copy.
        *ids = fresh;
    }

    /// One change made elsewhere (another node of the cluster, through the shared store):
    /// `value` is the record's JSON, `None` when it was deleted. Takes effect at once: a
    /// deleted user's or token's bearer, or an ended session, authenticates nothing from now on;
    /// an announced unlock clears this node's throttling keys.
    pub fn apply(&self, kind: IdentityKind, key: &str, value: Option<&[u8]>) {
        if kind == IdentityKind::Unlock {
            if let Some(u) = value.and_then(|b| decode::<UnlockRecord>(kind, key, b)) {
                self.throttle.unlock(u.user.as_deref(), u.address);
            }
            return;
        }
        self.write().apply(kind, key, value, now_ms());
    }

    pub fn metrics(&self) -> &AuthMetrics {
        &self.metrics
    }

    /// A session unused this long ends.
    pub fn idle_timeout(&self) -> Duration {
        self.timeouts.idle
    }

    /// The shortest password the policy accepts.
    pub fn password_min_chars(&self) -> usize {
        self.password_min_chars
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
    async fn end_stored_sessions(&self, ids: &[String]) -> Result<(), IdentityError> {
        if let Some(s) = &self.store {
            for id in ids {
                s.put_session(id.clone(), None).await?;
            }
        }
        Ok(())
    }

    /// Ends `ids` in the store, then here; counted under `reason`. (In a cluster the watch may
    /// have applied the store's delete here already: what was ended is what was in `ids`.)
    async fn end_sessions(&self, ids: Vec<String>, reason: &str) -> Result<usize, IdentityError> {
        self.end_stored_sessions(&ids).await?;
        let mut all = self.write();
        for id in &ids {
            all.sessions.remove(id);
        }
        drop(all);
        self.metrics.ended(reason, ids.len());
        Ok(ids.len())
    }

    fn sessions_of(&self, user: &str) -> Vec<String> {
        (self.read().sessions.iter())
            .filter(|(_, s)| s.record.user == user)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The principal a bearer token stands for, or why not (see [`AuthError`]).
    pub fn verify_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        self.check_bearer(token).map_err(|r| self.refusal(r))
    }

    /// What a caller hears for a rejection.
    pub fn refusal(&self, r: Rejection) -> AuthError {
        match r {
            Rejection::Malformed | Rejection::Unknown => AuthError::Unauthorized,
            Rejection::Idle => AuthError::SessionIdle {
                idle: self.timeouts.idle,
            },
            Rejection::Expired => AuthError::SessionExpired,
            Rejection::TokenExpired => AuthError::TokenExpired,
        }
    }

    /// As [`Auth::verify_bearer`], saying why (for the metrics). An ended session or an
    /// expired token is told apart from an unknown one only once its whole secret matched.
    pub fn check_bearer(&self, token: &str) -> Result<Principal, Rejection> {
        if !self.fixed.is_empty() {
            if let Some(p) = self.fixed.get(&secret::digest(token)) {
                return Ok(p.value().clone());
            }
        }
        let (kind, id, presented) = secret::parse(token).ok_or(Rejection::Malformed)?;
        let ids = self.read();
        let now = now_ms();
        match kind {
            TokenKind::Session => {
                let s = ids.sessions.get(id).ok_or(Rejection::Unknown)?;
                if !secret::secret_matches(presented, &s.record.digest) {
                    return Err(Rejection::Unknown);
                }
                match s.state(now, self.timeouts) {
                    SessionState::Live => {}
                    SessionState::Idle => return Err(Rejection::Idle),
                    SessionState::Expired => return Err(Rejection::Expired),
                }
                let user = ids.users.get(&s.record.user).ok_or(Rejection::Unknown)?;
                Ok(Principal {
                    session: Some(id.to_owned()),
                    ..Principal::new(user.name.clone(), user.role)
                })
            }
            TokenKind::Api => {
                let t = ids.tokens.get(id).ok_or(Rejection::Unknown)?;
                if !secret::secret_matches(presented, &t.digest) {
                    return Err(Rejection::Unknown);
                }
                if t.expires_at_ms.is_some_and(|e| e <= now) {
                    return Err(Rejection::TokenExpired);
                }
                Ok(Principal {
                    scope: Some(t.scope()),
                    ..Principal::new(token_principal(&t.name), t.role)
                })
            }
            // A device token names a browser; it authenticates nothing.
            TokenKind::Device => Err(Rejection::Unknown),
        }
    }

    /// A use of session `id` by its user (a request that was not a background refresh): its
    /// idle timeout starts again. Where sessions are shared, the use is written back now and
    /// then (on the current runtime, not awaited).
    pub fn touch(self: &Arc<Self>, id: &str) {
        let share = {
            let ids = self.read();
            match ids.sessions.get(id) {
                Some(s) => {
                    let due = s.touch(now_ms(), self.timeouts);
                    (due && self.store.as_ref().is_some_and(|st| st.shares_sessions()))
                        .then(|| serde_json::to_vec(&s.snapshot()).ok())
                        .flatten()
                }
                None => None,
            }
        };
        if let Some(bytes) = share {
            let auth = self.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                if let Some(store) = &auth.store {
                    if let Err(error) = store.touch_session(id, bytes).await {
                        tracing::warn!(%error, "cannot share a session's last use; the other nodes may end it early");
                    }
                }
            });
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

    /// Checks a user's password and opens a session. Attempts are throttled (see
    /// [`super::throttle`]) before any password is checked.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        from: &LoginFrom,
    ) -> Result<Session, LoginError> {
        let result = self.login_inner(user, password, from).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(LoginError::BadCredentials { .. }) => "bad_credentials",
            Err(LoginError::Throttled(t)) => {
                self.metrics
                    .throttled
                    .with_label_values(&[t.by.label()])
                    .inc();
                "throttled"
            }
            Err(LoginError::Internal(_)) => "error",
        };
        self.metrics.logins.with_label_values(&[label]).inc();
        result
    }

    /// The id of the browser `device` names, if it is one `user` signed in from.
    fn known_device(&self, user: &str, device: Option<&str>) -> Option<String> {
        let (TokenKind::Device, id, presented) = secret::parse(device?)? else {
            return None;
        };
        let ids = self.read();
        let u = ids.users.get(user)?;
        u.devices
            .iter()
            .find(|d| d.id == id && secret::secret_matches(presented, &d.digest))
            .map(|d| d.id.clone())
    }

    /// Remembers a new browser of `user`: its device token (none when it cannot be kept).
    async fn remember_device(&self, user: &str) -> Option<String> {
        let minted = secret::mint(TokenKind::Device);
        let _one = self.changes.lock().await;
        let mut record = self.read().users.get(user).cloned()?;
        record.devices.push(DeviceRecord {
            id: minted.id,
            digest: minted.digest,
            issued_at_ms: now_ms(),
        });
        let excess = record.devices.len().saturating_sub(MAX_DEVICES_PER_USER);
        record.devices.drain(..excess);
        let bytes = encode(&record).ok()?;
        if let Err(error) = self.persist(IdentityKind::User, user, Some(bytes)).await {
            tracing::warn!(%user, %error, "cannot remember the browser of a login");
            return None;
        }
        self.write().users.insert(user.to_owned(), record);
        Some(minted.bearer)
    }

    async fn login_inner(
        &self,
        user: &str,
        password: &str,
        from: &LoginFrom,
    ) -> Result<Session, LoginError> {
        // Names are bounded so that the throttle's keys are too.
        let user: String = user.chars().take(128).collect();
        let device = self.known_device(&user, from.device.as_deref());
        let attempt = self
            .throttle
            .begin(&user, from.address, device.as_deref(), Instant::now())
            .map_err(LoginError::Throttled)?;
        let hash = self
            .read()
            .users
            .get(&user)
            .map(|u| u.password_hash.clone());
        let ok = verify_off_thread(password, hash)
            .await
            .map_err(LoginError::Internal)?;
        if !ok {
            // The attempt stays counted.
            return Err(LoginError::BadCredentials {
                starts_waiting: attempt.starts_waiting,
            });
        }
        self.throttle.succeeded(attempt);
        let device = match device {
            Some(_) => None,
            None => self.remember_device(&user).await,
        };
        let minted = secret::mint(TokenKind::Session);
        let now = now_ms();
        let expires_at_ms = now.saturating_add(self.timeouts.lifetime_ms());
        let (role, language) = self
            .read()
            .users
            .get(&user)
            .map(|u| (u.role, u.language))
            .ok_or(LoginError::BadCredentials {
                starts_waiting: None,
            })?;
        let record = SessionRecord {
            user: user.clone(),
            digest: minted.digest,
            created_at_ms: now,
            expires_at_ms,
            last_used_ms: now,
            address: from.address.map(|a| a.to_string()),
            user_agent: from.user_agent.as_deref().and_then(clean_user_agent),
        };
        if let Some(store) = &self.store {
            let bytes =
                serde_json::to_vec(&record).map_err(|e| LoginError::Internal(e.to_string()))?;
            store
                .put_session(minted.id.clone(), Some((bytes, self.timeouts.lifetime)))
                .await
                .map_err(|e| LoginError::Internal(format!("cannot keep the session: {e}")))?;
        }
        let evicted = {
            let mut ids = self.write();
            let (mut idle, mut expired) = (0, 0);
            ids.sessions
                .retain(|_, s| match s.state(now, self.timeouts) {
                    SessionState::Live => true,
                    SessionState::Idle => {
                        idle += 1;
                        false
                    }
                    SessionState::Expired => {
                        expired += 1;
                        false
                    }
                });
            self.metrics.ended("idle", idle);
            self.metrics.ended("expired", expired);
            let mut mine: Vec<(i64, String)> = ids
                .sessions
                .iter()
                .filter(|(_, s)| s.record.user == user)
                .map(|(id, s)| (s.last_used_ms(), id.clone()))
                .collect();
            let mut evicted = Vec::new();
            if mine.len() >= MAX_SESSIONS_PER_USER {
                mine.sort();
                for (_, id) in mine.iter().take(mine.len() + 1 - MAX_SESSIONS_PER_USER) {
                    ids.sessions.remove(id);
                    evicted.push(id.clone());
                }
            }
            ids.sessions
                .insert(minted.id, LiveSession::new(record, now));
            evicted
        };
        self.metrics.ended("evicted", evicted.len());
        if let Err(error) = self.end_stored_sessions(&evicted).await {
            tracing::warn!(%user, %error, "an ended session stays in the shared store until it expires");
        }
        Ok(Session {
            token: minted.bearer,
            user,
            role,
            expires_at_ms,
            idle_timeout_ms: u64::try_from(self.timeouts.idle_ms()).unwrap_or(u64::MAX),
            language,
            device,
        })
    }

    /// Ends the session `token` stands for; false when it is not a live session token.
    pub async fn logout(&self, token: &str) -> bool {
        let Some((TokenKind::Session, id, presented)) = secret::parse(token) else {
            return false;
        };
        let matches = (self.read().sessions.get(id))
            .is_some_and(|s| secret::secret_matches(presented, &s.record.digest));
        if !matches {
            return false;
        }
        if let Err(error) = self.end_stored_sessions(&[id.to_owned()]).await {
            // Ended here all the same; the other nodes drop it when it expires.
            tracing::warn!(%error, "cannot end the session in the shared store");
        }
        // (In a cluster the watch may have applied the store's delete here already.)
        self.write().sessions.remove(id);
        self.metrics.ended("logout", 1);
        true
    }

    // -- sessions --

    /// The live sessions (of `user` only, when given), the most recently used first; `current`
    /// is the caller's own.
    pub fn sessions(&self, user: Option<&str>, current: Option<&str>) -> Vec<SessionView> {
        let now = now_ms();
        let mut out: Vec<SessionView> = (self.read().sessions.iter())
            .filter(|(_, s)| user.is_none_or(|u| s.record.user == u))
            .filter(|(_, s)| s.state(now, self.timeouts) == SessionState::Live)
            .map(|(id, s)| s.view(id, self.timeouts, current))
            .collect();
        out.sort_by(|a, b| (b.last_used_ms, &a.id).cmp(&(a.last_used_ms, &b.id)));
        out
    }

    /// Ends session `id` — only if it is `owner`'s, when given (a user ending their own; else
    /// an admin). Unknown (or another's): [`IdentityError::UnknownSession`].
    pub async fn end_session(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<SessionView, IdentityError> {
        let view = (self.read().sessions.get(id))
            .filter(|s| owner.is_none_or(|o| s.record.user == o))
            .map(|s| s.view(id, self.timeouts, None))
            .ok_or_else(|| IdentityError::UnknownSession { id: id.into() })?;
        let reason = if owner.is_some() {
            "ended_by_user"
        } else {
            "ended_by_admin"
        };
        self.end_sessions(vec![id.to_owned()], reason).await?;
        Ok(view)
    }

    // -- login throttling --

    /// The throttling keys with failures not yet forgotten, on this node.
    /// A name that is no user's is not shown (it may be a password typed into the name
    /// field, as in the audit log), and its across-addresses key is left out: it slows no one.
    pub fn throttles(&self) -> Vec<ThrottleView> {
        let ids = self.read();
        (self.throttle.list(Instant::now()).into_iter())
            .filter_map(|mut v| {
                if v.user.as_ref().is_some_and(|u| !ids.users.contains_key(u)) {
                    if v.key == ThrottleKind::User {
                        return None;
                    }
                    v.user = None;
                    v.unknown_user = true;
                }
                Some(v)
            })
            .collect()
    }

    /// Clears throttling keys (see [`LoginThrottle::unlock`]) on this node, and announces it
    /// to the others of a cluster. How many were cleared here.
    pub async fn unlock(
        &self,
        user: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<usize, IdentityError> {
        let n = self.throttle.unlock(user, address);
        self.metrics.unlocks.inc_by(n as u64);
        if let Some(store) = &self.store {
            let record = encode(&UnlockRecord {
                user: user.map(str::to_owned),
                address,
            })?;
            let key = secret::mint(TokenKind::Device).id;
            store
                .announce(IdentityKind::Unlock, key, record, UNLOCK_ANNOUNCED_FOR)
                .await?;
        }
        Ok(n)
    }

    // -- users --

    pub fn users(&self) -> Vec<UserView> {
        self.read().users.values().map(UserView::from).collect()
    }

    pub fn user(&self, name: &str) -> Option<UserView> {
        self.read().users.get(name).map(UserView::from)
    }

    fn check_password(&self, name: &str, password: &str) -> Result<(), IdentityError> {
        Ok(password::check(name, password, self.password_min_chars)?)
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
        if self.read().users.contains_key(name) {
            return Err(IdentityError::UserExists { name: name.into() });
        }
        self.check_password(name, password)?;
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
            devices: Vec::new(),
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

    /// Changes a user's role and/or password. A new role or password ends the user's
    /// sessions, all of them but `keep` (the session that changed its own password, when the
    /// role stays); a new password also forgets the user's known browsers. The last admin
    /// cannot be demoted.
    pub async fn update_user(
        &self,
        name: &str,
        role: Option<Role>,
        password: Option<&str>,
        keep: Option<&str>,
    ) -> Result<UserChange, IdentityError> {
        let password_hash = match password {
            Some(p) => {
                self.check_password(name, p)?;
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
        let role_changed = role.is_some_and(|r| r != record.role);
        if let Some(r) = role {
            record.role = r;
        }
        if let Some(h) = password_hash.clone() {
            record.password_hash = h;
            record.devices.clear();
        }
        record.updated_at_ms = now_ms();
        self.persist(IdentityKind::User, name, Some(encode(&record)?))
            .await?;
        let ending: Vec<String> = if role_changed || password_hash.is_some() {
            (self.sessions_of(name).into_iter())
                .filter(|id| role_changed || keep != Some(id.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        // Ended in the store first: no other node keeps one of them past the change.
        self.end_stored_sessions(&ending).await?;
        let view = UserView::from(&record);
        {
            let mut ids = self.write();
            ids.users.insert(name.into(), record);
            for id in &ending {
                ids.sessions.remove(id);
            }
        }
        // (In a cluster the watch may have applied the store's deletes here already.)
        let sessions_ended = ending.len();
        let reason = if role_changed {
            "role_change"
        } else {
            "password_change"
        };
        self.metrics.ended(reason, sessions_ended);
        Ok(UserChange {
            user: view,
            sessions_ended,
        })
    }

    /// A user changes their own password: the current one is checked first (throttled like a
    /// login from `from`), then the new one set; their other sessions end, `keep` (the session
    /// making the change) stays.
    pub async fn change_own_password(
        &self,
        name: &str,
        current: &str,
        new: &str,
        from: &LoginFrom,
        keep: Option<&str>,
    ) -> Result<UserChange, IdentityError> {
        self.check_password(name, new)?;
        let device = self.known_device(name, from.device.as_deref());
        let attempt = self
            .throttle
            .begin(name, from.address, device.as_deref(), Instant::now())
            .inspect_err(|t| {
                self.metrics
                    .throttled
                    .with_label_values(&[t.by.label()])
                    .inc();
            })
            .map_err(IdentityError::Throttled)?;
        let hash = (self.read().users.get(name)).map(|u| u.password_hash.clone());
        let ok = verify_off_thread(current, hash).await.map_err(|e| {
            IdentityError::Store(StoreError::Unavailable(format!("hashing task failed: {e}")))
        })?;
        if !ok {
            return Err(IdentityError::WrongPassword);
        }
        self.throttle.succeeded(attempt);
        self.update_user(name, None, Some(new), keep).await
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
        let ending = self.sessions_of(name);
        self.end_stored_sessions(&ending).await?;
        let mut ids = self.write();
        ids.users.remove(name);
        ids.sessions.retain(|_, s| s.record.user != name);
        drop(ids);
        self.metrics.ended("user_deleted", ending.len());
        Ok(view)
    }

    // -- API tokens --

    /// Every API token, without secrets.
    pub fn tokens(&self) -> Vec<TokenView> {
        let now = now_ms();
        (self.read().tokens.values())
            .map(|t| TokenView::of(t, now))
            .collect()
    }

    /// Issues an API token of `role`, narrowed to `scope` (none: all its role allows), until
    /// `expires_at_ms` (none: `[auth] token_lifetime` from now; never beyond
    /// `token_max_lifetime`). The returned bearer string is its only copy.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        scope: Option<Scope>,
        expires_at_ms: Option<i64>,
        created_by: &str,
    ) -> Result<(TokenView, String), IdentityError> {
        if !valid_name(name) {
            return Err(IdentityError::InvalidName { name: name.into() });
        }
        let now = now_ms();
        let latest = now.saturating_add(millis(self.token_max_lifetime));
        let expires_at_ms = match expires_at_ms {
            None => now.saturating_add(millis(self.token_lifetime)),
            Some(e) if e <= now => {
                return Err(IdentityError::InvalidExpiry {
                    reason: "is not in the future".into(),
                })
            }
            Some(e) if e > latest => {
                return Err(IdentityError::InvalidExpiry {
                    reason: format!(
                        "is beyond the longest lifetime of a token ({})",
                        humantime::format_duration(self.token_max_lifetime)
                    ),
                })
            }
            Some(e) => e,
        };
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
            created_at_ms: now,
            created_by: created_by.into(),
            scope: Some(scope.unwrap_or_else(|| Scope::of_role(role))),
            expires_at_ms: Some(expires_at_ms),
        };
        self.persist(IdentityKind::Token, &record.id, Some(encode(&record)?))
            .await?;
        let view = TokenView::of(&record, now);
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
            .map(|t| TokenView::of(t, now_ms()))
            .ok_or_else(|| IdentityError::UnknownToken { id: id.into() })?;
        self.persist(IdentityKind::Token, id, None).await?;
        self.write().tokens.remove(id);
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip() -> LoginFrom {
        LoginFrom::address("127.0.0.1".parse().ok())
    }

    fn from(address: &str) -> LoginFrom {
        LoginFrom::address(address.parse().ok())
    }

    async fn with_admin() -> Auth {
        let auth = Auth::new();
        assert_eq!(
            auth.bootstrap(Some("admin-password")).await.unwrap(),
            Bootstrap::Configured
        );
        auth
    }

    fn session_id(token: &str) -> String {
        secret::parse(token).unwrap().1.to_owned()
    }

    /// Moves every session's login and last use `ms` into the past (rather than wait).
    fn age(auth: &Auth, ms: i64) {
        let now = now_ms();
        for s in auth.write().sessions.values_mut() {
            let mut record = s.snapshot();
            record.created_at_ms -= ms;
            record.last_used_ms -= ms;
            record.expires_at_ms -= ms;
            *s = LiveSession::new(record, now);
        }
    }

    #[tokio::test]
    async fn a_login_gives_a_session_token_that_stands_for_the_user() {
        let auth = with_admin().await;
        let s = auth.login("admin", "admin-password", &ip()).await.unwrap();
        assert_eq!(s.role, Role::Admin);
        assert_eq!(s.idle_timeout_ms, 30 * 60 * 1000);
        let p = auth.verify_bearer(&s.token).unwrap();
        assert_eq!(
            p,
            Principal {
                session: Some(session_id(&s.token)),
                ..Principal::new("admin", Role::Admin)
            }
        );
        assert!(auth.logout(&s.token).await);
        assert_eq!(auth.verify_bearer(&s.token), Err(AuthError::Unauthorized));
        assert!(!auth.logout(&s.token).await);
        assert_eq!(
            auth.metrics()
                .sessions_ended
                .with_label_values(&["logout"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn wrong_passwords_and_unknown_users_fail_alike() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.login("admin", "wrong-password", &ip()).await,
            Err(LoginError::BadCredentials { .. })
        ));
        assert!(matches!(
            auth.login("nobody", "admin-password", &ip()).await,
            Err(LoginError::BadCredentials { .. })
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
        auth.login("admin", &pw, &ip()).await.unwrap();
        assert!(auth.login("admin", "another-one", &ip()).await.is_err());
    }

    #[tokio::test]
    async fn a_session_ends_when_idle_and_at_its_absolute_end() {
        let auth = Auth::with_config(&AuthConfig {
            idle_timeout: Duration::from_secs(60),
            session_lifetime: Duration::from_secs(600),
            ..AuthConfig::default()
        });
        auth.bootstrap(Some("admin-password")).await.unwrap();
        let auth = Arc::new(auth);
        let s = auth.login("admin", "admin-password", &ip()).await.unwrap();
        let id = session_id(&s.token);
        age(&auth, 59_000);
        assert!(auth.check_bearer(&s.token).is_ok(), "59 s unused");
        // A use starts the idle timeout again.
        auth.touch(&id);
        age(&auth, 59_000);
        assert!(auth.check_bearer(&s.token).is_ok());
        age(&auth, 2_000);
        assert_eq!(auth.check_bearer(&s.token), Err(Rejection::Idle));
        assert_eq!(
            auth.verify_bearer(&s.token),
            Err(AuthError::SessionIdle {
                idle: Duration::from_secs(60)
            })
        );
        // Used all along, it still ends at its absolute end.
        let s = auth.login("admin", "admin-password", &ip()).await.unwrap();
        for _ in 0..11 {
            auth.touch(&session_id(&s.token));
            age(&auth, 59_000);
        }
        assert_eq!(auth.check_bearer(&s.token), Err(Rejection::Expired));
        assert!(auth.sessions(None, None).is_empty(), "neither is listed");
    }

    #[tokio::test]
    async fn a_tampered_token_is_refused() {
        let auth = with_admin().await;
        let s = auth.login("admin", "admin-password", &ip()).await.unwrap();
        let mut bad = s.token.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(auth.check_bearer(&bad), Err(Rejection::Unknown));
        assert_eq!(auth.check_bearer("Bearer x"), Err(Rejection::Malformed));
        // An ended session's whole token is not told apart from a wrong one either.
        age(&auth, 13 * 3600 * 1000);
        assert_eq!(auth.check_bearer(&bad), Err(Rejection::Unknown));
        // A device token is no credential.
        let device = s.device.unwrap();
        assert_eq!(auth.check_bearer(&device), Err(Rejection::Unknown));
    }

    #[tokio::test]
    async fn the_last_admin_can_be_neither_deleted_nor_demoted() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.delete_user("admin").await,
            Err(IdentityError::LastAdmin { .. })
        ));
        assert!(matches!(
            auth.update_user("admin", Some(Role::Operator), None, None)
                .await,
            Err(IdentityError::LastAdmin { .. })
        ));
        auth.create_user("second", Role::Admin, "second-password")
            .await
            .unwrap();
        auth.update_user("admin", Some(Role::Viewer), None, None)
            .await
            .unwrap();
        assert!(matches!(
            auth.delete_user("second").await,
            Err(IdentityError::LastAdmin { .. })
        ));
    }

    #[tokio::test]
    async fn a_new_role_or_password_ends_every_session_and_deletion_too() {
        let auth = with_admin().await;
        auth.create_user("op1", Role::Operator, "op1-password")
            .await
            .unwrap();
        let here = ip();
        let login = || auth.login("op1", "op1-password", &here);
        let (s1, s2) = (login().await.unwrap(), login().await.unwrap());
        // The same role again changes nothing.
        let same = auth
            .update_user("op1", Some(Role::Operator), None, None)
            .await
            .unwrap();
        assert_eq!(same.sessions_ended, 0);
        let change = auth
            .update_user(
                "op1",
                Some(Role::Viewer),
                None,
                Some(&session_id(&s1.token)),
            )
            .await
            .unwrap();
        assert_eq!(change.sessions_ended, 2, "a role change keeps none");
        assert!(auth.verify_bearer(&s1.token).is_err());
        assert!(auth.verify_bearer(&s2.token).is_err());
        let s3 = login().await.unwrap();
        assert_eq!(auth.verify_bearer(&s3.token).unwrap().role, Role::Viewer);
        let change = auth
            .update_user("op1", None, Some("op1-password-2"), None)
            .await
            .unwrap();
        assert_eq!(change.sessions_ended, 1);
        assert!(auth.verify_bearer(&s3.token).is_err());
        let s4 = auth.login("op1", "op1-password-2", &ip()).await.unwrap();
        auth.delete_user("op1").await.unwrap();
        assert!(auth.verify_bearer(&s4.token).is_err());
        let ended = &auth.metrics().sessions_ended;
        assert_eq!(ended.with_label_values(&["role_change"]).get(), 2);
        assert_eq!(ended.with_label_values(&["password_change"]).get(), 1);
        assert_eq!(ended.with_label_values(&["user_deleted"]).get(), 1);
    }

    #[tokio::test]
    async fn a_user_changing_their_own_password_keeps_this_session_and_ends_the_others() {
        let auth = Auth::with_config(&AuthConfig {
            login_free_failures: 2,
            ..AuthConfig::default()
        });
        auth.bootstrap(Some("admin-password")).await.unwrap();
        auth.create_user("op1", Role::Operator, "op1-password")
            .await
            .unwrap();
        let here = auth.login("op1", "op1-password", &ip()).await.unwrap();
        let there = auth
            .login("op1", "op1-password", &from("10.0.0.2"))
            .await
            .unwrap();
        let keep = session_id(&here.token);
        let change = |current: &'static str, new: &'static str| {
            let keep = keep.clone();
            let auth = &auth;
            async move {
                auth.change_own_password("op1", current, new, &ip(), Some(&keep))
                    .await
            }
        };
        assert!(matches!(
            change("op1-password", "op1").await,
            Err(IdentityError::Password(PasswordError::Length { .. }))
        ));
        assert!(matches!(
            change("wrong-password", "op1-password-2").await,
            Err(IdentityError::WrongPassword)
        ));
        assert!(matches!(
            change("wrong-password", "op1-password-2").await,
            Err(IdentityError::WrongPassword)
        ));
        // Guessing the current password through this door is throttled like a login.
        assert!(matches!(
            change("op1-password", "op1-password-2").await,
            Err(IdentityError::Throttled(_))
        ));
        assert_eq!(auth.unlock(Some("op1"), None).await.unwrap(), 2);
        let done = change("op1-password", "op1-password-2").await.unwrap();
        assert_eq!(done.sessions_ended, 1);
        assert!(
            auth.verify_bearer(&here.token).is_ok(),
            "this session stays"
        );
        assert!(auth.verify_bearer(&there.token).is_err());
        auth.login("op1", "op1-password-2", &ip()).await.unwrap();
    }

    #[tokio::test]
    async fn the_password_policy_and_odd_names_are_enforced() {
        let auth = with_admin().await;
        assert!(matches!(
            auth.create_user("x", Role::Viewer, "short").await,
            Err(IdentityError::Password(PasswordError::Length { min: 12 }))
        ));
        assert!(matches!(
            auth.create_user("operator-0001", Role::Viewer, "OPERATOR-0001")
                .await,
            Err(IdentityError::Password(PasswordError::IsName))
        ));
        assert!(matches!(
            auth.create_user("x", Role::Viewer, "password1234").await,
            Err(IdentityError::Password(PasswordError::Common))
        ));
        assert!(matches!(
            auth.create_user("bad name", Role::Viewer, "long-enough-1")
                .await,
            Err(IdentityError::InvalidName { .. })
        ));
        assert!(matches!(
            auth.create_user("admin", Role::Viewer, "long-enough-1")
                .await,
            Err(IdentityError::UserExists { .. })
        ));
        assert!(matches!(
            auth.update_user("admin", None, Some("admin"), None).await,
            Err(IdentityError::Password(_))
        ));
        // A site may ask for longer ones.
        let strict = Auth::with_config(&AuthConfig {
            password_min_chars: 16,
            ..AuthConfig::default()
        });
        assert!(strict.bootstrap(Some("fifteen-chars-x")).await.is_err());
    }

    #[tokio::test]
    async fn api_tokens_authenticate_within_their_scope_until_expired_or_revoked() {
        let auth = with_admin().await;
        let (view, bearer) = auth
            .create_token("scada-bridge", Role::Viewer, None, None, "admin")
            .await
            .unwrap();
        assert_eq!(view.scope, Scope::Read, "a viewer's token reads");
        let ninety_days = 90 * 86_400_000;
        let left = view.expires_at_ms.unwrap() - now_ms();
        assert!(
            (ninety_days - 5_000..=ninety_days).contains(&left),
            "{left}"
        );
        let p = auth.verify_bearer(&bearer).unwrap();
        assert_eq!(
            p,
            Principal {
                scope: Some(Scope::Read),
                ..Principal::new("token:scada-bridge", Role::Viewer)
            }
        );
        let listed = serde_json::to_string(&auth.tokens()).unwrap();
        assert!(!listed.contains(&bearer[20..]), "{listed}");
        assert!(matches!(
            auth.create_token("scada-bridge", Role::Viewer, None, None, "admin")
                .await,
            Err(IdentityError::TokenExists { .. })
        ));
        // An operator's token narrowed to reads: it reads, and acts on nothing.
        let (_, reader) = auth
            .create_token("reader", Role::Operator, Some(Scope::Read), None, "admin")
            .await
            .unwrap();
        let p = auth.verify_bearer(&reader).unwrap();
        assert_eq!(p.authorize(true, Role::Operator), Ok(()));
        assert_eq!(
            p.require(Role::Operator),
            Err(AuthError::OutOfScope { scope: Scope::Read })
        );
        // An admin's token that operates: alarm commands yes, users no.
        let (_, operate) = auth
            .create_token("ops", Role::Admin, Some(Scope::Operate), None, "admin")
            .await
            .unwrap();
        let p = auth.verify_bearer(&operate).unwrap();
        assert_eq!(p.require(Role::Operator), Ok(()));
        assert_eq!(
            p.require(Role::Admin),
            Err(AuthError::OutOfScope {
                scope: Scope::Operate
            })
        );
        // Expiry: in the future, within the longest lifetime; then refused as expired.
        for bad in [now_ms() - 1, now_ms() + 400 * 86_400_000] {
            assert!(matches!(
                auth.create_token("t", Role::Viewer, None, Some(bad), "admin")
                    .await,
                Err(IdentityError::InvalidExpiry { .. })
            ));
        }
        let (view, short) = auth
            .create_token(
                "short",
                Role::Viewer,
                None,
                Some(now_ms() + 60_000),
                "admin",
            )
            .await
            .unwrap();
        auth.write().tokens.get_mut(&view.id).unwrap().expires_at_ms = Some(now_ms() - 1);
        assert_eq!(auth.check_bearer(&short), Err(Rejection::TokenExpired));
        assert_eq!(auth.verify_bearer(&short), Err(AuthError::TokenExpired));
        assert!(auth.tokens().iter().any(|t| t.name == "short" && t.expired));
        auth.revoke_token(&view.id).await.unwrap();
        assert_eq!(auth.check_bearer(&short), Err(Rejection::Unknown));
        assert!(matches!(
            auth.revoke_token(&view.id).await,
            Err(IdentityError::UnknownToken { .. })
        ));
    }

    #[test]
    fn tokens_stored_before_scopes_and_expiry_keep_what_they_had() {
        let old = br#"{"id":"0011223344556677","name":"bridge","role":"operator","digest":"d","created_at_ms":1,"created_by":"admin"}"#;
        let t: TokenRecord = serde_json::from_slice(old).unwrap();
        let v = TokenView::of(&t, now_ms());
        assert_eq!(
            (v.scope, v.expires_at_ms, v.expired),
            (Scope::Admin, None, false)
        );
    }

    #[tokio::test]
    async fn guessing_from_one_address_slows_it_and_never_locks_the_user_out() {
        let auth = Auth::with_config(&AuthConfig {
            login_free_failures: 2,
            ..AuthConfig::default()
        });
        auth.bootstrap(Some("admin-password")).await.unwrap();
        let attacker = from("10.0.0.66");
        for _ in 0..2 {
            assert!(matches!(
                auth.login("admin", "nope-nope", &attacker).await,
                Err(LoginError::BadCredentials { .. })
            ));
        }
        // Even the right password waits, from that address.
        let Err(LoginError::Throttled(t)) = auth.login("admin", "admin-password", &attacker).await
        else {
            panic!("expected a wait")
        };
        assert_eq!(t.by, ThrottleKind::Pair);
        assert!(
            t.retry_after <= Duration::from_secs(1) && t.retry_after > Duration::from_millis(500),
            "{t:?}"
        );
        // The admin, from their own address, gets in at once.
        let s = auth
            .login("admin", "admin-password", &from("10.0.0.1"))
            .await
            .unwrap();
        // And, from the guessing address itself, on the browser they signed in from before.
        let known = LoginFrom {
            device: s.device.clone(),
            ..attacker.clone()
        };
        let again = auth.login("admin", "admin-password", &known).await.unwrap();
        assert_eq!(again.device, None, "the browser's device token stays valid");
        let m = auth.metrics();
        assert_eq!(m.logins.with_label_values(&["bad_credentials"]).get(), 2);
        assert_eq!(m.logins.with_label_values(&["throttled"]).get(), 1);
        assert_eq!(m.throttled.with_label_values(&["pair"]).get(), 1);
        assert_eq!(auth.throttles().len(), 3, "the pair, the address, the user");
        let _ = auth.login("no-such-user", "nope-nope", &attacker).await;
        let masked: Vec<_> = (auth.throttles().into_iter())
            .filter(|v| v.unknown_user)
            .collect();
        assert_eq!(masked.len(), 1, "the pair only: {masked:?}");
        assert_eq!(masked[0].user, None);
        assert_eq!(masked[0].address.as_deref(), Some("10.0.0.66"));
        assert_eq!(
            auth.unlock(None, "10.0.0.66".parse().ok()).await.unwrap(),
            3,
            "the address and its two pairs"
        );
        auth.login("admin", "admin-password", &attacker)
            .await
            .unwrap();
        // A new password forgets the browsers.
        auth.update_user("admin", None, Some("admin-password-2"), None)
            .await
            .unwrap();
        assert!(auth.known_device("admin", s.device.as_deref()).is_none());
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

        fn get(&self, kind: IdentityKind, key: &str) -> Option<Vec<u8>> {
            self.0
                .lock()
                .unwrap()
                .get(&(kind.name(), key.to_owned()))
                .cloned()
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
        fn shares_sessions(&self) -> bool {
            true
        }
        fn put_session(
            &self,
            id: String,
            record: Option<(Vec<u8>, Duration)>,
        ) -> BoxFuture<'_, Result<(), StoreError>> {
            self.put(IdentityKind::Session, id, record.map(|(v, _)| v))
        }
        fn touch_session(
            &self,
            id: String,
            record: Vec<u8>,
        ) -> BoxFuture<'_, Result<(), StoreError>> {
            // As etcd's put with ignore_lease: an ended session stays ended.
            let mut map = self.0.lock().unwrap();
            let key = (IdentityKind::Session.name(), id);
            if let Some(v) = map.get_mut(&key) {
                *v = record;
            }
            Box::pin(async { Ok(()) })
        }
        fn announce(
            &self,
            kind: IdentityKind,
            key: String,
            value: Vec<u8>,
            _ttl: Duration,
        ) -> BoxFuture<'_, Result<(), StoreError>> {
            self.put(kind, key, Some(value))
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
        let s = a.login("op1", "op1-password", &ip()).await.unwrap();
        assert!(b.check_bearer(&s.token).is_err());
        b.reload(shared.records());
        assert_eq!(b.verify_bearer(&s.token).unwrap().user, "op1");
        let listed = b.sessions(Some("op1"), None);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].address.as_deref(), Some("127.0.0.1"));
        assert!(b.login("admin", "admin-password", &ip()).await.is_ok());
        // A demotes op1: the session ends in the store, and on B once applied.
        let id = session_id(&s.token);
        a.update_user("op1", Some(Role::Viewer), None, None)
            .await
            .unwrap();
        assert!(shared.get(IdentityKind::Session, &id).is_none());
        b.apply(
            IdentityKind::User,
            "op1",
            shared.get(IdentityKind::User, "op1").as_deref(),
        );
        b.apply(IdentityKind::Session, &id, None);
        assert!(b.check_bearer(&s.token).is_err());
        // A logs op1 out: the session is gone from the store, and from B once applied.
        let s = a.login("op1", "op1-password", &ip()).await.unwrap();
        let id = session_id(&s.token);
        b.reload(shared.records());
        assert!(b.check_bearer(&s.token).is_ok());
        assert!(a.logout(&s.token).await);
        assert!(shared.get(IdentityKind::Session, &id).is_none());
        b.apply(IdentityKind::Session, &id, None);
        assert!(b.check_bearer(&s.token).is_err());
        // B's admin ends a session of op1 made on A: gone from the store and, applied, from A.
        let s = a.login("op1", "op1-password", &ip()).await.unwrap();
        let id = session_id(&s.token);
        b.reload(shared.records());
        b.end_session(&id, None).await.unwrap();
        a.apply(IdentityKind::Session, &id, None);
        assert!(a.check_bearer(&s.token).is_err());
        // A deletes a user: on B their sessions end with them.
        let s2 = a.login("op1", "op1-password", &ip()).await.unwrap();
        b.reload(shared.records());
        assert!(b.check_bearer(&s2.token).is_ok());
        a.delete_user("op1").await.unwrap();
        b.apply(IdentityKind::User, "op1", None);
        assert!(b.check_bearer(&s2.token).is_err());
        assert!(b.user("op1").is_none());
        // An unlock on A clears B's throttling once announced.
        for _ in 0..3 {
            let _ = b.login("admin", "nope-nope", &from("10.9.9.9")).await;
        }
        assert!(matches!(
            b.login("admin", "admin-password", &from("10.9.9.9")).await,
            Err(LoginError::Throttled(_))
        ));
        a.unlock(None, "10.9.9.9".parse().ok()).await.unwrap();
        let (kind, key, value) = (shared.records().into_iter())
            .find(|(k, _, _)| *k == IdentityKind::Unlock)
            .unwrap();
        b.apply(kind, &key, Some(&value));
        b.login("admin", "admin-password", &from("10.9.9.9"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_session_used_on_one_node_stays_alive_on_the_others() {
        let shared = Shared::default();
        let config = AuthConfig {
            idle_timeout: Duration::from_secs(60),
            ..AuthConfig::default()
        };
        let a = Arc::new(Auth::open(&config, shared.clone()).await.unwrap());
        let b = Auth::open(&config, shared.clone()).await.unwrap();
        a.bootstrap(Some("admin-password")).await.unwrap();
        let s = a.login("admin", "admin-password", &ip()).await.unwrap();
        let id = session_id(&s.token);
        b.reload(shared.records());
        // 50 s unused on both; then used on A: A shares the use (more than 6 s since the last).
        age(&a, 50_000);
        age(&b, 50_000);
        a.touch(&id);
        // The write is spawned: let it run.
        // (The login's own record was used at its creation; the shared use comes 50 s after.)
        let shared_use = || {
            let bytes = shared.get(IdentityKind::Session, &id)?;
            let record: SessionRecord = serde_json::from_slice(&bytes).ok()?;
            (record.last_used_ms - record.created_at_ms >= 40_000).then_some(bytes)
        };
        let mut bytes = None;
        for _ in 0..100 {
            bytes = shared_use();
            if bytes.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let bytes = bytes.expect("the use shared");
        b.apply(IdentityKind::Session, &id, Some(&bytes));
        age(&b, 20_000);
        assert!(
            b.check_bearer(&s.token).is_ok(),
            "70 s after the login, 20 s after its use on A"
        );
        // A use within the interval is not written again.
        let before = shared.get(IdentityKind::Session, &id);
        a.touch(&id);
        tokio::task::yield_now().await;
        assert_eq!(shared.get(IdentityKind::Session, &id), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_and_tokens_survive_reopening_the_store() {
        let dir = crate::store::embedded::tests::dir("identities");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::embedded::EmbeddedStore::open(&dir).unwrap());
        let ids = IdentityStore::new(store, tokio::runtime::Handle::current());
        let (bearer, device) = {
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
            let device = auth
                .login("op1", "op1-password", &ip())
                .await
                .unwrap()
                .device;
            let bearer = auth
                .create_token("bridge", Role::Viewer, None, None, "admin")
                .await
                .unwrap()
                .1;
            (bearer, device)
        };
        let auth = Auth::open(&AuthConfig::default(), ids).await.unwrap();
        assert_eq!(
            auth.bootstrap(Some("other-password")).await.unwrap(),
            Bootstrap::Existing
        );
        let names: Vec<String> = auth.users().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["admin", "op1"]);
        auth.login("op1", "op1-password", &ip()).await.unwrap();
        assert!(
            auth.known_device("op1", device.as_deref()).is_some(),
            "the browser stays known"
        );
        assert_eq!(auth.verify_bearer(&bearer).unwrap().role, Role::Viewer);
    }
}
