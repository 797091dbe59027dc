//! Key logs and decrypted captures, so that a capture's encrypted bodies (video fragments
//! with their FEC layout, feedback, acks) can be studied in Wireshark (PROTOCOL.md 30.2).
//!
//! A link with [`Config::log_traffic_secrets`](rotorlink::Config::log_traffic_secrets)
//! reports each traffic secret it sends under ([`Event::TrafficSecret`]); a [`KeyLog`]
//! collects them, one line each, like TLS's `SSLKEYLOGFILE`:
//!
//! ```text
//! ROTORLINK_TRAFFIC_SECRET <receiver index: 8 hex digits> <generation> <secret: 64 hex digits>
//! ```
//!
//! [`decrypt_capture`] then rewrites a capture: every encrypted frame that a logged secret
//! opens keeps its header and tag, with the plaintext in place of the ciphertext, and moves
//! to UDP port [`DECRYPTED_PORT`], where the dissector decodes the bodies. A frame no logged
//! secret opens is copied unchanged.
//!
//! Whoever holds a key log reads the traffic: it is for test benches, never for flights
//! whose traffic matters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};

use rotorlink::session::open_logged;
use rotorlink::wire::{Frame, Header, HEADER_LEN, TAG_LEN};
use rotorlink::{Event, Secret};

use crate::pcap::{PcapReader, PcapWriter, DECRYPTED_PORT};

/// The label that starts every key log line.
pub const LABEL: &str = "ROTORLINK_TRAFFIC_SECRET";

/// Logged traffic secrets: (receiver index, key generation, secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLog {
    entries: Vec<(u32, u64, Secret)>,
}

impl KeyLog {
    /// An empty log.
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Keep `event` if it is a [`Event::TrafficSecret`]; returns whether it was.
    pub fn record(&mut self, event: &Event) -> bool {
        if let Event::TrafficSecret {
            receiver_index,
            generation,
            secret,
        } = event
        {
            self.entries
                .push((*receiver_index, *generation, secret.clone()));
            return true;
        }
        false
    }

    /// The number of secrets logged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Append `other`'s secrets (the other end's log, say).
    pub fn extend(&mut self, other: &KeyLog) {
        self.entries.extend(other.entries.iter().cloned());
    }

    /// The log as text, one line per secret.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (index, generation, secret) in &self.entries {
            let _ = write!(out, "{LABEL} {index:08x} {generation} ");
            for b in secret.expose() {
                let _ = write!(out, "{b:02x}");
            }
            out.push('\n');
        }
        out
    }

    /// Parse what [`to_text`](Self::to_text) wrote; blank lines and lines starting with `#`
    /// are skipped.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidData`] naming the first line that is not a key log line.
    pub fn parse(text: &str) -> io::Result<Self> {
        let mut log = KeyLog::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "key log line {}: not `{LABEL} <index> <generation> <secret>`",
                        n + 1
                    ),
                )
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [label, index, generation, secret] = fields[..] else {
                return Err(bad());
            };
            if label != LABEL || index.len() != 8 || secret.len() != 64 {
                return Err(bad());
            }
            let index = u32::from_str_radix(index, 16).map_err(|_| bad())?;
            let generation = generation.parse::<u64>().map_err(|_| bad())?;
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::from_str_radix(secret.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                    .map_err(|_| bad())?;
            }
            log.entries.push((index, generation, Secret::new(bytes)));
        }
        Ok(log)
    }

    /// The counter and plaintext of `frame`, if a logged secret for its receiver index and
    /// key phase opens it. `expected` is the counter after the newest frame already opened
    /// for that receiver index (0 before any): the counter is recovered from the frame's
    /// packet number and it (PROTOCOL.md 3).
    pub fn open(&self, frame: &[u8], expected: u64) -> Option<(u64, Vec<u8>)> {
        let header = Header::parse(&Frame::new_checked(frame).ok()?).ok()?;
        self.entries
            .iter()
            .filter(|(index, generation, _)| {
                *index == header.receiver_index && (generation % 2 == 1) == header.key_phase
            })
            .find_map(|(_, _, secret)| open_logged(secret, frame, expected).ok())
    }
}

/// What [`decrypt_capture`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decrypted {
    /// UDP records read.
    pub records: u64,
    /// Encrypted frames a logged secret opened (moved to [`DECRYPTED_PORT`]).
    pub decrypted: u64,
    /// Encrypted frames no logged secret opened (copied unchanged).
    pub undecrypted: u64,
    /// Other records (handshakes, anything that is not an encrypted frame): copied to
    /// [`DECRYPTED_PORT`] unchanged, so the whole conversation stays on one port.
    pub other: u64,
}

/// Rewrite the capture `input` into `output` with every frame `log` opens decrypted (see
/// the module documentation).
///
/// # Errors
/// Any read or write error, or [`io::ErrorKind::InvalidData`] for a file that is not a
/// capture [`PcapWriter`] could have written.
pub fn decrypt_capture(
    input: impl Read,
    log: &KeyLog,
    output: impl Write,
) -> io::Result<Decrypted> {
    let mut reader = PcapReader::new(input)?;
    let mut writer = PcapWriter::new(output)?;
    let mut done = Decrypted::default();
    // The newest counter opened per receiver index (one direction of one session).
    let mut newest: BTreeMap<u32, u64> = BTreeMap::new();
    while let Some(record) = reader.next_udp()? {
        done.records += 1;
        let frame = &record.payload;
        let encrypted = Frame::new_checked(frame.as_slice())
            .ok()
            .and_then(|f| Header::parse(&f).ok())
            .filter(|h| h.frame_type.is_encrypted());
        let moved = |mut addr: std::net::SocketAddrV4| {
            addr.set_port(DECRYPTED_PORT);
            addr
        };
        let Some(header) = encrypted else {
            done.other += 1;
            writer.write_udp(record.at, moved(record.src), moved(record.dst), frame)?;
            continue;
        };
        let index = header.receiver_index;
        let expected = newest.get(&index).map_or(0, |c| c.saturating_add(1));
        match log.open(frame, expected) {
            Some((counter, plain)) => {
                done.decrypted += 1;
                let top = newest.entry(index).or_insert(counter);
                *top = (*top).max(counter);
                let tag_at = HEADER_LEN + plain.len();
                let mut out = Vec::with_capacity(tag_at + TAG_LEN);
                out.extend_from_slice(&frame[..HEADER_LEN]);
                out.extend_from_slice(&plain);
                out.extend_from_slice(&frame[tag_at..tag_at + TAG_LEN]);
                writer.write_udp(record.at, moved(record.src), moved(record.dst), &out)?;
            }
            None => {
                done.undecrypted += 1;
                writer.write_udp(record.at, record.src, record.dst, frame)?;
            }
        }
    }
    writer.flush()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::{PcapTap, UDP_PORT};
    use crate::scenario::tests::short;
    use crate::scenario::{run_logged, run_observed};
    use rotorlink::wire::body::FragmentHeader;
    use rotorlink::wire::FrameType;

    /// A logged run's capture decrypts whole: every encrypted frame opens, each video
    /// fragment shows its FEC layout (data and parity fragments), and logging changed
    /// nothing in the run.
    #[test]
    fn a_logged_flight_decrypts_whole_and_shows_its_video_fec_layout() {
        let s = short();
        let tap = PcapTap::new(PcapWriter::new(Vec::new()).unwrap());
        let plain = run_observed(&s, &mut |_| {}, Box::new(tap.clone())).unwrap();
        let capture = tap.finish().unwrap();
        let tap = PcapTap::new(PcapWriter::new(Vec::new()).unwrap());
        let mut log = KeyLog::new();
        let logged = run_logged(&s, &mut |_| {}, Some(Box::new(tap.clone())), &mut log).unwrap();
        assert_eq!(logged, plain, "logging changes nothing");
        assert_eq!(tap.finish().unwrap(), capture, "the same datagrams");
        assert!(log.len() >= 2, "both directions' first keys");
        // Through the text form, as a file would carry it.
        let log = KeyLog::parse(&log.to_text()).unwrap();

        let mut out = Vec::new();
        let done = decrypt_capture(capture.as_slice(), &log, &mut out).unwrap();
        assert_eq!(done.undecrypted, 0, "{done:?}");
        assert!(done.decrypted > 100 && done.other >= 3, "{done:?}");
        assert_eq!(done.records, done.decrypted + done.other);
        let mut reader = PcapReader::new(out.as_slice()).unwrap();
        let (mut data, mut parity) = (0, 0);
        while let Some(r) = reader.next_udp().unwrap() {
            assert_eq!(
                (r.src.port(), r.dst.port()),
                (DECRYPTED_PORT, DECRYPTED_PORT)
            );
            let header = Header::parse(&Frame::new_checked(r.payload.as_slice()).unwrap()).unwrap();
            if header.frame_type == FrameType::Data
                && header.channel == Some(rotorlink::Channel::Video)
            {
                let body = &r.payload[HEADER_LEN..r.payload.len() - TAG_LEN];
                let (fragment, _) = FragmentHeader::parse(body).unwrap();
                if fragment.is_parity() {
                    parity += 1;
                } else {
                    data += 1;
                }
            }
        }
        assert!(
            data > 50 && parity > 0,
            "{data} data, {parity} parity fragments"
        );
        // Without the log nothing opens, and the frames stay where they were.
        let mut out = Vec::new();
        let none = decrypt_capture(capture.as_slice(), &KeyLog::new(), &mut out).unwrap();
        assert_eq!(none.decrypted, 0);
        assert_eq!(none.undecrypted, done.decrypted);
        let mut reader = PcapReader::new(out.as_slice()).unwrap();
        let first_encrypted = std::iter::from_fn(|| reader.next_udp().unwrap())
            .find(|r| r.payload[1] >= 0x10)
            .unwrap();
        assert_eq!(first_encrypted.src.port(), UDP_PORT);
    }

    #[test]
    fn a_key_log_round_trips_and_bad_lines_are_errors() {
        let mut log = KeyLog::new();
        assert!(!log.record(&Event::LinkLost));
        for (i, g) in [(0x0102_0304u32, 0u64), (0xffff_ffff, 7)] {
            assert!(log.record(&Event::TrafficSecret {
                receiver_index: i,
                generation: g,
                secret: Secret::new([g as u8; 32]),
            }));
        }
        let text = log.to_text();
        assert!(text.starts_with("ROTORLINK_TRAFFIC_SECRET 01020304 0 0000"));
        assert_eq!(KeyLog::parse(&format!("# comment\n\n{text}")).unwrap(), log);
        for bad in [
            "ROTORLINK_TRAFFIC_SECRET 0102030 0 00",
            "OTHER 01020304 0 0000000000000000000000000000000000000000000000000000000000000000",
            "ROTORLINK_TRAFFIC_SECRET 01020304 x 0000000000000000000000000000000000000000000000000000000000000000",
            "ROTORLINK_TRAFFIC_SECRET 01020304 0 zz00000000000000000000000000000000000000000000000000000000000000",
            "ROTORLINK_TRAFFIC_SECRET 01020304 0 éé000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(KeyLog::parse(bad).is_err(), "{bad}");
        }
    }
}
