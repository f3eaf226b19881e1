//! `--concurrency` as shares handed out round-robin between namespaces.
//!
//! Each watched namespace has its own controller, and every controller starts up to `--concurrency`
//! reconciles at once. With one first-come queue, the namespace listed first took every share while
//! its own first writes went out, and the other namespaces' payments started one to two seconds later
//! (measured: each account's first charge second in `scripts/bench`). Waiters are served one
//! namespace at a time, in turn, so every team's DealPayments start at once.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Shares of the reconcile budget, served fairly between namespaces.
#[derive(Debug)]
pub struct Slots {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// Namespaces with waiters, in the order they are served; each with its waiters, oldest first.
    turns: VecDeque<(String, VecDeque<oneshot::Sender<()>>)>,
}

/// One share, given back when dropped.
#[derive(Debug)]
pub struct Share<'a> {
    slots: &'a Slots,
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// A waiter that went away after its share was handed over gives it back.
struct Waiting<'a> {
    slots: &'a Slots,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.slots.release();
            }
        }
    }
}

impl Slots {
    /// `n` shares (at least one).
    pub fn new(n: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: n.max(1),
                turns: VecDeque::new(),
            }),
        }
    }

    /// Waits for a share for a DealPayment of `namespace`.
    pub async fn acquire(&self, namespace: &str) -> Share<'_> {
        let rx = {
            let mut st = self.state.lock().expect("slots lock");
            if st.free > 0 && st.turns.is_empty() {
                st.free -= 1;
                return Share { slots: self };
            }
            let (tx, rx) = oneshot::channel();
            match st.turns.iter_mut().find(|(ns, _)| ns == namespace) {
                Some((_, waiters)) => waiters.push_back(tx),
                None => st
                    .turns
                    .push_back((namespace.to_string(), VecDeque::from([tx]))),
            }
            rx
        };
        let mut waiting = Waiting {
            slots: self,
            rx: Some(rx),
        };
        let handed = waiting.rx.as_mut().expect("receiver").await;
        waiting.rx = None;
        handed.expect("a waiter's sender is only dropped after sending");
        Share { slots: self }
    }

    /// Hands a share to the next namespace's oldest live waiter, or keeps it free.
    fn release(&self) {
        let mut st = self.state.lock().expect("slots lock");
        while let Some((ns, mut waiters)) = st.turns.pop_front() {
            while let Some(tx) = waiters.pop_front() {
                if tx.send(()).is_ok() {
                    if !waiters.is_empty() {
                        st.turns.push_back((ns, waiters));
                    }
                    return;
                }
            }
        }
        st.free += 1;
    }

    /// Shares not held by anyone.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.state.lock().expect("slots lock").free
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn waiters_are_served_one_namespace_at_a_time() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.acquire("a").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Namespace a queues three before b and c queue one each.
        for (i, ns) in ["a", "a", "a", "b", "c"].into_iter().enumerate() {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _share = slots.acquire(ns).await;
                order.lock().unwrap().push(format!("{ns}{i}"));
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a0", "b3", "c4", "a1", "a2"]);
        assert_eq!(slots.free(), 1, "every share came back");
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_loses_no_share() {
        let slots = Slots::new(1);
        let held = slots.acquire("a").await;
        // Cancelled while waiting: nothing to give back.
        assert!(slots.acquire("b").now_or_never().is_none());
        // Handed a share, then dropped before it ran: the share comes back.
        let mut pending = Box::pin(slots.acquire("c"));
        assert!(futures::poll!(pending.as_mut()).is_pending());
        drop(held);
        drop(pending);
        assert_eq!(slots.free(), 1);
        let _again = slots.acquire("d").now_or_never().expect("a free share");
        assert_eq!(slots.free(), 0);
    }
}
