//! TLS wherever a network is crossed (issue 24): the HTTPS listener of the API and UI, and the
//! node's MQTT client to a broker that asks for client certificates (mTLS).
//!
//! One crypto provider in the build: rustls on ring ([`install_provider`], at start; aws-lc-rs
//! is never linked, and two providers would make rustls refuse to choose). Certificates and keys
//! are PEM files named in the configuration:
//!
//! ```toml
//! [http.tls]                 # HTTPS; the certificate is reloaded when its files change
//! cert = "tls/server.pem"    # the chain, leaf first
//! key = "tls/server.key"     # PKCS#8, PKCS#1 or SEC1
//!
//! [mqtt.tls]                 # the broker's CA, and this node's client certificate
//! ca = "tls/ca.pem"
//! cert = "tls/node.pem"
//! key = "tls/node.key"
//! ```
//!
//! A server certificate is reloaded without a restart ([`ReloadingCert`]): the files are
//! checked every `reload_every`, a changed pair is loaded and checked (the key must match the
//! certificate) before it replaces the served one, and a bad pair is refused — logged and
//! counted — while the old one stays in service. A TLS handshake that stalls is dropped after
//! `handshake_timeout`.

pub mod pki;

use prometheus::{IntCounterVec, Opts, Registry};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Installs ring as the process's crypto provider (once; later calls do nothing).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The provider every TLS configuration here is built with.
fn provider() -> Arc<CryptoProvider> {
    install_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Why a certificate, key or CA could not be used. The message names the file, never its
/// contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the key in {key} does not belong to the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("`cert` and `key` go together: give both or neither")]
    HalfPair,
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A client configuration that trusts no server: what a connection uses when its TLS files
/// became unusable, so that it fails (and says so) instead of falling back to plain text.
pub fn trusting_nobody() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// A root store of the CA certificates in a PEM file.
pub fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// SHA-256 of a certificate's DER, as lowercase hex: how a device's certificate is named in
/// the archive and in `cistern pki`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn default_reload_every() -> Duration {
    Duration::from_secs(30)
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(5)
}

/// `[http.tls]`: a server certificate and its key (PEM files).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// How often the files are checked for a renewed certificate.
    #[serde(default = "default_reload_every", with = "humantime_serde")]
    pub reload_every: Duration,
    /// A client that has not finished its handshake by then is dropped.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl ServerTlsConfig {
    /// Makes relative paths relative to `base` (the configuration file's directory).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// `[mqtt.tls]` (and any other TLS client): the CA that signs the server's certificate, and
/// optionally this client's own certificate and key (mTLS).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    pub ca: PathBuf,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl ClientTlsConfig {
    /// Makes relative paths relative to `base` (the configuration file's directory).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for p in [Some(&mut self.ca), self.cert.as_mut(), self.key.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The rustls client configuration: the CA as the only root, this client's certificate
    /// when one is given.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let roots = load_roots(&self.ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        Ok(match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = load_certs(cert)?;
                let der = load_key(key)?;
                builder
                    .with_client_auth_cert(chain, der)
                    .map_err(|e| TlsError::Mismatch {
                        cert: cert.clone(),
                        key: key.clone(),
                        reason: e.to_string(),
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfPair),
        })
    }
}

/// Counts of certificate reloads, by listener and result (`loaded`, `refused`).
#[derive(Clone, Debug)]
pub struct TlsMetrics {
    reloads: IntCounterVec,
}

impl TlsMetrics {
    /// The counters, registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new(
                "cistern_tls_certificate_reloads_total",
                "Server certificates reloaded from their files, by listener and result (loaded, refused: the old one stays in service).",
            ),
            &["listener", "result"],
        )?;
        registry.register(Box::new(reloads.clone()))?;
        Ok(Self { reloads })
    }
}

/// A server certificate that follows its files: what a renewal (certbot, an internal CA's
/// agent) writes is served from the next handshake on, without a restart.
#[derive(Debug)]
pub struct ReloadingCert {
    listener: &'static str,
    config: ServerTlsConfig,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last loaded (or refused).
    seen: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
    metrics: TlsMetrics,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadingCert {
    /// Loads the pair now: a bad pair at start is an error (the node does not start).
    pub fn load(
        listener: &'static str,
        config: &ServerTlsConfig,
        metrics: TlsMetrics,
    ) -> Result<Arc<Self>, TlsError> {
        let seen = (modified(&config.cert), modified(&config.key));
        let key = certified_key(&config.cert, &config.key)?;
        Ok(Arc::new(Self {
            listener,
            config: config.clone(),
            current: RwLock::new(Arc::new(key)),
            seen: RwLock::new(seen),
            metrics,
        }))
    }

    /// Reloads the pair if either file changed since it was last looked at. Returns whether a
    /// new certificate is now served.
    pub fn reload_if_changed(&self) -> bool {
        let now = (modified(&self.config.cert), modified(&self.config.key));
        {
            let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        match certified_key(&self.config.cert, &self.config.key) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                self.metrics
                    .reloads
                    .with_label_values(&[self.listener, "loaded"])
                    .inc();
                tracing::info!(listener = self.listener, cert = %self.config.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                self.metrics
                    .reloads
                    .with_label_values(&[self.listener, "refused"])
                    .inc();
                tracing::error!(listener = self.listener, error = %e, "renewed TLS certificate refused; the previous one stays in service");
                false
            }
        }
    }

    /// The rustls server configuration serving this certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Checks the files every `reload_every` until `shutdown`.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.reload_every.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let this = self.clone();
                    // File reads off the runtime's worker threads.
                    let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Whether a listener on `addr` stays on this machine.
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Whether a host name or address is this machine.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Test helpers: a pilot CA with a server certificate for 127.0.0.1, and an HTTPS server
/// serving it.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A CA and a server certificate for 127.0.0.1 in `dir/<name>`: the CA's certificate and
    /// the server's `[http.tls]`.
    pub fn pilot(dir: &Path) -> (PathBuf, ServerTlsConfig) {
        pki::make_ca(dir, "test CA", 2).unwrap();
        let issued = pki::issue(
            dir,
            dir,
            &pki::Request {
                name: "localhost".into(),
                kind: pki::Kind::Server,
                dns: vec![],
                ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                days: 2,
                until: None,
            },
        )
        .unwrap();
        let config = ServerTlsConfig {
            cert: issued.cert,
            key: issued.key,
            reload_every: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
        };
        (dir.join("ca.pem"), config)
    }

    /// An HTTPS server on a free loopback port with `routes` (inside an actix system).
    pub fn serve(
        config: &ServerTlsConfig,
        routes: fn(&mut actix_web::web::ServiceConfig),
    ) -> (std::net::SocketAddr, actix_web::dev::ServerHandle) {
        let cert = ReloadingCert::load(
            "https",
            config,
            TlsMetrics::register(&Registry::new()).unwrap(),
        )
        .unwrap();
        let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes))
            .workers(1)
            .disable_signals()
            .bind_rustls_0_23("127.0.0.1:0", cert.server_config().unwrap())
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (addr, handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cistern-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_renewed_pair_is_served_and_a_bad_one_refused_keeping_the_old() {
        let dir = scratch("reload");
        let (cert, key) = pair(&dir, "a.example");
        let config = ServerTlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            reload_every: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
        };
        let metrics = TlsMetrics::register(&Registry::new()).unwrap();
        let served = ReloadingCert::load("https", &config, metrics.clone()).unwrap();
        let leaf = |s: &ReloadingCert| {
            let current = s.current.read().unwrap().clone();
            current.end_entity_cert().unwrap().clone().into_owned()
        };
        let first = leaf(&served);
        assert!(!served.reload_if_changed(), "nothing changed yet");

        // A key that is not the certificate's: refused, the old pair stays.
        let (_, other_key) = pair(&dir, "b.example");
        std::fs::copy(&other_key, &key).unwrap();
        bump(&key);
        assert!(!served.reload_if_changed());
        assert_eq!(leaf(&served), first);
        assert_eq!(
            metrics
                .reloads
                .with_label_values(&["https", "refused"])
                .get(),
            1
        );

        // A good renewal: served.
        let (c2, k2) = pair(&dir, "c.example");
        std::fs::copy(&c2, &cert).unwrap();
        std::fs::copy(&k2, &key).unwrap();
        bump(&cert);
        assert!(served.reload_if_changed());
        assert_ne!(leaf(&served), first);
        assert_eq!(
            metrics
                .reloads
                .with_label_values(&["https", "loaded"])
                .get(),
            1
        );
    }

    /// Moves a file's modification time on (file systems with coarse stamps).
    fn bump(path: &Path) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        f.set_modified(later).unwrap();
    }

    #[test]
    fn bad_files_give_errors_that_name_the_file() {
        let dir = scratch("bad");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let e = load_certs(&junk).unwrap_err().to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = load_key(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.pem") && e.contains("private key"), "{e}");
        let e = load_certs(&dir.join("absent.pem")).unwrap_err().to_string();
        assert!(e.contains("absent.pem"), "{e}");
        let half = ClientTlsConfig {
            ca: pair(&dir, "ca.example").0,
            cert: Some(junk),
            key: None,
        };
        assert!(matches!(half.client_config(), Err(TlsError::HalfPair)));
    }
}
