//! utcp-tools: what the `utcp` command needs and a library user does not.
//!
//! - [`sim`]: two engines over an impaired in-memory link (`utcp sim`);
//! - [`script`]: the packetdrill-format script runner and its profiles (`utcp script`);
//! - [`bench`](mod@bench): kernel, smoltcp and utcp systems side by side (`utcp bench`);
//! - [`trace`]: one line per segment, tshark style;
//! - [`forward`]: a tun2socks-style gateway (`utcp forward`);
//! - [`apps`]: echo, discard and a small HTTP file server over utcp sockets;
//! - [`fuzz`]: hostile segments against live connections, random and structure-aware;
//! - [`netns`]: private network namespaces for the demo, the bench and the tests.

pub mod apps;
pub mod bench;
pub mod forward;
pub mod fuzz;
pub mod netns;
pub mod plot;
pub mod scenario;
pub mod script;
pub mod sim;
pub mod trace;
