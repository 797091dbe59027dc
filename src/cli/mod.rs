//! The pieces of the command line: flags ([`args`]) and their value parsers ([`units`]),
//! the progress bar ([`progress`]), the state directories of `aircraft` and `remote`
//! ([`state`]), and the sweep with its CSV, plot and table ([`sweep`],
//! [`svg`]).

pub(crate) mod args;
pub(crate) mod decrypt;
pub(crate) mod fleet;
pub(crate) mod net;
pub(crate) mod progress;
pub(crate) mod proxy;
pub(crate) mod state;
pub(crate) mod svg;
pub(crate) mod sweep;
pub(crate) mod units;
