//! `cistern pki`: a certificate authority and certificates for a pilot (issue 24 item 2), so
//! that a utility can go TLS-only and device-authenticated without an enterprise PKI on day
//! one (ops/deploy.md). A production deployment may use its own CA instead: nothing else in
//! the platform depends on these commands.
//!
//! - `ca` makes the CA (`ca.pem`, and `ca.key` readable by its owner only);
//! - `issue` signs a server certificate (the HTTPS listener, the MQTT broker: DNS names and IP
//!   addresses in the SAN) or a client certificate (a gateway, a platform node): its name in
//!   both the CN — mosquitto's `use_identity_as_username` reads the CN — and the SAN, which
//!   rustls requires;
//! - `fingerprint` prints a certificate's SHA-256, the form a gateway is enrolled under.
//!
//! Keys are ECDSA P-256. Nothing is overwritten: an existing file is an error.

use super::{fingerprint, load_certs, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A listener: the HTTPS API and UI, the MQTT broker.
    Server,
    /// A connecting party that proves who it is: a gateway, a platform node.
    Client,
    /// Both at once: an etcd member, which serves clients and connects to the other members
    /// with the same certificate (`--peer-cert-file`).
    Peer,
}

/// Why a PKI command failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0} exists: refusing to overwrite it")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{what}: {reason}")]
    Cert { what: String, reason: String },
    #[error(
        "a certificate name is 1 to 64 characters of letters, digits, '.', '-' and '_': {0:?}"
    )]
    Name(String),
    #[error("the expiry date {0} is not after the start of validity")]
    Validity(String),
}

fn cert_error(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError::Cert {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Writes a new file (never over an existing one), private to its owner when `secret`.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists(path.to_path_buf())
        } else {
            PkiError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    file.write_all(text.as_bytes())
        .map_err(|source| PkiError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::Name(name.to_string()))
    }
}

/// The validity window: from an hour ago (clock skew) for `days`, or up to `until`.
fn validity(
    days: u32,
    until: Option<OffsetDateTime>,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let now = OffsetDateTime::now_utc();
    let not_after = until.unwrap_or(now + time::Duration::days(i64::from(days)));
    let not_before = (now - time::Duration::hours(1)).min(not_after - time::Duration::days(1));
    if not_after <= not_before {
        return Err(PkiError::Validity(not_after.to_string()));
    }
    Ok((not_before, not_after))
}

/// Makes a CA in `dir`: `ca.pem` and `ca.key`. Returns the certificate's path.
pub fn make_ca(dir: &Path, name: &str, days: u32) -> Result<PathBuf, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let key = KeyPair::generate().map_err(cert_error("CA key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "Cistern");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(days, None)?;
    let cert = params.self_signed(&key).map_err(cert_error("CA"))?;
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert_path.exists() {
        return Err(PkiError::Exists(cert_path));
    }
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok(cert_path)
}

/// What to issue.
#[derive(Clone, Debug)]
pub struct Request {
    /// The certificate's name: CN and first SAN (a gateway's id, a node's name, a host name).
    pub name: String,
    pub kind: Kind,
    /// More DNS names (servers).
    pub dns: Vec<String>,
    /// IP addresses (servers reached by address).
    pub ips: Vec<IpAddr>,
    pub days: u32,
    /// Expires then instead (a test of expired certificates sets a past date).
    pub until: Option<OffsetDateTime>,
}

/// What was issued.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the certificate (hex), as enrolled.
    pub fingerprint: String,
}

/// Signs a certificate with the CA in `ca_dir`, writing `<out>/<name>.pem` and `.key`.
pub fn issue(ca_dir: &Path, out: &Path, request: &Request) -> Result<Issued, PkiError> {
    check_name(&request.name)?;
    let ca_key = KeyPair::from_pem(&read_text(&ca_dir.join("ca.key"))?)
        .map_err(cert_error("the CA key (ca.key)"))?;
    let ca_pem = read_text(&ca_dir.join("ca.pem"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(cert_error("the CA certificate (ca.pem)"))?;
    let key = KeyPair::generate().map_err(cert_error("key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, request.name.as_str());
    params.distinguished_name = dn;
    let mut sans = vec![SanType::DnsName(
        request
            .name
            .clone()
            .try_into()
            .map_err(cert_error("name"))?,
    )];
    for d in &request.dns {
        sans.push(SanType::DnsName(
            d.clone().try_into().map_err(cert_error("DNS name"))?,
        ));
    }
    sans.extend(request.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match request.kind {
        Kind::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Kind::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Kind::Peer => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(request.days, request.until)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(cert_error("certificate"))?;
    std::fs::create_dir_all(out).map_err(|source| PkiError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let (cert_path, key_path) = (
        out.join(format!("{}.pem", request.name)),
        out.join(format!("{}.key", request.name)),
    );
    if cert_path.exists() {
        return Err(PkiError::Exists(cert_path));
    }
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok(Issued {
        cert: cert_path,
        key: key_path,
        fingerprint: fingerprint(cert.der()),
    })
}

/// The SHA-256 fingerprint of the first certificate in a PEM file.
pub fn fingerprint_of(path: &Path) -> Result<String, PkiError> {
    let certs = load_certs(path)?;
    Ok(fingerprint(&certs[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_certificate_chains_to_its_ca_and_nothing_is_overwritten() {
        let dir = std::env::temp_dir().join(format!("cistern-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = make_ca(&dir, "Pilot CA", 30).unwrap();
        assert!(matches!(
            make_ca(&dir, "Pilot CA", 30),
            Err(PkiError::Exists(_))
        ));
        let issued = issue(
            &dir,
            &dir,
            &Request {
                name: "gw-XM-0001".into(),
                kind: Kind::Client,
                dns: vec![],
                ips: vec![],
                days: 10,
                until: None,
            },
        )
        .unwrap();
        assert_eq!(issued.fingerprint.len(), 64);
        assert_eq!(fingerprint_of(&issued.cert).unwrap(), issued.fingerprint);
        // rustls accepts it as a client certificate under the CA.
        let roots = super::super::load_roots(&ca).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(roots.into())
            .build()
            .unwrap();
        let chain = load_certs(&issued.cert).unwrap();
        verifier
            .verify_client_cert(&chain[0], &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        assert!(matches!(
            issue(
                &dir,
                &dir,
                &Request {
                    name: "gw/../x".into(),
                    kind: Kind::Client,
                    dns: vec![],
                    ips: vec![],
                    days: 1,
                    until: None
                }
            ),
            Err(PkiError::Name(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
