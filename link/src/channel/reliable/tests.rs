use super::*;
extern crate std;
use std::vec::Vec as StdVec;

fn config() -> Config {
    Config::default()
}

/// A deterministic xorshift for loss and reorder decisions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The sequence number of a segment as sent.
fn seq(segment: &[u8]) -> u32 {
    SegmentHeader::parse(segment).unwrap().0.seq
}

/// An ack for `next_expected` with `ranges` of (start, len), newest first.
fn ack(next_expected: u32, ranges: &[(u32, u16)]) -> AckBody {
    let mut ack = AckBody::new(next_expected, 64);
    for &(start, len) in ranges {
        assert!(ack.push_range(SackRange { start, len }));
    }
    ack
}

#[test]
fn delivers_everything_in_order_exactly_once_over_loss_and_reorder() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut rx = ReliableReceiver::new(&cfg, 2);
    let mut pool = BufPool::default();
    let messages: StdVec<StdVec<u8>> = (0..40u32)
        .map(|i| (0..(i * 97 % 3000 + 1)).map(|b| (b ^ i) as u8).collect())
        .collect();
    for m in &messages {
        tx.push(m.clone());
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = Timestamp::ZERO;
    let mut got = StdVec::new();
    let mut buf = [0u8; 600];
    for _ in 0..10_000 {
        let mut wire = StdVec::new();
        while let Some(n) = tx.next_retransmit(now, &mut buf) {
            wire.push(buf[..n].to_vec());
        }
        while let Some(n) = tx.next_new(now, 500, &mut buf, &mut pool) {
            wire.push(buf[..n].to_vec());
        }
        // Shuffle, then lose a fifth, duplicate some.
        for i in (1..wire.len()).rev() {
            wire.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for seg in &wire {
            if rng.next() % 5 == 0 {
                continue;
            }
            let copies = if rng.next() % 10 == 0 { 2 } else { 1 };
            for _ in 0..copies {
                let (h, data) = SegmentHeader::parse(seg).unwrap();
                rx.on_segment(now, &h, data, &mut pool, &mut |m| got.push(m));
            }
        }
        if rx.ack_due(now) && rng.next() % 4 != 0 {
            let ack = rx.take_ack();
            assert!(tx.on_ack(now, &ack, &mut pool));
        }
        if tx.in_flight() == 0 && tx.queued() == 0 {
            break;
        }
        now = now + Duration::from_millis(5);
    }
    assert_eq!(got, messages);
    assert_eq!(rx.protocol_errors, 0);
    assert!(tx.probe_timeout() >= cfg.storage_min_rto);
}

#[test]
fn an_ack_for_unsent_data_is_refused() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(b"abc".to_vec());
    let mut buf = [0u8; 100];
    tx.next_new(Timestamp::ZERO, 100, &mut buf, &mut pool)
        .unwrap();
    let bogus = AckBody::new(5, 64);
    assert!(!tx.on_ack(Timestamp::ZERO, &bogus, &mut pool));
    assert_eq!(tx.in_flight(), 1);
    // A range beyond what was sent is refused as well.
    let mut bogus = AckBody::new(0, 64);
    bogus.push_range(SackRange { start: 1, len: 1 });
    assert!(!tx.on_ack(Timestamp::ZERO, &bogus, &mut pool));
    assert_eq!(tx.in_flight(), 1);
    let good = AckBody::new(1, 64);
    assert!(tx.on_ack(Timestamp::ZERO, &good, &mut pool));
    assert_eq!(tx.in_flight(), 0);
}

#[test]
fn a_silent_path_gets_one_probe_per_timeout_and_acked_segments_are_not_resent() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([7u8; 300]));
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    while tx.next_new(t0, 100, &mut buf, &mut pool).is_some() {}
    assert_eq!(tx.in_flight(), 4);
    let rto = cfg.storage_initial_rto;
    assert_eq!(tx.poll_timeout(), Some(t0 + rto));
    let resend_all = |tx: &mut ReliableSender, at, buf: &mut [u8]| {
        let mut resent = StdVec::new();
        while let Some(n) = tx.next_retransmit(at, buf) {
            resent.push(SegmentHeader::parse(&buf[..n]).unwrap().0.seq);
        }
        resent
    };
    // Nothing acknowledged: one probe, the oldest segment, and the next timeout doubles.
    let t1 = t0 + rto;
    assert_eq!(resend_all(&mut tx, t1, &mut buf), [0]);
    assert_eq!(tx.probe_timeout(), rto * 2);
    assert_eq!(tx.poll_timeout(), Some(t1 + rto * 2));
    let t2 = t1 + rto * 2;
    assert_eq!(resend_all(&mut tx, t2, &mut buf), [0]);
    assert_eq!(tx.probe_timeout(), rto * 4);
    // Segments 1 and 3 acknowledged selectively (first transmissions: an RTT sample): the
    // backoff is reset, 2 (sent before 3) is lost after the reordering wait, 0 (probed after
    // 3 was sent) is not.
    let t3 = t2 + Duration::from_millis(10);
    assert!(tx.on_ack(t3, &ack(0, &[(3, 1), (1, 1)]), &mut pool));
    // The first sample R = 610 ms gives SRTT + 4 RTTVAR = R + 4 R/2 = 1830 ms, backoff gone.
    assert_eq!(tx.probe_timeout(), Duration::from_millis(1830));
    // 2 was sent at t0: lost once 610 ms * 9/8 passed since.
    let lost_at = t0 + Duration::from_micros(686_250);
    assert_eq!(tx.poll_timeout(), Some(lost_at));
    assert_eq!(resend_all(&mut tx, lost_at, &mut buf), [2]);
    assert!(!tx.retransmit_due(lost_at));
}

#[test]
fn a_later_ack_marks_a_segment_lost_after_the_reorder_window() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([1u8; 500]));
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    // Segment 0 alone, acked after 16 ms: srtt = 16 ms.
    tx.next_new(t0, 100, &mut buf, &mut pool).unwrap();
    let t1 = t0 + Duration::from_millis(16);
    assert!(tx.on_ack(t1, &ack(1, &[]), &mut pool));
    while tx.next_new(t1, 100, &mut buf, &mut pool).is_some() {}
    // 1 missing, 2 acked 16 ms later: 1 is lost once 16 ms * 9/8 = 18 ms passed since it
    // was sent.
    let t2 = t1 + Duration::from_millis(16);
    assert!(tx.on_ack(t2, &ack(1, &[(2, 1)]), &mut pool));
    let lost_at = t1 + Duration::from_millis(18);
    assert_eq!(tx.poll_timeout(), Some(lost_at));
    assert!(!tx.retransmit_due(lost_at - Duration::from_micros(1)));
    let timeout_before = tx.probe_timeout();
    let n = tx.next_retransmit(lost_at, &mut buf).unwrap();
    assert_eq!(SegmentHeader::parse(&buf[..n]).unwrap().0.seq, 1);
    // Loss detection is not a timeout: no backoff.
    assert_eq!(tx.probe_timeout(), timeout_before);
    // Segments after the newest acked one are not marked.
    assert!(!tx.retransmit_due(lost_at));
}

#[test]
fn a_spurious_retransmission_widens_the_reordering_window() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([1u8; 500]));
    let mut buf = [0u8; 200];
    let ms = Duration::from_millis;
    let t0 = Timestamp::ZERO;
    // Round trips of 16 ms: segment 0 sets them.
    tx.next_new(t0, 100, &mut buf, &mut pool).unwrap();
    let t1 = t0 + ms(16);
    assert!(tx.on_ack(t1, &ack(1, &[]), &mut pool));
    while tx.next_new(t1, 100, &mut buf, &mut pool).is_some() {}
    // 2 overtakes 1: 1 is declared lost 16 * 9/8 = 18 ms after it was sent, and resent.
    assert!(tx.on_ack(t1 + ms(16), &ack(1, &[(2, 1)]), &mut pool));
    let resent_at = t1 + ms(18);
    assert_eq!(tx.poll_timeout(), Some(resent_at));
    tx.next_retransmit(resent_at, &mut buf).unwrap();
    // The original of 1 arrives a moment later, well within a round trip of the resend: it
    // was reordered, not lost.
    assert!(tx.on_ack(resent_at + ms(2), &ack(3, &[]), &mut pool));
    // 4 overtakes 3 (both sent at t1, 4 acked 20 ms later): 3 waits that latest round trip
    // and a reordering window now a quarter of the lowest, 4 ms, instead of 20/8 = 2.5 ms.
    let t3 = resent_at + ms(2);
    assert!(tx.on_ack(t3, &ack(3, &[(4, 1)]), &mut pool));
    assert_eq!(tx.poll_timeout(), Some(t1 + ms(20 + 4)));
    assert!(!tx.retransmit_due(t1 + ms(24) - Duration::from_micros(1)));
}

#[test]
fn every_range_is_reported_within_a_few_acks_however_many_holes() {
    let cfg = config();
    let mut rx = ReliableReceiver::new(&cfg, 2);
    let mut pool = BufPool::default();
    // Every other segment of 1..=200 arrives: 100 single-segment ranges, over three times
    // what one ack holds.
    let held: StdVec<u32> = (1..=200).step_by(2).collect();
    for &seq in &held {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(Timestamp::ZERO, &h, b"x", &mut pool, &mut |_| {});
    }
    let mut reported = std::collections::BTreeSet::new();
    for i in 0..6 {
        let ack = rx.take_ack();
        assert_eq!(ack.next_expected, 0);
        assert_eq!(ack.ranges().len(), MAX_SACK_RANGES);
        // The newest half is in every ack, newest first.
        assert_eq!(ack.ranges()[0], SackRange { start: 199, len: 1 }, "ack {i}");
        reported.extend(ack.ranges().iter().map(|r| r.start));
    }
    assert_eq!(reported.into_iter().collect::<StdVec<_>>(), held);
}

/// The repair frames `tx` sends now, at `loss` in runs of `burst`, as (header, shard).
fn repair_frames(
    tx: &mut ReliableSender,
    now: Timestamp,
    loss: f64,
    burst: f64,
) -> StdVec<(RepairHeader, StdVec<u8>)> {
    let mut buf = [0u8; 1400];
    let mut frames = StdVec::new();
    while let Some(n) = tx.next_repair(now, loss, burst, &mut buf) {
        let (header, shard) = RepairHeader::parse(&buf[..n]).unwrap();
        frames.push((header, shard.to_vec()));
    }
    frames
}

#[test]
fn the_tail_of_a_transfer_gets_one_repair_block_and_no_more() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    // Six segments of 100 bytes, the last message still queued after the first five: no
    // repair while new data waits.
    tx.push(StdVec::from([1u8; 475]));
    tx.push(StdVec::from([2u8; 50]));
    for _ in 0..5 {
        tx.next_new(t0, 100, &mut buf, &mut pool).unwrap();
    }
    assert!(!tx.repair_wanted());
    assert!(repair_frames(&mut tx, t0, 0.1, 1.0).is_empty());
    tx.next_new(t0, 100, &mut buf, &mut pool).unwrap();
    // Nothing new left. 1 and 4 are acknowledged (selectively): one block from 0 to 5, its
    // parity sized for the four the peer may lack.
    let t1 = t0 + Duration::from_millis(20);
    assert!(tx.on_ack(t1, &ack(0, &[(4, 1), (1, 1)]), &mut pool));
    assert!(tx.repair_wanted());
    let frames = repair_frames(&mut tx, t1, 0.1, 1.0);
    let parity = 2 * repair::parity_segments(4, 0.1, 1.0) as u16;
    assert_eq!(frames.len(), usize::from(parity));
    for (i, (header, shard)) in frames.iter().enumerate() {
        let expected = RepairHeader {
            first_seq: 0,
            count: 6,
            parity,
            index: i as u16,
        };
        assert_eq!(*header, expected);
        assert_eq!(shard.len(), repair::shard_len_for(95));
    }
    assert!(!tx.repair_wanted());
    // Repair is not a retransmission: RACK's timing stays the original's (2 and 3, sent
    // before 4, are lost 20 ms * 9/8 after t0). While the block's parity may still rebuild
    // them, their retransmissions need no block of their own.
    let lost_at = t0 + Duration::from_micros(22_500);
    assert_eq!(tx.poll_timeout(), Some(lost_at));
    let n = tx.next_retransmit(lost_at, &mut buf).unwrap();
    assert_eq!(seq(&buf[..n]), 0);
    assert!(!tx.repair_wanted());
    // Once the block had its round trip, a retransmission gets a block again: 0 alone.
    let later = lost_at + Duration::from_millis(100);
    assert_eq!(tx.poll_timeout(), Some(lost_at));
    let n = tx.next_retransmit(later, &mut buf).unwrap();
    assert_eq!(seq(&buf[..n]), 2);
    assert!(tx.repair_wanted());
    let frames = repair_frames(&mut tx, later, 0.1, 1.0);
    assert_eq!((frames[0].0.first_seq, frames[0].0.count), (2, 4));
    // Everything below 5 acknowledged: 5 is in a block already.
    assert!(tx.on_ack(later, &ack(5, &[]), &mut pool));
    assert!(!tx.repair_wanted());
}

#[test]
fn a_receiver_rebuilds_the_lost_segments_of_a_block_from_its_parity() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut rx = ReliableReceiver::new(&cfg, 2).with_repair();
    let mut pool = BufPool::default();
    // Messages of varied lengths, so that segments of every length are in the block.
    let messages: StdVec<StdVec<u8>> = (0..30u32)
        .map(|i| {
            (0..(i * 131 % 900 + 1))
                .map(|b| ((b * 7) ^ i) as u8)
                .collect()
        })
        .collect();
    for m in &messages {
        tx.push(m.clone());
    }
    let now = Timestamp::ZERO;
    let mut buf = [0u8; 600];
    let mut got = StdVec::new();
    let mut sent = 0;
    // Every fifth segment is lost on the way, the rest arrive (in order: the first ones
    // are delivered, and must be kept to decode with).
    while let Some(n) = tx.next_new(now, 400, &mut buf, &mut pool) {
        if sent % 5 != 3 {
            let (h, data) = SegmentHeader::parse(&buf[..n]).unwrap();
            rx.on_segment(now, &h, data, &mut pool, &mut |m| got.push(m));
        }
        sent += 1;
    }
    assert!(got.len() < messages.len());
    let frames = repair_frames(&mut tx, now, 0.2, 1.0);
    assert_eq!(frames[0].0.count, sent);
    // Half the parity is lost too; what arrives is enough.
    let mut rebuilt = 0;
    for (header, shard) in frames.iter().step_by(2) {
        rebuilt += rx
            .on_repair(now, header, shard, &mut pool, &mut |m| got.push(m))
            .unwrap();
    }
    assert_eq!(rebuilt, (sent as usize + 1) / 5);
    assert_eq!(got, messages);
    // A block reaching beyond the window is the peer's error.
    let (mut header, shard) = frames[0].clone();
    header.first_seq = 100;
    header.count = cfg.storage_window as u16;
    assert_eq!(
        rx.on_repair(now, &header, &shard, &mut pool, &mut |_| {}),
        None
    );
}

#[test]
fn parity_that_does_not_fit_what_arrived_rebuilds_nothing() {
    let cfg = config();
    let mut rx = ReliableReceiver::new(&cfg, 2).with_repair();
    let mut pool = BufPool::default();
    // A block of 4 segments, 1 and 2 lost; parity for it from segments other than those
    // sent (a peer's bug): what would be rebuilt is not a segment image, and nothing is
    // delivered or counted.
    let sent: StdVec<StdVec<u8>> = (0..4u8).map(|i| StdVec::from([i + 1; 40])).collect();
    let lies: StdVec<StdVec<u8>> = (0..4u8).map(|i| StdVec::from([i + 9; 41])).collect();
    let mut out = RepairOut::encode(
        0,
        lies.iter()
            .map(|d| (SEGMENT_FIRST | SEGMENT_LAST, d.as_slice())),
        4,
    )
    .unwrap();
    for seq in [0u32, 3] {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(
            Timestamp::ZERO,
            &h,
            &sent[seq as usize],
            &mut pool,
            &mut |_| {},
        );
    }
    let mut got = StdVec::new();
    let mut buf = [0u8; 200];
    while let Some((n, _)) = out.next_body(&mut buf) {
        let (header, shard) = RepairHeader::parse(&buf[..n]).unwrap();
        let rebuilt = rx.on_repair(Timestamp::ZERO, &header, shard, &mut pool, &mut |m| {
            got.push(m)
        });
        assert_eq!(rebuilt, Some(0));
    }
    assert!(got.is_empty());
}

#[test]
fn a_bulk_receiver_acks_every_second_segment_at_most_every_half_millisecond() {
    let cfg = config();
    let mut rx = ReliableReceiver::new(&cfg, 2);
    let mut pool = BufPool::default();
    let us = |n: u64| Timestamp::ZERO + Duration::from_micros(n);
    let mut segment = |rx: &mut ReliableReceiver, seq: u32, at: Timestamp| {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(at, &h, b"x", &mut pool, &mut |_| {})
    };
    // The first segment waits for a second (or `ACK_DELAY`); the second makes it due.
    segment(&mut rx, 0, us(0));
    assert_eq!(rx.ack_deadline(), Some(us(0) + ACK_DELAY));
    segment(&mut rx, 1, us(100));
    assert!(rx.ack_due(us(100)));
    rx.take_ack();
    // Two more 100 µs later (a 100 Mbit/s download): due half a millisecond after the last.
    segment(&mut rx, 2, us(200));
    segment(&mut rx, 3, us(300));
    assert_eq!(rx.ack_deadline(), Some(us(600)));
    rx.take_ack();
    // A gap (segment 4 lost) is no reason to ack sooner: the sender's loss detection works
    // from the acks that come anyway.
    segment(&mut rx, 5, us(1500));
    assert_eq!(rx.ack_deadline(), Some(us(1500) + ACK_DELAY));
    // A duplicate is: our ack was lost.
    assert_eq!(segment(&mut rx, 5, us(1600)), SegmentOutcome::Duplicate);
    assert!(rx.ack_due(us(1600)));
    // A session receiver (every segment) is never held back.
    let mut session = ReliableReceiver::new(&cfg, 1);
    segment(&mut session, 0, us(0));
    session.take_ack();
    segment(&mut session, 1, us(10));
    assert!(session.ack_due(us(10)));
}

/// A download to a remote whose narrow uplink queues its acks (`PathModel::return_scale`
/// at 4), its segments arriving 100 µs apart (a 100 Mbit/s burst).
#[test]
fn thinned_bulk_acks_go_every_eighth_segment_four_times_as_far_apart() {
    // The receiver acks every 2 * 4 = 8 segments, and no sooner than four times
    // `ACK_MIN_INTERVAL` after the last ack: a quarter of the acks on the uplink.
    let cfg = config();
    let mut rx = ReliableReceiver::new(&cfg, 2);
    rx.set_ack_scale(4.0);
    let mut pool = BufPool::default();
    let us = |n: u64| Timestamp::ZERO + Duration::from_micros(n);
    let mut segment = |rx: &mut ReliableReceiver, seq: u32| {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(us(100 * u64::from(seq)), &h, b"x", &mut pool, &mut |_| {})
    };
    // Seven segments: still only the first one's `ACK_DELAY`, four times as long
    // (unthinned, the second made the ack due, and the delay was 5 ms).
    for seq in 0..7 {
        segment(&mut rx, seq);
        assert_eq!(
            rx.ack_deadline(),
            Some(us(0) + ACK_DELAY * 4),
            "segment {seq}"
        );
    }
    // The eighth makes it due at once (no ack went before).
    segment(&mut rx, 7);
    assert!(rx.ack_due(us(700)));
    assert_eq!(rx.take_ack().next_expected, 8);
    // Eight more by 1.5 ms: due 2 ms after the last ack, not 0.5 ms.
    for seq in 8..16 {
        segment(&mut rx, seq);
    }
    assert_eq!(rx.ack_deadline(), Some(us(700) + ACK_MIN_INTERVAL * 4));
    assert!(!rx.ack_due(us(1500)));
    // Back at scale 1 (the queue gone), the next two segments make the ack due half a
    // millisecond after the last one.
    rx.take_ack();
    rx.set_ack_scale(1.0);
    segment(&mut rx, 16);
    assert_eq!(rx.ack_deadline(), Some(us(1600) + ACK_DELAY));
    segment(&mut rx, 17);
    assert_eq!(rx.ack_deadline(), Some(us(2700) + ACK_MIN_INTERVAL));
    // At 32 times, the next segment's ack waits 80 ms (`MAX_ACK_DELAY`), not 160.
    rx.take_ack();
    rx.set_ack_scale(32.0);
    segment(&mut rx, 18);
    assert_eq!(rx.ack_deadline(), Some(us(1800) + MAX_ACK_DELAY));
}

/// The end of a download to a remote: the sender's retransmissions arrive as duplicates
/// right after an ack, at a receiver whose acks are thinned four times (its uplink
/// queues them) and at one whose are not.
#[test]
fn a_thinned_receivers_duplicate_waits_out_the_thinned_spacing() {
    // Thinned, the ack a duplicate makes due goes no sooner than 4 * `ACK_MIN_INTERVAL`
    // after the last one: each going at once queued the pilot's sticks behind a burst of
    // acks on a narrow uplink. Unthinned, a duplicate's ack still goes at once (our last
    // ack was lost, and the sender waits for one).
    fn segment(rx: &mut ReliableReceiver, seq: u32, at: Timestamp) -> SegmentOutcome {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(at, &h, b"x", &mut BufPool::default(), &mut |_| {})
    }
    let us = |n: u64| Timestamp::ZERO + Duration::from_micros(n);
    // Segments 0 to 8 and 10 (9 lost), 100 µs apart, the ack taken when due at 1 ms.
    let last_ack = us(1000);
    let receiver = |scale: f64| {
        let mut rx = ReliableReceiver::new(&config(), 2);
        rx.set_ack_scale(scale);
        for seq in (0..9).chain([10]) {
            segment(&mut rx, seq, us(100 * u64::from(seq)));
        }
        assert_eq!(rx.ack_deadline(), Some(last_ack));
        rx.take_ack();
        rx
    };
    // A copy of an acked segment 100 µs after the ack: due 2 ms after it.
    let mut thinned = receiver(4.0);
    assert_eq!(
        segment(&mut thinned, 3, us(1100)),
        SegmentOutcome::Duplicate
    );
    assert!(!thinned.ack_due(us(1100)));
    assert_eq!(
        thinned.ack_deadline(),
        Some(last_ack + ACK_MIN_INTERVAL * 4)
    );
    // A copy of one held out of order: no sooner either.
    let mut thinned = receiver(4.0);
    assert_eq!(
        segment(&mut thinned, 10, us(1100)),
        SegmentOutcome::Duplicate
    );
    assert_eq!(
        thinned.ack_deadline(),
        Some(last_ack + ACK_MIN_INTERVAL * 4)
    );
    // Past the thinned spacing, a duplicate's ack goes at once.
    thinned.take_ack();
    assert_eq!(
        segment(&mut thinned, 3, us(9000)),
        SegmentOutcome::Duplicate
    );
    assert!(thinned.ack_due(us(9000)));
    // Unthinned: at once, right after the ack as well.
    let mut unthinned = receiver(1.0);
    assert_eq!(
        segment(&mut unthinned, 3, us(1100)),
        SegmentOutcome::Duplicate
    );
    assert!(unthinned.ack_due(us(1100)));
}

/// Session messages (a receiver that acks every segment) arriving while the end thins
/// a download's acks four times.
#[test]
fn a_session_receiver_is_not_thinned() {
    // The scale is for bulk acks: every session segment, and a duplicate right after an
    // ack, still makes its ack due at once.
    let cfg = config();
    let mut rx = ReliableReceiver::new(&cfg, 1);
    rx.set_ack_scale(4.0);
    let mut pool = BufPool::default();
    let at = Timestamp::from_millis(1);
    for seq in 0..3 {
        let h = SegmentHeader {
            seq,
            flags: SEGMENT_FIRST | SEGMENT_LAST,
        };
        rx.on_segment(at, &h, b"x", &mut pool, &mut |_| {});
        assert!(rx.ack_due(at), "segment {seq}");
        rx.take_ack();
    }
    // A duplicate right after an ack too.
    let h = SegmentHeader {
        seq: 1,
        flags: SEGMENT_FIRST | SEGMENT_LAST,
    };
    let dup = rx.on_segment(at, &h, b"x", &mut pool, &mut |_| {});
    assert_eq!(dup, SegmentOutcome::Duplicate);
    assert!(rx.ack_due(at));
}

#[test]
fn discarding_drops_only_messages_not_begun_and_the_rest_arrives_whole() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut rx = ReliableReceiver::new(&cfg, 2);
    let mut pool = BufPool::default();
    let messages: StdVec<StdVec<u8>> = (0..5u8).map(|i| std::vec![i; 1000]).collect();
    for m in &messages {
        tx.push(m.clone());
    }
    let mut buf = [0u8; 600];
    let now = Timestamp::ZERO;
    let mut got = StdVec::new();
    let mut deliver = |tx: &mut ReliableSender, rx: &mut ReliableReceiver, segments: usize| {
        for _ in 0..segments {
            let Some(n) = tx.next_new(now, 500, &mut buf, &mut pool) else {
                break;
            };
            let (h, data) = SegmentHeader::parse(&buf[..n]).unwrap();
            rx.on_segment(now, &h, data, &mut pool, &mut |m| got.push(m));
        }
    };
    // The first message half sent: it stays, the four behind it go.
    deliver(&mut tx, &mut rx, 1);
    assert_eq!(tx.discard_unsent(&mut BufPool::default()), 4);
    assert_eq!(tx.queued(), 1);
    deliver(&mut tx, &mut rx, 10);
    assert_eq!(tx.queued(), 0);
    // Nothing begun: all go; then a new message follows the first in order.
    tx.push(messages[1].clone());
    tx.push(messages[2].clone());
    assert_eq!(tx.discard_unsent(&mut BufPool::default()), 2);
    assert_eq!(tx.discard_unsent(&mut BufPool::default()), 0);
    tx.push(messages[3].clone());
    deliver(&mut tx, &mut rx, 10);
    assert_eq!(got, [messages[0].clone(), messages[3].clone()]);
    assert_eq!(rx.protocol_errors, 0);
}

#[test]
fn queued_at_least_counts_what_is_left_to_segment() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    let mut buf = [0u8; 200];
    assert!(tx.queued_at_least(0) && !tx.queued_at_least(1));
    tx.push(StdVec::from([1u8; 300]));
    tx.push(StdVec::from([2u8; 200]));
    assert!(tx.queued_at_least(500) && !tx.queued_at_least(501));
    // One segment of the first message sent: its 100 bytes of data are no longer waiting.
    let n = tx
        .next_new(Timestamp::ZERO, 100, &mut buf, &mut pool)
        .unwrap();
    let sent = n - SegmentHeader::LEN;
    assert!(tx.queued_at_least(500 - sent) && !tx.queued_at_least(501 - sent));
}

/// Run `tx` and `rx` over a lossless path of round trip `rtt` from `now`, in steps of a
/// millisecond, until every segment is acknowledged: when that was.
fn finish_losslessly(
    tx: &mut ReliableSender,
    rx: &mut ReliableReceiver,
    mut now: Timestamp,
    rtt: Duration,
    pool: &mut BufPool,
) -> Timestamp {
    let mut buf = [0u8; 200];
    // (arrival, segment) towards the receiver, (arrival, ack) back.
    let mut to_rx: StdVec<(Timestamp, StdVec<u8>)> = StdVec::new();
    let mut to_tx: StdVec<(Timestamp, AckBody)> = StdVec::new();
    let step = Duration::from_millis(1);
    while tx.in_flight() > 0 {
        assert!(
            now < Timestamp::ZERO + Duration::from_secs(600),
            "never finished"
        );
        while let Some(n) = tx.next_retransmit(now, &mut buf) {
            to_rx.push((now + rtt / 2, buf[..n].to_vec()));
        }
        while let Some(n) = tx.next_new(now, 100, &mut buf, pool) {
            to_rx.push((now + rtt / 2, buf[..n].to_vec()));
        }
        for (_, seg) in to_rx.extract_if(.., |(at, _)| *at <= now) {
            let (h, data) = SegmentHeader::parse(&seg).unwrap();
            rx.on_segment(now, &h, data, pool, &mut |_| {});
        }
        if rx.ack_due(now) {
            to_tx.push((now + rtt / 2, rx.take_ack()));
        }
        for (_, ack) in to_tx.extract_if(.., |(at, _)| *at <= now) {
            assert!(tx.on_ack(now, &ack, pool));
        }
        now = now + step;
    }
    now
}

/// Send 24 segments at `t0`; the receiver gets 6, 11 and 17, and the first ack of them
/// reaches the sender `stale` later (every earlier one lost in a fade).
fn a_window_acked_late(stale: Duration) -> (ReliableSender, ReliableReceiver, BufPool, Timestamp) {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut rx = ReliableReceiver::new(&cfg, 2);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([5u8; 24 * (100 - SegmentHeader::LEN)]));
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    while let Some(n) = tx.next_new(t0, 100, &mut buf, &mut pool) {
        let (h, data) = SegmentHeader::parse(&buf[..n]).unwrap();
        if [6, 11, 17].contains(&h.seq) {
            rx.on_segment(t0, &h, data, &mut pool, &mut |_| {});
        }
    }
    assert_eq!(tx.in_flight(), 24);
    let late = t0 + stale;
    assert!(tx.on_ack(late, &rx.take_ack(), &mut pool));
    (tx, rx, pool, late)
}

#[test]
fn after_an_outage_longer_than_the_timeout_the_tail_is_resent_within_round_trips() {
    // The fuzzer's stall: the first ack came 147 s late. Taken as a round trip, that sample
    // made every prompt ack of a retransmission look like its original's, and the 21 missing
    // segments went one per 2 s probe timeout (42 s).
    let (mut tx, mut rx, mut pool, late) = a_window_acked_late(Duration::from_secs(147));
    let rtt = Duration::from_millis(10);
    let done = finish_losslessly(&mut tx, &mut rx, late, rtt, &mut pool);
    assert!(
        done.saturating_since(late) <= rtt * 5,
        "the tail took {:?}",
        done.saturating_since(late)
    );
}

#[test]
fn after_a_fade_within_the_timeout_the_tail_waits_one_probe_at_most() {
    // A first sample of 1.5 s (a fade shorter than the longest timeout) is taken. RACK's
    // retransmissions acked 10 ms later then look too soon, but the first probe's ack still
    // tells RACK the rest was lost: one timeout, not one per segment.
    let stale = Duration::from_millis(1500);
    let (mut tx, mut rx, mut pool, late) = a_window_acked_late(stale);
    let rtt = Duration::from_millis(10);
    let probe_timeout = tx.probe_timeout();
    let done = finish_losslessly(&mut tx, &mut rx, late, rtt, &mut pool);
    assert!(
        done.saturating_since(late) <= stale + probe_timeout + rtt * 5,
        "the tail took {:?}",
        done.saturating_since(late)
    );
}
