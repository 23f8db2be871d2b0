//! When a lost peer is dialled again: the schedule the node's dialer keeps
//! and the simulator's model of it (as [`gossip`](crate::gossip) is for
//! adverts). The dials themselves are I/O and stay with each driver.
//!
//! A lost worker is dialled at once, then after [`FIRST`], and each wait
//! doubles up to [`MAX`]; after [`GIVE_UP`] it is left to discovery.

use std::time::Duration;

/// First wait before dialling again.
pub const FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two dials of one target.
pub const MAX: Duration = Duration::from_secs(30);
/// A lost peer is dialled again for this long, then left to discovery.
pub const GIVE_UP: Duration = Duration::from_secs(300);
