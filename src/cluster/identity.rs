//! Identity shared by the nodes of a cluster (feature `cluster`): users, API tokens and login
//! sessions live in etcd under `/cistern/<name>/identity/<kind>/<key>` instead of each node's
//! store, so that a token issued by one node is accepted by every node, and a user created,
//! changed or deleted (or a token revoked, a session ended) on one node takes effect on all.
//!
//! - Writes go to etcd before they take effect in the writer's memory ([`EtcdIdentities`], an
//!   [`IdentityPersistence`]); a new user is a create-if-absent transaction, so two nodes
//!   starting at once cannot both create the first admin. Sessions are kept with a lease of
//!   their lifetime: etcd deletes them when they expire. A session's last use is written back
//!   now and then under the same lease (`ignore_lease`), so a session ended meanwhile is never
//!   written back to life. What etcd holds of a session is the digest of its secret, never the
//!   secret. An admin's unlock of login throttling is put under `unlock/` with a lease of a
//!   minute: every node's watch applies it.
//! - Every node keeps its in-memory copy current from one watch on the prefix ([`watch`]):
//!   read everything at a revision ([`Auth::reload`]), then apply each change after it
//!   ([`Auth::apply`]). A broken or silent watch (no answer to a progress request within
//!   [`WATCH_SILENCE`]) is opened again with a fresh read.
//! - The service token: one random secret per cluster at `/cistern/<name>/secret/service`,
//!   created once (create-if-absent) and read by every node ([`service_token`]); each node
//!   accepts it as the viewer `cluster`, for node-to-node calls.
//!
//! The audit log stays in each node's own store: an entry is where the action was taken.

use super::config::ClusterConfig;
use crate::auth::identity::{IdentityKind, IdentityPersistence, IdentityRecord};
use crate::auth::{Auth, Principal, Role};
use crate::store::StoreError;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use futures::future::BoxFuture;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How long the node waits for etcd at start before giving up (it cannot authenticate anyone
/// without the cluster's identities).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a quiet watch is asked for progress.
const WATCH_PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// A watch that says nothing for this long (not even to a progress request) is opened again.
pub const WATCH_SILENCE: Duration = Duration::from_secs(15);
/// The service token's principal.
pub const SERVICE_USER: &str = "cluster";

fn unavailable(e: etcd_client::Error) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

/// The identity prefix of a cluster.
pub fn identity_prefix(config: &ClusterConfig) -> String {
    format!("{}identity/", config.prefix())
}

/// The service token's key.
pub fn service_key(config: &ClusterConfig) -> String {
    format!("{}secret/service", config.prefix())
}

async fn connect(
    config: &ClusterConfig,
    request_timeout: Option<Duration>,
) -> Result<Client, etcd_client::Error> {
    super::etcd::connect(config, super::etcd::Connect::requests(request_timeout)).await
}

/// (kind, key) of an identity key under `prefix`.
fn parse_key(prefix: &str, key: &[u8]) -> Option<(IdentityKind, String)> {
    let rest = std::str::from_utf8(key.strip_prefix(prefix.as_bytes())?).ok()?;
    let (kind, key) = rest.split_once('/')?;
    Some((IdentityKind::from_name(kind)?, key.to_owned()))
}

/// Users, tokens and sessions in etcd (see the module doc).
#[derive(Clone)]
pub struct EtcdIdentities {
    client: Client,
    prefix: String,
    /// The runtime the etcd client's connection lives on (the node's I/O runtime): requests
    /// made from the HTTP workers' runtimes are driven there.
    io: tokio::runtime::Handle,
}

impl std::fmt::Debug for EtcdIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdIdentities")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdIdentities {
    /// Connects to the cluster's etcd and reads from it, retrying for up to a minute (then
    /// the node stops with the reason, for its supervisor to start it again).
    pub async fn connect(
        config: &ClusterConfig,
        io: tokio::runtime::Handle,
    ) -> Result<Self, StoreError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        let cfg = config.clone();
        loop {
            let cfg = cfg.clone();
            let prefix = identity_prefix(&cfg);
            let attempt = io
                .spawn(async move {
                    let mut client = connect(&cfg, Some(Duration::from_secs(2))).await?;
                    // A connection is made lazily: only a request says whether etcd answers
                    // (and whether it takes this node's certificate).
                    let probe = GetOptions::new().with_prefix().with_count_only();
                    client.get(prefix, Some(probe)).await?;
                    Ok::<_, etcd_client::Error>(client)
                })
                .await
                .map_err(|e| StoreError::Unavailable(format!("etcd connect task failed: {e}")))?;
            match attempt {
                Ok(client) => {
                    return Ok(Self {
                        client,
                        prefix: identity_prefix(config),
                        io,
                    })
                }
                Err(error) if started.elapsed() < START_TIMEOUT => {
                    tracing::warn!(error = %super::etcd::explain(config, &error), retry_in = ?backoff, "cannot reach etcd for the cluster's users and tokens");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    return Err(StoreError::Unavailable(format!(
                        "etcd ({}) did not answer within {START_TIMEOUT:?}: {}",
                        config.endpoints.join(", "),
                        super::etcd::explain(config, &error)
                    )))
                }
            }
        }
    }

    fn key(&self, kind: IdentityKind, key: &str) -> String {
        format!("{}{}/{key}", self.prefix, kind.name())
    }

    /// Runs `f` with a client on the I/O runtime.
    async fn on_io<T: Send + 'static>(
        &self,
        f: impl FnOnce(Client) -> BoxFuture<'static, Result<T, etcd_client::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let client = self.client.clone();
        self.io
            .spawn(async move { f(client).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("etcd task failed: {e}")))?
            .map_err(unavailable)
    }
}

impl IdentityPersistence for EtcdIdentities {
    fn load(
        &self,
        kind: IdentityKind,
    ) -> BoxFuture<'_, Result<crate::store::StateRecords, StoreError>> {
        let dir = self.key(kind, "");
        Box::pin(async move {
            let d = dir.clone();
            let resp = self
                .on_io(move |mut c| {
                    Box::pin(async move { c.get(d, Some(GetOptions::new().with_prefix())).await })
                })
                .await?;
            Ok(resp
                .kvs()
                .iter()
                .filter_map(|kv| {
                    let key = std::str::from_utf8(kv.key().strip_prefix(dir.as_bytes())?).ok()?;
                    Some((key.to_owned(), kv.value().to_vec()))
                })
                .collect())
        })
    }

    fn put(
        &self,
        kind: IdentityKind,
        key: String,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let k = self.key(kind, &key);
        Box::pin(async move {
            self.on_io(move |mut c| {
                Box::pin(async move {
                    match value {
                        Some(v) => c.put(k, v, None).await.map(|_| ()),
                        None => c.delete(k, None).await.map(|_| ()),
                    }
                })
            })
            .await
        })
    }

    fn create(
        &self,
        kind: IdentityKind,
        key: String,
        value: Vec<u8>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let k = self.key(kind, &key);
        Box::pin(async move {
            self.on_io(move |mut c| {
                Box::pin(async move {
                    let txn = Txn::new()
                        .when([Compare::create_revision(k.as_bytes(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(k.as_bytes(), value, None)]);
                    c.txn(txn).await.map(|r| r.succeeded())
                })
            })
            .await
        })
    }

    fn shares_sessions(&self) -> bool {
        true
    }

    fn put_session(
        &self,
        id: String,
        record: Option<(Vec<u8>, Duration)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let k = self.key(IdentityKind::Session, &id);
        Box::pin(async move {
            self.on_io(move |mut c| {
                Box::pin(async move {
                    match record {
                        Some((v, ttl)) => put_leased(&mut c, k, v, ttl).await,
                        None => c.delete(k, None).await.map(|_| ()),
                    }
                })
            })
            .await
        })
    }

    fn touch_session(&self, id: String, record: Vec<u8>) -> BoxFuture<'_, Result<(), StoreError>> {
        let k = self.key(IdentityKind::Session, &id);
        Box::pin(async move {
            let written = self
                .on_io(move |mut c| {
                    Box::pin(async move {
                        // Only while the session exists, and under its own lease.
                        let txn = Txn::new()
                            .when([Compare::create_revision(
                                k.as_bytes(),
                                CompareOp::Greater,
                                0,
                            )])
                            .and_then([TxnOp::put(
                                k.as_bytes(),
                                record,
                                Some(PutOptions::new().with_ignore_lease()),
                            )]);
                        c.txn(txn).await.map(|r| r.succeeded())
                    })
                })
                .await?;
            if !written {
                tracing::debug!(session = %id, "a session ended meanwhile: its last use is not written back");
            }
            Ok(())
        })
    }

    fn announce(
        &self,
        kind: IdentityKind,
        key: String,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let k = self.key(kind, &key);
        Box::pin(async move {
            self.on_io(move |mut c| {
                Box::pin(async move { put_leased(&mut c, k, value, ttl).await })
            })
            .await
        })
    }
}

/// Puts `value` at `key` with a lease of `ttl` (rounded up: etcd never drops it before the
/// node does).
async fn put_leased(
    c: &mut Client,
    key: String,
    value: Vec<u8>,
    ttl: Duration,
) -> Result<(), etcd_client::Error> {
    let secs = i64::try_from(ttl.as_secs().saturating_add(1)).unwrap_or(i64::MAX);
    let lease = c.lease_grant(secs, None).await?.id();
    c.put(key, value, Some(PutOptions::new().with_lease(lease)))
        .await
        .map(|_| ())
}

/// Keeps `auth` current with the cluster's identities until `auth` is dropped: a read of every
/// record, then a watch from the next revision; opened again (with a fresh read) when the
/// watch breaks, is cancelled (compaction) or goes silent.
pub async fn watch(config: ClusterConfig, auth: Weak<Auth>) {
    let prefix = identity_prefix(&config);
    let mut backoff = Duration::from_millis(200);
    loop {
        match watch_once(&config, &prefix, &auth).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "the watch on the cluster's identities broke; reading them again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Why a watch ended.
#[derive(Debug, thiserror::Error)]
enum WatchEnded {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("cancelled by etcd: {0}")]
    Cancelled(String),
    #[error("silent for {0:?}")]
    Silent(Duration),
    #[error("the stream ended")]
    Closed,
}

/// One watch: Ok when `auth` is gone (the node stopped).
async fn watch_once(
    config: &ClusterConfig,
    prefix: &str,
    auth: &Weak<Auth>,
) -> Result<(), WatchEnded> {
    // No request timeout on this client: it would cut the watch stream.
    let mut client = connect(config, None).await?;
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await
    .map_err(|_| WatchEnded::Silent(Duration::from_secs(5)))??;
    let revision = read.header().map_or(0, |h| h.revision());
    let records: Vec<IdentityRecord> = read
        .kvs()
        .iter()
        .filter_map(|kv| {
            let (kind, key) = parse_key(prefix, kv.key())?;
            Some((kind, key, kv.value().to_vec()))
        })
        .collect();
    let Some(a) = auth.upgrade() else {
        return Ok(());
    };
    a.reload(records);
    drop(a);
    let mut stream = client
        .watch(
            prefix,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await?;
    let mut heard = Instant::now();
    let mut tick = tokio::time::interval(WATCH_PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if auth.strong_count() == 0 {
                    return Ok(());
                }
                if heard.elapsed() >= WATCH_SILENCE {
                    return Err(WatchEnded::Silent(WATCH_SILENCE));
                }
                if heard.elapsed() >= WATCH_PROGRESS_EVERY {
                    stream.request_progress().await?;
                }
            }
            message = stream.message() => {
                let Some(resp) = message? else {
                    return Err(WatchEnded::Closed);
                };
                heard = Instant::now();
                if resp.canceled() {
                    return Err(WatchEnded::Cancelled(resp.cancel_reason().to_owned()));
                }
                let Some(a) = auth.upgrade() else {
                    return Ok(());
                };
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    let Some((kind, key)) = parse_key(prefix, kv.key()) else {
                        continue;
                    };
                    match event.event_type() {
                        EventType::Put => a.apply(kind, &key, Some(kv.value())),
                        EventType::Delete => a.apply(kind, &key, None),
                    }
                }
            }
        }
    }
}

/// The cluster's service token: created once (create-if-absent) and read by every node.
pub async fn service_token(
    client: &mut Client,
    config: &ClusterConfig,
) -> Result<String, etcd_client::Error> {
    let key = service_key(config);
    let fresh = crate::auth::secret::service_secret();
    let txn = Txn::new()
        .when([Compare::create_revision(
            key.as_bytes(),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(key.as_bytes(), fresh.clone(), None)]);
    if client.txn(txn).await?.succeeded() {
        return Ok(fresh);
    }
    let resp = client.get(key.as_bytes(), None).await?;
    let value = resp
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .unwrap_or(fresh);
    Ok(value)
}

/// The key that says node `node` has brought its own identities into the cluster.
pub fn imported_key(config: &ClusterConfig, node: &str) -> String {
    format!("{}imported/{node}", config.prefix())
}

/// What [`import_local`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Records written to the cluster.
    pub added: usize,
    /// Records whose key the cluster already held: the cluster's are kept.
    pub kept: usize,
    /// This node had imported before: nothing was read.
    pub before: bool,
}

/// The kinds a node brings into a cluster: users, API tokens and enrolled gateways (sessions
/// and unlocks are short-lived and stay behind).
const IMPORTED_KINDS: [IdentityKind; 3] = [
    IdentityKind::User,
    IdentityKind::Token,
    IdentityKind::Gateway,
];

/// Brings the identities a node kept in its own store, from before it joined the cluster,
/// into the cluster, once per node id: each record is added only where the cluster has none
/// under its key (the cluster's wins), and a marker (`imported/<node>`) makes later starts
/// skip it, so that a user deleted in the cluster is not brought back by a node's restart.
/// Without it, a site switched to a cluster would start with no user but a fresh first admin.
pub async fn import_local(
    cluster: &ClusterConfig,
    shared: &EtcdIdentities,
    local: &dyn IdentityPersistence,
) -> Result<Imported, StoreError> {
    let marker = imported_key(cluster, &cluster.node_id);
    let m = marker.clone();
    let done = shared
        .on_io(move |mut c| {
            Box::pin(async move {
                let found = c.get(m, Some(GetOptions::new().with_count_only())).await?;
                Ok(found.count() > 0)
            })
        })
        .await?;
    if done {
        return Ok(Imported {
            before: true,
            ..Imported::default()
        });
    }
    let mut outcome = Imported::default();
    for kind in IMPORTED_KINDS {
        for (key, value) in local.load(kind).await? {
            if shared.create(kind, key, value).await? {
                outcome.added += 1;
            } else {
                outcome.kept += 1;
            }
        }
    }
    let stamp = crate::cluster::journal::unix_ms(std::time::SystemTime::now()).to_string();
    shared
        .on_io(move |mut c| Box::pin(async move { c.put(marker, stamp, None).await.map(drop) }))
        .await?;
    Ok(outcome)
}

/// Opens the cluster's identities for `auth`'s settings: loaded now, kept current by a watch
/// spawned on `io`, and the service token accepted as the viewer [`SERVICE_USER`]. `local`:
/// the node's own store, whose identities are brought into the cluster once
/// ([`import_local`]).
pub async fn open(
    config: &crate::auth::AuthConfig,
    cluster: &ClusterConfig,
    io: tokio::runtime::Handle,
    local: Option<&dyn IdentityPersistence>,
) -> Result<std::sync::Arc<Auth>, crate::auth::IdentityError> {
    let store = EtcdIdentities::connect(cluster, io.clone()).await?;
    if let Some(local) = local {
        let imported = import_local(cluster, &store, local).await?;
        if !imported.before {
            tracing::info!(
                added = imported.added,
                kept_the_clusters = imported.kept,
                node = %cluster.node_id,
                "this node's own users, API tokens and gateways brought into the cluster (once)"
            );
        }
    }
    let mut client = store.client.clone();
    let c = cluster.clone();
    let token = io
        .spawn(async move { service_token(&mut client, &c).await })
        .await
        .map_err(|e| StoreError::Unavailable(format!("etcd task failed: {e}")))?
        .map_err(unavailable)?;
    let auth = std::sync::Arc::new(Auth::open(config, store).await?);
    auth.insert_token(token, Principal::new(SERVICE_USER, Role::Viewer));
    io.spawn(watch(cluster.clone(), std::sync::Arc::downgrade(&auth)));
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_parse_back_to_their_kind_and_key() {
        let p = "/cistern/c1/identity/";
        assert_eq!(
            parse_key(p, b"/cistern/c1/identity/user/op1"),
            Some((IdentityKind::User, "op1".into()))
        );
        assert_eq!(
            parse_key(p, b"/cistern/c1/identity/session/ab12"),
            Some((IdentityKind::Session, "ab12".into()))
        );
        assert_eq!(parse_key(p, b"/cistern/c1/identity/other/x"), None);
        assert_eq!(parse_key(p, b"/cistern/c2/identity/user/x"), None);
    }
}
