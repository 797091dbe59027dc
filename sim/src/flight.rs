//! Flights over the tokio driver: the fake aircraft and remote applications on a
//! [`Connection`], over any [`rotorlink::tokio::Transport`] — UDP between two processes
//! (`rotorlink aircraft` / `rotorlink remote`) or the simulated radio ([`crate::net`]).
//!
//! The applications are the same as over the simulator's [`crate::Pair`]: the aircraft
//! sends file data until the storage queue is full and then waits for
//! [`Event::Writable`], which the driver hands over as `LinkEvent::Link(Event::Writable)`
//! (see [`crate::storage`]). Hashing a large file for the list is done on a thread of its
//! own ([`AircraftApp::digest_jobs`]), so neither the driver nor the sticks wait for it.
//!
//! At the end of a flight the remote asks the aircraft for its [`EndSummary`] on the
//! storage channel, so that it can make the same [`Report`] as the simulator, and sends the
//! report back so that both ends print it:
//!
//! ```text
//! remote                                   aircraft
//!   ... flight: sticks, telemetry, video, LIST / READ / DATA on storage ...
//!   Storage "GET /summary"      ───────▶   (stops the file transfer: the flight is over,
//!                                           and withdraws the DATA queued, not begun)
//!                               ◀───────   Storage "SUMMARY {json}"  (after the DATA in flight)
//!   Storage "REPORT {json}"     ───────▶
//!   Close (once acknowledged)   ───────▶   (the aircraft's flight ends)
//! ```
//!
//! If the summary does not arrive within [`SUMMARY_WAIT`] (the link died), the counters
//! only the aircraft knows are unknown in the report: `null` in its JSON, `?` in its table.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use rotorlink::tokio::{Connection, LinkEvent};
use rotorlink::{Channel, Event, Link, SendError};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::aircraft::AircraftApp;
use crate::remote::RemoteApp;
use crate::report::{EndSummary, Flight, Report};
use crate::storage::{DigestJob, Digested};

/// The remote's request for the aircraft's summary, on the storage channel.
pub const GET_SUMMARY: &[u8] = b"GET /summary";
/// The prefix of the aircraft's answer; JSON follows.
const SUMMARY: &[u8] = b"SUMMARY ";
/// The prefix of the report the remote sends the aircraft at the end; JSON follows.
const REPORT: &[u8] = b"REPORT ";
/// How long the remote waits for the report to be acknowledged before closing.
pub const REPORT_WAIT: Duration = Duration::from_secs(2);
/// How long the remote waits for the aircraft's summary after the flight.
pub const SUMMARY_WAIT: Duration = Duration::from_secs(5);
/// Latency samples an aircraft summary carries at most (evenly spread over the sorted
/// samples, so the percentiles hold), to stay well inside one storage message.
const MAX_SUMMARY_SAMPLES: usize = 8192;

/// How the remote flies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFlight {
    /// The seed, for the report.
    pub seed: u64,
    /// Fly this long after the session is up.
    pub duration: Duration,
    /// End the flight early once the chosen file has arrived whole (or cannot be had).
    pub until_downloaded: bool,
}

/// How the aircraft's flight went.
#[derive(Debug, Clone, PartialEq)]
pub struct AircraftFlight {
    /// The aircraft's own summary at the end.
    pub summary: EndSummary,
    /// The report the remote sent at the end of its flight, if it did.
    pub report: Option<Report>,
    /// Did a remote ever connect?
    pub connected: bool,
    /// Why the summary the remote asked for could not be sent, if it could not (the link
    /// closed first): the remote's report then shows the aircraft's counters as unknown.
    pub summary_refused: Option<SendError>,
}

/// Fly the aircraft application on `conn` until the remote closes the link or `stop`
/// completes; every event other than a message goes to `on_event` with the connection (to
/// print it, or to copy the identity a new bond changed). Answers
/// the remote's [`GET_SUMMARY`] and keeps the report it sends. The application follows the
/// driver's failsafe ([`LinkEvent::Failsafe`], [`LinkEvent::FailsafeCleared`]) rather than
/// watching the stick commands itself.
pub async fn fly_aircraft(
    conn: &mut Connection,
    app: &mut AircraftApp,
    stop: impl Future<Output = ()>,
    on_event: &mut (dyn FnMut(&LinkEvent, &Connection) + Send),
) -> AircraftFlight {
    tokio::pin!(stop);
    app.follow_link_failsafe();
    app.hash_elsewhere();
    let mut report = None;
    let mut connected = false;
    let mut summary_refused = None;
    // The slow part of a list request: hashing the files, on a thread of its own.
    let mut hashing: Option<JoinHandle<Vec<Digested>>> = None;
    loop {
        if hashing.is_none() {
            let jobs = app.digest_jobs();
            if !jobs.is_empty() {
                hashing = Some(tokio::task::spawn_blocking(move || {
                    jobs.into_iter().map(DigestJob::run).collect()
                }));
            }
        }
        let now = conn.now();
        conn.with_link(|link| app.poll(now, link));
        let wake = conn.clock().instant(app.next_wakeup());
        let hashed = async {
            match hashing.as_mut() {
                Some(job) => job.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = hashed => {
                hashing = None;
                // A job that failed leaves its digests unknown: the next loop tries again.
                for digest in done.into_iter().flatten() {
                    app.digested(digest);
                }
            }
            event = conn.recv() => match event {
                None => break,
                Some(LinkEvent::Message { channel: Channel::Storage, data })
                    if &data[..] == GET_SUMMARY =>
                {
                    // The flight is over: no more file data ahead of the answer, neither
                    // chunks still to come nor those queued (up to 16 MiB: seconds of a
                    // narrow radio, longer than the remote waits for the answer).
                    app.stop_transfer();
                    conn.with_link(Link::discard_unsent_storage);
                    let mut summary = aircraft_summary(conn, app);
                    // The request is the end of the flight, not part of it.
                    summary.uncount_delivered(Channel::Storage, GET_SUMMARY.len());
                    let mut answer = SUMMARY.to_vec();
                    // Serialising plain numbers cannot fail.
                    answer.extend_from_slice(&serde_json::to_vec(&summary).unwrap_or_default());
                    // Waits out a full queue; refused only once the link is closing, and
                    // then the remote reports the aircraft's counters as unknown.
                    summary_refused = conn.send(Channel::Storage, Bytes::from(answer)).await.err();
                }
                Some(LinkEvent::Message { channel: Channel::Storage, data })
                    if data.starts_with(REPORT) =>
                {
                    report = serde_json::from_slice::<Report>(&data[REPORT.len()..])
                        .ok()
                        .map(|r| Report { real_time: true, ..r });
                }
                Some(LinkEvent::Message { channel, data }) => {
                    let now = conn.now();
                    conn.with_link(|link| app.on_message(now, channel, &data, link));
                }
                Some(other) => {
                    on_event(&other, conn);
                    match other {
                        LinkEvent::Link(event) => {
                            // Writable sends more of the file; a new session resets it.
                            conn.with_link(|link| app.on_event(&event, link));
                            match event {
                                Event::Connected { .. } => connected = true,
                                Event::Closed { .. } => break,
                                _ => {}
                            }
                        }
                        LinkEvent::Failsafe => app.on_link_failsafe(true),
                        LinkEvent::FailsafeCleared => app.on_link_failsafe(false),
                        _ => {}
                    }
                }
            },
            () = sleep_until(wake) => {}
            () = &mut stop => break,
        }
    }
    AircraftFlight {
        summary: aircraft_summary(conn, app),
        report,
        connected,
        summary_refused,
    }
}

fn aircraft_summary(conn: &Connection, app: &AircraftApp) -> EndSummary {
    let mut samples = app.stats.control_latencies.clone();
    samples.sort_unstable();
    if samples.len() > MAX_SUMMARY_SAMPLES {
        let n = samples.len();
        samples = (0..MAX_SUMMARY_SAMPLES)
            .map(|i| samples[i * n / MAX_SUMMARY_SAMPLES])
            .chain(samples.last().copied())
            .collect();
    }
    EndSummary::of(
        &conn.stats(),
        &samples,
        app.stats.corrupted(),
        app.stats.refused(),
        app.stats.failsafe_events,
    )
    .with_path(conn.with_link(|link| link.path_estimate()))
    .with_encoder(app.config().video_bitrate, &app.stats)
}

/// How the remote's flight ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOutcome {
    /// The report (with [`Report::missing_summary`] saying why, if the aircraft's counters
    /// are unknown).
    pub report: Report,
    /// Did the aircraft acknowledge the report within [`REPORT_WAIT`]?
    pub report_delivered: bool,
}

/// Fly the remote application on `conn` (already connected) for `flight.duration` or until
/// `stop` completes, fetch the aircraft's summary, send it the report and return the
/// report. Every event other than a message goes to `on_event`. Closing the connection is
/// the caller's.
pub async fn fly_remote(
    conn: &mut Connection,
    app: &mut RemoteApp,
    flight: &RemoteFlight,
    stop: impl Future<Output = ()>,
    on_event: &mut (dyn FnMut(&LinkEvent) + Send),
) -> RemoteOutcome {
    tokio::pin!(stop);
    let start = conn.now();
    let end = Instant::now() + flight.duration;
    let mut summary = None;
    loop {
        let now = conn.now();
        conn.with_link(|link| app.poll(now, link));
        if flight.until_downloaded && app.stats.download.finished() {
            break;
        }
        let wake = conn.clock().instant(app.next_wakeup()).min(end);
        tokio::select! {
            event = conn.recv() => match event {
                None => break,
                Some(event) => {
                    remote_event(conn, app, event, &mut summary, on_event);
                }
            },
            () = sleep_until(wake) => {
                if Instant::now() >= end {
                    break;
                }
            }
            () = &mut stop => break,
        }
    }
    let flown = conn.now().saturating_since(start);
    // Everything from here on is the end-of-flight exchange, not the flight.
    let remote = EndSummary::of(
        &conn.stats(),
        &app.stats.telemetry_latencies,
        app.stats.corrupted(),
        app.stats.refused(),
        0,
    );
    let remote_app = app.stats.clone();
    let missing = if !conn.storage_unlocked() {
        Some("the storage channel, which carries it, is locked".to_string())
    } else if let Err(e) = conn
        .send(Channel::Storage, Bytes::from_static(GET_SUMMARY))
        .await
    {
        Some(format!("the request could not be sent: {e}"))
    } else {
        let deadline = Instant::now() + SUMMARY_WAIT;
        loop {
            if let Some(answer) = &summary {
                break answer.as_ref().err().cloned();
            }
            tokio::select! {
                event = conn.recv() => match event {
                    None => break Some("the link closed before the answer".to_string()),
                    Some(event) => remote_event(conn, app, event, &mut summary, on_event),
                },
                () = sleep_until(deadline) => {
                    break Some(format!(
                        "no answer within {} s",
                        SUMMARY_WAIT.as_secs_f64()
                    ));
                }
            }
        }
    };
    let summary = summary.and_then(Result::ok);
    // Without the aircraft's summary its counters are unknown, not zero.
    let radio = summary.as_ref().map(|aircraft| {
        let sent = aircraft.datagrams_sent + remote.datagrams_sent;
        let received = aircraft.datagrams_received + remote.datagrams_received;
        (sent, sent.saturating_sub(received))
    });
    let mut report = Report::assemble(&Flight {
        seed: flight.seed,
        duration_s: flown.as_secs_f64(),
        aircraft: summary.as_ref(),
        remote: &remote,
        remote_app: &remote_app,
        storage_unlocked: conn.storage_unlocked(),
        radio,
        radio_queue_dropped: None,
        real_time: true,
    });
    report.missing_summary = missing;
    let mut delivered = false;
    if conn.storage_unlocked() {
        let mut message = REPORT.to_vec();
        message.extend_from_slice(&serde_json::to_vec(&report).unwrap_or_default());
        // Refused only once the link is closing: the aircraft then goes without it.
        if conn
            .send(Channel::Storage, Bytes::from(message))
            .await
            .is_ok()
        {
            // Closing drops what is not acknowledged yet; the aircraft then goes without.
            delivered = tokio::time::timeout(REPORT_WAIT, conn.flush())
                .await
                .is_ok();
        }
    }
    RemoteOutcome {
        report,
        report_delivered: delivered,
    }
}

fn remote_event(
    conn: &Connection,
    app: &mut RemoteApp,
    event: LinkEvent,
    summary: &mut Option<Result<EndSummary, String>>,
    on_event: &mut (dyn FnMut(&LinkEvent) + Send),
) {
    match event {
        LinkEvent::Message {
            channel: Channel::Storage,
            data,
        } if data.starts_with(SUMMARY) => {
            *summary = Some(
                serde_json::from_slice(&data[SUMMARY.len()..])
                    .map_err(|e| format!("the answer did not parse: {e}")),
            );
        }
        LinkEvent::Message { channel, data } => app.on_message(conn.now(), channel, &data),
        LinkEvent::Link(e) => {
            app.on_event(&e);
            on_event(&LinkEvent::Link(e));
        }
        other => on_event(&other),
    }
}
