//! The event loop over shim sockets: one thread, one mio poll, every shim's socket
//! registered once its container is launched. What a shim says (exited, OOM …) and a
//! socket that closes go to the sink ([`crate::Shims`] turns them into
//! [`crate::Observation`]s). No thread or timer per container, no polling.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use berth_shim_protocol::{read_exit_file, ExitRecord, Message};
use crossbeam::queue::SegQueue;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::client::{ClientError, ShimClient};

/// The token of the waker that announces new shims to watch.
const WAKE: Token = Token(0);

/// What the monitor reports of a shim.
#[derive(Debug, Clone)]
pub(crate) enum ShimEvent {
    /// A message the shim sent (exited, OOM, …).
    Message(Message),
    /// The shim's socket closed: with its exit record if it wrote one (the container
    /// exited and the shim with it), without one if the shim died (killed).
    Gone(Option<ExitRecord>),
}

/// Where shim events go (set once the engine exists).
type Sink = Box<dyn Fn(&str, ShimEvent) + Send + Sync>;

/// A shim to follow.
struct Watch {
    id: String,
    client: ShimClient,
    dir: PathBuf,
}

/// Follows every launched shim.
pub(crate) struct Monitor {
    incoming: SegQueue<Watch>,
    waker: Waker,
    sink: OnceLock<Sink>,
}

impl Monitor {
    /// Start the monitor thread.
    pub fn start() -> io::Result<Arc<Monitor>> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let monitor = Arc::new(Monitor {
            incoming: SegQueue::new(),
            waker,
            sink: OnceLock::new(),
        });
        let weak = Arc::downgrade(&monitor);
        std::thread::Builder::new()
            .name("shim-monitor".into())
            .spawn(move || run(poll, weak))?;
        Ok(monitor)
    }

    /// Where events go; set once, before the first launch.
    pub fn set_sink(&self, sink: impl Fn(&str, ShimEvent) + Send + Sync + 'static) {
        let _ = self.sink.set(Box::new(sink));
    }

    /// Follow the shim of container `id` from now on (`dir`: its state directory, where
    /// it leaves its exit record).
    pub fn watch(&self, id: String, client: ShimClient, dir: PathBuf) {
        self.incoming.push(Watch { id, client, dir });
        if let Err(e) = self.waker.wake() {
            tracing::error!("waking the shim monitor: {e}");
        }
    }

    fn emit(&self, id: &str, event: ShimEvent) {
        if let Some(sink) = self.sink.get() {
            sink(id, event);
        }
    }
}

/// The monitor thread: until the monitor is dropped.
fn run(mut poll: Poll, monitor: std::sync::Weak<Monitor>) {
    let mut events = Events::with_capacity(256);
    let mut watches: HashMap<Token, Watch> = HashMap::new();
    let mut next = 1usize;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("shim monitor poll: {e}");
            return;
        }
        let Some(monitor) = monitor.upgrade() else {
            return;
        };
        for event in events.iter() {
            if event.token() == WAKE {
                while let Some(watch) = monitor.incoming.pop() {
                    let token = Token(next);
                    next += 1;
                    let fd = watch.client.as_raw_fd();
                    if let Err(e) =
                        poll.registry()
                            .register(&mut SourceFd(&fd), token, Interest::READABLE)
                    {
                        tracing::error!(id = %watch.id, "watching shim socket: {e}");
                        continue;
                    }
                    watches.insert(token, watch);
                    // Whatever arrived before registration is read now.
                    drain(&monitor, &mut poll, &mut watches, token);
                }
            } else {
                drain(&monitor, &mut poll, &mut watches, event.token());
            }
        }
    }
}

/// Read everything a shim has sent; on end-of-file, report it gone and forget it.
fn drain(monitor: &Monitor, poll: &mut Poll, watches: &mut HashMap<Token, Watch>, token: Token) {
    let Some(watch) = watches.get_mut(&token) else {
        return;
    };
    loop {
        match watch.client.try_recv() {
            Ok(Some(msg)) => monitor.emit(&watch.id, ShimEvent::Message(msg)),
            Ok(None) => return,
            Err(e) => {
                if !matches!(e, ClientError::Closed) {
                    tracing::warn!(id = %watch.id, "shim socket: {e}");
                }
                break;
            }
        }
    }
    let Some(watch) = watches.remove(&token) else {
        return;
    };
    let fd = watch.client.as_raw_fd();
    let _ = poll.registry().deregister(&mut SourceFd(&fd));
    let exit = read_exit_file(&watch.dir).ok().flatten();
    monitor.emit(&watch.id, ShimEvent::Gone(exit));
}
