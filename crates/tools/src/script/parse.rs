//! Parser for the packetdrill script language (the subset used by TCP test suites).
//!
//! The grammar is line oriented: header flags (`--name=value`), then events of the form
//! `TIME ACTION`. Comments are `//` to end of line and `/* ... */`. Lines between
//! `#ifdef NAME` / `#ifndef NAME` / `#else` / `#endif` are kept or blanked according to
//! the set of defined names (the profile defines e.g. `FreeBSD`).
//!
//! Malformed input gives a [`ParseError`] with the line number and a reason; it never
//! panics. Well-formed constructs the runner cannot execute become
//! [`Action::Unsupported`] naming the feature.

use super::ast::*;
use std::fmt;

/// A syntax error: 1-based line and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

type PResult<T> = Result<T, ParseError>;

/// Parse a script. `defines` are the names considered defined for `#ifdef`.
pub fn parse_script(text: &str, defines: &[&str]) -> PResult<Script> {
    let text = preprocess(text, defines)?;
    let mut p = Parser { s: text.as_bytes(), pos: 0, line: 1 };
    p.script()
}

/// Resolve `#ifdef`/`#ifndef`/`#else`/`#endif`, blanking excluded lines so that line
/// numbers stay those of the file.
fn preprocess(text: &str, defines: &[&str]) -> PResult<String> {
    let mut out = String::with_capacity(text.len());
    // Stack of (this branch active, parent active, seen #else).
    let mut stack: Vec<(bool, bool, bool)> = Vec::new();
    let mut active = true;
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let t = line.trim();
        let directive = t.strip_prefix('#').map(str::trim);
        match directive {
            Some(d) => {
                let mut words = d.split_whitespace();
                let kw = words.next().unwrap_or("");
                let arg = words.next();
                match kw {
                    "ifdef" | "ifndef" => {
                        let name = arg.ok_or_else(|| ParseError {
                            line: lineno,
                            reason: format!("#{kw} needs a name"),
                        })?;
                        let defined = defines.contains(&name);
                        let cond = if kw == "ifdef" { defined } else { !defined };
                        stack.push((cond, active, false));
                        active = active && cond;
                    }
                    "else" => {
                        let Some(top) = stack.last_mut() else {
                            return Err(ParseError { line: lineno, reason: "#else without #ifdef".into() });
                        };
                        if top.2 {
                            return Err(ParseError { line: lineno, reason: "second #else".into() });
                        }
                        top.2 = true;
                        top.0 = !top.0;
                        active = top.1 && top.0;
                    }
                    "endif" => {
                        let Some(top) = stack.pop() else {
                            return Err(ParseError { line: lineno, reason: "#endif without #ifdef".into() });
                        };
                        active = top.1;
                    }
                    other => {
                        return Err(ParseError {
                            line: lineno,
                            reason: format!("unknown preprocessor directive #{other}"),
                        });
                    }
                }
            }
            None if active => out.push_str(line),
            None => {}
        }
        out.push('\n');
    }
    if !stack.is_empty() {
        return Err(ParseError { line: text.split('\n').count(), reason: "#ifdef without #endif".into() });
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Parser<'a> {
    fn err<T>(&self, reason: impl Into<String>) -> PResult<T> {
        Err(ParseError { line: self.line, reason: reason.into() })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.s.get(self.pos + off).copied()
    }

    fn starts_with(&self, pat: &str) -> bool {
        self.s[self.pos..].starts_with(pat.as_bytes())
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    /// Skip blanks and comments; with `newlines`, also line breaks.
    fn skip_ws(&mut self, newlines: bool) -> PResult<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => {
                    self.bump();
                }
                Some(b'\n') if newlines => {
                    self.bump();
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.line;
                    self.advance(2);
                    loop {
                        if self.starts_with("*/") {
                            self.advance(2);
                            break;
                        }
                        if self.bump().is_none() {
                            return Err(ParseError { line: start, reason: "unterminated /* comment".into() });
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> PResult<()> {
        self.skip_ws(false)?;
        if self.eat(c) {
            Ok(())
        } else {
            self.err(format!("expected '{}' {what}, found {}", c as char, self.found()))
        }
    }

    /// Description of the upcoming text for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of file".into(),
            Some(b'\n') => "end of line".into(),
            Some(_) => {
                let rest = &self.s[self.pos..];
                let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len()).min(24);
                format!("{:?}", String::from_utf8_lossy(&rest[..end]))
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(is_ident_char) {
            self.bump();
        }
        Some(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// An unsigned integer, decimal or `0x` hex.
    fn uint(&mut self) -> PResult<u64> {
        self.skip_ws(false)?;
        let hex = self.starts_with("0x") || self.starts_with("0X");
        if hex {
            self.advance(2);
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }) {
            self.bump();
        }
        if start == self.pos {
            return self.err(format!("expected a number, found {}", self.found()));
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let radix = if hex { 16 } else { 10 };
        u64::from_str_radix(digits, radix).or_else(|_| self.err(format!("number {digits} is too large")))
    }

    fn u32_val(&mut self, what: &str) -> PResult<u32> {
        let v = self.uint()?;
        u32::try_from(v).or_else(|_| self.err(format!("{what} {v} does not fit in 32 bits")))
    }

    fn u16_val(&mut self, what: &str) -> PResult<u16> {
        let v = self.uint()?;
        u16::try_from(v).or_else(|_| self.err(format!("{what} {v} does not fit in 16 bits")))
    }

    fn u8_val(&mut self, what: &str) -> PResult<u8> {
        let v = self.uint()?;
        u8::try_from(v).or_else(|_| self.err(format!("{what} {v} does not fit in 8 bits")))
    }

    /// Seconds with an optional fraction (`1`, `0.25`, `.5`), returned in microseconds.
    fn seconds(&mut self) -> PResult<i64> {
        let start = self.pos;
        let mut int: i64 = 0;
        let mut any = false;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            int = int
                .checked_mul(10)
                .and_then(|v| v.checked_add((c - b'0') as i64))
                .ok_or(ParseError { line: self.line, reason: "time too large".into() })?;
            any = true;
            self.bump();
        }
        let mut frac_us: i64 = 0;
        // A '.' followed by a digit is a fraction; "..." is the blocking-call ellipsis.
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            let mut scale = 100_000;
            while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
                frac_us += (c - b'0') as i64 * scale;
                scale /= 10;
                any = true;
                self.bump();
            }
        }
        if !any {
            self.pos = start;
            return self.err(format!("expected a time, found {}", self.found()));
        }
        int.checked_mul(1_000_000)
            .map(|v| v + frac_us)
            .ok_or(ParseError { line: self.line, reason: "time too large".into() })
    }

    fn script(&mut self) -> PResult<Script> {
        let mut script = Script::default();
        loop {
            self.skip_ws(true)?;
            if self.peek().is_none() {
                break;
            }
            if self.starts_with("--") {
                script.flags.push(self.header_flag()?);
            } else if self.peek() == Some(b'`') {
                // packetdrill's init (before the first event) and cleanup (after the last)
                // commands: backquoted commands without a time.
                let line = self.line;
                let Action::Command(cmd) = self.command()? else {
                    return self.err("expected a command");
                };
                if script.events.is_empty() {
                    script.init_commands.push((line, cmd));
                } else {
                    script.cleanup_commands.push((line, cmd));
                }
            } else {
                if !script.cleanup_commands.is_empty() {
                    return self.err("event after the cleanup command");
                }
                script.events.push(self.event()?);
            }
            self.end_of_line()?;
        }
        Ok(script)
    }

    fn end_of_line(&mut self) -> PResult<()> {
        self.skip_ws(false)?;
        match self.peek() {
            None | Some(b'\n') => Ok(()),
            _ => self.err(format!("unexpected {} at end of line", self.found())),
        }
    }

    fn header_flag(&mut self) -> PResult<HeaderFlag> {
        let line = self.line;
        self.advance(2);
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_ascii_whitespace() && c != b'=') {
            self.bump();
        }
        let name = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        if name.is_empty() {
            return self.err("empty header flag name");
        }
        let value = if self.eat(b'=') {
            let start = self.pos;
            while self.peek().is_some_and(|c| !c.is_ascii_whitespace()) {
                self.bump();
            }
            Some(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
        } else {
            None
        };
        Ok(HeaderFlag { line, name, value })
    }

    fn timing(&mut self) -> PResult<Timing> {
        if self.eat(b'*') {
            return Ok(Timing::Any);
        }
        let relative = self.eat(b'+');
        self.skip_ws(false)?;
        let t = self.seconds()?;
        if self.peek() == Some(b'~') {
            self.bump();
            let rel_end = self.eat(b'+');
            self.skip_ws(false)?;
            let end = self.seconds()?;
            if rel_end != relative {
                return self.err("time range mixes absolute and relative times");
            }
            if end < t {
                return self.err("time range ends before it starts");
            }
            return Ok(if relative { Timing::RelativeRange(t, end) } else { Timing::AbsoluteRange(t, end) });
        }
        Ok(if relative { Timing::Relative(t) } else { Timing::Absolute(t) })
    }

    fn event(&mut self) -> PResult<Event> {
        let line = self.line;
        if !self.peek().is_some_and(|c| c == b'*' || c == b'+' || c == b'.' || c.is_ascii_digit()) {
            return self.err(format!("expected an event time, found {}", self.found()));
        }
        let timing = self.timing()?;
        let mut end_time = None;
        if self.starts_with("...") {
            self.advance(3);
            self.eat(b'+');
            end_time = Some(self.seconds()?);
        }
        self.skip_ws(false)?;
        let action = match self.peek() {
            Some(b'<') => self.packet(Direction::Inbound)?,
            Some(b'>') => self.packet(Direction::Outbound)?,
            Some(b'`') => self.command()?,
            Some(b'%') if self.peek_at(1) == Some(b'{') => self.code()?,
            Some(c) if is_ident_start(c) => self.syscall()?,
            _ => return self.err(format!("expected an event, found {}", self.found())),
        };
        if end_time.is_some() && !matches!(action, Action::Syscall(_) | Action::Unsupported(_)) {
            return Err(ParseError { line, reason: "only system calls can have an end time (`...`)".into() });
        }
        Ok(Event { line, timing, end_time, action })
    }

    /// Consume the rest of the line (for unsupported constructs).
    fn rest_of_line(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != b'\n') {
            self.bump();
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).trim().to_string()
    }

    fn command(&mut self) -> PResult<Action> {
        self.bump();
        let start = self.pos;
        while self.peek().is_some_and(|c| c != b'`') {
            self.bump();
        }
        if !self.eat(b'`') {
            return self.err("unterminated backquoted command");
        }
        let cmd = String::from_utf8_lossy(&self.s[start..self.pos - 1]).trim().to_string();
        Ok(Action::Command(cmd))
    }

    fn code(&mut self) -> PResult<Action> {
        let line = self.line;
        self.advance(2);
        let start = self.pos;
        loop {
            if self.starts_with("}%") {
                let code = String::from_utf8_lossy(&self.s[start..self.pos]).trim().to_string();
                self.advance(2);
                return Ok(Action::Code(code));
            }
            if self.bump().is_none() {
                return Err(ParseError { line, reason: "unterminated %{ code block".into() });
            }
        }
    }

    fn packet(&mut self, direction: Direction) -> PResult<Action> {
        self.bump();
        self.skip_ws(false)?;
        let mut ip = IpAttrs::default();
        if self.eat(b'(') {
            loop {
                self.skip_ws(false)?;
                let Some(name) = self.ident() else {
                    return self.err(format!("expected an IP attribute, found {}", self.found()));
                };
                match name.as_str() {
                    "tos" => ip.tos = Some(self.u8_val("tos")?),
                    "ttl" => ip.ttl = Some(self.u8_val("ttl")?),
                    // IPv6 (RFC 8200 §3): traffic class and hop limit, the same fields.
                    "class" => ip.tos = Some(self.u8_val("class")?),
                    "hlim" => ip.ttl = Some(self.u8_val("hlim")?),
                    "flowlabel" => {
                        let rest = self.rest_of_line();
                        return Ok(Action::Unsupported(format!("IPv6 packet attribute `{name}` ({rest})")));
                    }
                    other => {
                        self.rest_of_line();
                        return Ok(Action::Unsupported(format!("IP attribute `{other}`")));
                    }
                }
                self.skip_ws(false)?;
                if self.eat(b',') {
                    continue;
                }
                self.expect(b')', "after IP attributes")?;
                break;
            }
            self.skip_ws(false)?;
        }
        if self.peek() == Some(b'[') {
            let rest = self.rest_of_line();
            if rest.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w.eq_ignore_ascii_case("icmp")) {
                return Ok(Action::Unsupported(format!("ICMP ({rest})")));
            }
            return Ok(Action::Unsupported(format!("IP ECN field annotation ({rest})")));
        }
        // Flags: a run of S F R P U E W . characters, or `-` for none.
        let mut flags = 0u8;
        let start = self.pos;
        if self.peek() == Some(b'-') && self.peek_at(1).is_some_and(|c| c == b' ' || c == b'\t') {
            self.bump();
        }
        while let Some(c) = self.peek() {
            let bit = match c {
                b'F' => 0x01,
                b'S' => 0x02,
                b'R' => 0x04,
                b'P' => 0x08,
                b'.' if !self.starts_with("...") => 0x10,
                b'U' => 0x20,
                b'E' => 0x40,
                b'W' => 0x80,
                _ => break,
            };
            flags |= bit;
            self.bump();
        }
        if start == self.pos {
            if let Some(word) = self.ident() {
                let rest = self.rest_of_line();
                if word.eq_ignore_ascii_case("icmp") {
                    // Inbound ICMPv4 errors run (script/icmp.rs); outbound ones, and IP
                    // attributes on them, are not modelled.
                    if direction == Direction::Inbound && ip == IpAttrs::default() {
                        return Ok(match super::icmp::parse(&rest) {
                            Ok(l) => Action::Icmp(l),
                            Err(why) => Action::Unsupported(format!("ICMP (icmp {rest}): {why}")),
                        });
                    }
                    return Ok(Action::Unsupported(format!("ICMP (icmp {rest})")));
                }
                return Ok(Action::Unsupported(format!("non-TCP packet `{word}` ({rest})")));
            }
            return self.err(format!("expected TCP flags, found {}", self.found()));
        }
        self.skip_ws(false)?;
        // Sequence: start:end(len) or ...(len).
        let seq;
        let len;
        if self.starts_with("...") {
            self.advance(3);
            seq = None;
            self.expect(b'(', "before the segment length")?;
            len = self.u32_val("length")?;
            self.expect(b')', "after the segment length")?;
        } else {
            let s = self.u32_val("sequence number")?;
            self.expect(b':', "in start:end(len)")?;
            let e = self.u32_val("sequence number")?;
            self.expect(b'(', "before the segment length")?;
            len = self.u32_val("length")?;
            self.expect(b')', "after the segment length")?;
            if e.wrapping_sub(s) != len {
                return self
                    .err(format!("segment {s}:{e}({len}) has length {} but says {len}", e.wrapping_sub(s)));
            }
            seq = Some(s);
        }
        let absolute_seq = direction == Direction::Outbound && seq.is_some() && self.eat(b'!');
        let mut pkt = Packet {
            direction,
            ip,
            flags,
            seq,
            len,
            ack: None,
            win: None,
            urg: None,
            options: Some(Vec::new()),
            absolute_seq,
        };
        loop {
            self.skip_ws(false)?;
            match self.peek() {
                None | Some(b'\n') => break,
                Some(b'/') => {
                    let rest = self.rest_of_line();
                    return Ok(Action::Unsupported(format!("encapsulation ({rest})")));
                }
                Some(b'!') => {
                    let rest = self.rest_of_line();
                    return Ok(Action::Unsupported(format!("packet marker `{rest}`")));
                }
                Some(b'<') => {
                    self.bump();
                    match self.tcp_options()? {
                        Ok(opts) => pkt.options = opts,
                        Err(unsupported) => {
                            self.rest_of_line();
                            return Ok(Action::Unsupported(unsupported));
                        }
                    }
                }
                Some(c) if is_ident_start(c) => {
                    let Some(word) = self.ident() else {
                        return self.err("expected a keyword");
                    };
                    match word.as_str() {
                        "ack" => pkt.ack = Some(self.u32_val("ack")?),
                        "win" => pkt.win = Some(self.u16_val("window")?),
                        "urg" => pkt.urg = Some(self.u16_val("urgent pointer")?),
                        other => {
                            let rest = self.rest_of_line();
                            return Ok(Action::Unsupported(format!("packet attribute `{other}` ({rest})")));
                        }
                    }
                }
                _ => return self.err(format!("unexpected {} in packet", self.found())),
            }
        }
        Ok(Action::Packet(pkt))
    }

    /// After `<`: the option list up to `>`. Ok(Err(name)) for an unsupported option.
    fn tcp_options(&mut self) -> PResult<Result<Option<Vec<TcpOpt>>, String>> {
        self.skip_ws(false)?;
        if self.starts_with("...") {
            self.advance(3);
            self.expect(b'>', "after <...")?;
            return Ok(Ok(None));
        }
        let mut opts = Vec::new();
        if self.eat(b'>') {
            return Ok(Ok(Some(opts)));
        }
        loop {
            self.skip_ws(false)?;
            let Some(name) = self.ident() else {
                return self.err(format!("expected a TCP option, found {}", self.found()));
            };
            let opt = match name.as_str() {
                "eol" => TcpOpt::Eol,
                "nop" => TcpOpt::Nop,
                "mss" => TcpOpt::Mss(self.u16_val("mss")?),
                "wscale" => TcpOpt::WScale(self.u8_val("wscale")?),
                "sackOK" => TcpOpt::SackOk,
                "sack" => {
                    let mut blocks = Vec::new();
                    loop {
                        self.skip_ws(false)?;
                        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            break;
                        }
                        let a = self.u32_val("SACK block start")?;
                        self.expect(b':', "in SACK block")?;
                        let b = self.u32_val("SACK block end")?;
                        blocks.push((a, b));
                    }
                    if blocks.is_empty() || blocks.len() > 4 {
                        return self.err(format!("sack needs 1 to 4 blocks, got {}", blocks.len()));
                    }
                    TcpOpt::Sack(blocks)
                }
                "TS" => {
                    self.skip_ws(false)?;
                    if self.ident().as_deref() != Some("val") {
                        return self.err("expected `val` after TS");
                    }
                    let val = self.u32_val("TS val")?;
                    self.skip_ws(false)?;
                    if self.ident().as_deref() != Some("ecr") {
                        return self.err("expected `ecr` in TS option");
                    }
                    let ecr = self.u32_val("TS ecr")?;
                    TcpOpt::Timestamp { val, ecr }
                }
                other => return Ok(Err(format!("TCP option `{other}`"))),
            };
            opts.push(opt);
            self.skip_ws(false)?;
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'>') {
                return Ok(Ok(Some(opts)));
            }
            return self.err(format!("expected ',' or '>' in TCP options, found {}", self.found()));
        }
    }

    fn syscall(&mut self) -> PResult<Action> {
        let Some(name) = self.ident() else {
            return self.err("expected a system call name");
        };
        self.expect(b'(', "after the system call name")?;
        let mut args = Vec::new();
        self.skip_ws(true)?;
        if !self.eat(b')') {
            loop {
                args.push(self.expr()?);
                self.skip_ws(true)?;
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b')') {
                    break;
                }
                return self.err(format!("expected ',' or ')' in arguments, found {}", self.found()));
            }
        }
        self.expect(b'=', "before the expected result")?;
        let ret = self.expr()?;
        self.skip_ws(false)?;
        let mut errno = None;
        if self.peek().is_some_and(is_ident_start) {
            errno = self.ident();
            self.skip_ws(false)?;
        }
        // A free-text note in parentheses: `(Operation now in progress)`, `(flags O_RDWR)`.
        if self.peek() == Some(b'(') {
            let mut depth = 0usize;
            loop {
                match self.bump() {
                    Some(b'(') => depth += 1,
                    Some(b')') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(b'\n') | None => return self.err("unterminated note after the result"),
                    Some(_) => {}
                }
            }
        }
        Ok(Action::Syscall(Syscall { name, args, ret, errno }))
    }

    fn expr(&mut self) -> PResult<Expr> {
        let first = self.primary()?;
        let mut alts = vec![first];
        loop {
            let save = (self.pos, self.line);
            self.skip_ws(false)?;
            if self.peek() == Some(b'|') {
                self.bump();
                alts.push(self.primary()?);
            } else {
                (self.pos, self.line) = save;
                break;
            }
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Expr::Ellipsis) } else { Expr::Or(alts) })
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.skip_ws(true)?;
        match self.peek() {
            Some(b'.') if self.starts_with("...") => {
                self.advance(3);
                Ok(Expr::Ellipsis)
            }
            Some(b'[') => {
                self.bump();
                let mut items = Vec::new();
                self.skip_ws(true)?;
                if self.eat(b']') {
                    return Ok(Expr::List(items));
                }
                loop {
                    items.push(self.expr()?);
                    self.skip_ws(true)?;
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b']') {
                        return Ok(Expr::List(items));
                    }
                    return self.err(format!("expected ',' or ']', found {}", self.found()));
                }
            }
            Some(b'{') => {
                self.bump();
                let mut fields = Vec::new();
                self.skip_ws(true)?;
                if self.eat(b'}') {
                    return Ok(Expr::Struct(fields));
                }
                loop {
                    self.skip_ws(true)?;
                    let save = (self.pos, self.line);
                    let field = match self.ident() {
                        Some(id) => {
                            self.skip_ws(true)?;
                            if self.eat(b'=') {
                                (id, self.expr()?)
                            } else {
                                (self.pos, self.line) = save;
                                (String::new(), self.expr()?)
                            }
                        }
                        None => (String::new(), self.expr()?),
                    };
                    fields.push(field);
                    self.skip_ws(true)?;
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'}') {
                        return Ok(Expr::Struct(fields));
                    }
                    return self.err(format!("expected ',' or '}}', found {}", self.found()));
                }
            }
            Some(b'"') => {
                self.bump();
                let start = self.pos;
                while self.peek().is_some_and(|c| c != b'"' && c != b'\n') {
                    if self.peek() == Some(b'\\') {
                        self.bump();
                    }
                    self.bump();
                }
                if !self.eat(b'"') {
                    return self.err("unterminated string");
                }
                Ok(Expr::Str(String::from_utf8_lossy(&self.s[start..self.pos - 1]).into_owned()))
            }
            Some(b'-') => {
                self.bump();
                let v = self.uint()?;
                let v = i64::try_from(v).or_else(|_| self.err("number too large"))?;
                Ok(Expr::Int(-v))
            }
            Some(c) if c.is_ascii_digit() => {
                let v = self.uint()?;
                let v = i64::try_from(v).or_else(|_| self.err("number too large"))?;
                Ok(Expr::Int(v))
            }
            Some(c) if is_ident_start(c) => Ok(Expr::Ident(self.ident().unwrap_or_default())),
            _ => self.err(format!("expected an expression, found {}", self.found())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Event {
        let s = parse_script(text, &[]).expect("parses");
        assert_eq!(s.events.len(), 1, "{s:?}");
        s.events.into_iter().next().expect("one event")
    }

    #[test]
    fn header_flags_and_times() {
        let s = parse_script(
            "--ip_version=ipv4\n--tolerance_usecs=50000\n 0.00 `sysctl -w a=1`\n+0.10 close(3) = 0\n* > S 0:0(0) <...>\n1.0~2.5 < . 1:1(0) ack 1 win 5\n",
            &[],
        )
        .expect("parses");
        assert_eq!(s.flag("tolerance_usecs"), Some("50000"));
        assert_eq!(s.flag("ip_version"), Some("ipv4"));
        let t: Vec<Timing> = s.events.iter().map(|e| e.timing).collect();
        assert_eq!(
            t,
            vec![
                Timing::Absolute(0),
                Timing::Relative(100_000),
                Timing::Any,
                Timing::AbsoluteRange(1_000_000, 2_500_000)
            ]
        );
        assert_eq!(s.events[0].action, Action::Command("sysctl -w a=1".into()));
        assert_eq!(s.events[1].line, 4);
    }

    #[test]
    fn outbound_syn_with_options() {
        let e = one("+0.00 > S  0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>");
        let Action::Packet(p) = e.action else { panic!("not a packet") };
        assert_eq!(p.direction, Direction::Outbound);
        assert_eq!(p.flags, 0x02);
        assert_eq!(p.seq, Some(0));
        assert_eq!(p.win, Some(65535));
        assert_eq!(
            p.options,
            Some(vec![
                TcpOpt::Mss(1460),
                TcpOpt::Nop,
                TcpOpt::WScale(6),
                TcpOpt::SackOk,
                TcpOpt::Timestamp { val: 100, ecr: 0 }
            ])
        );
    }

    #[test]
    fn inbound_data_with_sack_and_any_seq() {
        let e = one("+0 > . 1:1(0) ack 100 win 65535 <nop,nop,sack 600:700 400:500> // c");
        let Action::Packet(p) = e.action else { panic!("not a packet") };
        assert_eq!(p.ack, Some(100));
        assert_eq!(
            p.options,
            Some(vec![TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Sack(vec![(600, 700), (400, 500)])])
        );
        let e = one("+0.00 > S. ...(0) ack 65538 win 65535 <...>");
        let Action::Packet(p) = e.action else { panic!("not a packet") };
        assert_eq!((p.flags, p.seq, p.options), (0x12, None, None));
    }

    #[test]
    fn syscalls() {
        let e = one("+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)");
        assert_eq!(
            e.action,
            Action::Syscall(Syscall {
                name: "connect".into(),
                args: vec![Expr::Int(3), Expr::Ellipsis, Expr::Ellipsis],
                ret: Expr::Int(-1),
                errno: Some("EINPROGRESS".into()),
            })
        );
        let e = one("+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0");
        let Action::Syscall(s) = e.action else { panic!("not a syscall") };
        assert_eq!(s.args[2], Expr::Or(vec![Expr::Ident("O_RDWR".into()), Expr::Ident("O_NONBLOCK".into())]));
        let e = one("+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)");
        let Action::Syscall(s) = e.action else { panic!("not a syscall") };
        assert_eq!(s.ret, Expr::Int(2));
        let e = one(" 1.00...6.00 connect(3, ..., ...) = -1 ETIMEDOUT (Operation timed out)");
        assert_eq!(e.timing, Timing::Absolute(1_000_000));
        assert_eq!(e.end_time, Some(6_000_000));
        let e = one("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0");
        let Action::Syscall(s) = e.action else { panic!("not a syscall") };
        assert_eq!(
            s.args[3],
            Expr::Struct(vec![("l_onoff".into(), Expr::Int(1)), ("l_linger".into(), Expr::Int(0))])
        );
    }

    #[test]
    fn code_blocks_and_ifdef() {
        let text = "0 %{ assert tcpi_state == TCPI_CLOSED }%\n#ifdef FreeBSD\n+0 close(3) = 0\n#else\n+0 close(4) = 0\n#endif\n";
        let s = parse_script(text, &["FreeBSD"]).expect("parses");
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.events[0].action, Action::Code("assert tcpi_state == TCPI_CLOSED".into()));
        assert_eq!(s.events[1].line, 3);
        let s = parse_script(text, &[]).expect("parses");
        assert_eq!(s.events[1].line, 5);
    }

    #[test]
    fn unsupported_constructs_are_named() {
        // `class` is IPv6's traffic class now (0ee1c75); the flow label is not taken.
        let e = one("+0 < (flowlabel 0x12345) . 1:1(0) ack 1 win 5");
        assert!(matches!(e.action, Action::Unsupported(ref s) if s.contains("flowlabel")));
        let e = one("+0 < S 0:0(0) win 5 <md5 valid>");
        assert!(matches!(e.action, Action::Unsupported(ref s) if s.contains("md5")));
    }

    #[test]
    fn no_flags_dash_parses() {
        let e = one("+0 < - 1:1001(1000) win 257");
        let Action::Packet(p) = e.action else { panic!("not a packet") };
        assert_eq!((p.flags, p.seq, p.len, p.ack), (0, Some(1), 1000, None));
        let e = one("+0 > - 1:1(0) win 5");
        let Action::Packet(p) = e.action else { panic!("not a packet") };
        assert_eq!((p.flags, p.direction), (0, Direction::Outbound));
    }

    #[test]
    fn icmp_lines_parse_or_are_unsupported_icmp() {
        let e = one("+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]");
        assert!(matches!(e.action, Action::Icmp(ref l) if l.mtu == Some(1200) && l.seq == 1 && l.len == 1460));
        let e = one("+0 <icmp unreachable port_unreachable [0:0(0)]");
        assert!(matches!(e.action, Action::Icmp(ref l) if l.v4() == Ok((3, 3))));
        for line in [
            "+0 < [1:1461(1460)] icmp unreachable",
            "+0 > icmp unreachable port_unreachable [0:0(0)]",
            "+0 < icmp unreachable nonsense [0:0(0)]",
        ] {
            let e = one(line);
            assert!(
                matches!(e.action, Action::Unsupported(ref s) if s.starts_with("ICMP")),
                "{line}: {:?}",
                e.action
            );
        }
        let e = one("+0 < [noecn] . 1:1(0) ack 1 win 5");
        assert!(matches!(e.action, Action::Unsupported(ref s) if s.contains("ECN")));
    }

    #[test]
    fn multi_line_commands_keep_their_text() {
        let s = parse_script("`sysctl -q a=1\nsysctl -q b=2`\n0 close(3) = 0\n", &[]).expect("parses");
        assert_eq!(s.init_commands, vec![(1, "sysctl -q a=1\nsysctl -q b=2".to_string())]);
        assert_eq!(s.events[0].line, 3);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let err = parse_script("--x=1\n\n+0.1 > S 0:5(0) win 1\n", &[]).expect_err("bad length");
        assert_eq!(err.line, 3);
        let err = parse_script("+0 close(3 = 0\n", &[]).expect_err("bad call");
        assert_eq!(err.line, 1);
        let err = parse_script("#ifdef X\n+0 close(3) = 0\n", &[]).expect_err("no endif");
        assert!(err.reason.contains("endif"));
        let err = parse_script("hello world\n", &[]).expect_err("garbage");
        assert_eq!(err.line, 1);
        let err = parse_script("+0 %{ x = 1\n", &[]).expect_err("open code");
        assert!(err.reason.contains("unterminated"));
    }

    #[test]
    fn never_panics_on_truncations() {
        let text = "--tolerance_usecs=1\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S. 0:0(0) ack 1 win 5 <mss 1460,sack 1:2 3:4,TS val 1 ecr 2>\n+0 %{ a }%\n+0 `x`\n1.0...2.0 read(3, ..., 5) = 5\n";
        for end in 0..text.len() {
            let _ = parse_script(&text[..end], &[]);
        }
    }
}
