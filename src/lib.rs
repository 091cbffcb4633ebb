//! utcp: a user-space TCP/IP stack (RFC 9293) that terminates TCP on a Linux TUN device.
//!
//! The path of a segment: [`device`] (TUN or in-memory link) → [`wire`] (parse, checksum)
//! → [`engine`] (`Stack` demux → TCB state machine) → [`wire`] (emit) → [`device`].
//! [`runtime`] drives the engine on a thread and offers std::net-shaped sockets.
#![doc = include_str!("../README.md")]

pub mod bench;
pub mod device;
pub mod engine;
pub mod runtime;
pub mod script;
pub mod seq;
pub mod sim;
pub mod time;
pub mod trace;
pub mod wire;
