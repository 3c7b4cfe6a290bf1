//! Users, API tokens and login sessions: who may present which bearer token, and as what role.
//!
//! Users (argon2-hashed passwords) and API tokens (only a digest of their secret) persist in the
//! node's store when it has one (state kinds `auth_user` and `auth_token`), in memory
//! otherwise. Sessions live in memory only: a restart logs everyone out, which costs a login
//! and keeps no bearer secret on disk. A change is written to the store before it takes effect
//! in memory, one change at a time, so that the two never disagree.

use super::limiter::{Limited, LoginLimiter};
use super::secret::{self, TokenKind};
use super::{AuthConfig, AuthError, Principal, Role};
use crate::store::{Store, StoreError};
use cistern_schemas::Timestamp;
use dashmap::DashMap;
use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const USER_KIND: &str = "auth_user";
const TOKEN_KIND: &str = "auth_token";
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

#[derive(Clone, Debug)]
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

/// Where identities persist: the node's store, driven on its I/O runtime.
#[derive(Clone, Debug)]
pub struct IdentityStore {
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
}

impl IdentityStore {
    pub fn new(store: Arc<dyn Store>, io: tokio::runtime::Handle) -> Self {
        Self { store, io }
    }

    async fn put(
        &self,
        kind: &'static str,
        key: String,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        self.io
            .spawn(async move { store.put_state(kind, vec![(key, value)]).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("identity write task failed: {e}")))?
    }

    async fn load<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let store = self.store.clone();
        let records = self
            .io
            .spawn(async move { store.state(kind).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("identity read task failed: {e}")))??;
        Ok(records
            .into_iter()
            .filter_map(|(key, bytes)| match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                Err(error) => {
                    tracing::error!(kind, %key, %error, "unreadable identity record skipped");
                    None
                }
            })
            .collect())
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
    store: Option<IdentityStore>,
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

    /// With `config`'s settings, keeping users and tokens in `store` (loaded now).
    pub async fn open(config: &AuthConfig, store: IdentityStore) -> Result<Self, IdentityError> {
        let users: Vec<UserRecord> = store.load(USER_KIND).await?;
        let tokens: Vec<TokenRecord> = store.load(TOKEN_KIND).await?;
        tracing::info!(
            users = users.len(),
            tokens = tokens.len(),
            "identities loaded"
        );
        let mut auth = Self::with_config(config);
        {
            let ids = auth.ids.get_mut().unwrap_or_else(|e| e.into_inner());
            ids.users = users.into_iter().map(|u| (u.name.clone(), u)).collect();
            ids.tokens = tokens.into_iter().map(|t| (t.id.clone(), t)).collect();
        }
        auth.store = Some(store);
        Ok(auth)
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
        kind: &'static str,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), IdentityError> {
        match &self.store {
            Some(s) => Ok(s.put(kind, key.to_owned(), value).await?),
            None => Ok(()),
        }
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
        let mut ids = self.write();
        let (role, language) = ids
            .users
            .get(&user)
            .map(|u| (u.role, u.language))
            .ok_or(LoginError::BadCredentials)?;
        ids.sessions.retain(|_, s| s.expires_at_ms > now);
        let mut mine: Vec<(i64, String)> = ids
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(id, s)| (s.expires_at_ms, id.clone()))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_USER {
            mine.sort();
            for (_, id) in mine.iter().take(mine.len() + 1 - MAX_SESSIONS_PER_USER) {
                ids.sessions.remove(id);
            }
        }
        ids.sessions.insert(
            minted.id,
            SessionRecord {
                user: user.clone(),
                digest: minted.digest,
                expires_at_ms,
            },
        );
        Ok(Session {
            token: minted.bearer,
            user,
            role,
            expires_at_ms,
            language,
        })
    }

    /// Ends the session `token` stands for; false when it is not a live session token.
    pub fn logout(&self, token: &str) -> bool {
        let Some((TokenKind::Session, id, presented)) = secret::parse(token) else {
            return false;
        };
        let mut ids = self.write();
        let matches = ids
            .sessions
            .get(id)
            .is_some_and(|s| secret::secret_matches(presented, &s.digest));
        matches && ids.sessions.remove(id).is_some()
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
        self.persist(USER_KIND, name, Some(encode(&record)?))
            .await?;
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
        self.persist(USER_KIND, name, Some(encode(&record)?))
            .await?;
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
        self.persist(USER_KIND, name, Some(encode(&record)?))
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
        self.persist(USER_KIND, name, None).await?;
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
        self.persist(TOKEN_KIND, &record.id, Some(encode(&record)?))
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
        self.persist(TOKEN_KIND, id, None).await?;
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
        assert!(auth.logout(&s.token));
        assert_eq!(auth.verify_bearer(&s.token), Err(AuthError::Unauthorized));
        assert!(!auth.logout(&s.token));
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
