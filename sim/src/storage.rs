//! The aircraft's onboard storage ([`Onboard`]: the flight log, photos and a video clip) and
//! the small file-transfer protocol the fake applications speak on the storage channel.
//!
//! The storage channel is reliable, in order and exactly once, but only within a session: a
//! resume continues it, while a new session (after a link loss too long to resume, or worn
//! out keys) starts it afresh, with the code to be proven again, and whatever was queued or
//! in flight is gone. The protocol is built around that: the remote asks for one file from
//! an offset, and after a new session asks again from the offset it has.
//!
//! ```text
//! remote                                                aircraft
//!   (session up, storage unlocked with the code)
//!   LIST                                  ───────▶
//!                                         ◀───────   FILE [name, size, SHA-256] ...
//!   READ name, offset 0, end = size       ───────▶
//!                                         ◀───────   DATA offset 0, 64 KiB
//!                                         ◀───────   DATA offset 65536, 64 KiB
//!                                         ◀───────   ...  (as fast as the link takes them:
//!                                                          send until QueueFull, then wait
//!                                                          for Event::Writable { Storage })
//!   ... link lost; a new session resets the storage channel; unlock again ...
//!   READ name, offset N, end = size       ───────▶   (N: the bytes the remote holds)
//!                                         ◀───────   DATA offset N, ...
//!                                         ◀───────   DATA ..., up to end
//!   (SHA-256 over all `size` bytes = the list's: verified)
//!
//!   a READ the aircraft cannot serve     ───────▶
//!                                         ◀───────   FAIL reason
//! ```
//!
//! Every message starts with a four-byte ASCII tag; integers are big-endian:
//!
//! | message | layout |
//! |---------|--------|
//! | `LIST`  | `"LIST"` |
//! | `FILE`  | `"FILE"`, count `u16`, then per file: name length `u8`, name (UTF-8), size `u64`, SHA-256 (32 bytes) |
//! | `READ`  | `"READ"`, offset `u64`, end `u64` (exclusive), name (UTF-8, 1 to 255 bytes) |
//! | `DATA`  | `"DATA"`, offset `u64`, the file's bytes from there (at least one) |
//! | `FAIL`  | `"FAIL"`, the reason (UTF-8) |
//!
//! A `READ` replaces the transfer under way, if any. The remote takes a `DATA` only at the
//! offset it expects (the channel delivers in order, so anything else is not a piece of the
//! file) and hashes the bytes as they come, so that it never holds the file.
//!
//! The photos and the clip are generated: the byte at offset `o` of file `name` is a pure
//! function of the two ([`generated_bytes`]), so a 1 GiB clip costs no memory and any range
//! of it can be produced at once. The SHA-256 of each file is computed the first time the
//! list is asked for, streaming, and kept. The flight log is real memory and grows during
//! the flight (every telemetry record is appended): the list gives its size and digest at
//! the time of the request, and a download of it reads up to that size.

use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The flight log's name.
pub const FLIGHT_LOG: &str = "flightlog";
/// The video clip's name.
pub const CLIP: &str = "clip.mp4";
/// Bytes of a file per `DATA` message (less if the link's `max_storage_message` is smaller).
pub const CHUNK: usize = 64 * 1024;
/// The most files a list holds (its count is a `u16`; the photos are capped well below).
pub const MAX_FILES: usize = 1024;

/// The name of photo `i` (from 1).
pub fn photo_name(i: u32) -> String {
    format!("photo-{i}.jpg")
}

const LIST: &[u8; 4] = b"LIST";
const FILE: &[u8; 4] = b"FILE";
const READ: &[u8; 4] = b"READ";
const DATA: &[u8; 4] = b"DATA";
const FAIL: &[u8; 4] = b"FAIL";
/// Tag and offset before the bytes of a `DATA` message.
pub const DATA_HEADER_LEN: usize = 4 + 8;

/// One file of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its name (1 to 255 bytes of UTF-8).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its `size` bytes.
    pub sha256: [u8; 32],
}

impl FileInfo {
    /// Does the pilot's `wanted` name this file? See [`name_matches`].
    pub fn matches(&self, wanted: &str) -> bool {
        name_matches(&self.name, wanted)
    }
}

/// Does the pilot's `wanted` name the file `name`? Either its whole name or its name
/// without the extension: `clip` is `clip.mp4`, `photo-2` is `photo-2.jpg`.
pub fn name_matches(name: &str, wanted: &str) -> bool {
    name == wanted
        || name
            .rsplit_once('.')
            .is_some_and(|(stem, _)| stem == wanted)
}

/// What the remote asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The list of files.
    List,
    /// The bytes `offset..end` of file `name`.
    Read {
        /// The file.
        name: String,
        /// The first byte wanted.
        offset: u64,
        /// One past the last byte wanted.
        end: u64,
    },
}

/// What the aircraft answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// The list of files.
    Files(Vec<FileInfo>),
    /// Bytes of the file being read, from `offset`.
    Data {
        /// Where `data` starts in the file.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// A request that cannot be served.
    Fail(String),
}

/// A storage message that is not one of the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a storage protocol message")
    }
}

impl std::error::Error for Malformed {}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, Malformed> {
    let b: [u8; 8] = bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or(Malformed)?;
    Ok(u64::from_be_bytes(b))
}

fn name_ok(name: &str) -> bool {
    (1..=255).contains(&name.len())
}

impl Request {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::List => LIST.to_vec(),
            Request::Read { name, offset, end } => {
                let mut m = Vec::with_capacity(4 + 16 + name.len());
                m.extend_from_slice(READ);
                m.extend_from_slice(&offset.to_be_bytes());
                m.extend_from_slice(&end.to_be_bytes());
                m.extend_from_slice(name.as_bytes());
                m
            }
        }
    }

    /// Parse a request.
    ///
    /// # Errors
    /// [`Malformed`] if `bytes` is not a request.
    pub fn parse(bytes: &[u8]) -> Result<Request, Malformed> {
        if bytes == LIST {
            return Ok(Request::List);
        }
        let rest = bytes.strip_prefix(READ).ok_or(Malformed)?;
        let (offset, end) = (u64_at(rest, 0)?, u64_at(rest, 8)?);
        let name = std::str::from_utf8(&rest[16..]).map_err(|_| Malformed)?;
        if !name_ok(name) || offset > end {
            return Err(Malformed);
        }
        Ok(Request::Read {
            name: name.to_string(),
            offset,
            end,
        })
    }
}

impl Response<'_> {
    /// Append the message's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Response::Files(files) => {
                out.extend_from_slice(FILE);
                let count = files.len().min(MAX_FILES);
                out.extend_from_slice(&(count as u16).to_be_bytes());
                for f in &files[..count] {
                    let name = &f.name.as_bytes()[..f.name.len().min(255)];
                    out.push(name.len() as u8);
                    out.extend_from_slice(name);
                    out.extend_from_slice(&f.size.to_be_bytes());
                    out.extend_from_slice(&f.sha256);
                }
            }
            Response::Data { offset, data } => {
                data_header(*offset, out);
                out.extend_from_slice(data);
            }
            Response::Fail(reason) => {
                out.extend_from_slice(FAIL);
                out.extend_from_slice(reason.as_bytes());
            }
        }
    }

    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Append the header of a `DATA` message at `offset` to `out` (the bytes follow).
pub fn data_header(offset: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(DATA);
    out.extend_from_slice(&offset.to_be_bytes());
}

impl<'a> Response<'a> {
    /// Parse a response; a `DATA` borrows its bytes from `bytes`.
    ///
    /// # Errors
    /// [`Malformed`] if `bytes` is not a response.
    pub fn parse(bytes: &'a [u8]) -> Result<Response<'a>, Malformed> {
        if let Some(rest) = bytes.strip_prefix(DATA) {
            let offset = u64_at(rest, 0)?;
            let data = &rest[8..];
            if data.is_empty() {
                return Err(Malformed);
            }
            return Ok(Response::Data { offset, data });
        }
        if let Some(rest) = bytes.strip_prefix(FAIL) {
            let reason = std::str::from_utf8(rest).map_err(|_| Malformed)?;
            return Ok(Response::Fail(reason.to_string()));
        }
        let rest = bytes.strip_prefix(FILE).ok_or(Malformed)?;
        let count = u16::from_be_bytes(
            rest.get(..2)
                .and_then(|b| b.try_into().ok())
                .ok_or(Malformed)?,
        );
        let mut at = 2;
        let mut files = Vec::with_capacity(usize::from(count).min(MAX_FILES));
        for _ in 0..count {
            let len = usize::from(*rest.get(at).ok_or(Malformed)?);
            let name = rest.get(at + 1..at + 1 + len).ok_or(Malformed)?;
            let name = std::str::from_utf8(name).map_err(|_| Malformed)?;
            at += 1 + len;
            let size = u64_at(rest, at)?;
            let sha256 = rest
                .get(at + 8..at + 40)
                .and_then(|b| b.try_into().ok())
                .ok_or(Malformed)?;
            at += 40;
            if !name_ok(name) {
                return Err(Malformed);
            }
            files.push(FileInfo {
                name: name.to_string(),
                size,
                sha256,
            });
        }
        if at != rest.len() {
            return Err(Malformed);
        }
        Ok(Response::Files(files))
    }
}

/// The key of a generated file's contents: the first bytes of a hash of its name.
fn content_key(name: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"rotorlink-sim onboard file")
        .chain_update(name.as_bytes())
        .finalize();
    let mut key = [0; 8];
    key.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(key)
}

/// Word `i` of the contents keyed `key`: SplitMix64 at position `i`, so any word is made
/// on its own.
fn word(key: u64, i: u64) -> [u8; 8] {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fill `out` with the bytes of the generated file `name` from `offset`: a pure function of
/// the name and the offset, so that the same range always reads the same, in any order.
pub fn generated_bytes(name: &str, offset: u64, out: &mut [u8]) {
    fill(content_key(name), offset, out);
}

fn fill(key: u64, offset: u64, out: &mut [u8]) {
    let mut i = offset / 8;
    let skip = (offset % 8) as usize;
    let mut rest = out;
    if skip > 0 {
        let head = rest.len().min(8 - skip);
        let (now, later) = rest.split_at_mut(head);
        now.copy_from_slice(&word(key, i)[skip..skip + head]);
        rest = later;
        i += 1;
    }
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&word(key, i));
        i += 1;
    }
    let tail = words.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&word(key, i)[..n]);
}

/// A generated file.
#[derive(Debug, Clone)]
struct Generated {
    name: String,
    size: u64,
    key: u64,
    /// Its SHA-256, once computed.
    sha256: Option<[u8; 32]>,
}

impl Generated {
    fn new(name: String, size: u64) -> Self {
        let key = content_key(&name);
        Generated {
            name,
            size,
            key,
            sha256: None,
        }
    }

    /// Compute the digest if it is not known yet (streaming: 64 KiB at a time).
    fn digest(&mut self) -> [u8; 32] {
        if let Some(d) = self.sha256 {
            return d;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0;
        while at < self.size {
            let n = (self.size - at).min(CHUNK as u64) as usize;
            fill(self.key, at, &mut buf[..n]);
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        let d: [u8; 32] = hasher.finalize().into();
        self.sha256 = Some(d);
        d
    }
}

/// The SHA-256 of a generated file, to compute away from the storage (on a thread of its
/// own: a 1 GiB clip takes about a second, which a real-time aircraft must not spend in
/// the loop that applies the pilot's sticks).
#[derive(Debug, Clone)]
pub struct DigestJob {
    index: usize,
    file: Generated,
}

impl DigestJob {
    /// Compute the digest (streaming: constant memory, whatever the size).
    pub fn run(mut self) -> Digested {
        Digested {
            index: self.index,
            name: self.file.name.clone(),
            sha256: self.file.digest(),
        }
    }
}

/// A digest [`DigestJob::run`] computed, for [`Onboard::set_digest`].
#[derive(Debug, Clone)]
pub struct Digested {
    index: usize,
    name: String,
    sha256: [u8; 32],
}

/// What the onboard storage holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Size of the flight log before the flight (random bytes; telemetry records are
    /// appended during the flight).
    pub log_len: usize,
    /// How many photos (at most [`MAX_FILES`] - 2).
    pub photos: u32,
    /// Size of each photo.
    pub photo_size: u64,
    /// Size of the video clip; 0 for none.
    pub clip_size: u64,
}

impl StorageConfig {
    /// The names of the files, in the order of the list.
    pub fn names(&self) -> Vec<String> {
        let photos = self.photos.min((MAX_FILES - 2) as u32);
        std::iter::once(FLIGHT_LOG.to_string())
            .chain((1..=photos).map(photo_name))
            .chain((self.clip_size > 0).then(|| CLIP.to_string()))
            .collect()
    }
}

/// The aircraft's onboard storage: the flight log in memory, the photos and the clip
/// generated on demand.
#[derive(Debug, Clone)]
pub struct Onboard {
    log: Vec<u8>,
    /// The digest of the log's first `.0` bytes.
    log_digest: Option<(usize, [u8; 32])>,
    generated: Vec<Generated>,
    /// Files hashed so far (each generated file once; the log whenever it grew).
    hashed: u64,
}

impl Onboard {
    /// Storage as `config` says, the flight log's first bytes made from `seed`.
    pub fn new(config: &StorageConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa1c2);
        let mut log = vec![0u8; config.log_len];
        rng.fill_bytes(&mut log);
        let photos = config.photos.min((MAX_FILES - 2) as u32);
        let mut generated: Vec<Generated> = (1..=photos)
            .map(|i| Generated::new(photo_name(i), config.photo_size))
            .collect();
        if config.clip_size > 0 {
            generated.push(Generated::new(CLIP.to_string(), config.clip_size));
        }
        Onboard {
            log,
            log_digest: None,
            generated,
            hashed: 0,
        }
    }

    /// Append a record to the flight log.
    pub fn append_log(&mut self, record: &[u8]) {
        self.log.extend_from_slice(record);
    }

    /// The flight log as it is now.
    pub fn log(&self) -> &[u8] {
        &self.log
    }

    /// The size of file `name` now, if there is one.
    pub fn size(&self, name: &str) -> Option<u64> {
        if name == FLIGHT_LOG {
            return Some(self.log.len() as u64);
        }
        self.generated
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.size)
    }

    /// Fill `out` with the bytes of `name` from `offset`. False (and `out` untouched) if
    /// there is no such file or the range goes past its end.
    pub fn read(&self, name: &str, offset: u64, out: &mut [u8]) -> bool {
        let Some(end) = offset.checked_add(out.len() as u64) else {
            return false;
        };
        if name == FLIGHT_LOG {
            return match self.log.get(offset as usize..end as usize) {
                Some(bytes) => {
                    out.copy_from_slice(bytes);
                    true
                }
                None => false,
            };
        }
        match self.generated.iter().find(|g| g.name == name) {
            Some(g) if end <= g.size => {
                fill(g.key, offset, out);
                true
            }
            _ => false,
        }
    }

    /// True if [`Onboard::list`] has every digest at hand (nothing to hash).
    pub fn digests_ready(&self) -> bool {
        self.log_digest
            .is_some_and(|(len, _)| len == self.log.len())
            && self.generated.iter().all(|g| g.sha256.is_some())
    }

    /// Compute every digest not known yet: each generated file's once, the flight log's if
    /// it grew. Streaming, so a file of any size is hashed in constant memory.
    pub fn compute_digests(&mut self) {
        self.compute_log_digest();
        for job in self.digest_jobs() {
            self.set_digest(job.run());
        }
    }

    /// Compute the flight log's digest if it grew (it is in memory, and small beside the
    /// generated files).
    pub fn compute_log_digest(&mut self) {
        if self.log_digest.is_none_or(|(len, _)| len != self.log.len()) {
            self.log_digest = Some((self.log.len(), Sha256::digest(&self.log).into()));
            self.hashed += 1;
        }
    }

    /// The generated files whose digests are not known yet, as jobs that compute them
    /// without the storage ([`Onboard::set_digest`] takes what they return).
    pub fn digest_jobs(&self) -> Vec<DigestJob> {
        self.generated
            .iter()
            .enumerate()
            .filter(|(_, g)| g.sha256.is_none())
            .map(|(index, g)| DigestJob {
                index,
                file: g.clone(),
            })
            .collect()
    }

    /// Keep a digest a [`DigestJob`] computed (ignored if that file has one already).
    pub fn set_digest(&mut self, done: Digested) {
        if let Some(g) = self.generated.get_mut(done.index) {
            if g.name == done.name && g.sha256.is_none() {
                g.sha256 = Some(done.sha256);
                self.hashed += 1;
            }
        }
    }

    /// How many times a file was hashed (each generated file once, whatever the number of
    /// lists).
    pub fn files_hashed(&self) -> u64 {
        self.hashed
    }

    /// The list: every file with its size and SHA-256 (computed now if not known yet).
    pub fn list(&mut self) -> Vec<FileInfo> {
        self.compute_digests();
        let (len, digest) = self.log_digest.unwrap_or_default();
        std::iter::once(FileInfo {
            name: FLIGHT_LOG.to_string(),
            size: len as u64,
            sha256: digest,
        })
        .chain(self.generated.iter_mut().map(|g| FileInfo {
            name: g.name.clone(),
            size: g.size,
            sha256: g.digest(),
        }))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_read_back_as_written() {
        for r in [
            Request::List,
            Request::Read {
                name: CLIP.into(),
                offset: 3 << 30,
                end: 4 << 30,
            },
        ] {
            assert_eq!(Request::parse(&r.encode()), Ok(r));
        }
        let files = Response::Files(vec![
            FileInfo {
                name: FLIGHT_LOG.into(),
                size: 12,
                sha256: [1; 32],
            },
            FileInfo {
                name: photo_name(7),
                size: 1 << 22,
                sha256: [2; 32],
            },
        ]);
        let data = Response::Data {
            offset: 65536,
            data: b"bytes",
        };
        let fail = Response::Fail("no file named x".into());
        for r in [files, data, fail] {
            assert_eq!(Response::parse(&r.encode()), Ok(r.clone()));
        }
        for bad in [
            &b""[..],
            b"LIS",
            b"LISTX",
            b"READ\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"READ\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x01x",
            b"DATA\0\0\0\0\0\0\0\0",
            b"FILE\0\x01\x01x",
            b"FILE\0\0junk",
            b"GET /summary",
        ] {
            assert!(
                Request::parse(bad).is_err() && Response::parse(bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_contents_depend_only_on_the_name_and_the_offset() {
        let mut whole = vec![0u8; 1000];
        generated_bytes(CLIP, 0, &mut whole);
        for (offset, len) in [(0, 1), (1, 7), (3, 100), (8, 8), (13, 500), (999, 1)] {
            let mut part = vec![0u8; len];
            generated_bytes(CLIP, offset as u64, &mut part);
            assert_eq!(part, whole[offset..offset + len], "{offset}+{len}");
        }
        let mut other = vec![0u8; 1000];
        generated_bytes(&photo_name(1), 0, &mut other);
        assert_ne!(other, whole);
        // Far into a file: no memory, same answer twice.
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        generated_bytes(CLIP, (1 << 40) + 5, &mut a);
        generated_bytes(CLIP, (1 << 40) + 5, &mut b);
        assert_eq!(a, b);
    }

    /// A log, two photos and a clip, each small enough to read whole.
    fn small_storage() -> StorageConfig {
        StorageConfig {
            log_len: 1000,
            photos: 2,
            photo_size: 100_000,
            clip_size: 300_001,
        }
    }

    #[test]
    fn the_list_gives_sizes_and_digests_and_hashes_each_file_once() {
        let config = small_storage();
        let mut onboard = Onboard::new(&config, 1);
        assert!(!onboard.digests_ready());
        let list = onboard.list();
        let names: Vec<&str> = list.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [FLIGHT_LOG, "photo-1.jpg", "photo-2.jpg", CLIP]);
        assert_eq!(config.names(), names);
        for f in &list {
            let mut bytes = vec![0u8; f.size as usize];
            assert!(onboard.read(&f.name, 0, &mut bytes));
            assert_eq!(Sha256::digest(&bytes).as_slice(), f.sha256, "{}", f.name);
            assert!(!onboard.read(&f.name, 1, &mut bytes), "past the end");
        }
        assert_eq!(onboard.files_hashed(), 4);
        assert!(onboard.digests_ready());
        assert_eq!(onboard.list(), list);
        assert_eq!(onboard.files_hashed(), 4, "cached");
        // The log grows: its digest is made again, the others are kept.
        onboard.append_log(b"record");
        assert!(!onboard.digests_ready());
        let again = onboard.list();
        assert_eq!(again[0].size, 1006);
        assert_eq!(again[1..], list[1..]);
        assert_eq!(onboard.files_hashed(), 5);
        assert!(list[3].matches("clip") && list[3].matches(CLIP) && !list[3].matches("clip.m"));
        assert!(list[0].matches(FLIGHT_LOG) && list[1].matches("photo-1"));
    }

    #[test]
    fn digests_computed_elsewhere_make_the_same_list() {
        let config = small_storage();
        let mut inline = Onboard::new(&config, 1);
        let mut elsewhere = Onboard::new(&config, 1);
        let jobs = elsewhere.digest_jobs();
        assert_eq!(jobs.len(), 3, "the generated files, not the log");
        let done: Vec<Digested> =
            std::thread::spawn(move || jobs.into_iter().map(DigestJob::run).collect())
                .join()
                .unwrap();
        for d in done.iter().cloned() {
            elsewhere.set_digest(d);
        }
        assert!(elsewhere.digest_jobs().is_empty());
        assert!(!elsewhere.digests_ready(), "the log is hashed at the list");
        elsewhere.compute_log_digest();
        assert!(elsewhere.digests_ready());
        assert_eq!(elsewhere.list(), inline.list());
        assert_eq!(elsewhere.files_hashed(), 4);
        // A late copy changes nothing.
        elsewhere.set_digest(done[0].clone());
        assert_eq!(elsewhere.files_hashed(), 4);
    }
}
