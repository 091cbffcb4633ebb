//! Backquoted shell commands of a script, read rather than run.
//!
//! A command may span lines and hold several statements (`;`, `&&`, newlines, `\`
//! continuations). Each statement is classified: a sysctl write (`sysctl -w`,
//! `set_sysctls.py /proc/sys/...=V`, `echo V > /proc/sys/...`), a route or link metric
//! (`ip route ... mtu N advmss N`, `ip link set ... mtu N`), one of the assertion commands
//! the runner evaluates (`sockstat`, `nstat`), `tcpdrop`, or something the runner cannot
//! honour, which makes the script UNSUPPORTED naming it. Nothing is dropped silently.

use std::net::Ipv4Addr;

/// One statement of a backquoted command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// Write a sysctl: dotted name (`net.ipv4.tcp_sack`) and value as written.
    Sysctl { name: String, value: String },
    /// Route or link metrics for the path to the remote host.
    Route(RouteMetrics),
    /// `sockstat ... | grep ...` (FreeBSD).
    Sockstat(String),
    /// `tcpdrop ...` (FreeBSD).
    Tcpdrop(String),
    /// `nstat` with its pipeline.
    Nstat(NstatCmd),
    /// Something the runner cannot honour; the string names it.
    Unsupported(String),
}

/// `ip route` / `ip link` metrics the engine has knobs for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMetrics {
    /// `mtu N` (Config::mtu).
    pub mtu: Option<usize>,
    /// `advmss N` (Config::mss).
    pub advmss: Option<u16>,
    /// `initcwnd N` (Config::initial_window_segments).
    pub initcwnd: Option<u32>,
    /// `rto_min Nms` (Config::min_rto), in milliseconds.
    pub rto_min_ms: Option<u64>,
    /// The destination prefix (`None` for `default` or a link metric).
    pub dest: Option<(Ipv4Addr, u8)>,
}

impl RouteMetrics {
    /// Whether the route covers `ip` (a link metric or `default` covers everything; an
    /// IPv4 prefix covers no IPv6 address).
    pub fn covers(&self, ip: std::net::IpAddr) -> bool {
        let std::net::IpAddr::V4(ip) = ip else {
            return self.dest.is_none();
        };
        match self.dest {
            None => true,
            Some((net, len)) => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
                u32::from(ip) & mask == u32::from(net) & mask
            }
        }
    }
}

/// An `nstat` call and the `grep` stages after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NstatCmd {
    /// `-a`: absolute values instead of increments since the last call.
    pub absolute: bool,
    /// `-z`: print counters that are zero too.
    pub zeros: bool,
    /// `-n`: print nothing (only update the history).
    pub quiet: bool,
    /// `-s`: do not update the history.
    pub no_update: bool,
    /// `-r`: reset the history first.
    pub reset: bool,
    /// Counter names (or patterns) given as arguments; empty = all.
    pub names: Vec<String>,
    /// `grep` stages: (flags, pattern).
    pub greps: Vec<(String, String)>,
}

/// Split a command into statements: join `\`-newline continuations, then split on
/// newlines, `;` and `&&` outside quotes. Empty statements are dropped.
pub fn statements(cmd: &str) -> Vec<String> {
    let joined = cmd.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = joined.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '\n' | ';') => out.push(std::mem::take(&mut cur)),
            (None, '&') if chars.peek() == Some(&'&') => {
                chars.next();
                out.push(std::mem::take(&mut cur));
            }
            (None, c) => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Shell words with single and double quotes removed; `None` on an open quote.
pub fn words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// `/proc/sys/net/ipv4/tcp_sack` -> `net.ipv4.tcp_sack`.
fn proc_sys_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/proc/sys/")?;
    (!rest.is_empty()).then(|| rest.replace('/', "."))
}

/// Classify one statement (see [`statements`]).
pub fn classify(stmt: &str) -> Stmt {
    let unsupported = || Stmt::Unsupported(format!("command `{stmt}`"));
    let Some(w) = words(stmt) else {
        return unsupported();
    };
    let Some(first) = w.first().map(String::as_str) else {
        return unsupported();
    };
    let prog = first.rsplit('/').next().unwrap_or(first);
    match prog {
        "sysctl" => sysctl_stmt(&w[1..]).unwrap_or_else(unsupported),
        "set_sysctls.py" => set_sysctls(&w[1..]).unwrap_or_else(unsupported),
        "echo" => echo_to_proc(&w[1..]).unwrap_or_else(unsupported),
        "ip" => ip_stmt(&w[1..]).unwrap_or_else(unsupported),
        "sockstat" => Stmt::Sockstat(stmt.to_string()),
        "tcpdrop" => Stmt::Tcpdrop(stmt.to_string()),
        "nstat" => nstat_stmt(stmt).map(Stmt::Nstat).unwrap_or_else(unsupported),
        _ if stmt.contains("grep") || prog == "test" || prog == "[" => {
            Stmt::Unsupported(format!("assertion command `{stmt}`"))
        }
        _ => unsupported(),
    }
}

/// `sysctl [-w] [-q] a.b.c=V` (one assignment; the value may be quoted).
fn sysctl_stmt(args: &[String]) -> Option<Stmt> {
    let rest: Vec<&String> = args.iter().filter(|a| !matches!(a.as_str(), "-w" | "-q")).collect();
    let [one] = rest.as_slice() else { return None };
    let (n, v) = one.split_once('=')?;
    Some(Stmt::Sysctl { name: n.trim().to_string(), value: v.trim().to_string() })
}

/// `set_sysctls.py /proc/sys/a/b=V ...`: several writes become one statement each; the
/// caller gets the first and the rest via [`expand`].
fn set_sysctls(args: &[String]) -> Option<Stmt> {
    let (path, v) = args.first()?.split_once('=')?;
    Some(Stmt::Sysctl { name: proc_sys_name(path)?, value: v.trim().to_string() })
}

/// `echo V > /proc/sys/a/b`.
fn echo_to_proc(args: &[String]) -> Option<Stmt> {
    let pos = args.iter().position(|a| a == ">")?;
    let [path] = &args[pos + 1..] else { return None };
    let value = args[..pos].join(" ");
    Some(Stmt::Sysctl { name: proc_sys_name(path)?, value })
}

/// Every statement of a command, with `set_sysctls.py` calls expanded to one write each.
pub fn expand(cmd: &str) -> Vec<Stmt> {
    let mut out = Vec::new();
    for s in statements(cmd) {
        let w = words(&s).unwrap_or_default();
        if w.first().is_some_and(|p| p.rsplit('/').next() == Some("set_sysctls.py")) && w.len() > 2 {
            for a in &w[1..] {
                out.push(
                    set_sysctls(std::slice::from_ref(a))
                        .unwrap_or_else(|| Stmt::Unsupported(format!("set_sysctls.py argument `{a}`"))),
                );
            }
        } else {
            out.push(classify(&s));
        }
    }
    out
}

/// `ip route add|change|replace DEST ... [mtu [lock] N] [advmss N] [initcwnd N]
/// [rto_min Nms]` and `ip link set [dev] IF mtu N`. Other metrics are unsupported.
fn ip_stmt(args: &[String]) -> Option<Stmt> {
    let obj = args.first()?.as_str();
    let mut m = RouteMetrics::default();
    let rest: &[String] = match obj {
        "route" | "r" | "ro" => {
            let verb = args.get(1)?.as_str();
            if !matches!(verb, "add" | "change" | "replace" | "append") {
                return None;
            }
            let dest = args.get(2)?;
            if dest != "default" {
                let (ip, len) = dest.split_once('/').unwrap_or((dest, "32"));
                m.dest = Some((ip.parse().ok()?, len.parse().ok()?));
            }
            &args[3..]
        }
        "link" => {
            if args.get(1).map(String::as_str) != Some("set") {
                return None;
            }
            &args[2..]
        }
        _ => return None,
    };
    let mut it = rest.iter().map(String::as_str).peekable();
    while let Some(k) = it.next() {
        match k {
            "via" | "dev" | "src" | "proto" | "scope" | "table" => {
                it.next()?;
            }
            "lock" | "up" => {}
            "mtu" => {
                if it.peek() == Some(&"lock") {
                    it.next();
                }
                m.mtu = Some(it.next()?.parse().ok()?);
            }
            "advmss" => m.advmss = Some(it.next()?.parse().ok()?),
            "initcwnd" => m.initcwnd = Some(it.next()?.parse().ok()?),
            "rto_min" => {
                let v = it.next()?;
                let ms = v.strip_suffix("ms").map(|n| n.parse::<u64>().ok()).unwrap_or_else(|| {
                    v.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()).map(|s| s * 1000)
                })?;
                m.rto_min_ms = Some(ms);
            }
            // `ip link set tun0 mtu N`: the interface name.
            name if obj == "link" && m.mtu.is_none() && !name.is_empty() => {}
            _ => return None,
        }
    }
    (m.mtu.is_some() || m.advmss.is_some() || m.initcwnd.is_some() || m.rto_min_ms.is_some())
        .then_some(Stmt::Route(m))
}

/// `nstat [-a] [-z] [-n] [-s] [-r] [NAME...] [| grep [-q] [-c] [-E] [-w] PATTERN]...`.
fn nstat_stmt(stmt: &str) -> Option<NstatCmd> {
    let mut stages = stmt.split('|').map(str::trim);
    let w = words(stages.next()?)?;
    let mut n = NstatCmd::default();
    for a in &w[1..] {
        match a.as_str() {
            "-a" | "--ignore" => n.absolute = true,
            "-z" | "--zeros" => n.zeros = true,
            "-n" | "--nooutput" => n.quiet = true,
            "-s" | "--noupdate" => n.no_update = true,
            "-r" | "--reset" => n.reset = true,
            // Combined short options such as `-az`, `-sz`.
            s if s.starts_with('-') && s.len() > 2 && !s.starts_with("--") => {
                for c in s[1..].chars() {
                    match c {
                        'a' => n.absolute = true,
                        'z' => n.zeros = true,
                        'n' => n.quiet = true,
                        's' => n.no_update = true,
                        'r' => n.reset = true,
                        _ => return None,
                    }
                }
            }
            s if s.starts_with('-') => return None,
            name => n.names.push(name.to_string()),
        }
    }
    for st in stages {
        let w = words(st)?;
        if w.first().map(String::as_str) != Some("grep") {
            return None;
        }
        let flags: Vec<&str> = w[1..].iter().map(String::as_str).filter(|a| a.starts_with('-')).collect();
        let pats: Vec<&String> = w[1..].iter().filter(|a| !a.starts_with('-')).collect();
        let [pat] = pats.as_slice() else { return None };
        if flags.iter().any(|f| !matches!(*f, "-q" | "-c" | "-E" | "-w" | "-qE" | "-Eq")) {
            return None;
        }
        n.greps.push((flags.join(" "), pat.to_string()));
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_commands_split_into_statements() {
        let cmd = "sysctl -q net.ipv4.tcp_sack=0;\n  sysctl -q net.ipv4.tcp_dsack=0 && \\\n sysctl -w net.ipv4.tcp_timestamps=1";
        assert_eq!(
            expand(cmd),
            vec![
                Stmt::Sysctl { name: "net.ipv4.tcp_sack".into(), value: "0".into() },
                Stmt::Sysctl { name: "net.ipv4.tcp_dsack".into(), value: "0".into() },
                Stmt::Sysctl { name: "net.ipv4.tcp_timestamps".into(), value: "1".into() },
            ]
        );
    }

    #[test]
    fn set_sysctls_and_echo_write_proc_sys() {
        let cmd = "/tmp/set_sysctls.py /proc/sys/net/ipv4/tcp_rmem=\"4096 540000 15728640\" \\\n  /proc/sys/net/ipv4/tcp_early_retrans=4";
        assert_eq!(
            expand(cmd),
            vec![
                Stmt::Sysctl { name: "net.ipv4.tcp_rmem".into(), value: "4096 540000 15728640".into() },
                Stmt::Sysctl { name: "net.ipv4.tcp_early_retrans".into(), value: "4".into() },
            ]
        );
        assert_eq!(
            expand("echo 0 > /proc/sys/net/ipv4/tcp_timestamps"),
            vec![Stmt::Sysctl { name: "net.ipv4.tcp_timestamps".into(), value: "0".into() }]
        );
    }

    #[test]
    fn routes_give_metrics_and_unknown_commands_are_named() {
        let Stmt::Route(m) =
            classify("ip route change 192.0.2.0/24 via 192.168.0.2 dev tun0 mtu 1280 advmss 1100")
        else {
            panic!("not a route")
        };
        assert_eq!((m.mtu, m.advmss), (Some(1280), Some(1100)));
        assert!(m.covers("192.0.2.1".parse().unwrap()));
        assert!(!m.covers("10.0.0.1".parse().unwrap()));
        let Stmt::Route(m) = classify("ip link set tun0 mtu 1500") else { panic!("not a link") };
        assert_eq!(m.mtu, Some(1500));
        assert!(matches!(classify("ip route add default via 1.2.3.4 quickack 1"), Stmt::Unsupported(_)));
        assert!(
            matches!(classify("tc qdisc add dev tun0 root netem delay 10ms"), Stmt::Unsupported(s) if s.contains("tc qdisc"))
        );
        assert!(matches!(classify("ls / | grep x"), Stmt::Unsupported(s) if s.contains("assertion")));
    }

    #[test]
    fn nstat_pipelines_parse() {
        let Stmt::Nstat(n) = classify("nstat -n") else { panic!() };
        assert!(n.quiet && n.greps.is_empty());
        let Stmt::Nstat(n) = classify("nstat -az TcpExtTCPTimeouts | grep -q \"TcpExtTCPTimeouts *2\"")
        else {
            panic!()
        };
        assert!(n.absolute && n.zeros && n.names == ["TcpExtTCPTimeouts"]);
        assert_eq!(n.greps, vec![("-q".to_string(), "TcpExtTCPTimeouts *2".to_string())]);
        assert!(matches!(classify("nstat -x"), Stmt::Unsupported(_)));
        assert!(matches!(classify("nstat | awk '{print $2}'"), Stmt::Unsupported(_)));
    }

    #[test]
    fn words_handle_quotes() {
        assert_eq!(words("a 'b c' \"d\"e").unwrap(), vec!["a", "b c", "de"]);
        assert!(words("a 'b").is_none());
    }
}
