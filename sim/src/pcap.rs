//! Captures: every datagram on the air as a pcap file that Wireshark and tshark open.
//!
//! rotorlink runs over any datagram transport, so a capture wraps each datagram the way it
//! would travel over UDP/IPv4 on Ethernet, on the fixed port [`UDP_PORT`] (both ends).
//! `tools/wireshark/rotorlink.lua` decodes the rotorlink frames inside (PROTOCOL.md,
//! "Captures").
//!
//! - [`PcapWriter`] writes the classic pcap format (not pcapng): a global header, then one
//!   record per datagram with an Ethernet II, IPv4 and UDP header in front of it, every
//!   checksum computed. It is what the real `aircraft` and `remote` use, with wall-clock
//!   times.
//! - [`PcapTap`] is an [`Adversary`] that writes every datagram either link transmits in a
//!   simulation, stamped with the simulation clock (starting at 0, i.e. 1970-01-01 in a
//!   viewer), the aircraft at [`AIRCRAFT_ADDR`] and the remote at [`REMOTE_ADDR`]. It
//!   forwards every datagram unchanged, so a run with a tap is the same run as without.
//!
//! A tap sees the datagrams as the links hand them to the radio: before the channel loses,
//! duplicates, corrupts, delays or reorders them. The capture is what was *sent*.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rotorlink::Timestamp;

use crate::channel::{Adversary, Air, Direction};

/// The UDP port of rotorlink in captures (source and destination), and the port the
/// Wireshark dissector is registered on.
pub const UDP_PORT: u16 = 47474;

/// The aircraft's address in simulator captures.
pub const AIRCRAFT_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), UDP_PORT);

/// The remote's address in simulator captures.
pub const REMOTE_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), UDP_PORT);

/// The pcap magic number (microsecond timestamps), written in little-endian byte order.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;

/// The snapshot length of captures: no record is ever truncated.
pub const SNAPLEN: u32 = 65_535;

/// The link-layer type of captures: `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;

const ETHERNET_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Ethernet, IPv4 and UDP headers in front of each datagram.
const HEADERS_LEN: usize = ETHERNET_LEN + IPV4_LEN + UDP_LEN;

/// The largest datagram a record can hold: the IPv4 total length and the snapshot length
/// are both at most 65535 bytes.
pub const MAX_PAYLOAD: usize = SNAPLEN as usize - HEADERS_LEN;

/// The UDP port of decrypted captures ([`crate::keylog::decrypt_capture`]): their frames
/// carry plaintext where the ciphertext was, and the dissector decodes their bodies.
pub const DECRYPTED_PORT: u16 = 47475;

/// One UDP datagram read back from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRecord {
    /// The record's time stamp.
    pub at: Duration,
    /// The datagram's source.
    pub src: SocketAddrV4,
    /// The datagram's destination.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Reads back the captures [`PcapWriter`] writes (classic little-endian pcap, microsecond
/// times, Ethernet II / IPv4 without options / UDP). Records that are not such a UDP
/// datagram are skipped and counted; anything malformed is an error, never a panic.
#[derive(Debug)]
pub struct PcapReader<R: io::Read> {
    input: R,
    skipped: u64,
}

impl<R: io::Read> PcapReader<R> {
    /// Read and check the global header.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidData`] for another magic, version or link type; any read
    /// error.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut header = [0u8; 24];
        input.read_exact(&mut header)?;
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        if word(0) != PCAP_MAGIC || header[4..8] != [2, 0, 4, 0] || word(20) != LINKTYPE_ETHERNET {
            return Err(invalid(
                "not a little-endian microsecond Ethernet pcap file",
            ));
        }
        Ok(PcapReader { input, skipped: 0 })
    }

    /// Records skipped so far because they held no IPv4/UDP datagram.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next UDP datagram, or `None` at the end of the file.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidData`] for a truncated or oversized record; any read error.
    pub fn next_udp(&mut self) -> io::Result<Option<UdpRecord>> {
        loop {
            let mut record = [0u8; 16];
            match self.input.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let word = |at: usize| {
                u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
            };
            let (secs, micros, incl) = (word(0), word(4), word(8) as usize);
            if incl > SNAPLEN as usize || micros >= 1_000_000 {
                return Err(invalid("a pcap record header out of range"));
            }
            let mut data = vec![0u8; incl];
            self.input.read_exact(&mut data)?;
            let at =
                Duration::from_secs(u64::from(secs)) + Duration::from_micros(u64::from(micros));
            match udp_of(&data) {
                Some((src, dst, payload)) => {
                    return Ok(Some(UdpRecord {
                        at,
                        src,
                        dst,
                        payload: payload.to_vec(),
                    }))
                }
                None => self.skipped += 1,
            }
        }
    }
}

/// The UDP datagram in an Ethernet II / IPv4 (no options) / UDP frame, if it is one.
fn udp_of(frame: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ip = frame.get(ETHERNET_LEN..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? != &0x45 || ip.get(9)? != &17 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let addr = |at: usize| -> Option<Ipv4Addr> {
        let b = ip.get(at..at + 4)?;
        Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    let udp = ip.get(IPV4_LEN..total)?;
    let port =
        |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*udp.get(at)?, *udp.get(at + 1)?])) };
    let len = usize::from(port(4)?);
    let payload = udp.get(UDP_LEN..len)?;
    Some((
        SocketAddrV4::new(addr(12)?, port(0)?),
        SocketAddrV4::new(addr(16)?, port(2)?),
        payload,
    ))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Writes a classic pcap file of UDP datagrams over IPv4 over Ethernet.
///
/// ```
/// use std::time::Duration;
/// use rotorlink_sim::pcap::{PcapWriter, AIRCRAFT_ADDR, REMOTE_ADDR};
///
/// let mut pcap = PcapWriter::new(Vec::new())?;
/// pcap.write_udp(Duration::from_millis(1500), AIRCRAFT_ADDR, REMOTE_ADDR, b"datagram")?;
/// let bytes = pcap.into_inner();
/// assert_eq!(bytes.len(), 24 + 16 + 42 + 8);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    /// The IPv4 identification of the next record.
    ip_id: u16,
    records: u64,
    buf: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Write the pcap global header (magic `0xa1b2c3d4` little-endian, version 2.4, UTC,
    /// snapshot length [`SNAPLEN`], [`LINKTYPE_ETHERNET`]) to `out`.
    ///
    /// # Errors
    /// Any error of `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) are 0.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            ip_id: 0,
            records: 0,
            buf: Vec::with_capacity(HEADERS_LEN + 1500),
        })
    }

    /// Write one record: `payload` as a UDP datagram from `src` to `dst`, captured at `at`.
    ///
    /// `at` is the time since the UNIX epoch for wall-clock captures, or since the start of
    /// a simulation; it is stored with microsecond resolution (sub-microsecond parts are
    /// truncated). The Ethernet addresses are locally administered ones made from the IPv4
    /// addresses (`02:00:` followed by the four address bytes); the IPv4 header has TTL 64
    /// and Don't Fragment set, and every checksum is computed.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] if `payload` is longer than [`MAX_PAYLOAD`] or `at`
    /// is past the pcap format's 32-bit seconds (the year 2106), and nothing is written;
    /// otherwise any error of the underlying writer.
    pub fn write_udp(
        &mut self,
        at: Duration,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        if payload.len() > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}-byte datagram does not fit in a pcap record (at most {MAX_PAYLOAD})",
                    payload.len()
                ),
            ));
        }
        let seconds = u32::try_from(at.as_secs()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "timestamp past the pcap format's 32-bit seconds",
            )
        })?;
        let len = HEADERS_LEN + payload.len();
        // Both fit: len <= SNAPLEN (checked above).
        let record_len = len as u32;
        let udp_len = (UDP_LEN + payload.len()) as u16;
        let ip_len = (IPV4_LEN + UDP_LEN + payload.len()) as u16;

        let b = &mut self.buf;
        b.clear();
        // Record header: ts_sec, ts_usec, incl_len, orig_len.
        b.extend_from_slice(&seconds.to_le_bytes());
        b.extend_from_slice(&at.subsec_micros().to_le_bytes());
        b.extend_from_slice(&record_len.to_le_bytes());
        b.extend_from_slice(&record_len.to_le_bytes());
        // Ethernet II.
        b.extend_from_slice(&mac(*dst.ip()));
        b.extend_from_slice(&mac(*src.ip()));
        b.extend_from_slice(&0x0800u16.to_be_bytes());
        // IPv4.
        let ip_start = b.len();
        b.extend_from_slice(&[0x45, 0x00]);
        b.extend_from_slice(&ip_len.to_be_bytes());
        b.extend_from_slice(&self.ip_id.to_be_bytes());
        b.extend_from_slice(&0x4000u16.to_be_bytes()); // Don't Fragment, offset 0.
        b.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum (below).
        b.extend_from_slice(&src.ip().octets());
        b.extend_from_slice(&dst.ip().octets());
        let ip_checksum = checksum(&[&b[ip_start..]]);
        b[ip_start + 10..ip_start + 12].copy_from_slice(&ip_checksum.to_be_bytes());
        // UDP.
        let udp_start = b.len();
        b.extend_from_slice(&src.port().to_be_bytes());
        b.extend_from_slice(&dst.port().to_be_bytes());
        b.extend_from_slice(&udp_len.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src.ip().octets());
        pseudo[4..8].copy_from_slice(&dst.ip().octets());
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
        let udp_checksum = match checksum(&[&pseudo, &b[udp_start..], payload]) {
            // 0 means "no checksum" in UDP over IPv4; its one's complement twin stands in.
            0 => 0xffff,
            c => c,
        };
        b[udp_start + 6..udp_start + 8].copy_from_slice(&udp_checksum.to_be_bytes());

        self.out.write_all(b)?;
        self.out.write_all(payload)?;
        self.ip_id = self.ip_id.wrapping_add(1);
        self.records += 1;
        Ok(())
    }

    /// The number of records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flush the underlying writer.
    ///
    /// # Errors
    /// Any error of the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (not flushed: call [`PcapWriter::flush`] first if it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The locally administered Ethernet address of an IPv4 address: `02:00:a:b:c:d`.
fn mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x00, a, b, c, d]
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(high) => sum += u32::from(u16::from_be_bytes([high, byte])),
                None => odd = Some(byte),
            }
        }
        // Keep the sum small enough never to overflow.
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let Some(high) = odd {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a tap's clones share.
#[derive(Debug)]
struct Shared<W: Write> {
    /// `None` once finished.
    writer: Option<PcapWriter<W>>,
    /// The first write error; nothing is written after it.
    error: Option<io::Error>,
}

/// An [`Adversary`] that only watches: it writes every datagram to a pcap capture and
/// forwards it unchanged.
///
/// Each datagram is stamped with the simulation time it was transmitted at (from
/// [`Timestamp::ZERO`]) and addressed [`AIRCRAFT_ADDR`] to [`REMOTE_ADDR`] on the downlink,
/// the reverse on the uplink.
///
/// Clones share the capture: give one to [`Pair::set_adversary`] or
/// [`scenario::run_observed`], keep the other, and call [`PcapTap::finish`] on it after the
/// run. A write error does not stop the run: the tap stops writing, keeps forwarding, and
/// `finish` returns the first error.
///
/// ```
/// use rotorlink_sim::pcap::{PcapTap, PcapWriter};
/// use rotorlink_sim::scenario::{self, Scenario};
///
/// let tap = PcapTap::new(PcapWriter::new(Vec::new())?);
/// let s = Scenario { duration: std::time::Duration::from_millis(300), ..Scenario::default() };
/// let report = scenario::run_observed(&s, &mut |_| {}, Box::new(tap.clone())).unwrap();
/// assert_eq!(Some(tap.records()), report.radio_sent);
/// let capture: Vec<u8> = tap.finish()?;
/// assert!(capture.len() > 24);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`Pair::set_adversary`]: crate::Pair::set_adversary
/// [`scenario::run_observed`]: crate::scenario::run_observed
#[derive(Debug)]
pub struct PcapTap<W: Write = BufWriter<File>> {
    shared: Arc<Mutex<Shared<W>>>,
}

impl<W: Write> Clone for PcapTap<W> {
    fn clone(&self) -> Self {
        PcapTap {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl PcapTap<BufWriter<File>> {
    /// Create (or truncate) the file at `path` and write the pcap global header to it.
    ///
    /// # Errors
    /// Any error creating or writing the file.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(PcapTap::new(PcapWriter::new(BufWriter::new(file))?))
    }
}

impl<W: Write> PcapTap<W> {
    /// A tap writing to `writer`.
    pub fn new(writer: PcapWriter<W>) -> Self {
        PcapTap {
            shared: Arc::new(Mutex::new(Shared {
                writer: Some(writer),
                error: None,
            })),
        }
    }

    /// The number of records written so far (0 once finished).
    pub fn records(&self) -> u64 {
        self.lock().writer.as_ref().map_or(0, PcapWriter::records)
    }

    /// Stop capturing, flush, and hand back the underlying writer. Datagrams seen after this
    /// are forwarded and not written.
    ///
    /// # Errors
    /// The first error any write or the flush met (then the capture is incomplete), or an
    /// error if the capture was already finished (through this tap or a clone).
    pub fn finish(&self) -> io::Result<W> {
        let mut shared = self.lock();
        let Some(mut writer) = shared.writer.take() else {
            return Err(io::Error::other("the pcap capture was already finished"));
        };
        if let Some(e) = shared.error.take() {
            return Err(e);
        }
        writer.flush()?;
        Ok(writer.into_inner())
    }

    /// Write one datagram from `src` to `dst` at `at` (the tap's clock: the simulation's, or
    /// the wall clock for a real socket). After a write error nothing more is written, and
    /// [`PcapTap::finish`] reports the error.
    pub fn record(&self, at: Duration, src: SocketAddrV4, dst: SocketAddrV4, datagram: &[u8]) {
        let mut guard = self.lock();
        let shared = &mut *guard;
        if let (Some(writer), None) = (shared.writer.as_mut(), shared.error.as_ref()) {
            if let Err(e) = writer.write_udp(at, src, dst, datagram) {
                shared.error = Some(e);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared<W>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send + 'static> Adversary for PcapTap<W> {
    fn on_air(&mut self, now: Timestamp, dir: Direction, datagram: Vec<u8>, air: &mut Air) {
        let (src, dst) = match dir {
            Direction::Downlink => (AIRCRAFT_ADDR, REMOTE_ADDR),
            Direction::Uplink => (REMOTE_ADDR, AIRCRAFT_ADDR),
        };
        self.record(now.saturating_since(Timestamp::ZERO), src, dst, &datagram);
        air.forward(datagram);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::pair::Pair;
    use rotorlink::{Channel, Config, Role};

    /// One record of a capture, parsed back.
    #[derive(Debug)]
    struct Record {
        sec: u32,
        usec: u32,
        /// Everything after the record header: Ethernet, IPv4, UDP, payload.
        frame: Vec<u8>,
    }

    impl Record {
        fn ip(&self) -> &[u8] {
            &self.frame[14..34]
        }
        fn udp(&self) -> &[u8] {
            &self.frame[34..]
        }
        fn payload(&self) -> &[u8] {
            &self.frame[42..]
        }
    }

    fn u16le(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u16be(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// Parse a whole capture, checking the global header and every length on the way.
    fn parse(file: &[u8]) -> Vec<Record> {
        assert!(file.len() >= 24, "no global header");
        assert_eq!(&file[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "magic");
        assert_eq!(u16le(file, 4), 2, "major version");
        assert_eq!(u16le(file, 6), 4, "minor version");
        assert_eq!(u32le(file, 8), 0, "thiszone");
        assert_eq!(u32le(file, 12), 0, "sigfigs");
        assert_eq!(u32le(file, 16), 65_535, "snaplen");
        assert_eq!(u32le(file, 20), 1, "LINKTYPE_ETHERNET");
        let mut records = Vec::new();
        let mut at = 24;
        while at < file.len() {
            assert!(file.len() - at >= 16, "truncated record header");
            let incl = u32le(file, at + 8) as usize;
            let orig = u32le(file, at + 12) as usize;
            assert_eq!(incl, orig, "nothing is truncated");
            assert!(incl <= 65_535);
            let frame = file[at + 16..at + 16 + incl].to_vec();
            records.push(Record {
                sec: u32le(file, at),
                usec: u32le(file, at + 4),
                frame,
            });
            at += 16 + incl;
        }
        assert_eq!(at, file.len(), "records end with the file");
        records
    }

    /// The one's complement sum, folded: 0xffff over data that includes a valid checksum.
    fn sum(parts: &[&[u8]]) -> u16 {
        !checksum(parts)
    }

    /// Check the Ethernet, IPv4 and UDP headers of `r` and its checksums.
    fn check(r: &Record, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
        let f = &r.frame;
        assert_eq!(f.len(), 42 + payload.len());
        assert_eq!(&f[0..6], &mac(*dst.ip()), "destination MAC");
        assert_eq!(&f[6..12], &mac(*src.ip()), "source MAC");
        assert_eq!(f[6] & 0x03, 0x02, "locally administered unicast");
        assert_eq!(u16be(f, 12), 0x0800, "ethertype IPv4");
        let ip = r.ip();
        assert_eq!(ip[0], 0x45, "IPv4, 20-byte header");
        assert_eq!(
            usize::from(u16be(ip, 2)),
            28 + payload.len(),
            "total length"
        );
        assert_eq!(u16be(ip, 6), 0x4000, "DF, no fragment offset");
        assert_eq!(ip[8], 64, "TTL");
        assert_eq!(ip[9], 17, "UDP");
        assert_eq!(&ip[12..16], &src.ip().octets());
        assert_eq!(&ip[16..20], &dst.ip().octets());
        assert_eq!(checksum(&[ip]), 0, "the IPv4 header checksum verifies");
        let udp = r.udp();
        assert_eq!(u16be(udp, 0), src.port());
        assert_eq!(u16be(udp, 2), dst.port());
        assert_eq!(usize::from(u16be(udp, 4)), 8 + payload.len(), "UDP length");
        assert_ne!(u16be(udp, 6), 0, "a UDP checksum is present");
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&udp[4..6]);
        assert_eq!(sum(&[&pseudo, udp]), 0xffff, "the UDP checksum verifies");
        assert_eq!(r.payload(), payload);
    }

    #[test]
    fn a_capture_parses_back_with_valid_checksums() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let odd: Vec<u8> = (0..=254).collect();
        let writes: [(Duration, SocketAddrV4, SocketAddrV4, &[u8]); 4] = [
            (Duration::ZERO, AIRCRAFT_ADDR, REMOTE_ADDR, b"even"),
            (
                Duration::from_micros(1_234_567),
                REMOTE_ADDR,
                AIRCRAFT_ADDR,
                &odd,
            ),
            (
                Duration::new(1_700_000_000, 999_999_999),
                "192.168.1.20:50123".parse().unwrap(),
                "192.168.1.1:47474".parse().unwrap(),
                &[],
            ),
            (
                Duration::from_secs(7),
                AIRCRAFT_ADDR,
                REMOTE_ADDR,
                &[0xff; 1400],
            ),
        ];
        for (at, src, dst, payload) in writes {
            w.write_udp(at, src, dst, payload).unwrap();
        }
        assert_eq!(w.records(), 4);
        let records = parse(&w.into_inner());
        assert_eq!(records.len(), 4);
        for (r, (_, src, dst, payload)) in records.iter().zip(writes) {
            check(r, src, dst, payload);
        }
        let times: Vec<(u32, u32)> = records.iter().map(|r| (r.sec, r.usec)).collect();
        assert_eq!(
            times,
            [(0, 0), (1, 234_567), (1_700_000_000, 999_999), (7, 0)]
        );
        let ids: Vec<u16> = records.iter().map(|r| u16be(r.ip(), 4)).collect();
        assert_eq!(ids, [0, 1, 2, 3], "IPv4 identification counts records");
    }

    #[test]
    fn the_reader_gives_back_what_the_writer_wrote_and_refuses_garbage() {
        let mut pcap = PcapWriter::new(Vec::new()).unwrap();
        let datagrams: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) * 70]).collect();
        for (i, d) in datagrams.iter().enumerate() {
            let at = Duration::from_micros(1_234_567 * i as u64);
            pcap.write_udp(at, AIRCRAFT_ADDR, REMOTE_ADDR, d).unwrap();
        }
        let file = pcap.into_inner();
        let mut reader = PcapReader::new(file.as_slice()).unwrap();
        for (i, d) in datagrams.iter().enumerate() {
            let r = reader.next_udp().unwrap().unwrap();
            assert_eq!(r.at, Duration::from_micros(1_234_567 * i as u64));
            assert_eq!((r.src, r.dst), (AIRCRAFT_ADDR, REMOTE_ADDR));
            assert_eq!(&r.payload, d);
        }
        assert_eq!(reader.next_udp().unwrap(), None);
        assert_eq!(reader.skipped(), 0);
        // Another magic, a truncated record, an oversized one: errors, never a panic.
        let mut bad = file.clone();
        bad[0] ^= 1;
        assert!(PcapReader::new(bad.as_slice()).is_err());
        let mut reader = PcapReader::new(&file[..file.len() - 3]).unwrap();
        let mut result = Ok(None);
        for _ in 0..=datagrams.len() {
            result = reader.next_udp();
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err(), "a truncated last record is an error");
        let mut huge = file[..24].to_vec();
        huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
        assert!(PcapReader::new(huge.as_slice())
            .unwrap()
            .next_udp()
            .is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut file = PcapWriter::new(Vec::new()).unwrap().into_inner();
            file.extend_from_slice(&bytes);
            let mut reader = PcapReader::new(file.as_slice()).unwrap();
            for _ in 0..10 {
                if !matches!(reader.next_udp(), Ok(Some(_))) {
                    break;
                }
            }
        }
    }

    #[test]
    fn checksums_match_known_values() {
        // RFC 1071's example bytes: sum 0xddf2, checksum 0x220d.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
        // Split anywhere, odd lengths included, the sum is the same.
        let data: Vec<u8> = (0u8..=200).map(|i| i.wrapping_mul(37)).collect();
        let whole = checksum(&[&data]);
        for cut in 0..data.len() {
            assert_eq!(checksum(&[&data[..cut], &data[cut..]]), whole, "cut {cut}");
        }
        // A well-known IPv4 header (checksum field 0xb861 filled in).
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&[&header]), 0);
    }

    #[test]
    fn oversized_payloads_and_far_future_times_are_refused_and_write_nothing() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![0; MAX_PAYLOAD + 1];
        let e = w
            .write_udp(Duration::ZERO, AIRCRAFT_ADDR, REMOTE_ADDR, &big)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = w
            .write_udp(
                Duration::from_secs(1 << 32),
                AIRCRAFT_ADDR,
                REMOTE_ADDR,
                b"x",
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        w.write_udp(
            Duration::ZERO,
            AIRCRAFT_ADDR,
            REMOTE_ADDR,
            &big[..MAX_PAYLOAD],
        )
        .unwrap();
        assert_eq!(w.records(), 1);
        let records = parse(&w.into_inner());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].frame.len(), 65_535);
        check(&records[0], AIRCRAFT_ADDR, REMOTE_ADDR, &big[..MAX_PAYLOAD]);
    }

    /// Telemetry down and control up over a perfect radio, tapped.
    #[test]
    fn the_tap_writes_what_each_link_sends_with_sim_times_and_directions() {
        let tap = PcapTap::new(PcapWriter::new(Vec::new()).unwrap());
        let mut p: Pair = Pair::new(
            Config::default(),
            ChannelConfig::default(),
            ChannelConfig::default(),
            7,
        )
        .unwrap();
        p.set_adversary(Box::new(tap.clone()));
        for i in 0..5u8 {
            p.aircraft.send(Channel::Telemetry, &[b'T', i]).unwrap();
            p.remote.send(Channel::Control, &[b'C', i]).unwrap();
            p.run_for(Duration::from_millis(10));
        }
        p.run_for(Duration::from_millis(100));
        let telemetry: Vec<&[u8]> = p.messages(Role::Remote, Channel::Telemetry);
        assert_eq!(telemetry.len(), 5, "the tap forwards everything");
        let (down, up) = (
            p.aircraft.stats().datagrams_sent,
            p.remote.stats().datagrams_sent,
        );
        assert_eq!(tap.records(), down + up);
        let records = parse(&tap.finish().unwrap());
        assert_eq!(records.len() as u64, down + up);
        let from = |addr: SocketAddrV4| {
            records
                .iter()
                .filter(|r| r.ip()[12..16] == addr.ip().octets())
                .count() as u64
        };
        assert_eq!(from(AIRCRAFT_ADDR), down);
        assert_eq!(from(REMOTE_ADDR), up);
        for r in &records {
            let (src, dst) = if r.ip()[12..16] == AIRCRAFT_ADDR.ip().octets() {
                (AIRCRAFT_ADDR, REMOTE_ADDR)
            } else {
                (REMOTE_ADDR, AIRCRAFT_ADDR)
            };
            let payload = r.payload().to_vec();
            check(r, src, dst, &payload);
            assert_eq!(payload[0], rotorlink::wire::VERSION, "a rotorlink frame");
        }
        // Simulation time from zero: the first sends are at 0, the last within the run.
        assert_eq!((records[0].sec, records[0].usec), (0, 0));
        let times: Vec<u64> = records
            .iter()
            .map(|r| u64::from(r.sec) * 1_000_000 + u64::from(r.usec))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(*times.last().unwrap() <= 150_000);
        assert!(times.contains(&40_000), "a send at 40 ms: {times:?}");
        // Finished: later datagrams are still forwarded, not written; finishing again fails.
        assert!(tap.finish().is_err());
        p.aircraft.send(Channel::Telemetry, b"late").unwrap();
        p.run_for(Duration::from_millis(50));
        assert_eq!(p.messages(Role::Remote, Channel::Telemetry).len(), 6);
        assert_eq!(tap.records(), 0);
    }

    /// A writer that fails after `budget` bytes.
    #[derive(Debug)]
    struct Failing {
        budget: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_kept_for_finish_and_the_run_goes_on() {
        let tap = PcapTap::new(PcapWriter::new(Failing { budget: 100 }).unwrap());
        let mut p: Pair = Pair::new(
            Config::default(),
            ChannelConfig::default(),
            ChannelConfig::default(),
            7,
        )
        .unwrap();
        p.set_adversary(Box::new(tap.clone()));
        for i in 0..5u8 {
            p.aircraft.send(Channel::Telemetry, &[i]).unwrap();
            p.run_for(Duration::from_millis(10));
        }
        assert_eq!(
            p.messages(Role::Remote, Channel::Telemetry).len(),
            5,
            "the run is not disturbed"
        );
        let e = tap.finish().unwrap_err();
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn create_writes_a_file_that_parses_back() {
        let path =
            std::env::temp_dir().join(format!("rotorlink-pcap-unit-{}.pcap", std::process::id()));
        let tap = PcapTap::create(&path).unwrap();
        let mut pair: Pair = Pair::new(
            Config::default(),
            ChannelConfig::default(),
            ChannelConfig::default(),
            3,
        )
        .unwrap();
        pair.set_adversary(Box::new(tap.clone()));
        pair.aircraft.send(Channel::Telemetry, b"t").unwrap();
        pair.run_for(Duration::from_millis(20));
        let written = tap.records();
        assert!(written >= 1);
        drop(tap.finish().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(parse(&bytes).len() as u64, written);
        assert!(PcapTap::create(std::env::temp_dir().join("no/such/dir/x.pcap")).is_err());
    }
}
