//! The rotorlink side: the aircraft sends the transfer as storage-channel messages under the
//! link's flow control, the remote receives them, over one [`RadioChannel`] per direction.

use std::time::{Duration, Instant};

use rotorlink::{AwsLc, Channel, Config, Event, Role, SendError, Timestamp};
use rotorlink_sim::storage::CHUNK;
use rotorlink_sim::{addr, Pair, RadioChannel};

use super::grid::{secs, Outcome, Point, RunParams};

/// Move `point.transfer` bytes from the aircraft to the remote; see the module docs.
///
/// [`Pair`] builds the two links (from a fixed session secret, as a completed handshake
/// would leave them) and the channels, seeded as every simulator run is; the loop below
/// steps them itself rather than through [`Pair::run_until`], so that the sender reacts to
/// [`Event::Writable`] the moment it is reported, delivered messages are counted without
/// being copied, and a timer that never clears ends the run instead of hanging it.
pub(crate) fn run(point: &Point, params: RunParams) -> Outcome {
    let wall = Instant::now();
    let config = Config::default();
    let radio = point.channel();
    let mut pair = Pair::<AwsLc>::new(config.clone(), radio.clone(), radio, params.seed)
        .expect("the grid's radio and the default configuration are valid");
    let start = warm_up(&mut pair);
    let Pair {
        aircraft,
        remote,
        downlink,
        uplink,
        ..
    } = &mut pair;

    // Storage messages are the file chunks a download carries (sim::storage), bounded by
    // the link's largest storage message.
    let chunk = vec![0x42; CHUNK.min(config.max_storage_message)];
    let mut buf = vec![0; config.mtu];
    let mut out = Outcome {
        start,
        ..Outcome::default()
    };
    let mut now = start;
    let cap = start + params.cap;
    let mut queued = 0u64;
    // The flow-control contract: send until `QueueFull`, then wait for `Writable`.
    let mut writable = true;
    let mut link_lost = 0u32;
    let mut spins = 0u32;
    loop {
        // Everything due now, until nothing moves; `progressed` if anything did.
        let mut progressed = false;
        loop {
            let mut moved = false;
            while writable && queued < point.transfer {
                let n = (point.transfer - queued).min(chunk.len() as u64) as usize;
                match aircraft.send(Channel::Storage, &chunk[..n]) {
                    Ok(()) => {
                        queued += n as u64;
                        moved = true;
                    }
                    Err(SendError::QueueFull(_)) => writable = false,
                    Err(e) => {
                        out.give_up(now, format!("send failed at {:.3} s: {e:?}", secs(now)));
                        return finish(out, aircraft.stats(), downlink, wall);
                    }
                }
            }
            while let Some(t) = aircraft.poll_transmit(now, &mut buf) {
                downlink.send(now, &buf[..t.len]);
                moved = true;
            }
            while let Some(t) = remote.poll_transmit(now, &mut buf) {
                uplink.send(now, &buf[..t.len]);
                moved = true;
            }
            // Drops are counted in the links' stats; the transfer carries on.
            while let Some(d) = downlink.receive(now) {
                let _ = remote.handle_datagram(now, addr(Role::Aircraft), &d);
                moved = true;
            }
            while let Some(d) = uplink.receive(now) {
                let _ = aircraft.handle_datagram(now, addr(Role::Remote), &d);
                moved = true;
            }
            while let Some(event) = remote.poll_event() {
                match event {
                    Event::Message {
                        channel: Channel::Storage,
                        data,
                    } => {
                        out.delivered_at(now, data.len());
                        remote.recycle(data);
                    }
                    Event::LinkLost => link_lost += 1,
                    Event::SessionEnded { code } | Event::Closed { code, .. } => {
                        out.notes.push(format!(
                            "remote: session ended ({code:?}) at {:.3} s",
                            secs(now)
                        ));
                    }
                    _ => {}
                }
                moved = true;
            }
            while let Some(event) = aircraft.poll_event() {
                match event {
                    Event::Writable {
                        channel: Channel::Storage,
                    } => writable = true,
                    Event::LinkLost => link_lost += 1,
                    Event::SessionEnded { code } | Event::Closed { code, .. } => {
                        out.notes.push(format!(
                            "aircraft: session ended ({code:?}) at {:.3} s",
                            secs(now)
                        ));
                    }
                    _ => {}
                }
                moved = true;
            }
            if !moved {
                break;
            }
            progressed = true;
        }
        if out.delivered >= point.transfer {
            out.complete = true;
            break;
        }
        let next = [
            downlink.next_arrival(),
            uplink.next_arrival(),
            aircraft.poll_timeout(),
            remote.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        match out.step(next, now, cap, params.cap, progressed, &mut spins) {
            Some(t) => now = t,
            None => break,
        }
        aircraft.handle_timeout(now);
        remote.handle_timeout(now);
    }
    if link_lost > 0 {
        out.notes.push(format!("link lost {link_lost}x"));
    }
    finish(out, aircraft.stats(), downlink, wall)
}

/// Let the session carry a telemetry message each way and its feedback before the
/// transfer, until the aircraft knows the round trip: a download follows a session's
/// handshake and traffic (the remote asks for it), and quinn's follows its handshake, whose
/// round trips its congestion control starts from. The transfer's clock starts after.
fn warm_up(pair: &mut Pair<AwsLc>) -> Timestamp {
    let limit = Timestamp::ZERO + WARM_UP_LIMIT;
    while pair.aircraft.path_estimate().min_rtt.is_none() && pair.now() < limit {
        // Telemetry asks for relaxed feedback (within 100 ms): a message every 200 ms
        // gets one through a lossy radio soon enough. (Its content is not measured: one
        // the link refused is sent again at the next step.)
        pair.aircraft.send(Channel::Telemetry, &[0; 32]).ok();
        pair.remote.send(Channel::Telemetry, &[0; 32]).ok();
        pair.run_for(WARM_UP_STEP);
    }
    pair.now()
}

/// The longest the warm-up waits for a round trip, and how often it sends.
const WARM_UP_LIMIT: Duration = Duration::from_secs(5);
const WARM_UP_STEP: Duration = Duration::from_millis(200);

fn finish(
    mut out: Outcome,
    stats: &rotorlink::Stats,
    downlink: &RadioChannel,
    wall: Instant,
) -> Outcome {
    out.datagrams_sent = stats.datagrams_sent;
    out.retransmits = stats.storage_retransmits + stats.storage_repairs_sent;
    out.downlink = downlink.stats();
    out.wall = wall.elapsed();
    out
}
