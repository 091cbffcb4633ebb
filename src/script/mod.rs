//! Packetdrill-style script runner: plays the remote peer against a fresh [`crate::engine::Stack`]
//! on a virtual clock, driving the stack's API as the local application.

pub mod ast;
pub mod parse;
