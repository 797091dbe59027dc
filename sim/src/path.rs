//! The names the simulator's radio had before [`crate::channel`]: one direction of the radio
//! is a [`RadioChannel`](crate::channel::RadioChannel), configured by a
//! [`ChannelConfig`](crate::channel::ChannelConfig).

/// One direction of the radio: [`RadioChannel`](crate::channel::RadioChannel).
pub type Path = crate::channel::RadioChannel;
/// The behaviour of one direction: [`ChannelConfig`](crate::channel::ChannelConfig).
pub type PathConfig = crate::channel::ChannelConfig;
/// What one direction did: [`ChannelStats`](crate::channel::ChannelStats).
pub type PathStats = crate::channel::ChannelStats;
