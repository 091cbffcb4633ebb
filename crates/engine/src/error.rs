//! Typed errors of the user calls (RFC 9293 §3.10), for callers that must branch on them.
//!
//! Each variant names the §3.10 response ("error: connection does not exist",
//! "error: connection closing", "error: connection reset", ...) and converts into the
//! `io::Error` whose kind std's sockets report in the same situation, so the runtime keeps
//! `io::Result` with a `?`. Every enum is `#[non_exhaustive]`: match with a `_ =>` arm.

use crate::CloseReason;
use std::fmt;
use std::io;

/// Generates, for an error enum, `kind()`, `Display`, `std::error::Error` and
/// `From<Self> for io::Error` from one `Variant => (ErrorKind, "message")` table.
macro_rules! user_call_error {
    ($name:ident { $($variant:ident => ($kind:ident, $msg:literal),)* }) => {
        impl $name {
            /// The `io::ErrorKind` std reports for this error.
            #[must_use]
            pub fn kind(&self) -> io::ErrorKind {
                match self {
                    $($name::$variant => io::ErrorKind::$kind,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $msg,)*
                })
            }
        }

        impl std::error::Error for $name {}

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                io::Error::new(e.kind(), e)
            }
        }
    };
}

/// Why SEND (RFC 9293 §3.10.2) failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SendError {
    /// "error: connection does not exist": the handle is stale or was released.
    ConnectionDoesNotExist,
    /// "error: connection closing": our FIN is queued or sent (shutdown(Write), CLOSE) or
    /// the connection is over; std's EPIPE.
    Closing,
    /// "error: connection reset": the peer reset the connection (reported once, as SO_ERROR).
    Reset,
    /// The peer refused our SYN with a RST (RFC 9293 §3.10.7.3).
    Refused,
    /// Retransmissions, keepalive probes or the user timeout gave up (RFC 9293 §3.8.3).
    TimedOut,
    /// The local user aborted the connection (RFC 9293 §3.10.5).
    Aborted,
    /// The send buffer is full; retry after `Event::Writable` ("insufficient resources"
    /// would be the RFC's answer, a non-blocking socket's is EAGAIN).
    WouldBlock,
}

user_call_error!(SendError {
    ConnectionDoesNotExist => (NotConnected, "connection does not exist"),
    Closing => (BrokenPipe, "connection closing"),
    Reset => (ConnectionReset, "connection reset by peer"),
    Refused => (ConnectionRefused, "connection refused"),
    TimedOut => (TimedOut, "connection timed out"),
    Aborted => (ConnectionAborted, "connection aborted"),
    WouldBlock => (WouldBlock, "send buffer full"),
});

/// Why RECEIVE (RFC 9293 §3.10.3) failed. "Connection closing" is not an error here:
/// it is end of stream, `Ok(0)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// "error: connection does not exist": the handle is stale or was released.
    ConnectionDoesNotExist,
    /// "error: connection reset": the peer reset the connection (reported once).
    Reset,
    /// The peer refused our SYN with a RST (RFC 9293 §3.10.7.3).
    Refused,
    /// Retransmissions, keepalive probes or the user timeout gave up (RFC 9293 §3.8.3).
    TimedOut,
    /// No data yet; retry after `Event::Readable`.
    WouldBlock,
}

user_call_error!(RecvError {
    ConnectionDoesNotExist => (NotConnected, "connection does not exist"),
    Reset => (ConnectionReset, "connection reset by peer"),
    Refused => (ConnectionRefused, "connection refused"),
    TimedOut => (TimedOut, "connection timed out"),
    WouldBlock => (WouldBlock, "no data yet"),
});

/// Why an active OPEN (RFC 9293 §3.10.1, `Stack::connect`) failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// "error: remote socket unspecified", or a broadcast/multicast remote (MUST-46,
    /// RFC 1122 §4.2.3.10).
    InvalidAddress,
    /// The local address is not one of the stack's, or none matches the remote's family.
    AddrNotAvailable,
    /// "error: connection already exists": the four-tuple is in use (or in TIME-WAIT).
    ConnectionAlreadyExists,
    /// "error: insufficient resources": every ephemeral port is taken; std's
    /// EADDRNOTAVAIL, as connect(2) reports it.
    NoFreePort,
}

user_call_error!(ConnectError {
    InvalidAddress => (InvalidInput, "cannot connect to an unspecified, broadcast or multicast address"),
    AddrNotAvailable => (AddrNotAvailable, "no such local address"),
    ConnectionAlreadyExists => (AddrInUse, "connection already exists"),
    NoFreePort => (AddrNotAvailable, "no free ephemeral port"),
});

/// Why a passive OPEN (RFC 9293 §3.10.1, `Stack::listen`, `Stack::listen_any`) failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ListenError {
    /// The local address is not one of the stack's.
    AddrNotAvailable,
    /// Something already listens on this address (or an any-IP listener exists).
    AddrInUse,
    /// "error: insufficient resources": every ephemeral port is taken; std's EADDRINUSE,
    /// as listen(2) reports it.
    NoFreePort,
}

user_call_error!(ListenError {
    AddrNotAvailable => (AddrNotAvailable, "no such local address"),
    AddrInUse => (AddrInUse, "address already listening"),
    NoFreePort => (AddrInUse, "no free ephemeral port"),
});

impl SendError {
    /// The error a SEND reports for a connection closed with `reason` (None: no error left
    /// to report, as after SO_ERROR was read).
    pub(crate) fn closed(reason: Option<CloseReason>) -> SendError {
        match reason {
            Some(CloseReason::Reset) => SendError::Reset,
            Some(CloseReason::Refused) => SendError::Refused,
            Some(CloseReason::TimedOut) => SendError::TimedOut,
            Some(CloseReason::Aborted) => SendError::Aborted,
            _ => SendError::Closing,
        }
    }
}

impl RecvError {
    /// The error a RECEIVE reports for a connection closed with `reason`; `None` is end
    /// of stream (a normal close, our own ABORT, or an error already reported).
    pub(crate) fn closed(reason: Option<CloseReason>) -> Option<RecvError> {
        match reason {
            Some(CloseReason::Reset) => Some(RecvError::Reset),
            Some(CloseReason::Refused) => Some(RecvError::Refused),
            Some(CloseReason::TimedOut) => Some(RecvError::TimedOut),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io::ErrorKind as K;

    /// Each variant converts into the io kind std reports for the same situation.
    #[test]
    fn io_kinds() {
        let send = [
            (SendError::ConnectionDoesNotExist, K::NotConnected),
            (SendError::Closing, K::BrokenPipe),
            (SendError::Reset, K::ConnectionReset),
            (SendError::Refused, K::ConnectionRefused),
            (SendError::TimedOut, K::TimedOut),
            (SendError::Aborted, K::ConnectionAborted),
            (SendError::WouldBlock, K::WouldBlock),
        ];
        for (e, k) in send {
            assert_eq!(io::Error::from(e).kind(), k, "{e:?}");
        }
        let recv = [
            (RecvError::ConnectionDoesNotExist, K::NotConnected),
            (RecvError::Reset, K::ConnectionReset),
            (RecvError::Refused, K::ConnectionRefused),
            (RecvError::TimedOut, K::TimedOut),
            (RecvError::WouldBlock, K::WouldBlock),
        ];
        for (e, k) in recv {
            assert_eq!(io::Error::from(e).kind(), k, "{e:?}");
        }
        let connect = [
            (ConnectError::InvalidAddress, K::InvalidInput),
            (ConnectError::AddrNotAvailable, K::AddrNotAvailable),
            (ConnectError::ConnectionAlreadyExists, K::AddrInUse),
            (ConnectError::NoFreePort, K::AddrNotAvailable),
        ];
        for (e, k) in connect {
            assert_eq!(io::Error::from(e).kind(), k, "{e:?}");
        }
        let listen = [
            (ListenError::AddrNotAvailable, K::AddrNotAvailable),
            (ListenError::AddrInUse, K::AddrInUse),
            (ListenError::NoFreePort, K::AddrInUse),
        ];
        for (e, k) in listen {
            assert_eq!(io::Error::from(e).kind(), k, "{e:?}");
        }
    }

    /// The io::Error keeps the typed error as its source, so callers can downcast.
    #[test]
    fn io_error_carries_the_typed_error() {
        let e = io::Error::from(SendError::Closing);
        assert_eq!(e.to_string(), "connection closing");
        assert_eq!(e.get_ref().and_then(|x| x.downcast_ref::<SendError>()), Some(&SendError::Closing));
    }

    #[test]
    fn close_reasons_map_to_errors() {
        assert_eq!(SendError::closed(Some(CloseReason::Reset)), SendError::Reset);
        assert_eq!(SendError::closed(None), SendError::Closing);
        assert_eq!(SendError::closed(Some(CloseReason::Normal)), SendError::Closing);
        assert_eq!(RecvError::closed(Some(CloseReason::TimedOut)), Some(RecvError::TimedOut));
        assert_eq!(RecvError::closed(Some(CloseReason::Aborted)), None);
        assert_eq!(RecvError::closed(None), None);
    }
}
