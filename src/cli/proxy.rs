//! `rotorlink proxy`: the simulated radio between two real UDP endpoints.

use std::process::ExitCode;

use clap::Args;

/// `rotorlink proxy`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProxyArgs {}

/// Run the proxy.
pub(crate) fn run(_a: &ProxyArgs) -> ExitCode {
    ExitCode::FAILURE
}
