//! The messages of the session channel (channel 0): the link's own reliable exchanges, key
//! update and storage unlock. Each is one reliable message: a type byte, then its fields.
//!
//! ```text
//!  type  message             fields
//!  1     KeyUpdateRequest    ephemeral public key (32)
//!  2     KeyUpdateResponse   ephemeral public key (32)
//!  3     UnlockInit          OPAQUE KE1 (rest)
//!  4     UnlockResponse      remaining attempts (u32) | OPAQUE KE2 (rest)
//!  5     UnlockFinish        OPAQUE KE3 (rest)
//!  6     UnlockResult        ok (u8, 1 = unlocked) | remaining attempts (u32)
//!  7     UnlockRefused       reason (u8) | remaining attempts (u32) | retry after, ms (u32)
//! ```

use alloc::vec::Vec;

use super::reader::Reader;
use super::DecodeError;

const KEY_UPDATE_REQUEST: u8 = 1;
const KEY_UPDATE_RESPONSE: u8 = 2;
const UNLOCK_INIT: u8 = 3;
const UNLOCK_RESPONSE: u8 = 4;
const UNLOCK_FINISH: u8 = 5;
const UNLOCK_RESULT: u8 = 6;
const UNLOCK_REFUSED: u8 = 7;

/// One message of the session channel, borrowing its variable-length fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMessage<'a> {
    /// Start a key update with this ephemeral X25519 public key.
    KeyUpdateRequest([u8; 32]),
    /// Answer a key update with this ephemeral X25519 public key.
    KeyUpdateResponse([u8; 32]),
    /// Remote: open the storage with the code (OPAQUE KE1).
    UnlockInit(&'a [u8]),
    /// Aircraft: the OPAQUE answer.
    UnlockResponse {
        /// Failed attempts left if this one fails too.
        remaining: u32,
        /// OPAQUE KE2.
        ke2: &'a [u8],
    },
    /// Remote: the OPAQUE finish (KE3; all zero when the remote knows its code was wrong).
    UnlockFinish(&'a [u8]),
    /// Aircraft: the unlock's outcome.
    UnlockResult {
        /// True: the storage channel is open.
        ok: bool,
        /// Failed attempts left.
        remaining: u32,
    },
    /// Aircraft: no attempt now (backing off or locked out).
    UnlockRefused {
        /// The refusal reason's code ([`crate::handshake::RefusalReason`]).
        reason: u8,
        /// Failed attempts left.
        remaining: u32,
        /// How long until another attempt is accepted, in milliseconds.
        retry_after_ms: u32,
    },
}

fn key(r: Reader<'_>) -> Result<[u8; 32], DecodeError> {
    r.rest().try_into().map_err(|_| DecodeError::InvalidField)
}

impl<'a> SessionMessage<'a> {
    /// Parse one session-channel message.
    ///
    /// # Errors
    /// [`DecodeError::PayloadTooShort`] for a missing field, [`DecodeError::InvalidField`]
    /// for a key of the wrong length or an unlock outcome other than 0 or 1,
    /// [`DecodeError::TrailingBytes`] after the fixed fields of an unlock's result or
    /// refusal, [`DecodeError::UnknownMessage`] for an unknown type.
    pub fn parse(msg: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(msg);
        Ok(match r.u8()? {
            KEY_UPDATE_REQUEST => SessionMessage::KeyUpdateRequest(key(r)?),
            KEY_UPDATE_RESPONSE => SessionMessage::KeyUpdateResponse(key(r)?),
            UNLOCK_INIT => SessionMessage::UnlockInit(r.rest()),
            UNLOCK_RESPONSE => SessionMessage::UnlockResponse {
                remaining: r.u32()?,
                ke2: r.rest(),
            },
            UNLOCK_FINISH => SessionMessage::UnlockFinish(r.rest()),
            UNLOCK_RESULT => {
                let ok = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidField),
                };
                let remaining = r.u32()?;
                r.end()?;
                SessionMessage::UnlockResult { ok, remaining }
            }
            UNLOCK_REFUSED => {
                let message = SessionMessage::UnlockRefused {
                    reason: r.u8()?,
                    remaining: r.u32()?,
                    retry_after_ms: r.u32()?,
                };
                r.end()?;
                message
            }
            other => return Err(DecodeError::UnknownMessage(other)),
        })
    }

    /// Append the encoded message to `out` (a pooled buffer, so nothing is allocated in the
    /// steady state).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match *self {
            SessionMessage::KeyUpdateRequest(public) => {
                out.push(KEY_UPDATE_REQUEST);
                out.extend_from_slice(&public);
            }
            SessionMessage::KeyUpdateResponse(public) => {
                out.push(KEY_UPDATE_RESPONSE);
                out.extend_from_slice(&public);
            }
            SessionMessage::UnlockInit(ke1) => {
                out.push(UNLOCK_INIT);
                out.extend_from_slice(ke1);
            }
            SessionMessage::UnlockResponse { remaining, ke2 } => {
                out.push(UNLOCK_RESPONSE);
                out.extend_from_slice(&remaining.to_be_bytes());
                out.extend_from_slice(ke2);
            }
            SessionMessage::UnlockFinish(ke3) => {
                out.push(UNLOCK_FINISH);
                out.extend_from_slice(ke3);
            }
            SessionMessage::UnlockResult { ok, remaining } => {
                out.push(UNLOCK_RESULT);
                out.push(u8::from(ok));
                out.extend_from_slice(&remaining.to_be_bytes());
            }
            SessionMessage::UnlockRefused {
                reason,
                remaining,
                retry_after_ms,
            } => {
                out.push(UNLOCK_REFUSED);
                out.push(reason);
                out.extend_from_slice(&remaining.to_be_bytes());
                out.extend_from_slice(&retry_after_ms.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let messages = [
            SessionMessage::KeyUpdateRequest([7; 32]),
            SessionMessage::KeyUpdateResponse([9; 32]),
            SessionMessage::UnlockInit(&[1, 2, 3]),
            SessionMessage::UnlockResponse {
                remaining: 9,
                ke2: &[4, 5],
            },
            SessionMessage::UnlockFinish(&[6]),
            SessionMessage::UnlockResult {
                ok: true,
                remaining: 10,
            },
            SessionMessage::UnlockRefused {
                reason: 2,
                remaining: 0,
                retry_after_ms: 60_000,
            },
        ];
        for m in messages {
            let mut out = Vec::new();
            m.emit(&mut out);
            assert_eq!(SessionMessage::parse(&out), Ok(m));
        }
    }

    #[test]
    fn bad_messages_are_typed_errors() {
        assert_eq!(
            SessionMessage::parse(&[]),
            Err(DecodeError::PayloadTooShort)
        );
        assert_eq!(
            SessionMessage::parse(&[1, 0, 0]),
            Err(DecodeError::InvalidField)
        );
        assert_eq!(
            SessionMessage::parse(&[4, 0, 0]),
            Err(DecodeError::PayloadTooShort)
        );
        assert_eq!(
            SessionMessage::parse(&[42]),
            Err(DecodeError::UnknownMessage(42))
        );
        // Fixed-size messages are exactly their size; an outcome is 0 or 1.
        assert_eq!(
            SessionMessage::parse(&[6, 1, 0, 0, 0, 3, 0]),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(
            SessionMessage::parse(&[6, 2, 0, 0, 0, 3]),
            Err(DecodeError::InvalidField)
        );
        assert_eq!(
            SessionMessage::parse(&[7, 2, 0, 0, 0, 0, 0, 0, 0, 1, 9]),
            Err(DecodeError::TrailingBytes)
        );
    }
}
