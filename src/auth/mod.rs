//! Who is asking, and what they may do: users, API tokens, roles, and the audit log.
//!
//! Every REST and WebSocket request carries a bearer token (a session token from a login, or an
//! API token issued to a machine). [`Auth::verify_bearer`] turns it into a [`Principal`] — a
//! user, a [`Role`] and, for an API token, a [`Scope`] — or refuses it with an [`AuthError`]
//! that says nothing an attacker could use (an ended session or an expired token is named as
//! such only to whoever presents its whole secret). Roles are ordered: each one may do
//! everything the roles below it may; a token's scope narrows what its role allows.
//!
//! The [`AuditLog`] records who did what (logins, acknowledgements, shelves, rule changes,
//! set-point writes) and fans every entry out to live subscribers (the WebSocket hub's audit
//! stream).
//!
//! This module is the seam between the API (REST and WebSocket) and identity: the API asks only
//! `verify_bearer` (or, behind the REST [`middleware`], [`principal`]) and records only through
//! `AuditLog::record`. Inside: [`identity`] (users, API tokens, sessions), [`session`] (a
//! session's timeouts and views), [`password`] (the password policy), [`secret`] (hashes and
//! token digests), [`throttle`] (failed-login throttling), [`policy`] (who may call which
//! route), [`audit`] (the log and its persistence; its hash chain [`audit_chain`], retention
//! and forwarding config [`audit_config`], forwarding [`audit_forward`], exports
//! [`audit_export`], the `cistern audit` commands [`audit_cli`]), [`config`] (`[auth]`).

pub mod audit;
pub mod audit_chain;
pub mod audit_cli;
pub mod audit_config;
pub mod audit_export;
pub mod audit_forward;
pub mod config;
pub mod identity;
pub mod middleware;
pub mod password;
pub mod policy;
pub mod secret;
pub mod session;
pub mod throttle;

pub use audit::{AuditEntry, AuditLog, AuditQuery};
pub use config::{AuthConfig, AuthConfigError};
pub use identity::{
    Auth, AuthMetrics, Bootstrap, GatewayError, GatewayRecord, GatewayWrite, IdentityError,
    IdentityKind, IdentityPersistence, IdentityStore, Language, LoginError, LoginFrom, Session,
};
pub use policy::AUDIT_READ_ROLE;
pub use session::SessionView;

use serde::{Deserialize, Serialize};
use std::fmt;
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

/// What an API token may do, within its role (a login session has no scope: its role alone
/// bounds it). Ordered: each scope allows what the ones below it do. Mapped onto the policy
/// ([`policy`]) by the kind of request and the least role the route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Reads only (`GET`, `HEAD`), whatever its role could change.
    Read,
    /// Also the changes a route lets an operator (or a viewer) make: alarm commands,
    /// set-points, work orders, inspections.
    Operate,
    /// Everything its role may do, configuration (rules, archives) and administration (users,
    /// tokens) included.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Operate, Scope::Admin];

    /// The scope's name on the wire (`read`, `operate`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
        }
    }

    /// The scope a token of `role` gets when its creator names none: all its role allows.
    pub fn of_role(role: Role) -> Scope {
        match role {
            Role::Viewer => Scope::Read,
            Role::Operator => Scope::Operate,
            Role::RuleAuthor | Role::Admin => Scope::Admin,
        }
    }

    /// Whether a request (a read, or a change needing at least `needed`) is within the scope.
    pub fn allows(self, read: bool, needed: Role) -> bool {
        read || match self {
            Scope::Read => false,
            Scope::Operate => needed <= Role::Operator,
            Scope::Admin => true,
        }
    }
}

impl fmt::Display for Scope {
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
    /// An API token's scope (none: a login session or a fixed token, bounded by the role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The login session's id (public: never its secret), for "this session".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl Principal {
    /// A principal bounded by its role only.
    pub fn new(user: impl Into<String>, role: Role) -> Self {
        Self {
            user: user.into(),
            role,
            scope: None,
            session: None,
        }
    }

    /// Refuses a change that needs `role` unless this principal holds at least `role` and its
    /// scope (if any) allows it: [`AuthError::Forbidden`] or [`AuthError::OutOfScope`].
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        self.authorize(false, role)
    }

    /// As [`Principal::require`], for a request that is a read (`read`) or a change.
    pub fn authorize(&self, read: bool, role: Role) -> Result<(), AuthError> {
        if self.role < role {
            return Err(AuthError::Forbidden { needed: role });
        }
        match self.scope {
            Some(scope) if !scope.allows(read, role) => Err(AuthError::OutOfScope { scope }),
            _ => Ok(()),
        }
    }
}

/// Why a request was refused. The messages are deliberately bare: they never say whether a
/// user exists or which part of a credential was wrong. Only a caller who presented a whole,
/// right secret hears that its session ended or its token expired.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential, an unknown or revoked token, or a wrong password.
    #[error("authentication required")]
    Unauthorized,
    /// A login session that went unused for longer than the idle timeout.
    #[error("the session ended after {} without activity: sign in again", humantime::format_duration(*.idle))]
    SessionIdle { idle: std::time::Duration },
    /// A login session older than its absolute lifetime.
    #[error("the session reached its maximum lifetime: sign in again")]
    SessionExpired,
    /// An API token past its expiry.
    #[error("this API token has expired")]
    TokenExpired,
    /// Authenticated, but the role is too low.
    #[error("this needs the {needed} role")]
    Forbidden { needed: Role },
    /// An API token whose scope does not cover the request.
    #[error("this API token's scope ({scope}) does not allow this")]
    OutOfScope { scope: Scope },
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
            AuditEntry::now(r.user, r.action, r.target, r.detail, r.ok),
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
                audit: AuditLog::stored(s.store.clone(), s.io.handle(), config.audit_flush_every)
                    .await
                    .map_err(IdentityError::Store)?,
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
            auth: crate::cluster::identity::open(
                config,
                cluster,
                storage.io.handle(),
                Some(&IdentityStore::new(
                    storage.store.clone(),
                    storage.io.handle(),
                )),
            )
            .await?,
            audit: AuditLog::stored(
                storage.store.clone(),
                storage.io.handle(),
                config.audit_flush_every,
            )
            .await
            .map_err(IdentityError::Store)?,
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
    /// so that a password typed into the name field never lands in the log). A failure that
    /// makes a throttling key wait for the first time is also recorded (`login_throttled`);
    /// the attempts refused while it waits are only counted
    /// (`cistern_auth_login_throttled_total`), so that a flood cannot fill the log.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        from: &LoginFrom,
    ) -> Result<Session, LoginError> {
        let result = self.auth.login(user, password, from).await;
        let origin = match (&from.address, &from.device) {
            (Some(a), Some(_)) => format!("{a} (with a device token)"),
            (Some(a), None) => a.to_string(),
            (None, _) => "unknown address".to_owned(),
        };
        let source = || {
            from.address
                .map_or_else(|| audit::SYSTEM_SOURCE.to_owned(), |a| a.to_string())
        };
        let who = || {
            if self.auth.user(user).is_some() {
                user.to_owned()
            } else {
                "unknown".to_owned()
            }
        };
        match &result {
            Ok(s) => self.audit.record(
                AuditEntry::now(
                    s.user.clone(),
                    "login",
                    "session",
                    format!("from {origin}"),
                    true,
                )
                .from_source(source()),
            ),
            Err(LoginError::BadCredentials { starts_waiting }) => {
                let who = who();
                self.audit.record(
                    AuditEntry::now(
                        who.clone(),
                        "login_failed",
                        "session",
                        format!("from {origin}: wrong user name or password"),
                        false,
                    )
                    .from_source(source()),
                );
                if let Some((key, wait)) = starts_waiting {
                    let whom = match key {
                        throttle::Kind::Pair => format!("{who} from {origin}"),
                        throttle::Kind::Address => format!("any user from {origin}"),
                        throttle::Kind::User | throttle::Kind::Full => {
                            format!("{who} from any address")
                        }
                    };
                    self.audit.record(AuditEntry::now(
                        who,
                        "login_throttled",
                        "session",
                        format!(
                            "logins of {whom} now wait {} and longer after each failure ({} key)",
                            humantime::format_duration(*wait),
                            key.label()
                        ),
                        false,
                    ));
                }
            }
            Err(LoginError::Throttled(_)) => {}
            Err(LoginError::Internal(e)) => self.audit.record(AuditEntry::now(
                who(),
                "login_failed",
                "session",
                format!("from {origin}: {e}"),
                false,
            )),
        }
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
