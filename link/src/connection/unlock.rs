//! Storage unlock on the session channel: the remote proves the code again inside the
//! running session (OPAQUE, through the same guarded routine of the endpoint as pairing, but
//! counted against the session's bond's own unlock budget, under a total cap):
//!
//! ```text
//!   remote                                     aircraft
//!   UnlockInit(KE1) ----------------------->   guarded OPAQUE: KE1 check, attempt, KE2
//!                   <-----------------------   UnlockResponse(remaining, KE2) | UnlockRefused
//!   OPAQUE client; UnlockFinish(KE3) ------>   verify
//!                   <-----------------------   UnlockResult(ok, remaining)
//! ```
//!
//! The remote gives up after the handshake timeout without an answer (the aircraft sends
//! none when its attempt store fails, exactly as for a pairing).
//!
//! The remote's OPAQUE finish may run off the link's event loop: [`KeyStretch`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::crypto::label;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::handshake::aircraft::Guarded;
use crate::handshake::keys::transcript_hash;
use crate::handshake::pake::{self, ClientLogin, KsfParams, PakeError, ServerLogin};
use crate::handshake::stretch::{KeyStretch, KeyStretched, Purpose};
use crate::handshake::{HandshakeError, RefusalReason};
use crate::time::Timestamp;
use crate::wire::session::SessionMessage;
use crate::wire::DecodeError;

/// Where the storage unlock stands.
#[derive(Default)]
pub(super) enum Unlock {
    #[default]
    Idle,
    /// Remote: waiting for the aircraft's OPAQUE response.
    Client {
        client: Box<ClientLogin>,
        code: Zeroizing<Vec<u8>>,
        started: Timestamp,
    },
    /// Remote: KE2 arrived; the key stretching it needs runs outside the link. `job` is
    /// there until the caller takes it; `tag` tells its result from a stale one.
    Stretching {
        started: Timestamp,
        tag: u64,
        job: Option<Box<KeyStretch>>,
    },
    /// Remote: KE3 sent, waiting for the result.
    Finished { started: Timestamp },
    /// Aircraft: waiting for the remote's KE3.
    Server {
        server: Box<ServerLogin>,
        remaining: u32,
    },
}

/// What an unlock message changes for the connection.
pub(super) enum Outcome {
    /// Nothing the application sees yet.
    Pending,
    /// The unlock's key stretching waits for the caller to run it.
    Stretching,
    /// The code was proven: the storage channel opens.
    Unlocked,
    /// The code was wrong.
    Rejected { remaining: u32 },
    /// The aircraft refuses attempts for now.
    Refused {
        reason: RefusalReason,
        remaining: u32,
        retry_at: Timestamp,
    },
}

/// The OPAQUE context of an unlock: binds it to this session.
fn context(session_transcript: &[u8; 32]) -> [u8; 32] {
    transcript_hash(&[label::UNLOCK, session_transcript])
}

/// The unlock's next message from the remote's OPAQUE finish: KE3, or zeros for a wrong
/// code.
fn ke3_of(result: Result<(Vec<u8>, crate::crypto::Secret), PakeError>) -> Vec<u8> {
    match result {
        Ok((ke3, _)) => ke3,
        // Wrong code: tell the aircraft at once (the attempt is counted either way); its
        // result message reports the rejection with the attempts left.
        Err(_) => alloc::vec![0u8; pake::KE3_LEN],
    }
}

impl Unlock {
    /// Remote: start; the message to send.
    pub(super) fn start(
        &mut self,
        code: &[u8],
        now: Timestamp,
        rng: &mut ChaCha20Rng,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (client, ke1) = pake::client_start(code, rng)
            .map_err(|_| Error::Handshake(HandshakeError::Malformed))?;
        *self = Unlock::Client {
            client: Box::new(client),
            code: Zeroizing::new(code.to_vec()),
            started: now,
        };
        SessionMessage::UnlockInit(&ke1).emit(out);
        Ok(())
    }

    /// Remote: when an unanswered unlock is given up.
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Timestamp> {
        match self {
            Unlock::Client { started, .. }
            | Unlock::Stretching { started, .. }
            | Unlock::Finished { started } => Some(*started + timeout),
            _ => None,
        }
    }

    /// Remote: give up an unanswered unlock.
    pub(super) fn expire(&mut self) {
        *self = Unlock::Idle;
    }

    /// Aircraft: a remote asks to unlock. The answer is appended to `out`.
    ///
    /// # Errors
    /// A protocol violation for a KE1 that is not a valid request; a local error when the
    /// attempt store fails (no answer is sent, as for a pairing).
    pub(super) fn on_init(
        &mut self,
        now: Timestamp,
        ke1: &[u8],
        session_transcript: &[u8; 32],
        endpoint: &mut Endpoint,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Error> {
        let (reason, wait) = match endpoint.unlock_login(now, ke1, &context(session_transcript)) {
            Ok(login) => {
                SessionMessage::UnlockResponse {
                    remaining: login.remaining,
                    ke2: &login.ke2,
                }
                .emit(out);
                *self = Unlock::Server {
                    server: Box::new(login.server),
                    remaining: login.remaining,
                };
                return Ok(Outcome::Pending);
            }
            Err(Guarded::BackOff { retry_at }) => {
                (RefusalReason::BackOff, retry_at.saturating_since(now))
            }
            Err(Guarded::LockedOut { until }) => {
                (RefusalReason::LockedOut, until.saturating_since(now))
            }
            Err(Guarded::Store) => return Err(Error::Handshake(HandshakeError::Store)),
            Err(Guarded::Malformed) => return Err(Error::violation(DecodeError::InvalidField)),
            Err(Guarded::NotAircraft) => return Err(Error::UnexpectedFrame),
        };
        let remaining = endpoint.remaining_unlocks().unwrap_or(0);
        SessionMessage::UnlockRefused {
            reason: reason as u8,
            remaining,
            retry_after_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        }
        .emit(out);
        Ok(if reason == RefusalReason::LockedOut {
            Outcome::Refused {
                reason,
                remaining,
                retry_at: now + wait,
            }
        } else {
            Outcome::Pending
        })
    }

    /// Remote: the aircraft's OPAQUE answer. The finish is appended to `out`, or, with
    /// `defer`, waits for the key stretching to run outside the link
    /// ([`Unlock::take_stretch`], [`Unlock::on_stretched`]).
    pub(super) fn on_response(
        &mut self,
        ke2: &[u8],
        session_transcript: &[u8; 32],
        ksf: KsfParams,
        defer: bool,
        rng: &mut ChaCha20Rng,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Error> {
        let (client, code, started) = match core::mem::take(self) {
            Unlock::Client {
                client,
                code,
                started,
            } => (client, code, started),
            other => {
                *self = other;
                return Err(Error::UnexpectedFrame);
            }
        };
        let context = context(session_transcript);
        if defer {
            let job = KeyStretch::new(Purpose::Unlock, client, code, ke2, context, ksf, rng);
            *self = Unlock::Stretching {
                started,
                tag: job.tag(),
                job: Some(Box::new(job)),
            };
            return Ok(Outcome::Stretching);
        }
        let ke3 = ke3_of(client.finish(&code, ke2, &context, ksf, rng));
        SessionMessage::UnlockFinish(&ke3).emit(out);
        *self = Unlock::Finished { started };
        Ok(Outcome::Pending)
    }

    /// Remote: whether the key stretching waits to be run.
    pub(super) fn has_stretch(&self) -> bool {
        matches!(self, Unlock::Stretching { job: Some(_), .. })
    }

    /// Remote: the key stretching waiting to be run, once.
    pub(super) fn take_stretch(&mut self) -> Option<KeyStretch> {
        match self {
            Unlock::Stretching { job, .. } => job.take().map(|job| *job),
            _ => None,
        }
    }

    /// Remote: the key stretching's result; the finish is appended to `out`. A result for
    /// an unlock given up or started again since is dropped (false).
    pub(super) fn on_stretched(&mut self, done: KeyStretched, out: &mut Vec<u8>) -> bool {
        match *self {
            Unlock::Stretching { started, tag, .. } if tag == done.tag => {
                SessionMessage::UnlockFinish(&ke3_of(done.result)).emit(out);
                *self = Unlock::Finished { started };
                true
            }
            _ => false,
        }
    }

    /// Aircraft: the remote's KE3; the result is appended to `out`.
    pub(super) fn on_finish(
        &mut self,
        ke3: &[u8],
        session_transcript: &[u8; 32],
        endpoint: &mut Endpoint,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Error> {
        let Unlock::Server { server, remaining } = core::mem::take(self) else {
            return Err(Error::UnexpectedFrame);
        };
        let ok = server.finish(ke3, &context(session_transcript)).is_ok();
        let remaining = if ok {
            endpoint.unlock_proven().unwrap_or(remaining)
        } else {
            remaining
        };
        SessionMessage::UnlockResult { ok, remaining }.emit(out);
        Ok(if ok {
            Outcome::Unlocked
        } else {
            Outcome::Rejected { remaining }
        })
    }

    /// Remote: the aircraft's verdict.
    pub(super) fn on_result(&mut self, ok: bool, remaining: u32) -> Result<Outcome, Error> {
        if !matches!(
            self,
            Unlock::Finished { .. } | Unlock::Client { .. } | Unlock::Stretching { .. }
        ) {
            return Err(Error::UnexpectedFrame);
        }
        *self = Unlock::Idle;
        Ok(if ok {
            Outcome::Unlocked
        } else {
            Outcome::Rejected { remaining }
        })
    }

    /// Remote: the aircraft refuses attempts for now.
    pub(super) fn on_refused(
        &mut self,
        now: Timestamp,
        reason: u8,
        remaining: u32,
        retry_after_ms: u32,
    ) -> Result<Outcome, Error> {
        if !matches!(self, Unlock::Client { .. }) {
            return Err(Error::UnexpectedFrame);
        }
        *self = Unlock::Idle;
        let reason = if reason == RefusalReason::LockedOut as u8 {
            RefusalReason::LockedOut
        } else {
            RefusalReason::BackOff
        };
        Ok(Outcome::Refused {
            reason,
            remaining,
            retry_at: now + Duration::from_millis(u64::from(retry_after_ms)),
        })
    }
}
