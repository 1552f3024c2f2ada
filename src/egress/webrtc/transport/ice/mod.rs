//! ICE: answering a viewer's checks (lite), checking as well (full), and gathering candidates
//! through Lookout's own STUN/TURN servers.

pub mod full;
pub(crate) mod gather_servers;
pub mod gatherer;
pub mod lite;
pub mod path;
