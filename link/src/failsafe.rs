//! The aircraft's failsafe: the pilot's control messages stopped for too long.

use core::time::Duration;

use crate::Timestamp;

/// Watches the pilot's control messages on the aircraft: raised when none arrived for
/// [`Failsafe::after`] once the pilot had been flying (after the first one), cleared when one
/// arrives again. The aircraft should hold or return home while it is raised.
///
/// Sans-IO, like the link: it reads no clock; the caller hands in the time with each call
/// and wakes it at [`Failsafe::deadline`]. The tokio driver runs one on every aircraft link
/// and reports it as `LinkEvent::Failsafe` and `LinkEvent::FailsafeCleared`; an
/// application that steps a [`Link`](crate::Link) itself runs its own.
///
/// ```
/// use rotorlink::{Failsafe, Timestamp};
///
/// let mut failsafe = Failsafe::default(); // 1.5 s
/// assert_eq!(failsafe.deadline(), None); // not flying yet
/// assert!(!failsafe.on_control(Timestamp::from_millis(100)));
/// assert_eq!(failsafe.deadline(), Some(Timestamp::from_millis(1600)));
/// assert!(!failsafe.on_time(Timestamp::from_millis(1599)));
/// assert!(failsafe.on_time(Timestamp::from_millis(1600))); // raised, once
/// assert!(failsafe.is_active() && !failsafe.on_time(Timestamp::from_millis(2000)));
/// assert!(failsafe.on_control(Timestamp::from_millis(2500))); // cleared
/// assert!(!failsafe.is_active());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failsafe {
    after: Duration,
    /// When the last control message arrived; `None` before the first.
    last_control: Option<Timestamp>,
    active: bool,
}

impl Failsafe {
    /// The default delay: 1.5 s without a control message.
    pub const DEFAULT_AFTER: Duration = Duration::from_millis(1500);

    /// A failsafe raised when control messages stop for `after`.
    pub const fn new(after: Duration) -> Self {
        Failsafe {
            after,
            last_control: None,
            active: false,
        }
    }

    /// How long control messages may stop before it is raised.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Is it raised?
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// A control message arrived at `now`. Returns true if that cleared the failsafe.
    pub fn on_control(&mut self, now: Timestamp) -> bool {
        self.last_control = Some(now);
        core::mem::replace(&mut self.active, false)
    }

    /// When it is raised unless a control message arrives first: `None` before the first
    /// control message and while it is raised.
    pub fn deadline(&self) -> Option<Timestamp> {
        match (self.last_control, self.active) {
            (Some(last), false) => Some(last + self.after),
            _ => None,
        }
    }

    /// The time is `now`. Returns true if that raised the failsafe (the deadline passed),
    /// once per loss of control.
    pub fn on_time(&mut self, now: Timestamp) -> bool {
        if self.deadline().is_some_and(|d| now >= d) {
            self.active = true;
            return true;
        }
        false
    }
}

impl Default for Failsafe {
    /// [`Failsafe::DEFAULT_AFTER`].
    fn default() -> Self {
        Failsafe::new(Failsafe::DEFAULT_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn raised_once_at_the_deadline_and_cleared_by_the_next_control_message() {
        let mut f = Failsafe::new(Duration::from_millis(100));
        // Never raised before the pilot flew.
        assert!(!f.on_time(ms(10_000)) && f.deadline().is_none());
        assert!(!f.on_control(ms(0)));
        assert!(!f.on_control(ms(50)));
        assert_eq!(f.deadline(), Some(ms(150)));
        assert!(!f.on_time(ms(149)));
        assert!(f.on_time(ms(150)));
        assert!(f.is_active() && f.deadline().is_none());
        assert!(!f.on_time(ms(500)), "raised once");
        assert!(f.on_control(ms(600)));
        assert!(!f.is_active());
        assert!(!f.on_control(ms(610)), "cleared once");
        assert_eq!(f.deadline(), Some(ms(710)));
    }

    #[test]
    fn the_default_is_one_and_a_half_seconds() {
        assert_eq!(Failsafe::default().after(), Duration::from_millis(1500));
    }
}
