//! The async adapter: a driver task that runs a [`crate::Link`] over a [`Transport`].

mod transport;

pub use transport::{Transport, UdpTransport};
