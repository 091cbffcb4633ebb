//! The Stack: Quad -> TCB demux.

/// Placeholder until the engine lands.
pub struct Stack;
