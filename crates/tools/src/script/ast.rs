//! The parsed form of a packetdrill script.
//!
//! A script is a list of header flags (`--tolerance_usecs=...`) and timed events. Each event
//! is an inbound (`<`) or expected outbound (`>`) TCP segment, a system call, a backquoted
//! shell command, or a `%{ }%` Python block. Constructs the runner cannot execute are kept
//! as [`Action::Unsupported`] so the verdict can name them instead of skipping silently.

/// A `--name=value` line from the script header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderFlag {
    pub line: usize,
    pub name: String,
    pub value: Option<String>,
}

/// When an event happens, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// `1.5`: seconds since the script start.
    Absolute(i64),
    /// `+0.1`: after the previous event.
    Relative(i64),
    /// `*`: any time.
    Any,
    /// `1.0~2.0`: between two absolute times.
    AbsoluteRange(i64, i64),
    /// `+0.1~+0.2`: between two times relative to the previous event.
    RelativeRange(i64, i64),
}

/// One timed line of a script.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub line: usize,
    pub timing: Timing,
    /// For blocking system calls written `start...end`: the end time, in the same
    /// (absolute or relative) frame as the start.
    pub end_time: Option<i64>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Packet(Packet),
    Syscall(Syscall),
    /// A backquoted shell command, without the backquotes.
    Command(String),
    /// The text inside `%{ ... }%`.
    Code(String),
    /// Something the runner cannot execute; the string names the feature.
    Unsupported(String),
    /// An inbound ICMP error quoting one of our segments (issue 13; script/icmp.rs).
    Icmp(super::icmp::IcmpLine),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `<`: the script (remote peer) sends this segment to the stack.
    Inbound,
    /// `>`: the stack is expected to send this segment.
    Outbound,
}

/// IP-level attributes written in parentheses before the TCP flags: `(tos 0x20)`, `(ttl 4)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpAttrs {
    pub tos: Option<u8>,
    pub ttl: Option<u8>,
}

/// A TCP segment as written in a script.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub direction: Direction,
    pub ip: IpAttrs,
    /// TCP control bits (`S F R P U E W .`), in the `wire::TcpFlags` bit layout.
    pub flags: u8,
    /// Starting sequence number (script space); `None` for `...` (not checked).
    pub seq: Option<u32>,
    /// Payload length in bytes.
    pub len: u32,
    /// `ack N`; `None` when absent.
    pub ack: Option<u32>,
    /// `win N`; `None` when absent (not checked on outbound segments).
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// `None` for `<...>` (any options); otherwise the options in order (possibly empty).
    pub options: Option<Vec<TcpOpt>>,
    /// `start:end(len)!`: the sequence number is absolute, not relative to our ISN (the
    /// RST answering a SYN, <SEQ=0><ACK=SEG.SEQ+1>, in the tcp-testsuite's scripts).
    pub absolute_seq: bool,
}

/// One TCP option as written in a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOpt {
    Eol,
    Nop,
    Mss(u16),
    WScale(u8),
    SackOk,
    Sack(Vec<(u32, u32)>),
    Timestamp { val: u32, ecr: u32 },
}

/// An expression in a system-call line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `...`: whatever the runner supplies.
    Ellipsis,
    Int(i64),
    /// A symbolic constant such as `SOCK_STREAM` or `MSG_PEEK`.
    Ident(String),
    Str(String),
    /// `[1]`, `[65536]`: a pointer to a value, or an array.
    List(Vec<Expr>),
    /// `{l_onoff=1, l_linger=0}`.
    Struct(Vec<(String, Expr)>),
    /// `O_RDWR | O_NONBLOCK`.
    Or(Vec<Expr>),
}

/// A system call with its expected result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    pub name: String,
    pub args: Vec<Expr>,
    /// Expected return value.
    pub ret: Expr,
    /// Expected errno name (`EINPROGRESS`) when `ret` is -1.
    pub errno: Option<String>,
}

/// A whole parsed script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    pub flags: Vec<HeaderFlag>,
    /// Backquoted commands before the first event (packetdrill's init command), with lines.
    pub init_commands: Vec<(usize, String)>,
    /// Backquoted commands after the last event (packetdrill's cleanup command).
    pub cleanup_commands: Vec<(usize, String)>,
    pub events: Vec<Event>,
}

impl Script {
    /// The value of a header flag, last one wins.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|f| f.name == name).and_then(|f| f.value.as_deref())
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, items: &[Expr], sep: &str| -> std::fmt::Result {
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{e}")?;
            }
            Ok(())
        };
        match self {
            Expr::Ellipsis => f.write_str("..."),
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Ident(s) => f.write_str(s),
            Expr::Str(s) => write!(f, "{s:?}"),
            Expr::List(items) => {
                f.write_str("[")?;
                list(f, items, ", ")?;
                f.write_str("]")
            }
            Expr::Struct(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if k.is_empty() {
                        write!(f, "{v}")?;
                    } else {
                        write!(f, "{k}={v}")?;
                    }
                }
                f.write_str("}")
            }
            Expr::Or(items) => list(f, items, " | "),
        }
    }
}

impl Syscall {
    /// `name(arg, arg, ...)` as written in scripts.
    pub fn call_string(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        format!("{}({})", self.name, args.join(", "))
    }
}
