//! Handshake message formats (the payloads of frame types 0x01 to 0x04).
//!
//! Handshake frames travel in the clear: the header's flags and channel are zero, its counter
//! is zero, and its receiver index is the receiver's session index (zero in an `Init`, whose
//! receiver has none yet). Every message starts with its kind, so the three handshakes share
//! four frame types.
//!
//! ```text
//! Init (remote -> aircraft)
//! +------+-------+----------------+-------------------------------+---------+
//! | kind | suite | sender index   | body                          | mac1    |
//! | 1 B  | 1 B   | 4 B            | Pair:    remote static 32, KE1|  16 B   |
//! |      |       |                | Session: bond id 8, Noise message 1 (60) |
//! |      |       |                | Resume:  ticket 16, Noise message 1 (60) |
//! +------+-------+----------------+-------------------------------+---------+
//! Response (aircraft -> remote)
//! +------+----------------+------------------------------------------------+
//! | kind | Pair: sender index 4, remaining attempts 4, aircraft static 32, KE2
//! |      | Session, Resume: Noise message 2 (52: ephemeral 32, encrypted index 4 + 16)
//! |      |                                                                 |
//! +------+----------------+------------------------------------------------+
//! Finish (remote -> aircraft)          Refusal (aircraft -> remote)
//! +------+---------------------+       +--------+-----------+----------------+
//! | kind | Pair: KE3           |       | reason | remaining | retry after ms |
//! |      | else: confirm 16    |       | 1 B    | 4 B       | 4 B            |
//! +------+---------------------+       +--------+-----------+----------------+
//! ```

use alloc::vec::Vec;

use super::reader::Reader;
use super::{DecodeError, Frame, FrameType, Header, HEADER_LEN};
use crate::handshake::pake::{KE1_LEN, KE2_LEN, KE3_LEN};

pub use crate::handshake::noise::{MESSAGE1_LEN, MESSAGE2_LEN};

/// The cipher suite byte: session handshakes `Noise_KKpsk0_25519_AESGCM_SHA256`, resumes
/// `Noise_NNpsk0_25519_AESGCM_SHA256`, pairing OPAQUE over ristretto255 with Argon2id; AES-256-GCM
/// and SHA-256 throughout. The only one defined (suite 1, the home-made session handshake
/// before issue 15, is refused).
pub const SUITE_V2: u8 = 2;
/// Length of the cheap anti-DoS MAC that ends every `Init`.
pub const MAC1_LEN: usize = 16;
/// Length of a key-confirmation value.
pub const CONFIRM_LEN: usize = 16;
/// Length of a bond id.
pub const BOND_ID_LEN: usize = 8;
/// Length of a resumption ticket.
pub const TICKET_LEN: usize = 16;

/// Which handshake a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Password pairing: OPAQUE with the security code.
    Pair = 1,
    /// Session handshake between bonded devices: X25519 static and ephemeral keys.
    Session = 2,
    /// Fast reconnect from the previous session's resumption secret and fresh ephemerals.
    Resume = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        match b {
            1 => Ok(Kind::Pair),
            2 => Ok(Kind::Session),
            3 => Ok(Kind::Resume),
            _ => Err(DecodeError::InvalidField),
        }
    }
}

/// The body of an `Init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitBody<'a> {
    /// Pairing: the remote's static X25519 public key (to be bonded) and OPAQUE's KE1.
    Pair {
        /// The remote's static public key.
        remote_static: [u8; 32],
        /// OPAQUE KE1.
        ke1: &'a [u8],
    },
    /// Session: which bond, and the first Noise message (`Noise_KKpsk0`).
    Session {
        /// First 8 bytes of SHA-256 of the remote's static public key.
        bond_id: [u8; BOND_ID_LEN],
        /// Noise message 1: the remote's ephemeral public key (32) and the encrypted
        /// timestamp (12 + 16).
        message: [u8; MESSAGE1_LEN],
    },
    /// Resume: which previous session, and the first Noise message (`Noise_NNpsk0`).
    Resume {
        /// The ticket both sides derived from the previous session.
        ticket: [u8; TICKET_LEN],
        /// Noise message 1: the remote's ephemeral public key (32) and the encrypted
        /// timestamp (12 + 16).
        message: [u8; MESSAGE1_LEN],
    },
}

/// A parsed `Init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init<'a> {
    /// The suite byte (must be [`SUITE_V2`]).
    pub suite: u8,
    /// The index the remote receives on.
    pub sender_index: u32,
    /// The kind-specific body.
    pub body: InitBody<'a>,
    /// The anti-DoS MAC over the frame before it.
    pub mac1: [u8; MAC1_LEN],
}

/// The body of a `Response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody<'a> {
    /// Pairing.
    Pair {
        /// Attempts left if this one fails.
        remaining_attempts: u32,
        /// The aircraft's static public key (for the bond).
        aircraft_static: [u8; 32],
        /// OPAQUE KE2.
        ke2: &'a [u8],
    },
    /// Session or resume: the second Noise message.
    Keyed {
        /// Session or Resume.
        kind: Kind,
        /// Noise message 2: the aircraft's ephemeral public key (32) and its session index
        /// encrypted (4 + 16). The tag is the aircraft's key confirmation, and it covers the
        /// index: every byte of a keyed `Response` is checked exactly or authenticated.
        message: [u8; MESSAGE2_LEN],
    },
}

/// A parsed `Response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The index the aircraft receives on, in the clear in a pairing `Response`. A keyed
    /// `Response` carries it inside Noise message 2 instead: there it is 0 when parsed and
    /// not emitted.
    pub sender_index: u32,
    /// The kind-specific body.
    pub body: ResponseBody<'a>,
}

/// A parsed `Finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish<'a> {
    /// Pairing: OPAQUE KE3.
    Pair {
        /// OPAQUE KE3.
        ke3: &'a [u8],
    },
    /// Session or resume: the remote's key confirmation.
    Keyed {
        /// Session or Resume.
        kind: Kind,
        /// Proof that the remote derived the same keys.
        confirm: [u8; CONFIRM_LEN],
    },
}

/// Why the aircraft refused a handshake. Unauthenticated: advisory only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RefusalReason {
    /// Too soon after a failed attempt.
    BackOff = 1,
    /// Too many failed attempts.
    LockedOut = 2,
    /// The bond is not known (revoked by a code change, or never made).
    UnknownBond = 3,
    /// The resumption ticket is not known (the aircraft no longer holds the session).
    UnknownTicket = 4,
    /// Too many handshakes right now.
    Busy = 5,
    /// A pairing outside the pairing window the owner opens on the aircraft.
    PairingClosed = 6,
}

/// A parsed `Refusal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// Password attempts left before lockout.
    pub remaining_attempts: u32,
    /// Milliseconds before another attempt is accepted.
    pub retry_after_ms: u32,
}

/// Parse a handshake frame's header and check the fields every handshake frame shares.
///
/// # Errors
/// A [`DecodeError`] for a malformed frame, a non-handshake type, or a nonzero packet number.
pub fn parse_frame(datagram: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    let frame = Frame::new_checked(datagram)?;
    let header = Header::parse(&frame)?;
    if header.frame_type.is_encrypted() || header.packet_number != 0 {
        return Err(DecodeError::InvalidField);
    }
    Ok((header, &datagram[HEADER_LEN..]))
}

impl<'a> Init<'a> {
    /// Parse an `Init` payload.
    ///
    /// # Errors
    /// A [`DecodeError`] for any malformation, including wrong lengths.
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let kind = Kind::from_u8(r.u8()?)?;
        let suite = r.u8()?;
        let sender_index = r.u32()?;
        let body = match kind {
            Kind::Pair => InitBody::Pair {
                remote_static: r.array()?,
                ke1: r.take(KE1_LEN)?,
            },
            Kind::Session => InitBody::Session {
                bond_id: r.array()?,
                message: r.array()?,
            },
            Kind::Resume => InitBody::Resume {
                ticket: r.array()?,
                message: r.array()?,
            },
        };
        let mac1 = r.array()?;
        r.end()?;
        Ok(Init {
            suite,
            sender_index,
            body,
            mac1,
        })
    }

    /// The kind of handshake.
    pub fn kind(&self) -> Kind {
        match self.body {
            InitBody::Pair { .. } => Kind::Pair,
            InitBody::Session { .. } => Kind::Session,
            InitBody::Resume { .. } => Kind::Resume,
        }
    }

    /// Length of the cleartext before the Noise message (kind, suite, sender index, bond id
    /// or ticket): with the frame header, the Noise prologue. Zero for a pairing.
    pub fn noise_offset(&self) -> usize {
        match self.body {
            InitBody::Pair { .. } => 0,
            InitBody::Session { .. } => 6 + BOND_ID_LEN,
            InitBody::Resume { .. } => 6 + TICKET_LEN,
        }
    }

    /// The payload bytes, with `mac1` left as zeros for the caller to fill in.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + 32 + KE1_LEN + MAC1_LEN);
        out.push(self.kind() as u8);
        out.push(self.suite);
        out.extend_from_slice(&self.sender_index.to_be_bytes());
        match self.body {
            InitBody::Pair { remote_static, ke1 } => {
                out.extend_from_slice(&remote_static);
                out.extend_from_slice(ke1);
            }
            InitBody::Session { bond_id, message } => {
                out.extend_from_slice(&bond_id);
                out.extend_from_slice(&message);
            }
            InitBody::Resume { ticket, message } => {
                out.extend_from_slice(&ticket);
                out.extend_from_slice(&message);
            }
        }
        out.extend_from_slice(&self.mac1);
        out
    }
}

impl<'a> Response<'a> {
    /// Parse a `Response` payload.
    ///
    /// # Errors
    /// A [`DecodeError`] for any malformation, including wrong lengths.
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let kind = Kind::from_u8(r.u8()?)?;
        let (sender_index, body) = match kind {
            Kind::Pair => (
                r.u32()?,
                ResponseBody::Pair {
                    remaining_attempts: r.u32()?,
                    aircraft_static: r.array()?,
                    ke2: r.take(KE2_LEN)?,
                },
            ),
            Kind::Session | Kind::Resume => (
                0,
                ResponseBody::Keyed {
                    kind,
                    message: r.array()?,
                },
            ),
        };
        r.end()?;
        Ok(Response { sender_index, body })
    }

    /// The payload bytes.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 36 + KE2_LEN);
        match self.body {
            ResponseBody::Pair {
                remaining_attempts,
                aircraft_static,
                ke2,
            } => {
                out.push(Kind::Pair as u8);
                out.extend_from_slice(&self.sender_index.to_be_bytes());
                out.extend_from_slice(&remaining_attempts.to_be_bytes());
                out.extend_from_slice(&aircraft_static);
                out.extend_from_slice(ke2);
            }
            ResponseBody::Keyed { kind, message } => {
                out.push(kind as u8);
                out.extend_from_slice(&message);
            }
        }
        out
    }
}

impl<'a> Finish<'a> {
    /// Parse a `Finish` payload.
    ///
    /// # Errors
    /// A [`DecodeError`] for any malformation, including wrong lengths.
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let finish = match Kind::from_u8(r.u8()?)? {
            Kind::Pair => Finish::Pair {
                ke3: r.take(KE3_LEN)?,
            },
            kind => Finish::Keyed {
                kind,
                confirm: r.array()?,
            },
        };
        r.end()?;
        Ok(finish)
    }

    /// The payload bytes.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KE3_LEN);
        match self {
            Finish::Pair { ke3 } => {
                out.push(Kind::Pair as u8);
                out.extend_from_slice(ke3);
            }
            Finish::Keyed { kind, confirm } => {
                out.push(*kind as u8);
                out.extend_from_slice(confirm);
            }
        }
        out
    }
}

impl Refusal {
    /// Encoded length.
    pub const LEN: usize = 9;

    /// Parse a `Refusal` payload.
    ///
    /// # Errors
    /// A [`DecodeError`] for any malformation.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let reason = match r.u8()? {
            1 => RefusalReason::BackOff,
            2 => RefusalReason::LockedOut,
            3 => RefusalReason::UnknownBond,
            4 => RefusalReason::UnknownTicket,
            5 => RefusalReason::Busy,
            6 => RefusalReason::PairingClosed,
            _ => return Err(DecodeError::InvalidField),
        };
        let refusal = Refusal {
            reason,
            remaining_attempts: r.u32()?,
            retry_after_ms: r.u32()?,
        };
        r.end()?;
        Ok(refusal)
    }

    /// The payload bytes.
    pub fn emit(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.reason as u8;
        out[1..5].copy_from_slice(&self.remaining_attempts.to_be_bytes());
        out[5..9].copy_from_slice(&self.retry_after_ms.to_be_bytes());
        out
    }
}

/// A whole handshake datagram: header (packet number 0, no flags or channel) and `payload`.
pub fn frame(frame_type: FrameType, receiver_index: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![0u8; HEADER_LEN + payload.len()];
    let header = Header {
        frame_type,
        key_phase: false,
        channel: None,
        receiver_index,
        packet_number: 0,
    };
    // The buffer is exactly HEADER_LEN + payload long, so the header fits.
    let _ = header.emit(&mut out);
    out[HEADER_LEN..].copy_from_slice(payload);
    out
}
