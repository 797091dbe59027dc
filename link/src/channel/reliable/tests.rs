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

#[test]
fn delivers_everything_in_order_exactly_once_over_loss_and_reorder() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut rx = ReliableReceiver::new(&cfg);
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
                rx.on_segment(&h, data, &mut pool, &mut |m| got.push(m));
            }
        }
        if rx.ack_pending() && rng.next() % 4 != 0 {
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
    assert!(tx.rto() >= cfg.storage_min_rto);
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
    let bogus = AckBody {
        next_expected: 5,
        sack: 0,
    };
    assert!(!tx.on_ack(Timestamp::ZERO, &bogus, &mut pool));
    assert_eq!(tx.in_flight(), 1);
    let good = AckBody {
        next_expected: 1,
        sack: 0,
    };
    assert!(tx.on_ack(Timestamp::ZERO, &good, &mut pool));
    assert_eq!(tx.in_flight(), 0);
}

#[test]
fn timeouts_back_off_and_acked_segments_are_not_resent() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([7u8; 300]));
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    while tx.next_new(t0, 100, &mut buf, &mut pool).is_some() {}
    assert_eq!(tx.in_flight(), 4);
    assert_eq!(tx.poll_timeout(), Some(t0 + cfg.storage_initial_rto));
    // Segments 1 and 3 acknowledged selectively, 0 and 2 not.
    assert!(tx.on_ack(
        t0,
        &AckBody {
            next_expected: 0,
            sack: 0b101
        },
        &mut pool
    ));
    let t1 = t0 + cfg.storage_initial_rto;
    let mut resent = StdVec::new();
    while let Some(n) = tx.next_retransmit(t1, &mut buf) {
        resent.push(SegmentHeader::parse(&buf[..n]).unwrap().0.seq);
    }
    assert_eq!(resent, [0, 2]);
    // One timeout, one doubling, although two segments expired together.
    assert_eq!(tx.rto(), cfg.storage_initial_rto * 2);
}

#[test]
fn a_later_ack_marks_a_segment_lost_after_the_reorder_window() {
    let cfg = config();
    let mut tx = ReliableSender::new(&cfg);
    let mut pool = BufPool::default();
    tx.push(StdVec::from([1u8; 500]));
    let mut buf = [0u8; 200];
    let t0 = Timestamp::ZERO;
    // Segment 0 alone, acked after 10 ms: srtt = 10 ms.
    tx.next_new(t0, 100, &mut buf, &mut pool).unwrap();
    let t1 = t0 + Duration::from_millis(10);
    assert!(tx.on_ack(
        t1,
        &AckBody {
            next_expected: 1,
            sack: 0
        },
        &mut pool
    ));
    while tx.next_new(t1, 100, &mut buf, &mut pool).is_some() {}
    // 1 missing, 2 acked: 1 is lost once srtt * 5/4 has passed since it was sent.
    let t2 = t1 + Duration::from_millis(10);
    assert!(tx.on_ack(
        t2,
        &AckBody {
            next_expected: 1,
            sack: 0b1
        },
        &mut pool
    ));
    assert!(!tx.retransmit_due(t2));
    let lost_at = t1 + Duration::from_micros(12_500);
    assert_eq!(tx.poll_timeout(), Some(lost_at));
    assert!(!tx.retransmit_due(lost_at - Duration::from_micros(1)));
    let rto_before = tx.rto();
    let n = tx.next_retransmit(lost_at, &mut buf).unwrap();
    assert_eq!(SegmentHeader::parse(&buf[..n]).unwrap().0.seq, 1);
    // Loss detection is not a timeout: no backoff.
    assert_eq!(tx.rto(), rto_before);
    // Segments after the newest acked one are not marked.
    assert!(!tx.retransmit_due(lost_at));
}
