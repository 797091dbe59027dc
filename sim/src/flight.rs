//! Flights over the tokio driver: the fake aircraft and remote applications on a
//! [`Connection`], over any [`rotorlink::tokio::Transport`] — UDP between two processes
//! (`rotorlink aircraft` / `rotorlink remote`) or the simulated radio ([`crate::net`]).
//!
//! At the end of a flight the remote asks the aircraft for its [`EndSummary`] on the
//! storage channel, so that it can make the same [`Report`] as the simulator, and sends the
//! report back so that both ends print it:
//!
//! ```text
//! remote                                   aircraft
//!   ... flight: sticks, telemetry, video, flight log ...
//!   Storage "GET /summary"      ───────▶
//!                               ◀───────   Storage "SUMMARY {json}"
//!   Storage "REPORT {json}"     ───────▶
//!   Close (once acknowledged)   ───────▶   (the aircraft's flight ends)
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use rotorlink::tokio::{Connection, LinkEvent};
use rotorlink::{Channel, Event};
use tokio::time::{sleep_until, Instant};

use crate::aircraft::AircraftApp;
use crate::remote::RemoteApp;
use crate::report::{EndSummary, Flight, Report};

/// The remote's request for the aircraft's summary, on the storage channel.
pub const GET_SUMMARY: &[u8] = b"GET /summary";
/// The prefix of the aircraft's answer; JSON follows.
const SUMMARY: &[u8] = b"SUMMARY ";
/// The prefix of the report the remote sends the aircraft at the end; JSON follows.
const REPORT: &[u8] = b"REPORT ";
/// How long the remote waits for the report to be acknowledged before closing.
const REPORT_WAIT: Duration = Duration::from_secs(2);
/// How long the remote waits for the aircraft's summary after the flight.
const SUMMARY_WAIT: Duration = Duration::from_secs(5);
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
    /// End the flight early once the flight log has arrived whole.
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
}

/// Fly the aircraft application on `conn` until the remote closes the link or `stop`
/// completes; every event other than a message goes to `on_event` (to print it). Answers
/// the remote's [`GET_SUMMARY`] and keeps the report it sends. The application follows the
/// driver's failsafe ([`LinkEvent::Failsafe`], [`LinkEvent::FailsafeCleared`]) rather than
/// watching the stick commands itself.
pub async fn fly_aircraft(
    conn: &mut Connection,
    app: &mut AircraftApp,
    stop: impl Future<Output = ()>,
    on_event: &mut (dyn FnMut(&LinkEvent) + Send),
) -> AircraftFlight {
    tokio::pin!(stop);
    app.follow_link_failsafe();
    let mut report = None;
    let mut connected = false;
    loop {
        let now = conn.now();
        conn.with_link(|link| app.poll(now, link));
        let wake = conn.clock().instant(app.next_wakeup());
        tokio::select! {
            event = conn.recv() => match event {
                None => break,
                Some(LinkEvent::Message { channel: Channel::Storage, data })
                    if &data[..] == GET_SUMMARY =>
                {
                    let mut summary = aircraft_summary(conn, app);
                    // The request is the end of the flight, not part of it.
                    summary.uncount_delivered(Channel::Storage, GET_SUMMARY.len());
                    let mut answer = SUMMARY.to_vec();
                    // Serialising plain numbers cannot fail.
                    answer.extend_from_slice(&serde_json::to_vec(&summary).unwrap_or_default());
                    // A refusal (the link closing) just means the remote goes without it.
                    let _ = conn.send(Channel::Storage, Bytes::from(answer)).await;
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
                    on_event(&other);
                    match other {
                        LinkEvent::Link(Event::Connected { .. }) => connected = true,
                        LinkEvent::Link(Event::Closed { .. }) => break,
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
        app.stats.failsafe_events,
    )
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
) -> Report {
    tokio::pin!(stop);
    let start = conn.now();
    let end = Instant::now() + flight.duration;
    let mut summary = None;
    loop {
        let now = conn.now();
        conn.with_link(|link| app.poll(now, link));
        if flight.until_downloaded && app.stats.log_complete {
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
        0,
    );
    if conn.storage_unlocked()
        && conn
            .send(Channel::Storage, Bytes::from_static(GET_SUMMARY))
            .await
            .is_ok()
    {
        let deadline = Instant::now() + SUMMARY_WAIT;
        while summary.is_none() {
            tokio::select! {
                event = conn.recv() => match event {
                    None => break,
                    Some(event) => remote_event(conn, app, event, &mut summary, on_event),
                },
                () = sleep_until(deadline) => break,
            }
        }
    }
    let aircraft = summary.unwrap_or_default();
    let sent = aircraft.datagrams_sent + remote.datagrams_sent;
    let received = aircraft.datagrams_received + remote.datagrams_received;
    let report = Report::assemble(&Flight {
        seed: flight.seed,
        duration_s: flown.as_secs_f64(),
        aircraft: &aircraft,
        remote: &remote,
        remote_app: &app.stats,
        storage_unlocked: conn.storage_unlocked(),
        radio: (sent, sent.saturating_sub(received)),
        real_time: true,
    });
    if conn.storage_unlocked() {
        let mut message = REPORT.to_vec();
        message.extend_from_slice(&serde_json::to_vec(&report).unwrap_or_default());
        if conn
            .send(Channel::Storage, Bytes::from(message))
            .await
            .is_ok()
        {
            // Closing drops what is not acknowledged yet; the aircraft then goes without.
            let _ = tokio::time::timeout(REPORT_WAIT, conn.flush()).await;
        }
    }
    report
}

fn remote_event(
    conn: &Connection,
    app: &mut RemoteApp,
    event: LinkEvent,
    summary: &mut Option<EndSummary>,
    on_event: &mut (dyn FnMut(&LinkEvent) + Send),
) {
    match event {
        LinkEvent::Message {
            channel: Channel::Storage,
            data,
        } if data.starts_with(SUMMARY) => {
            *summary = serde_json::from_slice(&data[SUMMARY.len()..]).ok();
        }
        LinkEvent::Message { channel, data } => app.on_message(conn.now(), channel, &data),
        LinkEvent::Link(e) => {
            app.on_event(&e);
            on_event(&LinkEvent::Link(e));
        }
        other => on_event(&other),
    }
}
