//! Forward error correction for video: a systematic Reed-Solomon erasure code per message.
//!
//! The `count` data fragments of a message are its data shards, each zero-padded to the
//! shard length ([`FragmentHeader::shard_len`]: the fragment size rounded up to an even
//! number, since `reed-solomon-simd` works on pairs of bytes); `parity` parity shards follow
//! them on the wire. Any `count` of the `count + parity` fragments give the message back. The
//! field arithmetic is the crate's: nothing here computes in GF(2^16).
//!
//! How much parity a message gets is [`parity_for`]: enough that, at the loss the receiver
//! reports (with a margin), a frame is lost less than once in a thousand.

use alloc::vec::Vec;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::wire::body::{fec_supports, FragmentHeader};

/// The frame loss the parity aims below.
const TARGET_FRAME_LOSS: f64 = 1e-3;
/// The measured loss is scaled by this before use: losses come in bursts, and the estimate
/// lags a worsening radio by up to its memory.
const LOSS_MARGIN_FACTOR: f64 = 1.5;
/// And this much absolute loss is added, so that a loss just measured as tiny still buys a
/// useful amount of parity.
const LOSS_MARGIN_ABS: f64 = 0.002;
/// With no measured loss, parity costs at most this share of a message, in percent: stray
/// losses are mended for large frames, and small ones pay nothing.
const IDLE_OVERHEAD_PERCENT: usize = 3;

/// The loss assumed before the receiver has reported any: the first frames (the first key
/// frame among them) go out before a round trip has measured the radio, and a frame lost
/// then leaves the picture broken until a key frame repairs it. 5 % costs a 57-fragment
/// frame 14 parity fragments, for the first round trip or two only.
pub const UNKNOWN_LOSS: f64 = 0.05;

/// The number of parity fragments for a message of `count` data fragments when the
/// receiver reports a fraction `loss` of frames lost, in runs of `burst` frames on average
/// (1 for independent losses).
///
/// - No measured loss (or a non-finite one): `floor(3 % of count)`, so at most 3 % overhead
///   (no parity below 34 fragments).
/// - Otherwise the smallest `p >= 1` such that, with losses as the radio shows them (below)
///   at `q = min(1.5 * loss + 0.002, 0.5)`, more than `p` of the `count + p` fragments are
///   lost with probability below 1e-3.
///
/// Either way capped by `max_parity` and lowered until the erasure code supports the
/// `(count, p)` pair (0 if none).
///
/// The loss model (`frame_loss`): runs of lost fragments start independently, at a
/// fraction `q / burst` of fragments, and each lasts a geometric number of fragments of
/// mean `burst` (the Gilbert-Elliott channel's bad state). With `burst = 1` it is
/// independent loss, binomial.
pub fn parity_for(count: u16, loss: f64, burst: f64, max_parity: u16) -> u16 {
    let k = usize::from(count);
    let wanted = if loss.is_nan() || loss <= 0.0 {
        k * IDLE_OVERHEAD_PERCENT / 100
    } else {
        let q = (loss.min(1.0) * LOSS_MARGIN_FACTOR + LOSS_MARGIN_ABS).min(0.5);
        let burst = if burst.is_finite() {
            burst.max(1.0)
        } else {
            1.0
        };
        let mut p = 1;
        while p < usize::from(max_parity) && frame_loss(k + p, p, q, burst) >= TARGET_FRAME_LOSS {
            p += 1;
        }
        p
    };
    let mut p = u16::try_from(wanted).unwrap_or(u16::MAX).min(max_parity);
    while p > 0 && !fec_supports(count, p) {
        p -= 1;
    }
    p
}

/// The share of the video budget the encoder may use when messages of `count` data
/// fragments carry [`parity_for`] parity: `count / (count + parity)`, as a fraction.
pub fn data_share(count: u16, loss: f64, burst: f64, max_parity: u16) -> f64 {
    let k = f64::from(count.max(1));
    k / (k + f64::from(parity_for(count.max(1), loss, burst, max_parity)))
}

/// P(more than `p` of `n` fragments lost) when a fraction `q` is lost in runs of mean length
/// `burst`: runs start at `R ~ Bin(n, q / burst)` fragments, and `r` runs of geometric
/// length (mean `burst`) cover at most `p` fragments exactly when at least `r` of `p`
/// Bernoulli trials of probability `1 / burst` succeed (each success ends a run). So
/// `P(T > p) = P(R > p) + sum over r = 1..=p of P(R = r) * P(Bin(p, 1 / burst) < r)`. For
/// `burst = 1` the sum vanishes and this is the binomial tail.
fn frame_loss(n: usize, p: usize, q: f64, burst: f64) -> f64 {
    let start = (q / burst).clamp(0.0, 1.0);
    let end = 1.0 / burst;
    let mut total = binomial_tail(n, p, start);
    if end >= 1.0 || start <= 0.0 {
        return total;
    }
    // P(R = r) and P(Bin(p, end) <= r - 1), both built up term by term.
    let mut runs_pmf = pow(1.0 - start, n);
    let runs_ratio = start / (1.0 - start);
    let mut ends_pmf = pow(1.0 - end, p);
    let mut ends_cdf = ends_pmf;
    let ends_ratio = end / (1.0 - end);
    for r in 1..=p.min(n) {
        runs_pmf *= (n - r + 1) as f64 / r as f64 * runs_ratio;
        total += runs_pmf * ends_cdf.min(1.0);
        // P(Bin(p, end) <= r) for the next r.
        ends_pmf *= (p - r + 1) as f64 / r as f64 * ends_ratio;
        ends_cdf += ends_pmf;
    }
    total.min(1.0)
}

/// `x` to the power `n` by repeated squaring (`core` has no `powi`).
fn pow(mut x: f64, mut n: usize) -> f64 {
    let mut acc = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            acc *= x;
        }
        x *= x;
        n >>= 1;
    }
    acc
}

/// P(X > p) for X binomial with `n` trials of probability `q` (0 < q < 1). When
/// `(1 - q)^n` underflows the sum is 0 and the tail reads 1: the caller then asks for the
/// most parity it may, the safe side.
fn binomial_tail(n: usize, p: usize, q: f64) -> f64 {
    let mut term = pow(1.0 - q, n);
    let mut sum = term;
    let ratio = q / (1.0 - q);
    for i in 0..p.min(n) {
        term *= (n - i) as f64 / (i + 1) as f64 * ratio;
        sum += term;
    }
    (1.0 - sum).max(0.0)
}

/// `data` as a shard of `shard_len` bytes: itself when it is that long, else a copy in
/// `scratch` zero-padded to it (the code copies each shard in at once, so one scratch
/// buffer serves them all).
fn padded<'a>(data: &'a [u8], shard_len: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if data.len() == shard_len {
        return data;
    }
    scratch.clear();
    scratch.extend_from_slice(data);
    scratch.resize(shard_len, 0);
    scratch
}

/// Computes the parity shards of a message. Keeps the codec's working space between
/// messages, so steady state allocates nothing.
#[derive(Default)]
pub struct FecEncoder {
    codec: Option<ReedSolomonEncoder>,
    scratch: Vec<u8>,
}

/// The erasure code refused the shards (an unsupported shard count or length): no parity,
/// or no recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecError;

impl FecEncoder {
    /// Append to `out` the `parity` parity shards, [`FragmentHeader::shard_len`] bytes each,
    /// of `message` cut into `count` data fragments as [`FragmentHeader`] lays them out.
    ///
    /// # Errors
    /// [`FecError`] if `message` is empty, `parity` is 0, or the code does not support
    /// `count` data with `parity` parity shards; `out` is then left as it was.
    pub fn encode(
        &mut self,
        message: &[u8],
        count: u16,
        parity: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), FecError> {
        let layout = layout(message.len(), count, parity).ok_or(FecError)?;
        let shard_len = layout.shard_len();
        let (k, p) = (usize::from(count), usize::from(parity));
        let codec = reuse(
            &mut self.codec,
            |c| c.reset(k, p, shard_len),
            || ReedSolomonEncoder::new(k, p, shard_len),
        )?;
        for index in 0..count {
            let range = FragmentHeader { index, ..layout }.range();
            let shard = message.get(range).ok_or(FecError)?;
            codec
                .add_original_shard(padded(shard, shard_len, &mut self.scratch))
                .map_err(|_| FecError)?;
        }
        let result = codec.encode().map_err(|_| FecError)?;
        out.reserve(p * shard_len);
        for shard in result.recovery_iter() {
            out.extend_from_slice(shard);
        }
        Ok(())
    }
}

/// The codec in `slot`, reset for the next message (its working space kept), or a new
/// one the first time.
fn reuse<C, E>(
    slot: &mut Option<C>,
    reset: impl FnOnce(&mut C) -> Result<(), E>,
    new: impl FnOnce() -> Result<C, E>,
) -> Result<&mut C, FecError> {
    match slot {
        Some(codec) => {
            reset(codec).map_err(|_| FecError)?;
            Ok(codec)
        }
        none => Ok(none.insert(new().map_err(|_| FecError)?)),
    }
}

/// The header of fragment 0 of a message, if the layout is one the code can protect.
fn layout(total_len: usize, count: u16, parity: u16) -> Option<FragmentHeader> {
    let layout = FragmentHeader {
        message_id: 0,
        total_len: u32::try_from(total_len).ok()?,
        index: 0,
        count,
        parity,
    };
    let valid = total_len > 0
        && count > 0
        && parity > 0
        && fec_supports(count, parity)
        && layout.fragment_size() * (usize::from(count) - 1) < total_len;
    valid.then_some(layout)
}

/// Recovers the missing data fragments of a message. Keeps the codec's working space
/// between messages.
#[derive(Default)]
pub struct FecDecoder {
    codec: Option<ReedSolomonDecoder>,
    scratch: Vec<u8>,
}

impl FecDecoder {
    /// Fill in the data fragments of `message` (`total_len` bytes, laid out as
    /// [`FragmentHeader`] says for `count` fragments) for which `have(index)` is false, from
    /// the others and the parity shards `(parity index, shard)`, each
    /// [`FragmentHeader::shard_len`] bytes. There must be `count` fragments in all.
    ///
    /// # Errors
    /// [`FecError`] if the code refuses the layout or the shards (too few, a wrong length,
    /// an index past `parity`); `message` is then left as it was.
    pub fn recover<'a>(
        &mut self,
        message: &mut [u8],
        count: u16,
        parity: u16,
        have: impl Fn(u16) -> bool,
        parity_shards: impl IntoIterator<Item = (u16, &'a [u8])>,
    ) -> Result<(), FecError> {
        let layout = layout(message.len(), count, parity).ok_or(FecError)?;
        let shard_len = layout.shard_len();
        let (k, p) = (usize::from(count), usize::from(parity));
        let codec = reuse(
            &mut self.codec,
            |c| c.reset(k, p, shard_len),
            || ReedSolomonDecoder::new(k, p, shard_len),
        )?;
        for index in (0..count).filter(|&i| have(i)) {
            let range = FragmentHeader { index, ..layout }.range();
            let shard = message.get(range).ok_or(FecError)?;
            codec
                .add_original_shard(
                    usize::from(index),
                    padded(shard, shard_len, &mut self.scratch),
                )
                .map_err(|_| FecError)?;
        }
        for (index, shard) in parity_shards {
            codec
                .add_recovery_shard(usize::from(index), shard)
                .map_err(|_| FecError)?;
        }
        let result = codec.decode().map_err(|_| FecError)?;
        // Check every restored shard first, so a failure leaves `message` untouched.
        let mut restored = 0;
        for (index, shard) in result.restored_original_iter() {
            let Ok(index) = u16::try_from(index) else {
                return Err(FecError);
            };
            let range = FragmentHeader { index, ..layout }.range();
            if have(index) || shard.len() != shard_len || message.get(range.clone()).is_none() {
                return Err(FecError);
            }
            restored += 1;
        }
        if restored + (0..count).filter(|&i| have(i)).count() != k {
            return Err(FecError);
        }
        for (index, shard) in result.restored_original_iter() {
            let index = u16::try_from(index).map_err(|_| FecError)?;
            let range = FragmentHeader { index, ..layout }.range();
            let len = range.len();
            if let (Some(dst), Some(src)) = (message.get_mut(range), shard.get(..len)) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_loss_costs_at_most_three_percent() {
        for k in 1..=2000u16 {
            let p = parity_for(k, 0.0, 1.0, 64);
            assert!(usize::from(p) * 100 <= usize::from(k) * 3, "k {k} p {p}");
        }
        assert_eq!(parity_for(10, 0.0, 1.0, 64), 0);
        assert_eq!(parity_for(55, 0.0, 1.0, 64), 1);
        assert_eq!(parity_for(55, f64::NAN, 1.0, 64), 1);
    }

    #[test]
    fn parity_grows_with_loss_and_meets_the_target() {
        let mut last = 0;
        for loss in [0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2] {
            let p = parity_for(55, loss, 1.0, 1000);
            assert!(p >= 1 && p >= last, "loss {loss}: {p} after {last}");
            last = p;
            // The target is met at the measured loss, and missed with one fragment less.
            let n = 55 + usize::from(p);
            let q = (loss * LOSS_MARGIN_FACTOR + LOSS_MARGIN_ABS).min(0.5);
            assert!(binomial_tail(n, usize::from(p), q) < TARGET_FRAME_LOSS);
            if p > 1 {
                assert!(binomial_tail(n - 1, usize::from(p) - 1, q) >= TARGET_FRAME_LOSS);
            }
        }
        // 1 % measured loss on a 55-fragment frame: a handful, not dozens.
        let p = parity_for(55, 0.01, 1.0, 64);
        assert!((3..=8).contains(&p), "{p}");
        assert_eq!(parity_for(55, 0.5, 1.0, 64), 64, "capped");
        assert_eq!(parity_for(55, 0.5, 1.0, 0), 0, "FEC off");
        assert_eq!(parity_for(55, 1.0, 1.0, 20), 20);
        // The code's own limit, 65536 shards: 65535 data shards leave room for one parity.
        assert_eq!(parity_for(u16::MAX, 0.1, 1.0, 64), 1);
        assert_eq!(parity_for(40_000, 0.1, 1.0, 64), 64);
    }

    #[test]
    fn bursts_of_loss_get_more_parity_than_the_same_loss_at_random() {
        // Burst length 1 is independent loss.
        for (n, p, q) in [(60, 5, 0.02), (70, 12, 0.1), (10, 0, 0.3)] {
            let (a, b) = (frame_loss(n, p, q, 1.0), binomial_tail(n, p, q));
            assert!((a - b).abs() < 1e-12, "{a} {b}");
        }
        // Runs of mean length just above 1 barely change it (one run in a thousand of two
        // fragments); long runs make losing a frame likelier.
        let random = frame_loss(62, 6, 0.05, 1.0);
        let nearly = frame_loss(62, 6, 0.05, 1.001);
        assert!(
            nearly > random && nearly - random < 0.01 * random,
            "{random} {nearly}"
        );
        // 15 lost of 62 at 5 %: next to impossible at random, likely in runs of 8.
        assert!(frame_loss(62, 15, 0.05, 8.0) > 1000.0 * frame_loss(62, 15, 0.05, 1.0));
        // A Monte Carlo check of the model itself: runs start with probability q / B per
        // fragment and last a geometric number of fragments of mean B.
        let (n, p, q, burst) = (60usize, 20usize, 0.05, 8.0);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 200_000;
        let mut lost_frames = 0;
        for _ in 0..trials {
            let mut lost = 0;
            for _ in 0..n {
                if uniform() < q / burst {
                    lost += 1;
                    while uniform() >= 1.0 / burst {
                        lost += 1;
                    }
                }
            }
            if lost > p {
                lost_frames += 1;
            }
        }
        let simulated = f64::from(lost_frames) / f64::from(trials);
        let modelled = frame_loss(n, p, q, burst);
        assert!(
            (simulated - modelled).abs() < 0.1 * modelled,
            "simulated {simulated} modelled {modelled}"
        );
        // And the parity follows: 5 % in runs of 8 needs several times the parity of 5 %
        // at random.
        let (random, bursty) = (parity_for(57, 0.05, 1.0, 64), parity_for(57, 0.05, 8.0, 64));
        assert!(bursty >= 3 * random, "random {random} bursty {bursty}");
    }

    #[test]
    fn binomial_tail_matches_closed_forms() {
        // n = 2, q = 0.5: P(X > 0) = 0.75, P(X > 1) = 0.25, P(X > 2) = 0.
        assert!((binomial_tail(2, 0, 0.5) - 0.75).abs() < 1e-12);
        assert!((binomial_tail(2, 1, 0.5) - 0.25).abs() < 1e-12);
        assert!(binomial_tail(2, 2, 0.5).abs() < 1e-12);
        // Underflow reads as certain loss: the safe side.
        assert_eq!(binomial_tail(100_000, 10, 0.5), 1.0);
    }

    #[test]
    fn data_share_leaves_room_for_parity() {
        assert_eq!(data_share(55, 0.0, 1.0, 64), 55.0 / 56.0);
        assert!(data_share(55, 0.05, 1.0, 64) < 0.9);
        assert_eq!(data_share(0, 0.0, 1.0, 64), 1.0);
    }

    #[test]
    fn encode_then_recover_odd_lengths() {
        // 1001 bytes in 4 fragments of 251 (odd: shards of 252), the last of 248.
        let message: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut parity = Vec::new();
        FecEncoder::default()
            .encode(&message, 4, 2, &mut parity)
            .unwrap();
        assert_eq!(parity.len(), 2 * 252);
        let mut damaged = message.clone();
        damaged[..251].fill(0);
        damaged[753..].fill(0);
        let shards = [(0u16, &parity[..252]), (1, &parity[252..])];
        FecDecoder::default()
            .recover(&mut damaged, 4, 2, |i| i == 1 || i == 2, shards)
            .unwrap();
        assert_eq!(damaged, message);
        // Too few shards: refused, nothing changed.
        let mut short = message.clone();
        short[..251].fill(9);
        let before = short.clone();
        assert_eq!(
            FecDecoder::default().recover(&mut short, 4, 2, |i| i == 1, [(0, &parity[..252])]),
            Err(FecError)
        );
        assert_eq!(short, before);
        assert_eq!(
            FecEncoder::default().encode(&message, 4, 0, &mut Vec::new()),
            Err(FecError)
        );
    }
}
