//! Packet protection for an established session: per-direction keys, counters, the replay
//! window and key rotation.
//!
//! Each direction has its own chain of traffic secrets (see [`crate::crypto`]). The sender
//! numbers frames with a 64-bit counter that never resets within a session, so a nonce is
//! never reused under any key, and one replay window covers every key phase.
//!
//! Rotation ("rekey") follows a key update exchange on the session channel, which mixes a
//! fresh X25519 result into both directions' secrets (driven by [`crate::Link`]). This module
//! only holds the keys: the sender moves to a new secret with `SendKeys::rotate_to` and
//! flips the key-phase bit; the receiver is told the next secret with `RecvKeys::set_next`
//! and moves to it when a frame with the other phase, and a counter at or above the lowest
//! counter seen in the current phase, verifies under it (every frame of the previous phase
//! is below). The previous key stays usable for `previous_key_grace` so that reordered
//! frames still open.

pub mod replay;

use crate::config::Config;
use crate::crypto::{nonce, traffic_key, AeadKey, AeadProvider, Secret};
use crate::error::Error;
use crate::time::Timestamp;
use crate::wire::{counter_from_packet_number, Header, HEADER_LEN, TAG_LEN};
use replay::ReplayWindow;

/// Decrypt one captured frame with a logged traffic secret ([`crate::Event::TrafficSecret`],
/// PROTOCOL.md 30.2), for study: no replay window, nothing checked but the tag. `expected`
/// is the counter after the newest frame of its direction already opened (0 before any):
/// the frame's counter is recovered from its packet number and it (PROTOCOL.md 3). Returns
/// the frame's counter and its plaintext (the payload without its tag).
///
/// # Errors
/// [`Error::Malformed`] for a datagram that is not a well-formed encrypted frame,
/// [`Error::DecryptFailed`] if the tag does not verify under `secret` (another key).
pub fn open_logged(
    secret: &Secret,
    datagram: &[u8],
    expected: u64,
) -> Result<(u64, alloc::vec::Vec<u8>), Error> {
    let frame = crate::wire::Frame::new_checked(datagram).map_err(Error::Malformed)?;
    let header = Header::parse(&frame).map_err(Error::Malformed)?;
    if !header.frame_type.is_encrypted() {
        return Err(Error::Malformed(crate::wire::DecodeError::InvalidField));
    }
    let counter = counter_from_packet_number(header.packet_number, expected);
    let mut copy = datagram.to_vec();
    let (aad, in_out) = copy.split_at_mut(HEADER_LEN);
    let key = <crate::crypto::RustCrypto as AeadProvider>::key(&traffic_key(secret));
    key.open_in_place(&nonce(counter), aad, in_out)
        .map_err(|_| Error::DecryptFailed)?;
    copy.truncate(datagram.len() - TAG_LEN);
    copy.drain(..HEADER_LEN);
    Ok((counter, copy))
}

/// One key phase of one direction.
struct PhaseKey<P: AeadProvider> {
    key: P::Key,
    phase: bool,
    generation: u64,
}

impl<P: AeadProvider> PhaseKey<P> {
    fn derive(secret: &Secret, phase: bool, generation: u64) -> Self {
        PhaseKey {
            key: P::key(&traffic_key(secret)),
            phase,
            generation,
        }
    }
}

/// Why a frame could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealError {
    /// The counter reached its limit: the session must end.
    CounterExhausted,
    /// The frame does not fit the header, or the AEAD refused it (a local fault).
    Failed,
}

/// The sending half: current key, counter, and what the key has protected so far.
pub(crate) struct SendKeys<P: AeadProvider> {
    secret: Secret,
    current: PhaseKey<P>,
    next_counter: u64,
    packets_on_key: u64,
    bytes_on_key: u64,
    key_since: Timestamp,
}

impl<P: AeadProvider> SendKeys<P> {
    pub(crate) fn new(secret: Secret, now: Timestamp) -> Self {
        SendKeys {
            current: PhaseKey::derive(&secret, false, 0),
            secret,
            next_counter: 0,
            packets_on_key: 0,
            bytes_on_key: 0,
            key_since: now,
        }
    }

    /// The counter the next frame will carry.
    pub(crate) fn next_counter(&self) -> u64 {
        self.next_counter
    }

    /// The current traffic secret (input of the next key update).
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// How many rotations this direction has had.
    pub(crate) fn generation(&self) -> u64 {
        self.current.generation
    }

    /// Has the key protected enough (frames, bytes or time) that it should be updated?
    pub(crate) fn rekey_due(&self, now: Timestamp, config: &Config) -> bool {
        self.packets_on_key >= config.rekey_after_packets
            || self.bytes_on_key >= config.rekey_after_bytes
            || now.saturating_since(self.key_since) >= config.rekey_after_time
    }

    /// When the key is old enough that it should be updated.
    pub(crate) fn rekey_at(&self, config: &Config) -> Timestamp {
        self.key_since + config.rekey_after_time
    }

    /// When the key is too old for the peer to accept: nothing may be sent with it then.
    pub(crate) fn reject_at(&self, config: &Config) -> Timestamp {
        self.key_since + config.reject_after_time
    }

    /// Has the key reached the limit past which the peer refuses it? Nothing more may be
    /// sent with it.
    pub(crate) fn expired(&self, now: Timestamp, config: &Config) -> bool {
        self.packets_on_key >= config.reject_after_packets
            || now.saturating_since(self.key_since) >= config.reject_after_time
    }

    /// Move to the next key phase with `secret`.
    pub(crate) fn rotate_to(&mut self, secret: Secret, now: Timestamp) {
        self.current = PhaseKey::derive(&secret, !self.current.phase, self.current.generation + 1);
        self.secret = secret;
        self.packets_on_key = 0;
        self.bytes_on_key = 0;
        self.key_since = now;
    }

    /// Seal the frame in `frame`: `header` is written into the first [`HEADER_LEN`] bytes
    /// (with this key's phase and the next counter), the plaintext is at
    /// `frame[HEADER_LEN..len - TAG_LEN]`, and the tag goes into the last [`TAG_LEN`]
    /// bytes.
    ///
    /// # Errors
    /// [`SealError::CounterExhausted`] when the counter reached `config.counter_limit`;
    /// [`SealError::Failed`] for a frame the header cannot describe or the AEAD refuses.
    /// Nothing is sent then, and no counter is spent.
    pub(crate) fn seal(
        &mut self,
        config: &Config,
        mut header: Header,
        frame: &mut [u8],
    ) -> Result<(), SealError> {
        if self.next_counter >= config.counter_limit {
            return Err(SealError::CounterExhausted);
        }
        header.key_phase = self.current.phase;
        // The low 32 bits: the receiver recovers the rest (PROTOCOL.md 3).
        header.packet_number = self.next_counter as u32;
        header.emit(frame).map_err(|_| SealError::Failed)?;
        let (aad, in_out) = frame.split_at_mut(HEADER_LEN);
        self.current
            .key
            .seal_in_place(&nonce(self.next_counter), aad, in_out)
            .map_err(|_| SealError::Failed)?;
        self.next_counter += 1;
        self.packets_on_key += 1;
        self.bytes_on_key += (in_out.len() - TAG_LEN) as u64;
        Ok(())
    }
}

/// The previous receive key, kept for a grace period after a rotation.
struct PreviousKey<P: AeadProvider> {
    key: PhaseKey<P>,
    until: Timestamp,
}

/// The next receive key, known once a key update exchange produced it.
struct NextKey<P: AeadProvider> {
    key: PhaseKey<P>,
    secret: Secret,
}

/// The receiving half: current, previous and next keys, and the replay window.
pub(crate) struct RecvKeys<P: AeadProvider> {
    secret: Secret,
    current: PhaseKey<P>,
    /// Lowest counter seen under the current key; every frame of the previous phase is below.
    current_first_counter: u64,
    current_since: Timestamp,
    packets_on_key: u64,
    next: Option<NextKey<P>>,
    previous: Option<PreviousKey<P>>,
    window: ReplayWindow,
}

/// Which key opened a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Previous,
    Current,
    Next,
}

impl<P: AeadProvider> RecvKeys<P> {
    pub(crate) fn new(secret: Secret, now: Timestamp, config: &Config) -> Self {
        RecvKeys {
            current: PhaseKey::derive(&secret, false, 0),
            secret,
            current_first_counter: 0,
            current_since: now,
            packets_on_key: 0,
            next: None,
            previous: None,
            window: ReplayWindow::new(config.replay_window),
        }
    }

    /// The current traffic secret (input of the next key update).
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The counter whose low 32 bits are `packet_number`, nearest to the one after the
    /// newest accepted (PROTOCOL.md 3).
    pub(crate) fn counter_of(&self, packet_number: u32) -> u64 {
        let expected = self.window.top().map_or(0, |top| top.saturating_add(1));
        counter_from_packet_number(packet_number, expected)
    }

    /// Would `counter` be the newest frame received on this session (if it authenticates)?
    pub(crate) fn is_newest(&self, counter: u64) -> bool {
        self.window.top().is_none_or(|top| counter > top)
    }

    /// The secret the peer will move to after the current key update.
    pub(crate) fn set_next(&mut self, secret: Secret) {
        let key = PhaseKey::derive(&secret, !self.current.phase, self.current.generation + 1);
        self.next = Some(NextKey { key, secret });
    }

    /// Authenticate and decrypt one frame in place: `frame` is the whole frame, `header` its
    /// parsed header and `counter` its counter ([`RecvKeys::counter_of`] its packet
    /// number). On success the plaintext is `frame[HEADER_LEN..len - TAG_LEN]` and the
    /// result says whether the receive key rotated.
    ///
    /// The replay window is checked before and committed after the tag verifies, so a frame
    /// that fails changes nothing.
    ///
    /// # Errors
    /// [`Error::Replayed`], [`Error::KeyExpired`] or [`Error::DecryptFailed`]; the state is
    /// unchanged.
    pub(crate) fn open(
        &mut self,
        now: Timestamp,
        config: &Config,
        header: &Header,
        counter: u64,
        frame: &mut [u8],
    ) -> Result<bool, Error> {
        self.window.check(counter)?;
        if counter >= config.counter_limit {
            return Err(Error::KeyExpired);
        }
        let slot = if header.key_phase == self.current.phase {
            Slot::Current
        } else if counter < self.current_first_counter {
            Slot::Previous
        } else {
            Slot::Next
        };
        let key = match slot {
            Slot::Current => {
                if self.packets_on_key >= config.reject_after_packets
                    || now.saturating_since(self.current_since) >= config.reject_after_time
                {
                    return Err(Error::KeyExpired);
                }
                &self.current.key
            }
            Slot::Next => match &self.next {
                Some(next) => &next.key.key,
                // No key update is under way: nothing legitimate uses the other phase.
                None => return Err(Error::DecryptFailed),
            },
            Slot::Previous => match &self.previous {
                Some(prev) if now < prev.until => &prev.key.key,
                _ => return Err(Error::KeyExpired),
            },
        };
        let (aad, in_out) = frame.split_at_mut(HEADER_LEN);
        key.open_in_place(&nonce(counter), aad, in_out)
            .map_err(|_| Error::DecryptFailed)?;

        // Authenticated: now, and only now, change state.
        self.window.commit(counter);
        match slot {
            Slot::Current => {
                self.current_first_counter = self.current_first_counter.min(counter);
                self.packets_on_key += 1;
                Ok(false)
            }
            Slot::Previous => Ok(false),
            Slot::Next => {
                self.rotate(now, counter, config);
                Ok(true)
            }
        }
    }

    fn rotate(&mut self, now: Timestamp, first_counter: u64, config: &Config) {
        let Some(next) = self.next.take() else { return };
        let old = core::mem::replace(&mut self.current, next.key);
        self.secret = next.secret;
        self.previous = Some(PreviousKey {
            key: old,
            until: now + config.previous_key_grace,
        });
        self.current_first_counter = first_counter;
        self.current_since = now;
        self.packets_on_key = 1;
    }

    /// The generation (number of rotations) of the current receive key.
    pub(crate) fn generation(&self) -> u64 {
        self.current.generation
    }
}

#[cfg(test)]
mod tests;
