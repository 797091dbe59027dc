//! A free list of byte buffers, so the steady-state data path allocates nothing.
//!
//! The buffers hold plaintext, so each is wiped when it is given back: an idle buffer holds
//! zeros only, and a freed one leaves nothing behind in the allocator.

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
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf
    }

    /// An empty buffer holding `data`.
    pub(crate) fn take_copy(&mut self, data: &[u8]) -> Vec<u8> {
        let mut buf = self.take();
        buf.extend_from_slice(data);
        buf
    }

    /// Give a buffer back; its contents are wiped. Bytes past its length were wiped when it
    /// was last given back (an idle buffer keeps its length, all zeros, until taken), so only
    /// the length is written.
    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        // `fill` is a vectorised memset; `zeroize`'s volatile writes go a byte at a time and
        // cost a third of a data frame's time at 8 KiB (BENCHMARKS.md, issue 16). The stores
        // cannot be elided while the buffer stays in the pool (it is read again when taken),
        // and `black_box` keeps them when it is freed instead.
        buf.fill(0);
        core::hint::black_box(buf.as_slice());
        if self.free.len() < MAX_IDLE && buf.capacity() > 0 {
            self.free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_holds_zeros_only() {
        let mut pool = BufPool::default();
        let secret = [0xA5u8; 64];
        let buf = pool.take_copy(&secret);
        pool.give(buf);
        // The idle buffer keeps its length: what it held is readable, and must be zeros.
        assert_eq!(pool.free[0].len(), 64);
        assert!(pool.free[0].iter().all(|&b| b == 0));
        assert!(pool.take().is_empty());
    }
}
