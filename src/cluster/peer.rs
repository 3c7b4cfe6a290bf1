//! Calls from one node of the cluster to another over HTTP: the REST request forwarded to the
//! node that acts for its room, and the parts of a fleet-wide list gathered from every member
//! (`api::forward`). A blocking `ureq` call on the blocking pool, with one deadline for
//! connecting and reading; no redirects, any status is an answer. Over HTTPS when the peer
//! advertises `https://`, its certificate checked against `[cluster] peer_ca` ([`trust_ca`]).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The CA of the other nodes' HTTPS certificates (`[cluster] peer_ca`), set once at start.
static PEER_TLS: OnceLock<ureq::tls::TlsConfig> = OnceLock::new();

/// Trusts the CA in `ca` (PEM) for every call to another node from now on, instead of the
/// public roots. Set once per process (a node has one cluster); a second call is ignored.
pub fn trust_ca(ca: &Path) -> Result<(), crate::tls::TlsError> {
    let roots = crate::tls::load_certs(ca)?
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let _ = PEER_TLS.set(
        ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
            .build(),
    );
    Ok(())
}

/// Names the node that sent a request on (`X-Cistern-Forwarded-By: <node>`): a request that
/// carries it is never sent on again.
pub const FORWARDED_BY: &str = "x-cistern-forwarded-by";
/// Names the node that answered a forwarded request.
pub const SERVED_BY: &str = "x-cistern-served-by";
/// `local`: answer with this node's own part of a fleet-wide list.
pub const SCOPE: &str = "x-cistern-scope";

/// What became of a request sent on to another node (`cistern_cluster_forwarded_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// The owner answered (whatever its status).
    Ok,
    /// The owner could not be reached or did not answer in time.
    Unreachable,
    /// Already forwarded once: not sent on again.
    Refused,
}

impl Forwarded {
    pub fn label(self) -> &'static str {
        match self {
            Forwarded::Ok => "ok",
            Forwarded::Unreachable => "unreachable",
            Forwarded::Refused => "refused",
        }
    }
}

/// A request to another node.
#[derive(Clone, Debug)]
pub struct PeerRequest {
    pub method: String,
    /// Absolute: the peer's advertised base, the path and the query.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// For the whole answer.
    pub timeout: Duration,
    /// For connecting (a node that is gone is known sooner than a slow answer).
    pub connect_timeout: Duration,
}

/// Another node's answer.
#[derive(Clone, Debug)]
pub struct PeerResponse {
    pub status: u16,
    /// The answer's headers worth passing on (content type, retry-after, www-authenticate,
    /// allow), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why another node gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{url}: {error}")]
    Unreachable { url: String, error: String },
}

/// The answer headers passed on.
const PASSED_ON: [&str; 4] = ["content-type", "retry-after", "www-authenticate", "allow"];
/// The most a peer's answer may hold (a fleet's room list is ~1 MB at 2,100 rooms).
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

fn call_blocking(req: PeerRequest) -> Result<PeerResponse, PeerError> {
    let unreachable = |error: String| PeerError::Unreachable {
        url: req.url.clone(),
        error,
    };
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(req.connect_timeout.min(req.timeout)))
        .timeout_global(Some(req.timeout))
        .http_status_as_error(false)
        .max_redirects(0);
    if let Some(tls) = PEER_TLS.get() {
        config = config.tls_config(tls.clone());
    }
    let agent: ureq::Agent = config.build().into();
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let sent = match req.body.clone() {
        Some(body) => builder.body(body).map(|r| agent.run(r)),
        None => builder.body(()).map(|r| agent.run(r)),
    };
    let mut resp = sent
        .map_err(|e| unreachable(e.to_string()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    let headers = PASSED_ON
        .iter()
        .filter_map(|h| {
            let v = resp.headers().get(*h)?.to_str().ok()?;
            Some(((*h).to_owned(), v.to_owned()))
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(PeerResponse {
        status,
        headers,
        body,
    })
}

/// Sends `req` to another node on the blocking pool.
pub async fn call(req: PeerRequest) -> Result<PeerResponse, PeerError> {
    let url = req.url.clone();
    tokio::task::spawn_blocking(move || call_blocking(req))
        .await
        .map_err(|e| PeerError::Unreachable {
            url,
            error: format!("the call's task failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node serving HTTPS with a certificate of the cluster's CA answers a forwarded call;
    /// plain HTTP to it gets no answer.
    #[actix_web::test]
    async fn a_peer_is_called_over_https_with_the_clusters_ca() {
        let dir = std::env::temp_dir().join(format!("cistern-peer-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ca, config) = crate::tls::testing::pilot(&dir);
        trust_ca(&ca).unwrap();
        let (addr, handle) = crate::tls::testing::serve(&config, |app| {
            app.route(
                "/api/v1/rooms/XM-0001",
                actix_web::web::get().to(|| async { "{\"id\":\"XM-0001\"}" }),
            );
        });
        let request = |url: String| PeerRequest {
            method: "GET".into(),
            url,
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        };
        let answer = call(request(format!("https://{addr}/api/v1/rooms/XM-0001")))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"{\"id\":\"XM-0001\"}");
        // Plain HTTP to the HTTPS port is no answer.
        assert!(call(request(format!("http://{addr}/api/v1/rooms/XM-0001")))
            .await
            .is_err());
        handle.stop(true).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
