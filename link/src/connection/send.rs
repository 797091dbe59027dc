//! The send side of [`Connection`]: what frame goes next and when. The send priority of
//! PROTOCOL.md section 13 (`next_frame_body`, and `first_in_line` for a message sealed in
//! place), the pacing of video and storage (with the stale-video drop, storage's repair
//! and marking the pacer idle), the probes of 34.6, the padding of 34.5 and the return watch
//! of 34.9.

use super::path::ScoutFrame;
use super::{Connection, Role, State};
use crate::channel::Channel;
use crate::crypto::AeadProvider;
use crate::event::Event;
use crate::time::Timestamp;
use crate::wire::body::{CloseBody, FragmentHeader, KEEPALIVE_PROBE};
use crate::wire::FrameType;

/// The longest new storage data waits behind video: then one segment goes first (see
/// `next_frame_body`). One full segment every 100 ms is 110 kbit/s, about a per cent of a
/// 10 Mbit/s radio.
const STORAGE_MAX_WAIT: core::time::Duration = core::time::Duration::from_millis(100);
/// How long after its last video frame an end still counts as sending video.
const VIDEO_ACTIVITY: core::time::Duration = core::time::Duration::from_secs(1);
/// The loss (as the path model reports it) from which storage repairs its tails
/// (PROTOCOL.md 12.4): below it a lost tail segment is rare enough that a round trip more
/// now and then costs less airtime than parity over every tail.
const REPAIR_MIN_LOSS: f64 = 0.005;
/// The most probes sent at once (34.6): a power of two.
const PROBE_BURST: u32 = 8;

/// How often a keepalive asks for feedback while acks and feedback are thinned
/// (`Connection::return_watch_at`).
const RETURN_WATCH: core::time::Duration = core::time::Duration::from_millis(20);

impl<P: AeadProvider> Connection<P> {
    /// Pick the highest-priority frame due and write its plaintext into `body`.
    pub(super) fn next_frame_body(
        &mut self,
        now: Timestamp,
        body: &mut [u8],
    ) -> Option<(FrameType, Option<Channel>, usize)> {
        self.last_polled = self.last_polled.max(now);
        if let State::Closing { code, .. } = self.state {
            let n = CloseBody { code: code.0 }.emit(body).ok()?;
            return Some((FrameType::Close, None, n));
        }
        if let Some(msg) = self.control_out.take() {
            let n = msg.len().min(body.len());
            body[..n].copy_from_slice(&msg[..n]);
            self.pool.give(msg);
            return Some((FrameType::Data, Some(Channel::Control), n));
        }
        if self.receipts.is_due(now) {
            let n = self.receipts.take(now).emit(body).ok()?;
            return Some((FrameType::Feedback, None, n));
        }
        if self.session_in.ack_due(now) {
            let n = self.session_in.take_ack().emit(body).ok()?;
            self.stats.acks_sent += 1;
            return Some((FrameType::Ack, Some(Channel::Session), n));
        }
        if self.storage_in.ack_due(now) {
            let n = self.storage_in.take_ack().emit(body).ok()?;
            self.stats.acks_sent += 1;
            return Some((FrameType::Ack, Some(Channel::Storage), n));
        }
        let max_plain = body.len();
        if let Some(n) = self.session_out.next_retransmit(now, body) {
            return Some((FrameType::Data, Some(Channel::Session), n));
        }
        if let Some(n) = self
            .session_out
            .next_new(now, max_plain, body, &mut self.pool)
        {
            return Some((FrameType::Data, Some(Channel::Session), n));
        }
        if let Some(msg) = self.telemetry_out.pop_front() {
            let n = msg.len().min(body.len());
            body[..n].copy_from_slice(&msg[..n]);
            self.pool.give(msg);
            return Some((FrameType::Data, Some(Channel::Telemetry), n));
        }
        // Video and storage go at the pacer's rate, video first: the radio's queue stays
        // short, so nothing above waits behind them anywhere on the path.
        self.drop_stale_video();
        let paced_pending = self.paced_pending(now);
        // A download's start (a train's worth of storage waiting), or an aircraft with
        // nothing paced to send, whose train is padding: the radio's rate is then known
        // before a download or video asks for it. On a path under 40 ms round trip a scout
        // first, then the train if the radio is too fast for the scout to measure.
        // (Not beside video: the train's end then marks the pacer idle, and Startup's
        // samples of the video as the application's.)
        let idle_aircraft =
            self.role == Role::Aircraft && !paced_pending && now >= self.video_active_until;
        let download = paced_pending && self.storage_out.queued_at_least(self.path.train_bytes());
        if (idle_aircraft && self.path.padding_train_wanted())
            || (download && self.path.train_wanted())
        {
            self.path.send_train();
        } else if (idle_aircraft && self.path.scout_wanted(true))
            || (download && self.path.scout_wanted(false))
        {
            self.path.send_scout(now);
        }
        // The scout's frames go back to back, out of the pacer's order: a download's data
        // where it has some, for it waits on the scout.
        match self.path.scout_frame(now) {
            Some(ScoutFrame::Probe) => {
                let n = KEEPALIVE_PROBE.len();
                body.get_mut(..n)?.copy_from_slice(&KEEPALIVE_PROBE);
                return Some((FrameType::Keepalive, None, n));
            }
            Some(ScoutFrame::Full) => {
                if let Some(n) = self.next_new_storage(now, max_plain, body) {
                    return Some((FrameType::Data, Some(Channel::Storage), n));
                }
                return Some(self.padding(body));
            }
            None => {}
        }
        if paced_pending && self.paced_may_go(now) {
            if let Some(n) = self.storage_out.next_retransmit(now, body) {
                self.stats.storage_retransmits += 1;
                return Some((FrameType::Data, Some(Channel::Storage), n));
            }
            // Video first, but never for long: where the estimate runs a few per cent over
            // the radio, video and its parity fill all of it and a download stopped for
            // seconds (and the end-of-flight summary behind it).
            if now.saturating_since(self.storage_sent_at) >= STORAGE_MAX_WAIT {
                if let Some(n) = self.next_new_storage(now, max_plain, body) {
                    return Some((FrameType::Data, Some(Channel::Storage), n));
                }
            }
            if let Some((n, parity)) = self.video_out.next_fragment(body, &mut self.pool) {
                if parity {
                    self.stats.video_parity_sent += 1;
                    self.stats.video_parity_bytes += (n - FragmentHeader::LEN) as u64;
                }
                self.video_active_until = now + VIDEO_ACTIVITY;
                self.video_bytes_measured += n as u64;
                return Some((FrameType::Data, Some(Channel::Video), n));
            }
            if let Some(n) = self.next_new_storage(now, max_plain, body) {
                return Some((FrameType::Data, Some(Channel::Storage), n));
            }
            // `next_repair` finds the segments itself: `repair_wanted` would scan twice.
            let loss = self.path.reported_loss();
            if loss >= REPAIR_MIN_LOSS {
                let burst = self.path.loss_burst();
                if let Some(n) = self.storage_out.next_repair(now, loss, burst, body) {
                    self.stats.storage_repairs_sent += 1;
                    return Some((FrameType::Repair, None, n));
                }
            }
        }
        // Here with the pacer willing, nothing paced could go (nothing queued, or storage
        // held by the peer's window).
        if !paced_pending || self.path.may_send(now) {
            if (self.padding_wanted(now) || self.path.train_sending(now)) && self.path.may_send(now)
            {
                // Video follows the budget, so alone it never shows the path can carry
                // more: while the model probes, padding fills up to the pacing rate. And
                // the aircraft's train is padding where nothing paced fills it.
                return Some(self.padding(body));
            }
            // Rate samples from now on may undercount the path.
            if let Some(keys) = &self.keys {
                self.path.on_idle(keys.send.next_counter());
            }
        } else if self.path.held_for_return_path() {
            // So may they while the cap waits for acks a queued return path holds up: the
            // estimate fell to two thirds of a 20 Mbit/s radio under 60 ms of such a queue.
            if let Some(keys) = &self.keys {
                self.path.on_idle(keys.send.next_counter());
            }
        }
        let reconfirm = core::mem::take(&mut self.reconfirm);
        if self.probe_due(now) {
            self.on_probe_sent();
            let n = KEEPALIVE_PROBE.len();
            body.get_mut(..n)?.copy_from_slice(&KEEPALIVE_PROBE);
            return Some((FrameType::Keepalive, None, n));
        }
        if reconfirm
            || now >= self.last_sent + self.config.keepalive_interval
            || self.return_watch_at().is_some_and(|at| now >= at)
        {
            return Some((FrameType::Keepalive, None, 0));
        }
        None
    }

    /// A frame of padding (34.5): a keepalive filling all of `body`.
    fn padding(&mut self, body: &mut [u8]) -> (FrameType, Option<Channel>, usize) {
        body.fill(0);
        self.stats.padding_sent += 1;
        (FrameType::Keepalive, None, body.len())
    }

    /// A new storage segment into `body`, if the channel has one it may send.
    fn next_new_storage(
        &mut self,
        now: Timestamp,
        max_plain: usize,
        body: &mut [u8],
    ) -> Option<usize> {
        let n = self
            .storage_out
            .next_new(now, max_plain, body, &mut self.pool)?;
        self.storage_sent_at = now;
        Some(n)
    }

    /// Would a `channel` message go out next, before everything queued (section 13)? Only
    /// control and telemetry, which are not paced, ever do.
    pub(super) fn first_in_line(&self, now: Timestamp, channel: Channel) -> bool {
        let ahead_of_telemetry = || {
            self.control_out.is_some()
                || !self.telemetry_out.is_empty()
                || self.receipts.is_due(now)
                || self.session_in.ack_due(now)
                || self.storage_in.ack_due(now)
                || self.session_out.queued() > 0
                || self.session_out.retransmit_due(now)
        };
        self.state == State::Open
            && match channel {
                Channel::Control => true,
                Channel::Telemetry => !ahead_of_telemetry(),
                _ => false,
            }
    }

    /// Drop queued video that would wait longer than `video_max_queue_delay` at the pacing
    /// rate: a late frame is worth less than the next one.
    fn drop_stale_video(&mut self) {
        let rate = self.path.estimate().pacing_bps;
        let max = (rate / 8).saturating_mul(self.config.video_max_queue_delay.as_micros() as u64)
            / 1_000_000;
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        while let Some(message_id) = self.video_out.drop_stale(max, &mut self.pool) {
            self.stats.video_dropped_at_sender += 1;
            self.stats.channel_mut(Channel::Video).messages_lost += 1;
            self.push_event(Event::VideoDropped { message_id });
        }
    }

    /// May a paced frame go: the pacer lets it, or unpaced frames kept it waiting too long
    /// (`PathModel::release_at`)?
    fn paced_may_go(&mut self, now: Timestamp) -> bool {
        self.path.may_send(now)
            || self
                .path
                .release_at(self.last_eliciting_sent)
                .is_some_and(|at| now >= at)
    }

    /// Is anything the pacer governs (video, storage) waiting?
    pub(super) fn paced_pending(&self, now: Timestamp) -> bool {
        self.video_out.queued() > 0
            || self.storage_out.queued() > 0
            || self.storage_out.retransmit_due(now)
            || self.repair_wanted()
    }

    /// Would a storage repair frame go, if the pacer let it? Only on a path that loses
    /// frames: on a clean one parity would only take airtime from the radio's other users.
    fn repair_wanted(&self) -> bool {
        self.path.reported_loss() >= REPAIR_MIN_LOSS && self.storage_out.repair_wanted()
    }

    /// Should padding fill the pacer's room? Only on an end whose video fills most of its
    /// budget (an encoder that could use more: one below its budget, or an idle link, is
    /// not made busy), and only while the model probes for more.
    pub(super) fn padding_wanted(&self, now: Timestamp) -> bool {
        now < self.video_active_until
            && self.path.probing()
            && self
                .video_budget
                .is_some_and(|budget| self.video_rate_bps * 10 >= budget * 8)
    }

    /// Paced frames wait for feedback that does not come (the frames in flight, or their
    /// feedback, were lost): a keepalive asks the receiver to report what it has.
    pub(super) fn probe_at(&self, now: Timestamp) -> Option<Timestamp> {
        (self.paced_pending(now) && self.path.in_flight_full()).then(|| {
            if self.probe_burst_left > 0 {
                self.last_eliciting_sent
            } else {
                self.last_eliciting_sent + self.path.probe_interval()
            }
        })
    }

    /// A probe goes now: the first of a burst that doubles with every probe time left
    /// unanswered, up to `PROBE_BURST`. A radio that loses datagrams in runs loses them by
    /// the datagram, not by the time: a run of thirty lost datagrams lasts as long as the
    /// sender takes to send thirty, and a silent sender probing one at a time took 0.6 s to
    /// get through one. The probes are empty keepalives on a radio that is idle anyway.
    fn on_probe_sent(&mut self) {
        if self.probe_burst_left > 0 {
            self.probe_burst_left -= 1;
            return;
        }
        let burst = 1u32 << self.probes_unanswered.min(PROBE_BURST.trailing_zeros());
        self.probes_unanswered += 1;
        self.probe_burst_left = burst.min(PROBE_BURST) - 1;
    }

    fn probe_due(&self, now: Timestamp) -> bool {
        self.probe_at(now).is_some_and(|at| now >= at)
    }

    /// While this end thins its acks and feedback (`PathModel::return_scale`: its frames
    /// queue on the path), a keepalive asks for prompt feedback every `RETURN_WATCH`: the
    /// stick commands ask only for relaxed feedback (up to 100 ms apart), and between two such
    /// reports a download's acks built 30 ms of queue on a 300 kbit/s uplink.
    pub(super) fn return_watch_at(&self) -> Option<Timestamp> {
        (self.returns_only(self.last_polled) && self.path.return_thinned())
            .then(|| self.last_eliciting_sent + RETURN_WATCH)
    }
}
