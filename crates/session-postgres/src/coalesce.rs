//! Coalescing concurrent calls: a leader runs one statement while callers
//! arriving meanwhile queue, and the next leader serves all of them with
//! one statement.
//!
//! A [`Coalescer`] has a fixed number of slots (statements in flight). A
//! caller that finds a free slot takes it and runs its statement at once,
//! alone: at low concurrency nothing waits and nothing is batched. A caller
//! that finds every slot taken queues. When a slot's statement is done, the
//! slot passes to the oldest queued caller, which leads the queue (up to
//! [`MAX_BATCH`] callers) as one batch; the others wait for the answer the
//! leader sends them.
//!
//! Cancellation is safe at every await: a leader dropped mid-statement
//! passes its slot on (through [`Slot`]'s `Drop`), and the callers it was
//! serving see their reply channel close and queue again; a queued caller
//! that is dropped is skipped; and a queued caller dropped after the slot
//! was handed to it but before it ran (a request timeout, a client gone)
//! hands the slot and its batch on (through [`Queued`]'s `Drop`).

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The most callers one statement serves; the rest wait for the next one.
pub(crate) const MAX_BATCH: usize = 256;

/// What a queued caller is sent.
enum Reply<R, A> {
    /// Its answer, from another caller's statement.
    Done(A),
    /// The slot is its: it leads these other callers.
    Lead(Vec<Waiter<R, A>>),
}

/// A queued caller: its request and where its reply goes.
pub(crate) struct Waiter<R, A> {
    pub(crate) request: R,
    reply: oneshot::Sender<Reply<R, A>>,
}

impl<R, A> Waiter<R, A> {
    /// Sends the caller its answer (a caller that has gone away is skipped).
    pub(crate) fn answer(self, answer: A) {
        // Err: the caller was dropped meanwhile; nobody wants the answer.
        let _ = self.reply.send(Reply::Done(answer));
    }
}

struct State<R, A> {
    /// Slots taken: statements in flight, or leaders about to run one.
    running: usize,
    /// Callers waiting for a slot, oldest first.
    queue: Vec<Waiter<R, A>>,
}

/// Concurrent calls of one kind (a read, a renewing read), coalesced.
pub(crate) struct Coalescer<R, A> {
    state: Mutex<State<R, A>>,
    slots: usize,
}

impl<R, A> std::fmt::Debug for Coalescer<R, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Coalescer")
            .field("slots", &self.slots)
            .field("running", &state.running)
            .field("queued", &state.queue.len())
            .finish()
    }
}

/// The outcome of [`Coalescer::join`].
pub(crate) enum Joined<'a, R, A> {
    /// Another caller's statement answered this one.
    Answered(A),
    /// This caller holds a slot: it runs one statement for itself and
    /// `others` (empty when it runs alone), answers them, then calls
    /// [`Slot::pass_on`].
    Lead {
        slot: Slot<'a, R, A>,
        others: Vec<Waiter<R, A>>,
    },
}

impl<R, A> Coalescer<R, A> {
    /// A coalescer running at most `slots` (at least 1) statements at once.
    pub(crate) fn new(slots: usize) -> Self {
        Coalescer {
            state: Mutex::new(State {
                running: 0,
                queue: Vec::new(),
            }),
            slots: slots.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<R, A>> {
        // Nothing panics while the lock is held; a poisoned state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a free slot at once, or queues until a slot passes to this
    /// caller or another caller's statement answers it. `request` makes
    /// this caller's request when it has to queue (a leader needs none:
    /// the caller knows its own).
    pub(crate) async fn join(&self, request: impl Fn() -> R) -> Joined<'_, R, A> {
        loop {
            let waiting = {
                let mut state = self.lock();
                if state.running < self.slots {
                    state.running += 1;
                    return Joined::Lead {
                        slot: Slot { coalescer: self },
                        others: Vec::new(),
                    };
                }
                let (reply, waiting) = oneshot::channel();
                state.queue.push(Waiter {
                    request: request(),
                    reply,
                });
                Queued {
                    coalescer: self,
                    reply: waiting,
                }
            };
            // Dropped here (this future dropped), `waiting` passes on a
            // slot sent to it meanwhile.
            let mut waiting = waiting;
            match (&mut waiting.reply).await {
                Ok(Reply::Done(answer)) => return Joined::Answered(answer),
                Ok(Reply::Lead(others)) => {
                    return Joined::Lead {
                        slot: Slot { coalescer: self },
                        others,
                    };
                }
                // The leader serving this caller was dropped before it
                // answered: queue again (or lead, if a slot is free).
                Err(_) => {}
            }
        }
    }

    /// A slot and its batch handed to a caller that went away: the batch
    /// goes back to the head of the queue (its callers are the oldest),
    /// and the slot passes on.
    fn hand_back(&self, others: Vec<Waiter<R, A>>) {
        self.lock().queue.splice(0..0, others);
        self.release();
    }

    /// Passes a slot to the oldest queued caller, with the callers queued
    /// behind it (up to [`MAX_BATCH`] in all), or frees it if none waits.
    fn release(&self) {
        loop {
            let mut batch = {
                let mut state = self.lock();
                if state.queue.is_empty() {
                    state.running -= 1;
                    return;
                }
                let take = state.queue.len().min(MAX_BATCH);
                let rest = state.queue.split_off(take);
                std::mem::replace(&mut state.queue, rest)
            };
            // The oldest caller still waiting leads the others; callers
            // dropped meanwhile are skipped.
            while !batch.is_empty() {
                let leader = batch.remove(0);
                match leader.reply.send(Reply::Lead(batch)) {
                    Ok(()) => return,
                    Err(Reply::Lead(back)) => batch = back,
                    // `send` gives back what it was given: never this.
                    Err(Reply::Done(_)) => batch = Vec::new(),
                }
            }
        }
    }
}

/// A queued caller's end of its reply channel. Dropped before its reply
/// was taken (the caller's future dropped), it closes the channel, so no
/// reply is sent to it any more, and a slot sent to it meanwhile passes on
/// with its batch: without this, a caller cancelled between being handed
/// the slot and running would keep the slot for ever.
struct Queued<'a, R, A> {
    coalescer: &'a Coalescer<R, A>,
    reply: oneshot::Receiver<Reply<R, A>>,
}

impl<R, A> Drop for Queued<'_, R, A> {
    fn drop(&mut self) {
        // After `close`, a `send` fails (and `release` moves on to the next
        // caller), so what `try_recv` finds is all that was sent. After a
        // reply was taken, both do nothing.
        self.reply.close();
        if let Ok(Reply::Lead(others)) = self.reply.try_recv() {
            self.coalescer.hand_back(others);
        }
        // A `Done` answer nobody wants is dropped.
    }
}

/// A slot of a [`Coalescer`], held by the caller leading a statement.
/// Dropped (or [`pass_on`](Self::pass_on)), it passes to the next caller.
pub(crate) struct Slot<'a, R, A> {
    coalescer: &'a Coalescer<R, A>,
}

impl<R, A> Slot<'_, R, A> {
    /// The statement is done: the slot passes to the next queued caller.
    pub(crate) fn pass_on(self) {
        drop(self);
    }
}

impl<R, A> Drop for Slot<'_, R, A> {
    fn drop(&mut self) {
        self.coalescer.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_caller_gets_its_own_answer_and_batches_form() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(1));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for n in 0..64u32 {
            let (coalescer, batches) = (coalescer.clone(), batches.clone());
            handles.push(tokio::spawn(async move {
                match coalescer.join(|| n).await {
                    Joined::Answered(a) => a,
                    Joined::Lead { slot, others } => {
                        batches.lock().unwrap().push(others.len() + 1);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        slot.pass_on();
                        for w in others {
                            let a = w.request * 10;
                            w.answer(a);
                        }
                        n * 10
                    }
                }
            }));
        }
        for (n, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.unwrap(), n as u32 * 10);
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 64);
        assert!(batches.len() < 64, "no batch formed: {batches:?}");
        assert_eq!(coalescer.lock().running, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_leader_passes_its_slot_and_its_callers_queue_again() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(1));
        // The first leader never finishes: its future is dropped.
        let first = {
            let coalescer = coalescer.clone();
            tokio::spawn(async move {
                if let Joined::Lead { slot, .. } = coalescer.join(|| 0).await {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    slot.pass_on();
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut handles = Vec::new();
        for n in 1..5u32 {
            let coalescer = coalescer.clone();
            handles.push(tokio::spawn(async move {
                match coalescer.join(|| n).await {
                    Joined::Answered(a) => a,
                    Joined::Lead { slot, others } => {
                        // This leader too is dropped once, mid-statement,
                        // if it leads the first batch after the abort.
                        slot.pass_on();
                        for w in others {
                            let a = w.request + 100;
                            w.answer(a);
                        }
                        n + 100
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        first.abort();
        for (i, h) in handles.into_iter().enumerate() {
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), h)
                .await
                .expect("a caller hung")
                .unwrap();
            assert_eq!(got, i as u32 + 101);
        }
        assert_eq!(coalescer.lock().running, 0);
    }

    /// A queued caller handed the slot (`Reply::Lead`) and dropped before
    /// it is polled again (a request timeout, a client gone): the slot
    /// passes on instead of leaking, and the next caller runs at once.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_caller_handed_the_slot_passes_it_on() {
        let c = Arc::new(Coalescer::<u32, u32>::new(1));
        // A leads: holds the only slot.
        let Joined::Lead { slot: a, .. } = c.join(|| 0).await else {
            unreachable!("the slot was free")
        };
        // B queues (runs until it awaits its reply).
        let b = tokio::spawn({
            let c = c.clone();
            async move {
                match c.join(|| 1).await {
                    Joined::Lead { slot, .. } => {
                        slot.pass_on();
                        1
                    }
                    Joined::Answered(x) => x,
                }
            }
        });
        tokio::task::yield_now().await;
        // A finishes: the slot is sent to B (B is woken, not yet polled) ...
        a.pass_on();
        // ... and B is cancelled before it runs.
        b.abort();
        assert!(b.await.unwrap_err().is_cancelled());
        // A new caller, with no statement in flight anywhere:
        let c2 = c.clone();
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), async move {
            match c2.join(|| 2).await {
                Joined::Lead { slot, .. } => {
                    slot.pass_on();
                    2
                }
                Joined::Answered(x) => x,
            }
        })
        .await;
        assert!(r.is_ok(), "the next caller hung: the slot leaked ({c:?})");
        assert_eq!(c.lock().running, 0);
    }

    /// As above, but the cancelled caller was handed a batch: its callers
    /// are led by the next of them instead of waiting for ever.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_caller_handed_a_batch_passes_it_on() {
        let c = Arc::new(Coalescer::<u32, u32>::new(1));
        let Joined::Lead { slot: a, .. } = c.join(|| 0).await else {
            unreachable!("the slot was free")
        };
        let spawn = |n: u32| {
            let c = c.clone();
            tokio::spawn(async move {
                match c.join(|| n).await {
                    Joined::Lead { slot, others } => {
                        slot.pass_on();
                        for w in others {
                            let a = w.request * 10;
                            w.answer(a);
                        }
                        n * 10
                    }
                    Joined::Answered(x) => x,
                }
            })
        };
        let b = spawn(1);
        tokio::task::yield_now().await;
        let rest: Vec<_> = (2..6).map(spawn).collect();
        tokio::task::yield_now().await;
        a.pass_on();
        b.abort();
        assert!(b.await.unwrap_err().is_cancelled());
        for (n, h) in (2..6u32).zip(rest) {
            let got = tokio::time::timeout(std::time::Duration::from_secs(2), h)
                .await
                .expect("a caller of the cancelled leader's batch hung")
                .unwrap();
            assert_eq!(got, n * 10);
        }
        assert_eq!(c.lock().running, 0);
    }
}
