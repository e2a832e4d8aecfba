//! Lifecycle events: every state change, numbered, fanned out to any number of
//! subscribers. Each subscriber has its own bounded buffer filled with `try_send`, so a
//! slow one only loses its own events — it is told how many with
//! [`Item::Lagged`] — and never stalls the engine. A short history lets a subscriber
//! start from a sequence number instead of from now.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

// flume: one channel that both blocking and async subscribers can wait on.
use flume::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::record::{Record, Timestamp};
use crate::state_machine::State;

/// Default per-subscriber buffer.
pub const DEFAULT_BUFFER: usize = 1024;
/// Default number of past events kept for `subscribe_from`.
pub const DEFAULT_HISTORY: usize = 4096;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The container changed state.
    State,
    /// The OOM killer killed a process of the container (state unchanged).
    Oom,
    /// A process exec'd in the container exited (state unchanged; `pid` and
    /// `exit_code` are that process's).
    Exec,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Engine-wide sequence number, from 1, without gaps.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Container id.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// State after the event.
    pub state: State,
    /// State before (none for the first event of a container).
    pub previous: Option<State>,
    /// Host pid of the init, if known.
    pub pid: Option<i32>,
    /// Exit status, once stopped.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Event {
    fn about(
        seq: u64,
        at: Timestamp,
        kind: EventKind,
        previous: Option<State>,
        r: &Record,
    ) -> Self {
        Event {
            seq,
            at,
            id: r.id.clone(),
            kind,
            state: r.state,
            previous,
            pid: r.pid,
            exit_code: r.exit_code,
            error: r.error.clone(),
        }
    }
}

/// An image was pulled, imported or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEvent {
    /// Engine-wide sequence number (shared with container events).
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// `pulled`, `imported` or `deleted`.
    pub action: String,
    /// The image's full name.
    pub name: String,
    /// The image id (its config's digest).
    pub id: String,
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Item {
    /// The next container event.
    Event(Event),
    /// The next image event.
    Image(ImageEvent),
    /// This many events were lost (the subscriber was too slow, or asked to start
    /// before the oldest event kept).
    Lagged {
        /// How many.
        missed: u64,
    },
}

struct Inner {
    next_seq: u64,
    history: VecDeque<Item>,
    history_cap: usize,
    subscribers: Vec<Sender<Item>>,
}

/// The publisher side.
pub struct Bus {
    inner: Mutex<Inner>,
    buffer: usize,
    /// Sequence number of the last event offered to every subscriber (stored after the
    /// sends), so a subscriber with an empty buffer can tell it lost the tail.
    published: Arc<AtomicU64>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("Bus")
            .field("next_seq", &i.next_seq)
            .field("subscribers", &i.subscribers.len())
            .finish()
    }
}

impl Bus {
    /// A bus giving each subscriber `buffer` slots and keeping `history` past events.
    pub fn new(buffer: usize, history: usize) -> Self {
        Bus {
            inner: Mutex::new(Inner {
                next_seq: 1,
                history: VecDeque::with_capacity(history.min(65_536)),
                history_cap: history,
                subscribers: Vec::new(),
            }),
            buffer: buffer.max(1),
            published: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publish an event about `record` (already changed); returns its sequence number.
    /// Never blocks on a subscriber.
    pub fn publish(
        &self,
        kind: EventKind,
        previous: Option<State>,
        record: &Record,
        at: Timestamp,
    ) -> u64 {
        self.offer(|seq| Item::Event(Event::about(seq, at, kind, previous, record)))
    }

    /// Publish that image `name` (id `id`) was `action` (pulled, imported, deleted).
    pub fn publish_image(&self, action: &str, name: &str, id: &str) -> u64 {
        self.offer(|seq| {
            Item::Image(ImageEvent {
                seq,
                at: Timestamp::now(),
                action: action.to_owned(),
                name: name.to_owned(),
                id: id.to_owned(),
            })
        })
    }

    /// Number the item `make` builds, offer it to every subscriber and keep it in the
    /// history.
    fn offer(&self, make: impl FnOnce(u64) -> Item) -> u64 {
        let mut i = self.inner.lock();
        let seq = i.next_seq;
        i.next_seq += 1;
        let ev = make(seq);
        i.subscribers.retain(|tx| match tx.try_send(ev.clone()) {
            Ok(()) | Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        });
        if i.history_cap > 0 {
            if i.history.len() == i.history_cap {
                i.history.pop_front();
            }
            i.history.push_back(ev);
        }
        self.published.store(seq, Ordering::Release);
        seq
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().subscribers.len()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> Subscription {
        let mut i = self.inner.lock();
        let (tx, rx) = bounded(self.buffer);
        i.subscribers.push(tx);
        Subscription {
            rx,
            published: Arc::clone(&self.published),
            expected: i.next_seq,
            backlog: VecDeque::new(),
            pending: None,
        }
    }

    /// Events from sequence number `from` on: those still in the history first (with a
    /// [`Item::Lagged`] for any older ones no longer kept), then live ones.
    pub fn subscribe_from(&self, from: u64) -> Subscription {
        let mut i = self.inner.lock();
        let (tx, rx) = bounded(self.buffer);
        i.subscribers.push(tx);
        let from = from.clamp(1, i.next_seq);
        let backlog: VecDeque<Item> = i
            .history
            .iter()
            .filter(|e| e.seq() >= from)
            .cloned()
            .collect();
        Subscription {
            rx,
            published: Arc::clone(&self.published),
            expected: from,
            backlog,
            pending: None,
        }
    }
}

/// A subscriber's end. Dropping it unsubscribes.
pub struct Subscription {
    rx: Receiver<Item>,
    published: Arc<AtomicU64>,
    /// Sequence number of the next event this subscriber should see.
    expected: u64,
    backlog: VecDeque<Item>,
    pending: Option<Item>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("expected", &self.expected)
            .field("buffered", &(self.rx.len() + self.backlog.len()))
            .finish()
    }
}

impl Subscription {
    /// Wait for the next item; `None` once the engine is gone.
    pub fn recv(&mut self) -> Option<Item> {
        if let Some(item) = self.try_recv() {
            return Some(item);
        }
        self.rx.recv().ok().map(|ev| self.deliver(ev))
    }

    /// The next item if one is there now. A subscriber whose buffer overflowed learns
    /// it here at the latest once it has drained what it kept.
    pub fn try_recv(&mut self) -> Option<Item> {
        if let Some(ev) = self.next_buffered() {
            return Some(self.deliver(ev));
        }
        if let Ok(ev) = self.rx.try_recv() {
            return Some(self.deliver(ev));
        }
        // Every event up to `published` was offered before it was stored: if the buffer
        // is still empty after reading it, the ones not seen were dropped.
        let published = self.published.load(Ordering::Acquire);
        match self.rx.try_recv() {
            Ok(ev) => Some(self.deliver(ev)),
            Err(TryRecvError::Empty) if published >= self.expected => {
                let missed = published + 1 - self.expected;
                self.expected = published + 1;
                Some(Item::Lagged { missed })
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Wait at most `timeout` for the next item.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Item> {
        if let Some(item) = self.try_recv() {
            return Some(item);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => Some(self.deliver(ev)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Wait for the next item without holding a thread (for async servers: a client
    /// that waits costs a task, not a thread); `None` once the engine is gone.
    pub async fn recv_async(&mut self) -> Option<Item> {
        if let Some(item) = self.try_recv() {
            return Some(item);
        }
        let ev = self.rx.recv_async().await.ok()?;
        Some(self.deliver(ev))
    }

    fn next_buffered(&mut self) -> Option<Item> {
        if let Some(ev) = self.pending.take() {
            return Some(ev);
        }
        while let Some(ev) = self.backlog.pop_front() {
            if ev.seq() >= self.expected {
                return Some(ev);
            }
        }
        None
    }

    /// Hand out `ev`, or first a `Lagged` for the gap before it (keeping `ev`).
    fn deliver(&mut self, ev: Item) -> Item {
        let seq = ev.seq();
        if seq > self.expected {
            let missed = seq - self.expected;
            self.expected = seq;
            self.pending = Some(ev);
            return Item::Lagged { missed };
        }
        self.expected = seq + 1;
        ev
    }
}

impl Item {
    /// The sequence number of an event (0 for `Lagged`, which has none).
    pub fn seq(&self) -> u64 {
        match self {
            Item::Event(e) => e.seq,
            Item::Image(e) => e.seq,
            Item::Lagged { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::ContainerSpec;

    fn rec(id: &str) -> Record {
        Record::queued(Arc::new(ContainerSpec::bundle(id, "/b")), Timestamp::now())
    }

    fn publish(bus: &Bus, n: usize) {
        for i in 0..n {
            bus.publish(
                EventKind::State,
                None,
                &rec(&format!("c{i}")),
                Timestamp::now(),
            );
        }
    }

    #[test]
    fn image_events_share_the_sequence_and_the_history() {
        let bus = Bus::new(16, 16);
        publish(&bus, 1);
        assert_eq!(
            bus.publish_image("pulled", "docker.io/library/busybox:latest", "sha256:x"),
            2
        );
        publish(&bus, 1);
        let mut s = bus.subscribe_from(1);
        let items: Vec<Item> = std::iter::from_fn(|| s.try_recv()).collect();
        assert_eq!(items.iter().map(Item::seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(matches!(&items[1], Item::Image(e) if e.action == "pulled"));
    }

    #[test]
    fn every_subscriber_sees_every_event_in_order() {
        let bus = Bus::new(64, 0);
        let mut subs: Vec<_> = (0..3).map(|_| bus.subscribe()).collect();
        publish(&bus, 10);
        for s in &mut subs {
            for seq in 1..=10 {
                match s.try_recv() {
                    Some(Item::Event(e)) => assert_eq!(e.seq, seq),
                    other => panic!("{other:?}"),
                }
            }
            assert!(s.try_recv().is_none());
        }
    }

    #[test]
    fn a_slow_subscriber_is_told_what_it_missed_and_others_are_unharmed() {
        let bus = Bus::new(4, 0);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        let mut fast_seen = 0;
        for _ in 0..10 {
            publish(&bus, 1);
            while let Some(Item::Event(_)) = fast.try_recv() {
                fast_seen += 1;
            }
        }
        assert_eq!(fast_seen, 10);
        let items: Vec<_> = std::iter::from_fn(|| slow.try_recv()).collect();
        let seqs: Vec<_> = items
            .iter()
            .map(|i| match i {
                Item::Lagged { missed } => format!("lagged {missed}"),
                other => format!("{}", other.seq()),
            })
            .collect();
        assert_eq!(seqs, ["1", "2", "3", "4", "lagged 6"]);
        assert_eq!(slow.try_recv(), None);
        // Then it goes on with live events.
        publish(&bus, 1);
        assert!(matches!(slow.try_recv(), Some(Item::Event(e)) if e.seq == 11));
    }

    #[test]
    fn subscribe_from_replays_history_then_goes_live() {
        let bus = Bus::new(16, 5);
        publish(&bus, 8); // history keeps 4..=8
        let mut s = bus.subscribe_from(2);
        assert_eq!(s.try_recv(), Some(Item::Lagged { missed: 2 }));
        for want in 4..=8 {
            assert!(matches!(s.try_recv(), Some(Item::Event(e)) if e.seq == want));
        }
        publish(&bus, 1);
        assert!(matches!(s.try_recv(), Some(Item::Event(e)) if e.seq == 9));
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let bus = Bus::new(4, 0);
        let s = bus.subscribe();
        assert_eq!(bus.subscribers(), 1);
        drop(s);
        publish(&bus, 1);
        assert_eq!(bus.subscribers(), 0);
    }
}
