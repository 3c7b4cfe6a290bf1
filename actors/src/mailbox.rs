//! Posting to the actors' unbounded mailboxes.
//!
//! Every actor of this crate makes its mailbox unbounded in `started` (intake permits bound
//! what a room and its devices hold; see [`crate::registry`]). But actix gives a new mailbox a
//! capacity of 16 when the address is made (`Supervisor::start_in_arbiter`), and `started`
//! runs later, on the actor's arbiter: in between, `try_send` through one address refuses the
//! 17th message as `Full`. After a restart the broker redelivers a whole in-flight window at
//! once; a room that had just spawned its devices forwarded the burst to a tank that had not
//! started, and the rest of the run was refused — receipts dropped, messages acknowledged
//! unstored (seen once in CI: 113 samples lost after a `kill -9`).
//!
//! [`Post::post`] queues the message whatever the mailbox's capacity (`do_send`) and refuses
//! it only when the actor is gone, handing it back: the same outcome as `try_send` on an
//! unbounded mailbox, from the first message on.

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message, Recipient};

/// Queues `msg` unless the receiving actor is gone (then it comes back as the error).
pub trait Post<M> {
    fn post(&self, msg: M) -> Result<(), M>;
}

fn post_if_connected<M>(connected: bool, msg: M, send: impl FnOnce(M)) -> Result<(), M> {
    if !connected {
        return Err(msg);
    }
    send(msg);
    Ok(())
}

impl<A, M> Post<M> for Addr<A>
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn post(&self, msg: M) -> Result<(), M> {
        // The one place `do_send` is right: the actor's liveness is checked first.
        #[allow(clippy::disallowed_methods)]
        post_if_connected(self.connected(), msg, |m| self.do_send(m))
    }
}

impl<M> Post<M> for Recipient<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn post(&self, msg: M) -> Result<(), M> {
        // The one place `do_send` is right: the actor's liveness is checked first.
        #[allow(clippy::disallowed_methods)]
        post_if_connected(self.connected(), msg, |m| self.do_send(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{ActorContext, Arbiter, Context, Supervised, Supervisor};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Batch;

    struct Counter(Arc<AtomicUsize>);

    impl Actor for Counter {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Self::Context) {
            ctx.set_mailbox_capacity(0);
        }
    }

    impl Supervised for Counter {}

    impl Handler<Batch> for Counter {
        type Result = ();
        fn handle(&mut self, _: Batch, _: &mut Self::Context) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Stop;

    impl Handler<Stop> for Counter {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
            ctx.stop();
        }
    }

    /// An actor started on a busy arbiter has not run `started` yet: its mailbox still holds
    /// only 16. `try_send` refuses the rest; `post` queues every message, and all are handled.
    #[actix::test]
    async fn a_new_actor_on_a_busy_arbiter_takes_every_posted_message() {
        let arbiter = Arbiter::new();
        let (hold, held) = std::sync::mpsc::channel::<()>();
        // The arbiter's thread is busy until `hold` sends.
        arbiter.spawn_fn(move || {
            let _ = held.recv();
        });
        let handled = Arc::new(AtomicUsize::new(0));
        let count = handled.clone();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| Counter(count));
        #[allow(clippy::disallowed_methods)]
        let refused = (0..40).filter(|_| addr.try_send(Batch).is_err()).count();
        assert!(
            refused > 0,
            "actix's window is gone: this test shows nothing"
        );
        for _ in 0..100 {
            assert!(addr.post(Batch).is_ok());
        }
        let recipient = addr.clone().recipient::<Batch>();
        assert!(recipient.post(Batch).is_ok());
        hold.send(()).unwrap();
        let expected = 40 - refused + 101;
        for _ in 0..200 {
            if handled.load(Ordering::SeqCst) == expected {
                break;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(handled.load(Ordering::SeqCst), expected);
        arbiter.stop();
    }

    /// A message for an actor that is gone comes back.
    #[actix::test]
    async fn a_message_for_a_stopped_actor_comes_back() {
        let handled = Arc::new(AtomicUsize::new(0));
        // Not supervised: once stopped, it is gone.
        let addr = Counter(handled).start();
        let recipient = addr.clone().recipient::<Batch>();
        addr.send(Stop).await.unwrap();
        for _ in 0..100 {
            if !recipient.connected() {
                break;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(recipient.post(Batch).is_err());
        assert!(addr.post(Batch).is_err());
    }
}
