//! A free list of byte buffers, so the steady-state data path allocates nothing.

use alloc::vec::Vec;

/// Buffers handed back after use and handed out again with their capacity intact.
#[derive(Debug, Default)]
pub(crate) struct BufPool {
    free: Vec<Vec<u8>>,
}

/// The pool keeps at most this many idle buffers; more are freed.
const MAX_IDLE: usize = 1024;

impl BufPool {
    /// An empty buffer, reusing an idle one when there is one.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    /// An empty buffer holding `data`.
    pub(crate) fn take_copy(&mut self, data: &[u8]) -> Vec<u8> {
        let mut buf = self.take();
        buf.extend_from_slice(data);
        buf
    }

    /// Give a buffer back.
    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        if self.free.len() < MAX_IDLE && buf.capacity() > 0 {
            buf.clear();
            self.free.push(buf);
        }
    }
}
