//! Link configuration, with the defaults and the reason for each.

use core::time::Duration;

use crate::channel::fec;
use crate::handshake::{HandshakeConfig, KsfParams, LimitsConfig};
use crate::wire::body::{fec_supports, FragmentHeader};
use crate::wire::{HEADER_LEN, MAX_DATAGRAM_LEN, TAG_LEN};

/// Smallest MTU a link made with `Link::from_secret` accepts.
pub const MIN_MTU: usize = 256;
/// Smallest MTU a link that runs the handshakes accepts: its largest frame, the pairing
/// response, is 379 bytes.
pub const MIN_HANDSHAKE_MTU: usize = 400;

/// Largest [`Config::max_video_parity`]: the erasure code holds 65536 shards, and 4096
/// parity shards leave room for 61440 data shards.
pub const MAX_VIDEO_PARITY: u16 = 4096;

/// Tunable parameters of a link. `Config::default()` is what the defaults below say; change
/// a few with `Config { mtu: 1200, ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest datagram the link produces (default 1400: fits a 1500-byte Ethernet or Wi-Fi
    /// frame with IP/UDP headers to spare). Between [`MIN_MTU`] and
    /// [`crate::wire::MAX_DATAGRAM_LEN`].
    pub mtu: usize,
    /// Counters the replay window remembers (default 2048: a 20 Mbit/s video burst reordered
    /// across a few milliseconds stays inside it).
    pub replay_window: usize,
    /// Rotate the send key after this many frames (default 2^22, half of the hard limit).
    pub rekey_after_packets: u64,
    /// Rotate the send key after this many payload bytes (default 2^34 = 16 GiB).
    pub rekey_after_bytes: u64,
    /// Rotate the send key after this long (default 120 s, as WireGuard).
    pub rekey_after_time: Duration,
    /// Refuse frames on a receive key after this many (default 2^23: the AES-GCM
    /// confidentiality limit of RFC 9001 section 6.6).
    pub reject_after_packets: u64,
    /// Refuse frames on a receive key this long after it was installed (at link creation for
    /// the first key, at rotation for later ones; default 180 s, as
    /// WireGuard): a peer that stopped rekeying is cut off.
    pub reject_after_time: Duration,
    /// How long the previous receive key stays usable after a rotation, for frames still in
    /// flight (default 2 s).
    pub previous_key_grace: Duration,
    /// The send counter never reaches this value; at it the link refuses to send rather than
    /// wrap (default `u64::MAX`). Lowered only by tests.
    pub counter_limit: u64,
    /// Send a keepalive when nothing was sent for this long (default 250 ms).
    pub keepalive_interval: Duration,
    /// Report the link lost when nothing authenticated arrived for this long (default 1 s).
    pub link_loss_timeout: Duration,
    /// Largest video message (default 1 MiB: a key frame at 20 Mbit/s is ~200 KB).
    pub max_video_message: usize,
    /// Video messages reassembled at once (default 4); with `max_video_message` this bounds
    /// reassembly memory.
    pub video_reassembly_slots: usize,
    /// An incomplete video message is reported lost after this long (default 250 ms).
    pub video_reassembly_timeout: Duration,
    /// Most Reed-Solomon parity fragments per video message, both the most this end sends
    /// and the most it accepts (default 128: at 10 % loss a 57-fragment frame needs about
    /// 23, at 20 % about 46, and a key frame three times as large about three times as
    /// many; 0 turns FEC off; at most [`MAX_VIDEO_PARITY`]). The sender picks fewer, from the
    /// loss the receiver reports (`channel::fec::parity_for`), or as
    /// [`Config::video_fec`] says.
    pub max_video_parity: u16,
    /// How the sender sizes each video message's parity (default
    /// [`VideoFec::Adaptive`]); within `max_video_parity` whatever the policy, so FEC is
    /// off with `max_video_parity: 0`. The receiver needs no setting: every fragment says
    /// how many parity fragments its message has.
    pub video_fec: VideoFec,
    /// When the newest queued video message would wait longer than this at the pacing
    /// rate before its first fragment goes (behind what is still unsent of the messages
    /// before it), the oldest message nothing of which was sent is dropped (default 100 ms:
    /// about three frames at 30 frames per second; a key frame takes about that long).
    pub video_max_queue_delay: Duration,
    /// Largest control message (default 128 bytes: stick commands are small, and it fits one
    /// frame at the minimum MTU).
    pub max_control_message: usize,
    /// Report every traffic secret this end sends under as [`crate::Event::TrafficSecret`]
    /// (default false): a key log, so that a capture of this link can be decrypted for
    /// study (`rotorlink decrypt`, PROTOCOL.md 30.2). Whoever reads the log reads the
    /// traffic: turn it on only for links whose traffic is not secret (a test bench).
    pub log_traffic_secrets: bool,
    /// Largest storage message (default 256 KiB).
    pub max_storage_message: usize,
    /// The reliable channels' receive window, in segments: how many this end holds beyond
    /// the next one it expects, and the most it keeps in flight itself (default 16384: about
    /// three times the bandwidth-delay product of 100 Mbit/s over a 75 ms one-way radio, so
    /// a loss, and the loss of its repair, are mended without stalling; 64 to 32768). Held
    /// segments are allocated as they arrive: up to 22 MiB at 1400-byte frames.
    pub storage_window: u32,
    /// First retransmission timeout of the reliable channel, before any RTT sample (default
    /// 200 ms).
    pub storage_initial_rto: Duration,
    /// Smallest retransmission timeout (default 20 ms).
    pub storage_min_rto: Duration,
    /// Largest retransmission timeout, backoff included (default 2 s).
    pub storage_max_rto: Duration,
    /// Messages queued per channel before `send` reports [`crate::SendError::QueueFull`]
    /// (default 256).
    pub send_queue_len: usize,
    /// Events held for the application before received messages are dropped (default 4096).
    pub max_pending_events: usize,
    /// Handshake timing and rate limits.
    pub handshake: HandshakeConfig,
    /// Brute-force limits on the security code (aircraft).
    pub limits: LimitsConfig,
    /// Argon2id parameters of the code's key stretching. Both ends must use the ones the
    /// aircraft was provisioned with (default [`KsfParams::INTERACTIVE`]).
    pub ksf: KsfParams,
    /// The remote starts a resume by itself when the link is lost (default true).
    pub reconnect_on_loss: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mtu: 1400,
            replay_window: 2048,
            rekey_after_packets: 1 << 22,
            rekey_after_bytes: 1 << 34,
            rekey_after_time: Duration::from_secs(120),
            reject_after_packets: 1 << 23,
            reject_after_time: Duration::from_secs(180),
            previous_key_grace: Duration::from_secs(2),
            counter_limit: u64::MAX,
            keepalive_interval: Duration::from_millis(250),
            link_loss_timeout: Duration::from_secs(1),
            max_video_message: 1 << 20,
            video_reassembly_slots: 4,
            video_reassembly_timeout: Duration::from_millis(250),
            max_video_parity: 128,
            video_fec: VideoFec::Adaptive,
            video_max_queue_delay: Duration::from_millis(100),
            max_control_message: 128,
            log_traffic_secrets: false,
            max_storage_message: 256 * 1024,
            storage_window: 16_384,
            storage_initial_rto: Duration::from_millis(200),
            storage_min_rto: Duration::from_millis(20),
            storage_max_rto: Duration::from_secs(2),
            send_queue_len: 256,
            max_pending_events: 4096,
            handshake: HandshakeConfig::default(),
            limits: LimitsConfig::default(),
            ksf: KsfParams::default(),
            reconnect_on_loss: true,
        }
    }
}

/// How many Reed-Solomon parity fragments the sender gives a video message ([`Config::video_fec`]).
///
/// Whatever the policy, the message is one code: any `count` of its `count + parity`
/// fragments give it back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VideoFec {
    /// As the loss the receiver reports asks (`channel::fec::parity_for`): a frame lost less
    /// than once in a thousand at that loss, and at most 3 % overhead while nothing is lost.
    #[default]
    Adaptive,
    /// The same overhead whatever the loss: `ceil(count * parity / data)` parity fragments
    /// for a message of `count` data fragments (still at most `max_video_parity`, and
    /// lowered until the code supports the pair).
    ///
    /// [`VideoFec::WFB_NG`] is wfb-ng's default ratio, 8 data in 12 (+50 %). It is *not*
    /// wfb-ng's code: wfb-ng cuts a frame into independent blocks of 8 data and 4 parity
    /// fragments, and loses a block (so the frame) when more than 4 of its 12 are lost,
    /// while here the frame's `count` fragments share all of its parity. At the same
    /// overhead one code over the whole frame is stronger, so a sweep of this policy
    /// flatters wfb-ng.
    Fixed {
        /// Data fragments per `parity` parity fragments (at least 1).
        data: u16,
        /// Parity fragments per `data` data fragments.
        parity: u16,
    },
}

impl VideoFec {
    /// wfb-ng's default ratio: 4 parity fragments for every 8 data fragments (8 of 12).
    pub const WFB_NG: VideoFec = VideoFec::Fixed { data: 8, parity: 4 };

    /// The parity fragments of a message of `count` data fragments when the receiver
    /// reports a fraction `loss` lost in runs of mean `burst` (both ignored by
    /// [`VideoFec::Fixed`]), at most `max_parity` and supported by the code (0 if no
    /// amount is).
    pub fn parity_for(self, count: u16, loss: f64, burst: f64, max_parity: u16) -> u16 {
        match self {
            VideoFec::Adaptive => fec::parity_for(count, loss, burst, max_parity),
            VideoFec::Fixed { data, parity } => {
                let wanted =
                    (u32::from(count) * u32::from(parity)).div_ceil(u32::from(data.max(1)));
                let mut p = u16::try_from(wanted).unwrap_or(u16::MAX).min(max_parity);
                while p > 0 && !fec_supports(count, p) {
                    p -= 1;
                }
                p
            }
        }
    }

    /// The share of the video budget left to the encoder when messages of `count` data
    /// fragments carry [`VideoFec::parity_for`] parity: `count / (count + parity)`.
    pub fn data_share(self, count: u16, loss: f64, burst: f64, max_parity: u16) -> f64 {
        let count = count.max(1);
        let k = f64::from(count);
        k / (k + f64::from(self.parity_for(count, loss, burst, max_parity)))
    }
}

/// A configuration value out of its allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

impl Config {
    /// Check every value against its allowed range.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks = [
            (
                (MIN_MTU..=MAX_DATAGRAM_LEN).contains(&self.mtu),
                "mtu must be between 256 and 16384",
            ),
            (
                self.replay_window >= 64,
                "replay_window must be at least 64",
            ),
            (
                self.rekey_after_packets >= 1
                    && self.rekey_after_packets <= self.reject_after_packets,
                "rekey_after_packets must be between 1 and reject_after_packets",
            ),
            (
                self.rekey_after_time <= self.reject_after_time,
                "rekey_after_time must not exceed reject_after_time",
            ),
            (
                self.rekey_after_bytes >= 1,
                "rekey_after_bytes must be at least 1",
            ),
            (
                (64..=32_768).contains(&self.storage_window),
                "storage_window must be between 64 and 32768",
            ),
            (
                !self.storage_min_rto.is_zero()
                    && self.storage_min_rto <= self.storage_initial_rto
                    && self.storage_initial_rto <= self.storage_max_rto,
                "storage RTOs must be positive and min <= initial <= max",
            ),
            (
                self.video_reassembly_slots >= 1,
                "video_reassembly_slots must be at least 1",
            ),
            (
                self.max_video_message >= 1
                    && self.max_video_message.div_ceil(self.max_fragment_data())
                        <= usize::from(u16::MAX),
                "max_video_message must fit in 65535 fragments",
            ),
            (
                self.max_video_parity <= MAX_VIDEO_PARITY,
                "max_video_parity must be at most 4096",
            ),
            (
                !matches!(self.video_fec, VideoFec::Fixed { data: 0, .. }),
                "video_fec: a fixed code needs at least one data fragment",
            ),
            (
                self.max_control_message >= 1 && self.max_control_message <= self.max_plaintext(),
                "max_control_message must fit in one frame",
            ),
            (
                self.max_storage_message >= 1,
                "max_storage_message must be at least 1",
            ),
            (
                self.send_queue_len >= 1,
                "send_queue_len must be at least 1",
            ),
            (
                self.max_pending_events >= 1,
                "max_pending_events must be at least 1",
            ),
            (
                !self.keepalive_interval.is_zero() && !self.link_loss_timeout.is_zero(),
                "keepalive_interval and link_loss_timeout must be positive",
            ),
            (
                self.handshake.rate_per_second >= 1
                    && !self.handshake.retry_initial.is_zero()
                    && self.handshake.retry_initial <= self.handshake.retry_max
                    && !self.handshake.timeout.is_zero(),
                "handshake: rate >= 1, 0 < retry_initial <= retry_max, timeout > 0",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(ConfigError(why)),
            None => Ok(()),
        }
    }

    /// [`Config::validate`], plus room for the handshake messages.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range.
    pub fn validate_for_handshakes(&self) -> Result<(), ConfigError> {
        self.validate()?;
        if self.mtu < MIN_HANDSHAKE_MTU {
            return Err(ConfigError(
                "mtu must be at least 400 to carry the handshakes",
            ));
        }
        Ok(())
    }

    /// The most bytes video reassembly holds at once: per slot, a message of at most
    /// `max_video_message` bytes and the parity shards received for it. Those are fewer than
    /// the message's `count` data fragments, each at most one fragment plus one padding
    /// byte, so under `max_video_message + count` bytes (`count` < 65536); and at most
    /// `max_video_parity` of them, each within a datagram.
    pub fn max_video_reassembly_bytes(&self) -> usize {
        let parity = (usize::from(self.max_video_parity) * MAX_DATAGRAM_LEN)
            .min(self.max_video_message + usize::from(u16::MAX));
        self.video_reassembly_slots
            .saturating_mul(self.max_video_message.saturating_add(parity))
    }

    /// Largest plaintext one frame carries at this MTU.
    pub fn max_plaintext(&self) -> usize {
        self.mtu.saturating_sub(HEADER_LEN + TAG_LEN)
    }

    /// Largest video fragment data one frame carries at this MTU, rounded down to an even
    /// number: a parity fragment carries the fragment size rounded up to even (the erasure
    /// code's shard length), and must fit as well.
    pub(crate) fn max_fragment_data(&self) -> usize {
        (self.max_plaintext().saturating_sub(FragmentHeader::LEN) & !1).max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = Config {
            mtu: 10,
            ..Config::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError("mtu must be between 256 and 16384"))
        );
        let bad = Config {
            storage_initial_rto: Duration::ZERO,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let bad = Config {
            storage_window: 63,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let bad = Config {
            rekey_after_packets: 1 << 30,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let bad = Config {
            max_video_parity: MAX_VIDEO_PARITY + 1,
            ..Config::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError("max_video_parity must be at most 4096"))
        );
        let off = Config {
            max_video_parity: 0,
            ..Config::default()
        };
        assert_eq!(off.validate(), Ok(()));
        assert_eq!(
            off.max_video_reassembly_bytes(),
            off.video_reassembly_slots * off.max_video_message
        );
        let bad = Config {
            video_fec: VideoFec::Fixed { data: 0, parity: 4 },
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }

    /// A fixed code gives every message the same share of parity, rounded up, whatever the
    /// loss; within the cap, and off with a cap of 0.
    #[test]
    fn fixed_video_fec_keeps_its_ratio_whatever_the_loss() {
        let fixed = VideoFec::WFB_NG;
        for loss in [0.0, 0.01, 0.2, f64::NAN] {
            assert_eq!(fixed.parity_for(8, loss, 1.0, 64), 4);
            assert_eq!(fixed.parity_for(1, loss, 8.0, 64), 1);
            assert_eq!(fixed.parity_for(9, loss, 1.0, 64), 5);
            assert_eq!(fixed.parity_for(60, loss, 1.0, 64), 30);
            assert_eq!(fixed.parity_for(150, loss, 1.0, 64), 64, "capped");
            assert_eq!(fixed.parity_for(150, loss, 1.0, MAX_VIDEO_PARITY), 75);
            assert_eq!(fixed.parity_for(60, loss, 1.0, 0), 0, "FEC off");
        }
        assert!((fixed.data_share(60, 0.0, 1.0, 64) - 60.0 / 90.0).abs() < 1e-12);
        assert_eq!(fixed.data_share(60, 0.0, 1.0, 0), 1.0);
        let third = VideoFec::Fixed { data: 3, parity: 1 };
        assert_eq!(third.parity_for(10, 0.0, 1.0, 64), 4);
        // Adaptive is the loss-driven policy itself.
        for (count, loss) in [(60, 0.0), (60, 0.05), (5, 0.2)] {
            assert_eq!(
                VideoFec::Adaptive.parity_for(count, loss, 1.0, 64),
                fec::parity_for(count, loss, 1.0, 64)
            );
        }
        assert_eq!(Config::default().video_fec, VideoFec::Adaptive);
    }
}
