//! `[audit]`: how long the audit log is kept, and where a copy of every entry is sent
//! (`[audit.forward]`: syslog, a JSON-lines file).

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[audit]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this many days are removed (a pruning record keeps the chain
    /// verifiable). 等保 2.0 asks for at least 180; the default keeps a little over a year.
    /// 0 keeps everything.
    pub retention_days: u32,
    /// How often old entries are looked for (the first time a minute after start).
    #[serde(with = "humantime_serde")]
    pub prune_every: Duration,
    /// `[audit.forward]`: copies of every entry, for a central log store.
    pub forward: ForwardConfig,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 400,
            prune_every: Duration::from_secs(6 * 3600),
            forward: ForwardConfig::default(),
        }
    }
}

/// How syslog messages carry an entry.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// RFC 5424 structured data `[cistern@32473 …]` and a short text message.
    #[default]
    Sd,
    /// The entry as JSON in MSG (no structured data).
    Json,
}

/// `[audit.forward]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// `udp://host:port` or `tcp://host:port` (RFC 5424; octet-counted framing on TCP,
    /// RFC 6587). Unset: no syslog.
    pub syslog: Option<String>,
    /// `authpriv` (default) or `local0` … `local7`.
    pub facility: String,
    /// The APP-NAME of the messages.
    pub app_name: String,
    pub format: SyslogFormat,
    /// A file every entry is appended to as one JSON line. Unset: none.
    pub file: Option<PathBuf>,
    /// Entries waiting per destination; beyond it new ones are dropped (counted, logged).
    pub queue: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            syslog: None,
            facility: "authpriv".to_owned(),
            app_name: "cistern".to_owned(),
            format: SyslogFormat::Sd,
            file: None,
            queue: 10_000,
        }
    }
}

/// A bad `[audit]` section.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuditConfigError {
    #[error("[audit.forward] syslog must be udp://host:port or tcp://host:port (got {0:?})")]
    SyslogUrl(String),
    #[error("[audit.forward] facility must be authpriv or local0 … local7 (got {0:?})")]
    Facility(String),
    #[error("[audit.forward] queue must be at least 1")]
    Queue,
    #[error("[audit] prune_every must be at least one minute")]
    PruneEvery,
}

/// Where syslog messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    Udp(String),
    Tcp(String),
}

impl ForwardConfig {
    /// The syslog destination, checked.
    pub fn syslog_target(&self) -> Result<Option<SyslogTarget>, AuditConfigError> {
        let Some(url) = &self.syslog else {
            return Ok(None);
        };
        let bad = || AuditConfigError::SyslogUrl(url.clone());
        let (scheme, addr) = url.split_once("://").ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        match scheme {
            "udp" => Ok(Some(SyslogTarget::Udp(addr.to_owned()))),
            "tcp" => Ok(Some(SyslogTarget::Tcp(addr.to_owned()))),
            _ => Err(bad()),
        }
    }

    /// The facility's number (RFC 5424 §6.2.1).
    pub fn facility_code(&self) -> Result<u8, AuditConfigError> {
        match self.facility.as_str() {
            "authpriv" => Ok(10),
            f => f
                .strip_prefix("local")
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| *n <= 7)
                .map(|n| 16 + n)
                .ok_or_else(|| AuditConfigError::Facility(f.to_owned())),
        }
    }
}

impl AuditConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), AuditConfigError> {
        self.forward.syslog_target()?;
        self.forward.facility_code()?;
        if self.forward.queue == 0 {
            return Err(AuditConfigError::Queue);
        }
        if self.prune_every < Duration::from_secs(60) {
            return Err(AuditConfigError::PruneEvery);
        }
        Ok(())
    }

    /// How long entries are kept (`None`: for ever).
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_facilities_are_checked() {
        let mut f = ForwardConfig {
            syslog: Some("tcp://127.0.0.1:6514".into()),
            ..Default::default()
        };
        assert_eq!(
            f.syslog_target().unwrap(),
            Some(SyslogTarget::Tcp("127.0.0.1:6514".into()))
        );
        assert_eq!(f.facility_code().unwrap(), 10);
        f.facility = "local3".into();
        assert_eq!(f.facility_code().unwrap(), 19);
        for bad in ["local8", "auth", ""] {
            f.facility = bad.into();
            assert!(f.facility_code().is_err(), "{bad}");
        }
        for bad in [
            "127.0.0.1:514",
            "http://h:1",
            "udp://h",
            "udp://:514",
            "udp://h:x",
        ] {
            f.syslog = Some(bad.into());
            assert!(f.syslog_target().is_err(), "{bad}");
        }
        let c: AuditConfig = toml::from_str(
            "retention_days = 200\n[forward]\nsyslog = \"udp://127.0.0.1:514\"\nfile = \"a.jsonl\"\n",
        )
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.retention(), Some(Duration::from_secs(200 * 86_400)));
        assert!(toml::from_str::<AuditConfig>("retention_day = 1").is_err());
    }
}
