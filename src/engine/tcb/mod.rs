//! tcb
