//! Connections to etcd: the options every etcd client of the node is made with, in one place,
//! and TLS (`[cluster.etcd_tls]`): etcd's certificate checked against the configured CA only,
//! the node proving itself with a client certificate. The files are read at every connection,
//! so a renewed certificate is used from the next reconnection on; a file that has become
//! unusable fails the connection (the node then supervises no shard and says why), never a
//! fall-back to plain text.

use super::config::EtcdTlsFiles;
use super::ClusterConfig;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::time::Duration;

/// How a client is made.
#[derive(Clone, Copy, Debug)]
pub struct Connect {
    pub connect_timeout: Duration,
    /// Each request's deadline; `None` for a client that carries streams (a lease's
    /// keep-alive: a request timeout would cut the stream).
    pub request_timeout: Option<Duration>,
    /// A member cut off from its leader refuses at once instead of holding the request.
    pub require_leader: bool,
}

impl Connect {
    /// A client whose requests time out after `request_timeout`, connected within 1 s.
    pub fn requests(request_timeout: Option<Duration>) -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            request_timeout,
            require_leader: false,
        }
    }
}

/// The TLS options of `files`.
fn tls_options(files: EtcdTlsFiles) -> TlsOptions {
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(files.ca));
    if let Some((cert, key)) = files.identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    if let Some(name) = files.server_name {
        tls = tls.domain_name(name);
    }
    tls
}

/// A client of the cluster's etcd. No HTTP/2 pings: etcd answers pings more often than every
/// 5 s (its default `grpc-keepalive-min-time`) with GOAWAY; a dead connection is found by the
/// requests' deadlines and the lease's keep-alive.
pub async fn connect(config: &ClusterConfig, how: Connect) -> Result<Client, etcd_client::Error> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(how.connect_timeout)
        .with_require_leader(how.require_leader);
    if let Some(t) = how.request_timeout {
        options = options.with_timeout(t);
    }
    if let Some(tls) = &config.etcd_tls {
        let files = tls
            .load()
            .map_err(|e| etcd_client::Error::InvalidArgs(e.to_string()))?;
        options = options.with_tls(tls_options(files));
    }
    Client::connect(&config.endpoints, Some(options)).await
}

/// [`describe`], with a hint where etcd's refusal of a client certificate shows only as a
/// closed connection (TLS 1.3 ends the handshake before the server has checked the client).
pub fn explain(config: &ClusterConfig, error: &etcd_client::Error) -> String {
    let text = describe(error);
    let has_certificate = config.etcd_tls.as_ref().is_some_and(|t| t.cert.is_some());
    if has_certificate && (text.contains("connection closed") || text.contains("Canceled")) {
        format!("{text} (etcd closes the connection when it refuses a client certificate: check that [cluster.etcd_tls] cert chains to etcd's --trusted-ca-file and has not expired)")
    } else {
        text
    }
}

/// An etcd error with its causes: a TLS failure says which (an unknown CA, a refused client
/// certificate, a name mismatch), where the error alone says "transport error".
pub fn describe(error: &etcd_client::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
