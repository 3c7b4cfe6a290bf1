//! `[auth]`: the first admin's password, session timeouts, the password policy, login
//! throttling, and API tokens' lifetimes.

use serde::Deserialize;
use std::time::Duration;

/// The environment variable that sets the first admin's password (it wins over the file).
pub const ADMIN_PASSWORD_ENV: &str = "CISTERN_ADMIN_PASSWORD";

/// The shortest minimum password length a site may configure (ASVS 5.0 6.2.1: at least 8).
pub const LEAST_PASSWORD_MIN_CHARS: usize = 8;

/// `[auth]`
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The password of the first admin (user `admin`), created when no user exists yet.
    /// Ignored once users exist. Unset (and no `CISTERN_ADMIN_PASSWORD`): a random password is
    /// generated and printed once at that first start.
    pub admin_password: Option<String>,
    /// A login session ends this long after its last use (a request the user made, not a
    /// background refresh of the console).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A login session ends this long after the login, used or not (the absolute timeout).
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Shortest password accepted for a user (characters; at least 8).
    pub password_min_chars: usize,
    /// Failed logins of one user name from one origin (a client address, or a browser the user
    /// signed in from before) that cost nothing; each one after waits twice as long as the
    /// last, from `login_delay` up to `login_max_delay`.
    pub login_free_failures: u32,
    /// The first wait of a throttled origin.
    #[serde(with = "humantime_serde")]
    pub login_delay: Duration,
    /// The longest wait: throttling slows, it never locks.
    #[serde(with = "humantime_serde")]
    pub login_max_delay: Duration,
    /// Failed logins from one client address, whatever names they try, before attempts from
    /// it that come from no known browser are slowed the same way (a NAT'd control room's
    /// users, signed in before on their browsers, are not).
    pub login_failures_per_address: u32,
    /// Failed logins of one user name, from whatever addresses, before attempts for it from no
    /// known browser are slowed (guessing spread over many addresses).
    pub login_failures_per_user: u32,
    /// Failures are forgotten this long after the last one (at least `login_max_delay`).
    #[serde(with = "humantime_serde")]
    pub login_window: Duration,
    /// An API token's lifetime when its creator names none.
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    /// The longest lifetime an API token may be given.
    #[serde(with = "humantime_serde")]
    pub token_max_lifetime: Duration,
    /// Audit entries are written to the store at least this often.
    #[serde(with = "humantime_serde")]
    pub audit_flush_every: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_password: None,
            idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            password_min_chars: 12,
            login_free_failures: 3,
            login_delay: Duration::from_secs(1),
            login_max_delay: Duration::from_secs(5 * 60),
            login_failures_per_address: 30,
            login_failures_per_user: 50,
            login_window: Duration::from_secs(15 * 60),
            token_lifetime: Duration::from_secs(90 * 86_400),
            token_max_lifetime: Duration::from_secs(365 * 86_400),
            audit_flush_every: Duration::from_secs(1),
        }
    }
}

/// A `[auth]` setting that cannot work (the message names the key).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthConfigError {
    #[error("[auth] password_min_chars = {0}: at least {LEAST_PASSWORD_MIN_CHARS}")]
    PasswordTooShort(usize),
    #[error("[auth] {key} must be longer than zero")]
    Zero { key: &'static str },
    #[error("[auth] idle_timeout ({idle:?}) is longer than session_lifetime ({lifetime:?}): a session would never go idle")]
    IdleLongerThanLifetime { idle: Duration, lifetime: Duration },
    #[error("[auth] login_delay ({delay:?}) is longer than login_max_delay ({max:?})")]
    DelayOverMax { delay: Duration, max: Duration },
    #[error("[auth] login_window ({window:?}) is shorter than login_max_delay ({max:?}): failures would be forgotten before their wait ends")]
    WindowUnderMaxDelay { window: Duration, max: Duration },
    #[error("[auth] token_lifetime ({lifetime:?}) is longer than token_max_lifetime ({max:?})")]
    TokenLifetimeOverMax { lifetime: Duration, max: Duration },
}

impl AuthConfig {
    /// The first admin's password: `CISTERN_ADMIN_PASSWORD`, else `admin_password`.
    pub fn admin_password_from_env(&self) -> Option<String> {
        std::env::var(ADMIN_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| self.admin_password.clone())
    }

    /// Refuses settings that contradict each other or weaken the policy below its floor.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        if self.password_min_chars < LEAST_PASSWORD_MIN_CHARS {
            return Err(AuthConfigError::PasswordTooShort(self.password_min_chars));
        }
        for (key, d) in [
            ("idle_timeout", self.idle_timeout),
            ("session_lifetime", self.session_lifetime),
            ("login_delay", self.login_delay),
            ("login_window", self.login_window),
            ("token_lifetime", self.token_lifetime),
        ] {
            if d.is_zero() {
                return Err(AuthConfigError::Zero { key });
            }
        }
        if self.idle_timeout > self.session_lifetime {
            return Err(AuthConfigError::IdleLongerThanLifetime {
                idle: self.idle_timeout,
                lifetime: self.session_lifetime,
            });
        }
        if self.login_delay > self.login_max_delay {
            return Err(AuthConfigError::DelayOverMax {
                delay: self.login_delay,
                max: self.login_max_delay,
            });
        }
        if self.login_window < self.login_max_delay {
            return Err(AuthConfigError::WindowUnderMaxDelay {
                window: self.login_window,
                max: self.login_max_delay,
            });
        }
        if self.token_lifetime > self.token_max_lifetime {
            return Err(AuthConfigError::TokenLifetimeOverMax {
                lifetime: self.token_lifetime,
                max: self.token_max_lifetime,
            });
        }
        Ok(())
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
            .field("idle_timeout", &self.idle_timeout)
            .field("session_lifetime", &self.session_lifetime)
            .field("password_min_chars", &self.password_min_chars)
            .field("login_free_failures", &self.login_free_failures)
            .field("login_delay", &self.login_delay)
            .field("login_max_delay", &self.login_max_delay)
            .field(
                "login_failures_per_address",
                &self.login_failures_per_address,
            )
            .field("login_failures_per_user", &self.login_failures_per_user)
            .field("login_window", &self.login_window)
            .field("token_lifetime", &self.token_lifetime)
            .field("token_max_lifetime", &self.token_max_lifetime)
            .field("audit_flush_every", &self.audit_flush_every)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_hold_and_contradictions_are_refused() {
        AuthConfig::default().validate().unwrap();
        let bad = |f: fn(&mut AuthConfig)| {
            let mut c = AuthConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.password_min_chars = 6).contains("password_min_chars"));
        assert!(bad(|c| c.idle_timeout = Duration::ZERO).contains("idle_timeout"));
        assert!(bad(|c| c.idle_timeout = Duration::from_secs(13 * 3600)).contains("idle"));
        assert!(bad(|c| c.login_delay = Duration::from_secs(600)).contains("login_delay"));
        assert!(bad(|c| c.login_window = Duration::from_secs(60)).contains("login_window"));
        assert!(
            bad(|c| c.token_lifetime = Duration::from_secs(400 * 86_400))
                .contains("token_lifetime")
        );
    }
}
