//! `cistern bench --tls`: the same fleet with TLS wherever the product has it — the gateways
//! and the node on MQTT over mutual TLS, the dashboards and the benchmark's own scrapes on
//! HTTPS — so that the cost of TLS is the difference between two runs (issue 24, "TLS costs at
//! 1× fleet"). The certificates come from `cistern pki`'s code, made fresh in the run's
//! working directory.

use super::BenchError;
use crate::tls::pki::{self, Kind, Request};
use crate::tls::ClientTlsConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The run's CA and certificates.
#[derive(Clone, Debug)]
pub struct BenchTls {
    dir: PathBuf,
}

fn pki_error(e: pki::PkiError) -> BenchError {
    BenchError::Generate {
        what: "certificates",
        message: e.to_string(),
    }
}

impl BenchTls {
    /// A CA, the server certificate of the broker and the node (127.0.0.1), and the client
    /// certificates of the node and of the gateways.
    pub fn make(tmp: &Path) -> Result<Self, BenchError> {
        let dir = tmp.join("pki");
        pki::make_ca(&dir, "Cistern bench CA", 2).map_err(pki_error)?;
        let issue = |name: &str, kind| {
            pki::issue(
                &dir,
                &dir,
                &Request {
                    name: name.into(),
                    kind,
                    dns: vec![],
                    ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                    days: 2,
                    until: None,
                },
            )
            .map_err(pki_error)
        };
        issue("localhost", Kind::Server)?;
        issue("bench-node", Kind::Client)?;
        issue("bench-gateways", Kind::Client)?;
        Ok(Self { dir })
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// mosquitto's TLS settings for the listener just declared: client certificates required
    /// (and, run as root, no change of user: the keys are the run's, readable by it only).
    pub fn broker_conf(&self) -> String {
        format!(
            "user root\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
             use_identity_as_username true\n",
            self.path("ca.pem"),
            self.path("localhost.pem"),
            self.path("localhost.key"),
        )
    }

    /// The node's `[http.tls]` and `[mqtt.tls]`.
    pub fn node_conf(&self) -> String {
        format!(
            "[http.tls]\ncert = {:?}\nkey = {:?}\n[mqtt.tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            self.path("localhost.pem"),
            self.path("localhost.key"),
            self.path("ca.pem"),
            self.path("bench-node.pem"),
            self.path("bench-node.key"),
        )
    }

    /// The load generator's arguments.
    pub fn generator_args(&self) -> Vec<String> {
        vec![
            "--tls-ca".into(),
            self.path("ca.pem"),
            "--tls-cert".into(),
            self.path("bench-gateways.pem"),
            "--tls-key".into(),
            self.path("bench-gateways.key"),
        ]
    }

    /// A client configuration trusting the run's CA (the dashboards' sockets).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, BenchError> {
        ClientTlsConfig {
            ca: self.dir.join("ca.pem"),
            cert: None,
            key: None,
        }
        .client_config()
        .map(Arc::new)
        .map_err(|e| BenchError::Generate {
            what: "TLS client",
            message: e.to_string(),
        })
    }

    /// An HTTP agent trusting the run's CA (login and scrapes).
    pub fn agent(&self) -> Result<ureq::Agent, BenchError> {
        let certs =
            crate::tls::load_certs(&self.dir.join("ca.pem")).map_err(|e| BenchError::Generate {
                what: "TLS client",
                message: e.to_string(),
            })?;
        let roots = certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .build();
        Ok(super::scrape::agent_with(Some(tls)))
    }
}
