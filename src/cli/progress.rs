//! A progress bar on standard error that appears only once a run has taken about a second,
//! and only when both standard output and standard error are terminals.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Steps per run: progress is counted in thousandths.
pub(crate) const STEPS: u64 = 1000;

/// Show the bar after this long.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Progress of `runs` runs, shared by the threads that fly them.
#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    total: u64,
    done: AtomicU64,
    label: String,
    bar: OnceLock<ProgressBar>,
}

impl Progress {
    /// Progress of `runs` runs, labelled `label`; never drawn if `quiet`, or if standard
    /// output or standard error is not a terminal.
    pub(crate) fn new(runs: usize, label: impl Into<String>, quiet: bool) -> Self {
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Progress {
            enabled: terminal && !quiet,
            started: Instant::now(),
            total: runs as u64 * STEPS,
            done: AtomicU64::new(0),
            label: label.into(),
            bar: OnceLock::new(),
        }
    }

    /// A callback for one run's `scenario::run`: it turns that run's fraction done into
    /// steps of the whole.
    pub(crate) fn run_callback(&self) -> impl FnMut(f64) + '_ {
        let mut reported = 0u64;
        move |fraction: f64| {
            let now = (fraction.clamp(0.0, 1.0) * STEPS as f64) as u64;
            if now > reported {
                self.advance(now - reported);
                reported = now;
            }
        }
    }

    fn advance(&self, steps: u64) {
        let done = self.done.fetch_add(steps, Ordering::Relaxed) + steps;
        if !self.enabled {
            return;
        }
        if self.bar.get().is_none() && self.started.elapsed() < SHOW_AFTER {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            // Set up hidden, so that the first frame drawn already shows the progress.
            let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::hidden())
                .with_elapsed(self.started.elapsed());
            let style = ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {percent:>3}%  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(self.label.clone());
            bar.set_position(done.min(self.total));
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            bar
        });
        bar.set_position(done.min(self.total));
    }

    /// Remove the bar, if it was drawn, before the results are printed.
    pub(crate) fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}
