//! Two cores on one layer: the caller's thread reads the blob, decompresses and hashes
//! it (the part that cannot leave the caller: the blob need not be `Send`), a second
//! thread parses the tar and writes the files. Chunks travel over a bounded channel,
//! so at most a few MiB of a layer are in memory at once, and come back to be reused.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes per chunk.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the threads.
const DEPTH: usize = 8;

/// The producing end: what the caller's thread fills.
pub struct Sender {
    tx: SyncSender<io::Result<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
}

/// The consuming end: a reader over the chunks, in order; EOF once the sender is done.
pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    seen: u64,
}

/// A connected pair.
pub fn pipe() -> (Sender, ChunkReader) {
    let (tx, rx) = sync_channel(DEPTH);
    let (back, spare) = sync_channel(DEPTH + 2);
    let sender = Sender { tx, spare };
    let reader = ChunkReader {
        rx,
        back,
        cur: Vec::new(),
        pos: 0,
        seen: 0,
    };
    (sender, reader)
}

impl Sender {
    /// Reads `src` to its end into chunks for the reader. Stops early, quietly, when the
    /// reader is gone (it failed and says why itself); a read error is passed on to it.
    pub fn pump(self, mut src: impl Read) {
        loop {
            let mut buf = self.spare.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            let msg = match fill(&mut src, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(e) => Err(e),
            };
            let failed = msg.is_err();
            if self.tx.send(msg).is_err() || failed {
                return;
            }
        }
    }
}

/// Reads until `buf` is full or the source ends.
fn fill(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl ChunkReader {
    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.cur.len() {
            let next = match self.rx.recv() {
                Ok(chunk) => chunk?,
                Err(_) => return Ok(0), // the sender is done: the stream ended well
            };
            let used = std::mem::replace(&mut self.cur, next);
            let _ = self.back.try_send(used);
            self.pos = 0;
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.seen += n as u64;
        Ok(n)
    }
}
