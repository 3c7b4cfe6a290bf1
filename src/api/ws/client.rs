//! One client's server-side state — its session: subscriptions, their sequence numbers and
//! replay rings, and its bounded outgoing queue with conflation.
//!
//! The hub pushes updates (pre-serialised [`Data`], shared by every subscriber) and never waits: a push
//! only takes this client's lock for a map insert. The socket's writer task takes frames out
//! and gives each delta its `seq` as it sends it, so conflation never breaks the +1 sequence.
//! A session outlives its socket for the resume window: updates keep conflating meanwhile, and
//! a reconnecting client gets the deltas it missed from the rings.

use super::metrics::WsMetrics;
use super::protocol::{Data, HeldSubscription, SubscriptionFrame};
use super::topics::Topic;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Replaced a pending update of the same key.
    Conflated,
    /// The client's queue is full: the subscription's pending updates were dropped and it
    /// needs a fresh snapshot (`set_snapshot` with `resync`).
    Overflow,
    /// No such subscription (it was just removed).
    Gone,
}

/// What a resubscription with `since` can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The missed deltas were queued from the ring; the subscription is live again.
    Replayed,
    /// The gap cannot be filled: the hub sends a snapshot with `resync: true`.
    Resync,
}

/// Why a subscription was refused before it reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The id is live, or already on its way to the hub.
    Duplicate,
    /// The session holds (or has on their way) `max_subscriptions`.
    TooMany,
}

#[derive(Debug)]
struct Pending {
    data: Data,
    conflated: u32,
}

#[derive(Debug)]
struct PendingSnapshot {
    data: Data,
    resync: bool,
}

#[derive(Debug)]
struct Sub {
    id: String,
    topic: Topic,
    /// The normalised filter (compared on resume).
    filter: serde_json::Value,
    /// The last seq sent; none before the first snapshot went out.
    seq: Option<u64>,
    /// The seq of the last snapshot sent: deltas before it cannot be replayed.
    base: u64,
    /// Sent deltas, oldest first: (seq, frame).
    ring: VecDeque<(u64, Arc<str>)>,
    /// Frames to send again (a replay after resume), before anything pending.
    replay: VecDeque<Arc<str>>,
    snapshot: Option<PendingSnapshot>,
    pending: HashMap<Arc<str>, Pending>,
    order: VecDeque<Arc<str>>,
    /// Held after its socket went away, until resubscribed.
    paused: bool,
}

impl Sub {
    fn new(id: String, topic: Topic, filter: serde_json::Value) -> Self {
        Self {
            id,
            topic,
            filter,
            seq: None,
            base: 0,
            ring: VecDeque::new(),
            replay: VecDeque::new(),
            snapshot: None,
            pending: HashMap::new(),
            order: VecDeque::new(),
            paused: false,
        }
    }

    fn has_work(&self) -> bool {
        !self.paused
            && (self.snapshot.is_some()
                || !self.replay.is_empty()
                || (self.seq.is_some() && !self.order.is_empty()))
    }
}

/// The mutable part of a session.
#[derive(Debug, Default)]
struct State {
    subs: Vec<Sub>,
    /// Whole frames sent before any subscription's data (answers, errors).
    control: VecDeque<String>,
    /// The subscriptions as the socket's reader has asked for them, in message order: id →
    /// subscribed on this socket (false: held from an earlier socket, not resubscribed yet).
    /// The hub takes subscribes and unsubscribes through its channel, later; the limit and
    /// duplicate ids are checked against this instead, so pipelined messages count at once.
    claims: HashMap<String, bool>,
    /// Round-robin position among the subscriptions.
    cursor: usize,
    /// Pending updates over every subscription (bounded by `queue_keys`).
    pending: usize,
    /// When the socket went away (none while attached).
    detached_at: Option<Instant>,
    /// Bumped on every attach, so that a stale socket task cannot detach a new one.
    epoch: u64,
}

/// A client session (see the module doc).
#[derive(Debug)]
pub struct Client {
    pub session: String,
    pub user: String,
    state: Mutex<State>,
    /// Wakes the writer when there is something to send.
    pub wake: Notify,
    queue_keys: usize,
    replay: usize,
    metrics: WsMetrics,
}

impl Client {
    pub fn new(
        session: String,
        user: String,
        queue_keys: usize,
        replay: usize,
        metrics: WsMetrics,
    ) -> Self {
        Self {
            session,
            user,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            queue_keys: queue_keys.max(1),
            replay,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a whole frame (an answer or an error), ahead of subscription data.
    pub fn send_control(&self, frame: String) {
        self.lock().control.push_back(frame);
        self.wake.notify_one();
    }

    /// Marks the session attached to a new socket; returns its epoch.
    pub fn attach(&self) -> u64 {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.detached_at = None;
        st.epoch += 1;
        st.control.clear();
        // Everything held waits for its resubscription.
        for sub in &mut st.subs {
            sub.paused = true;
            sub.replay.clear();
        }
        st.claims = st.subs.iter().map(|s| (s.id.clone(), false)).collect();
        st.epoch
    }

    /// The socket of `epoch` went away.
    pub fn detach(&self, epoch: u64) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.epoch == epoch {
            st.detached_at = Some(Instant::now());
            st.control.clear();
        }
    }

    /// The epoch of the socket attached last.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Since when the session has no socket.
    pub fn detached_since(&self) -> Option<Instant> {
        self.lock().detached_at
    }

    /// The subscriptions held, with the last seq sent on each.
    pub fn held(&self) -> Vec<HeldSubscription> {
        self.lock()
            .subs
            .iter()
            .map(|s| HeldSubscription {
                id: s.id.clone(),
                topic: s.topic.as_str(),
                seq: s.seq.unwrap_or(0),
            })
            .collect()
    }

    /// Whether `id` is a live (not paused) subscription.
    pub fn is_live(&self, id: &str) -> bool {
        self.lock().subs.iter().any(|s| s.id == id && !s.paused)
    }

    /// Whether `id` is held with this topic and filter.
    pub fn holds(&self, id: &str, topic: Topic, filter: &serde_json::Value) -> bool {
        self.lock()
            .subs
            .iter()
            .any(|s| s.id == id && s.topic == topic && &s.filter == filter)
    }

    /// The reader's subscribe, counted before the hub has it: refused when `id` was already
    /// subscribed on this socket, or when the session would hold more than `max`
    /// (resubscribing a held id takes no new place).
    pub fn claim(&self, id: &str, max: usize) -> Result<(), Refused> {
        let mut guard = self.lock();
        let claims = &mut guard.claims;
        match claims.get(id) {
            Some(true) => Err(Refused::Duplicate),
            None if claims.len() >= max => Err(Refused::TooMany),
            Some(false) | None => {
                claims.insert(id.to_owned(), true);
                Ok(())
            }
        }
    }

    /// The reader's unsubscribe (or a subscribe that never reached the hub, or one the hub
    /// dropped): the place is free at once.
    pub fn unclaim(&self, id: &str) {
        self.lock().claims.remove(id);
    }

    /// Adds a subscription (replacing a held one of the same id); its snapshot follows.
    pub fn add(&self, id: &str, topic: Topic, filter: serde_json::Value) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(i) = st.subs.iter().position(|s| s.id == id) {
            let old = st.subs.remove(i);
            st.pending -= old.order.len();
        }
        st.subs.push(Sub::new(id.to_owned(), topic, filter));
    }

    /// Removes a subscription; false when it was not held.
    pub fn remove(&self, id: &str) -> bool {
        let mut guard = self.lock();
        let st = &mut *guard;
        match st.subs.iter().position(|s| s.id == id) {
            Some(i) => {
                let old = st.subs.remove(i);
                st.pending -= old.order.len();
                true
            }
            None => false,
        }
    }

    /// Resumes a held subscription from `since` (the last seq the client processed).
    pub fn resume(&self, id: &str, since: u64) -> Resume {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(sub) = st.subs.iter_mut().find(|s| s.id == id) else {
            return Resume::Resync;
        };
        let Some(seq) = sub.seq else {
            return Resume::Resync;
        };
        if since > seq || since < sub.base {
            return Resume::Resync;
        }
        // Every delta after `since` must still be in the ring.
        let first_needed = since + 1;
        if first_needed <= seq && sub.ring.front().is_none_or(|(s, _)| *s > first_needed) {
            return Resume::Resync;
        }
        sub.replay = sub
            .ring
            .iter()
            .filter(|(s, _)| *s > since)
            .map(|(_, f)| f.clone())
            .collect();
        sub.paused = false;
        drop(guard);
        self.wake.notify_one();
        Resume::Replayed
    }

    /// Sets the snapshot to send next on a subscription (replacing an unsent one) and drops
    /// its pending deltas, which the snapshot supersedes.
    pub fn set_snapshot(&self, id: &str, data: Data, resync: bool) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(i) = st.subs.iter().position(|s| s.id == id) else {
            return;
        };
        let sub = &mut st.subs[i];
        let dropped = sub.order.len();
        sub.pending.clear();
        sub.order.clear();
        sub.replay.clear();
        sub.paused = false;
        let resync = resync || sub.snapshot.as_ref().is_some_and(|s| s.resync);
        sub.snapshot = Some(PendingSnapshot { data, resync });
        st.pending -= dropped;
        drop(guard);
        self.wake.notify_one();
    }

    /// Queues an update of `key` on subscription `id`; a pending update of the same key is
    /// replaced (conflated).
    pub fn push(&self, id: &str, key: &Arc<str>, data: &Data) -> Pushed {
        let mut guard = self.lock();
        let st = &mut *guard;
        let full = st.pending >= self.queue_keys;
        let Some(i) = st.subs.iter().position(|s| s.id == id) else {
            return Pushed::Gone;
        };
        let sub = &mut st.subs[i];
        if let Some(p) = sub.pending.get_mut(key) {
            p.data = data.clone();
            p.conflated += 1;
            self.metrics.conflated.inc();
            return Pushed::Conflated;
        }
        if full {
            let dropped = sub.order.len() + 1;
            sub.pending.clear();
            sub.order.clear();
            st.pending -= dropped - 1;
            self.metrics.dropped.inc_by(dropped as u64);
            return Pushed::Overflow;
        }
        sub.pending.insert(
            key.clone(),
            Pending {
                data: data.clone(),
                conflated: 0,
            },
        );
        sub.order.push_back(key.clone());
        let wake = !sub.paused;
        st.pending += 1;
        drop(guard);
        if wake {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// The next frame to send, if any: answers first, then the subscriptions in turn.
    #[cfg(test)]
    pub fn next_frame(&self) -> Option<Arc<str>> {
        let mut guard = self.lock();
        self.next_in(&mut guard)
    }

    /// The next frame for the socket attached as `epoch`; none once a newer socket resumed
    /// the session. The check is made under the lock that takes the frame: a stale writer
    /// that took a frame (giving it its `seq` and a place in the ring) and then dropped it
    /// would leave its successor a gap in the sequence.
    pub fn next_frame_for(&self, epoch: u64) -> Option<Arc<str>> {
        let mut guard = self.lock();
        if guard.epoch != epoch {
            return None;
        }
        self.next_in(&mut guard)
    }

    fn next_in(&self, st: &mut State) -> Option<Arc<str>> {
        if let Some(f) = st.control.pop_front() {
            return Some(Arc::from(f));
        }
        let n = st.subs.len();
        for k in 0..n {
            let i = (st.cursor + k) % n;
            if !st.subs[i].has_work() {
                continue;
            }
            st.cursor = (i + 1) % n.max(1);
            let replay = self.replay;
            let sub = &mut st.subs[i];
            if let Some(snap) = sub.snapshot.take() {
                let seq = sub.seq.map_or(0, |s| s + 1);
                sub.seq = Some(seq);
                sub.base = seq;
                sub.ring.clear();
                let frame = SubscriptionFrame::Snapshot {
                    id: &sub.id,
                    topic: sub.topic.as_str(),
                    seq,
                    resync: snap.resync,
                    data: &snap.data,
                };
                return Some(Arc::from(frame.to_text()));
            }
            if let Some(f) = sub.replay.pop_front() {
                return Some(f);
            }
            let key = sub.order.pop_front()?;
            let p = sub.pending.remove(&key)?;
            let seq = sub.seq.map_or(0, |s| s + 1);
            sub.seq = Some(seq);
            let frame: Arc<str> = Arc::from(
                SubscriptionFrame::Delta {
                    id: &sub.id,
                    seq,
                    key: &key,
                    conflated: p.conflated,
                    data: &p.data,
                }
                .to_text(),
            );
            if replay > 0 {
                if sub.ring.len() >= replay {
                    sub.ring.pop_front();
                }
                sub.ring.push_back((seq, frame.clone()));
            }
            st.pending -= 1;
            return Some(frame);
        }
        None
    }
}
