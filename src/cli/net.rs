//! `rotorlink aircraft` and `rotorlink remote`: the two ends as processes on real UDP sockets.

use std::process::ExitCode;

use clap::Args;

/// `rotorlink aircraft`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AircraftArgs {}

/// `rotorlink remote`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteArgs {}

/// Run the aircraft.
pub(crate) fn aircraft(_a: &AircraftArgs) -> ExitCode {
    ExitCode::FAILURE
}

/// Run the remote.
pub(crate) fn remote(_a: &RemoteArgs) -> ExitCode {
    ExitCode::FAILURE
}
