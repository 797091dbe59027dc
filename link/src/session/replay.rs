//! The anti-replay sliding window (a bitmap, as in RFC 6479 and WireGuard).
//!
//! The receive path calls [`ReplayWindow::check`] before decrypting and
//! [`ReplayWindow::commit`] only after the tag has verified, so a forged frame — which cannot
//! pass the tag — can never move the window or mark a counter as seen.

use alloc::vec;
use alloc::vec::Vec;

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The counter was already accepted.
    Duplicate,
    /// The counter is further behind the newest accepted one than the window reaches.
    TooOld,
}

/// A sliding window over the last `size` packet counters.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    bits: Vec<u64>,
    /// Highest counter accepted so far, if any.
    top: Option<u64>,
}

impl ReplayWindow {
    /// A window remembering `size` counters, rounded up to a multiple of 64 (at least 64).
    pub fn new(size: usize) -> Self {
        let words = size.div_ceil(64).max(1);
        ReplayWindow {
            bits: vec![0; words],
            top: None,
        }
    }

    /// The number of counters the window spans.
    pub fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// Highest counter accepted so far.
    pub fn top(&self) -> Option<u64> {
        self.top
    }

    fn slot(&self, counter: u64) -> (usize, u64) {
        let bit = counter % self.size();
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    /// Would `counter` be accepted? Does not change the window.
    ///
    /// # Errors
    /// [`ReplayError::Duplicate`] or [`ReplayError::TooOld`].
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        let Some(top) = self.top else { return Ok(()) };
        if counter > top {
            return Ok(());
        }
        if top - counter >= self.size() {
            return Err(ReplayError::TooOld);
        }
        let (word, mask) = self.slot(counter);
        if self.bits[word] & mask != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Mark `counter` as seen, sliding the window forward if it is the newest. Call only after
    /// [`ReplayWindow::check`] passed and the frame authenticated.
    pub fn commit(&mut self, counter: u64) {
        match self.top {
            Some(top) if counter <= top => {}
            Some(top) if counter - top < self.size() => {
                // Clear the slots of the counters skipped over; they have not been seen.
                for skipped in top + 1..counter {
                    let (word, mask) = self.slot(skipped);
                    self.bits[word] &= !mask;
                }
                let (word, mask) = self.slot(counter);
                self.bits[word] &= !mask;
                self.top = Some(counter);
            }
            _ => {
                self.bits.iter_mut().for_each(|w| *w = 0);
                self.top = Some(counter);
            }
        }
        let (word, mask) = self.slot(counter);
        self.bits[word] |= mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    extern crate std;
    use std::collections::BTreeSet;

    fn accept(w: &mut ReplayWindow, c: u64) -> Result<(), ReplayError> {
        w.check(c)?;
        w.commit(c);
        Ok(())
    }

    #[test]
    fn reorder_inside_the_window_is_accepted_once() {
        let mut w = ReplayWindow::new(2048);
        assert_eq!(w.size(), 2048);
        for c in [5, 3, 4, 0, 2047, 1] {
            assert_eq!(accept(&mut w, c), Ok(()), "{c}");
        }
        for c in [5, 3, 4, 1, 2047] {
            assert_eq!(accept(&mut w, c), Err(ReplayError::Duplicate), "{c}");
        }
        // 0 is exactly `size` behind 2048 once 2048 arrives.
        assert_eq!(accept(&mut w, 2048), Ok(()));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 2), Ok(()));
    }

    #[test]
    fn a_big_jump_forgets_everything_behind_the_window() {
        let mut w = ReplayWindow::new(64);
        accept(&mut w, 10).unwrap();
        accept(&mut w, 1_000_000).unwrap();
        assert_eq!(w.check(10), Err(ReplayError::TooOld));
        assert_eq!(w.check(999_999), Ok(()));
        assert_eq!(w.check(1_000_000), Err(ReplayError::Duplicate));
        accept(&mut w, u64::MAX).unwrap();
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Duplicate));
    }

    #[test]
    fn check_alone_never_changes_the_window() {
        let mut w = ReplayWindow::new(128);
        accept(&mut w, 100).unwrap();
        assert_eq!(w.check(500), Ok(()));
        assert_eq!(w.check(50), Ok(()));
        assert_eq!(w.top(), Some(100));
        assert_eq!(accept(&mut w, 50), Ok(()));
    }

    proptest! {
        /// The window agrees with a model that remembers every counter: a counter is accepted
        /// iff it was never accepted and is within `size` of the newest accepted one.
        #[test]
        fn matches_a_reference_model(
            size in prop_oneof![Just(64usize), Just(128), Just(2048)],
            counters in proptest::collection::vec(0u64..5000, 1..400),
        ) {
            let mut w = ReplayWindow::new(size);
            let mut seen = BTreeSet::new();
            let mut top: Option<u64> = None;
            for c in counters {
                let expected = if seen.contains(&c) && top.is_some_and(|t| t - c < size as u64) {
                    Err(ReplayError::Duplicate)
                } else if top.is_some_and(|t| c < t && t - c >= size as u64) {
                    Err(ReplayError::TooOld)
                } else {
                    Ok(())
                };
                prop_assert_eq!(accept(&mut w, c), expected, "counter {}", c);
                if expected.is_ok() {
                    seen.insert(c);
                    top = Some(top.map_or(c, |t| t.max(c)));
                }
            }
        }
    }
}
