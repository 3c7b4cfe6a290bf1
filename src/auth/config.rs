//! `[auth]`: the first admin's password, session lifetime, and the failed-login limits.

use serde::Deserialize;
use std::time::Duration;

/// The environment variable that sets the first admin's password (it wins over the file).
pub const ADMIN_PASSWORD_ENV: &str = "CISTERN_ADMIN_PASSWORD";

/// `[auth]`
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The password of the first admin (user `admin`), created when no user exists yet.
    /// Ignored once users exist. Unset (and no `CISTERN_ADMIN_PASSWORD`): a random password is
    /// generated and printed once at that first start.
    pub admin_password: Option<String>,
    /// How long a login's session token is valid.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Failed logins for one user name within `login_window` before that name is refused
    /// until the window ends.
    pub login_failures_per_user: u32,
    /// Failed logins from one client address within `login_window` before that address is
    /// refused until the window ends.
    pub login_failures_per_address: u32,
    /// The window the failed logins are counted in.
    #[serde(with = "humantime_serde")]
    pub login_window: Duration,
    /// Audit entries are written to the store at least this often.
    #[serde(with = "humantime_serde")]
    pub audit_flush_every: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_password: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            login_window: Duration::from_secs(15 * 60),
            audit_flush_every: Duration::from_secs(1),
        }
    }
}

// Never print the password.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<set>"),
            )
            .field("session_lifetime", &self.session_lifetime)
            .field("login_failures_per_user", &self.login_failures_per_user)
            .field(
                "login_failures_per_address",
                &self.login_failures_per_address,
            )
            .field("login_window", &self.login_window)
            .field("audit_flush_every", &self.audit_flush_every)
            .finish()
    }
}

impl AuthConfig {
    /// The first admin's password: `CISTERN_ADMIN_PASSWORD`, else `admin_password`.
    pub fn admin_password_from_env(&self) -> Option<String> {
        std::env::var(ADMIN_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| self.admin_password.clone())
    }
}
