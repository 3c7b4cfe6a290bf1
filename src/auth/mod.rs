//! Who is asking, and what they may do: users, API tokens, roles, and the audit log.
//!
//! Every REST and WebSocket request carries a bearer token (a session token from a login, or an
//! API token issued to a machine). [`Auth::verify_bearer`] turns it into a [`Principal`] — a
//! user and a [`Role`] — or refuses it with an [`AuthError`] that says nothing an attacker could
//! use. Roles are ordered: each one may do everything the roles below it may.
//!
//! The [`AuditLog`] records who did what (logins, acknowledgements, shelves, rule changes,
//! set-point writes) and fans every entry out to live subscribers (the WebSocket hub's audit
//! stream).
//!
//! This module is the seam between the API (REST and WebSocket) and identity: the API asks only
//! `verify_bearer` (or, behind the REST [`middleware`], [`principal`]) and records only through
//! `AuditLog::record`. Inside: [`identity`] (users, API tokens, sessions), [`secret`] (hashes
//! and token digests), [`limiter`] (failed-login limits), [`policy`] (who may call which
//! route), [`audit`] (the log and its persistence), [`config`] (`[auth]`).

pub mod audit;
pub mod config;
pub mod identity;
pub mod limiter;
pub mod middleware;
pub mod policy;
pub mod secret;

pub use audit::{AuditEntry, AuditLog, AuditQuery};
pub use config::AuthConfig;
pub use identity::{
    Auth, AuthMetrics, Bootstrap, IdentityError, IdentityKind, IdentityPersistence, IdentityStore,
    Language, LoginError, Session,
};
pub use policy::AUDIT_READ_ROLE;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// What a principal may do. Ordered: `Viewer < Operator < RuleAuthor < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees everything live and in history; changes nothing.
    Viewer,
    /// Also acknowledges, shelves and resets alarms, and writes set-points.
    Operator,
    /// Also writes and reloads alarm rules.
    RuleAuthor,
    /// Also manages users and tokens.
    Admin,
}

impl Role {
    /// The role's name on the wire (`viewer`, `operator`, `rule-author`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::RuleAuthor => "rule-author",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's name, or `token:<name>` for a machine's API token.
    pub user: String,
    pub role: Role,
}

impl Principal {
    /// Refuses with [`AuthError::Forbidden`] unless this principal holds at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::Forbidden { needed: role })
        }
    }
}

/// Why a request was refused. The messages are deliberately bare: they never say whether a
/// user exists or which part of a credential was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential, an unknown or expired token, or a wrong password.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role is too low.
    #[error("this needs the {needed} role")]
    Forbidden { needed: Role },
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::Viewer, Role::Operator, Role::RuleAuthor, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: viewer, operator, rule-author or admin"))
    }
}

/// The caller of a REST request, as the [`middleware`] authenticated it (`None` on a public
/// route called without a token).
pub fn principal(req: &actix_web::HttpRequest) -> Option<Principal> {
    use actix_web::HttpMessage as _;
    req.extensions().get::<Principal>().cloned()
}

/// The actors' audit port, over the node's audit log.
impl cistern_actors::ports::AuditPort for AuditLog {
    fn record(&self, r: cistern_actors::ports::AuditRecord) {
        AuditLog::record(
            self,
            AuditEntry {
                at_ms: cistern_schemas::Timestamp::now().as_millis(),
                user: r.user,
                action: r.action.to_owned(),
                target: r.target,
                detail: r.detail,
                ok: r.ok,
            },
        );
    }
}

/// What the API holds: identity and the audit log.
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub auth: Arc<Auth>,
    pub audit: Arc<AuditLog>,
}

impl Security {
    /// Identity and audit for a node: in `storage` when it has one, else in memory.
    pub async fn open(
        config: &AuthConfig,
        storage: Option<&crate::node::Storage>,
    ) -> Result<Self, IdentityError> {
        match storage {
            Some(s) => Ok(Self {
                auth: Arc::new(
                    Auth::open(config, IdentityStore::new(s.store.clone(), s.io.handle())).await?,
                ),
                audit: AuditLog::stored(s.store.clone(), s.io.handle(), config.audit_flush_every),
            }),
            None => Ok(Self {
                auth: Arc::new(Auth::with_config(config)),
                audit: Arc::new(AuditLog::new()),
            }),
        }
    }

    /// Identity and audit for a cluster node (feature `cluster`): users, API tokens and
    /// sessions shared by every node through etcd (`cluster::identity`), the audit log in the
    /// node's own `storage`.
    #[cfg(feature = "cluster")]
    pub async fn open_shared(
        config: &AuthConfig,
        cluster: &crate::cluster::ClusterConfig,
        storage: &crate::node::Storage,
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            auth: crate::cluster::identity::open(config, cluster, storage.io.handle()).await?,
            audit: AuditLog::stored(
                storage.store.clone(),
                storage.io.handle(),
                config.audit_flush_every,
            ),
        })
    }

    /// Creates the first admin if no user exists ([`Auth::bootstrap`]), telling the operator
    /// how: a generated password is printed once, on standard output.
    pub async fn bootstrap(&self, password: Option<&str>) -> Result<Bootstrap, IdentityError> {
        let outcome = self.auth.bootstrap(password).await?;
        match &outcome {
            Bootstrap::Existing => {}
            Bootstrap::Configured => {
                tracing::info!(user = identity::FIRST_ADMIN, "first admin created");
            }
            Bootstrap::Generated(pw) => {
                tracing::warn!(
                    user = identity::FIRST_ADMIN,
                    "first admin created with a generated password, printed once on standard output"
                );
                println!(
                    "first admin: user={} password={pw} (shown once: change it, or set [auth] admin_password before the first start)",
                    identity::FIRST_ADMIN
                );
            }
        }
        if outcome != Bootstrap::Existing {
            self.audit.record(AuditEntry::now(
                "system",
                "user_create",
                identity::FIRST_ADMIN,
                "first admin (bootstrap)",
                true,
            ));
        }
        Ok(outcome)
    }

    /// A login, audited (a failure under a name that does not exist is recorded as `unknown`,
    /// so that a password typed into the name field never lands in the log).
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Session, LoginError> {
        let result = self.auth.login(user, password, address).await;
        let from = address.map_or_else(|| "unknown address".to_owned(), |a| a.to_string());
        let (who, action, detail, ok) = match &result {
            Ok(s) => (s.user.clone(), "login", format!("from {from}"), true),
            Err(e) => {
                let who = if self.auth.user(user).is_some() {
                    user.to_owned()
                } else {
                    "unknown".to_owned()
                };
                (who, "login_failed", format!("from {from}: {e}"), false)
            }
        };
        self.audit
            .record(AuditEntry::now(who, action, "session", detail, ok));
        result
    }

    /// Records what `who` did.
    pub fn record(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        detail: impl Into<String>,
        ok: bool,
    ) {
        self.audit.record(AuditEntry::now(
            who.user.clone(),
            action,
            target,
            detail,
            ok,
        ));
    }

    /// Writes what the audit log still holds (at shutdown, after the node has stopped).
    pub async fn close(&self) {
        self.audit.close().await;
    }
}
