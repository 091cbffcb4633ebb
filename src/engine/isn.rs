//! RFC 6528 initial sequence numbers.
