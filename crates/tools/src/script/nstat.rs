//! `nstat` assertions (Linux's SNMP/netstat counters, nstat(8)) evaluated on the engine's
//! [`Counters`].
//!
//! Only the Linux counters with an engine counter of the same meaning are printed; a
//! script that names any other counter, in the `nstat` arguments or in a `grep` pattern,
//! is UNSUPPORTED naming it. As nstat does, the output holds increments since the last
//! call that updated the history (`-a`: absolute values; `-s`: do not update; `-n`: print
//! nothing; `-z`: print zeros too). The `grep` stages filter the lines (`-c` counts, `-w`
//! matches whole words, `-q` prints nothing); the command fails the script when the last
//! `grep` selects nothing, as a non-zero exit status would.

use super::run::{Res, Runner, fail, unsupported};
use super::shell::NstatCmd;
use utcp::engine::Counters;

/// Reads one engine counter.
type Read = fn(&Counters) -> u64;

/// Linux counter name -> engine counter. Only counters with the same meaning: not
/// TcpExtTCPTimeouts (Linux counts only the first timeout of a series), TcpPassiveOpens
/// (Linux counts completed handshakes, the engine SYNs accepted by a listener),
/// TcpEstabResets/TcpAttemptFails (Linux counts every such close, the engine RSTs and
/// give-ups) or TcpExtListenOverflows (Linux: full accept queue; the engine: full backlog).
const MAPPED: [(&str, Read); 5] = [
    ("TcpActiveOpens", |c| c.active_opens),
    ("TcpRetransSegs", |c| c.retrans_segs),
    ("TcpOutRsts", |c| c.out_rsts),
    ("TcpExtDelayedACKs", |c| c.delayed_acks),
    ("TcpExtTCPChallengeACK", |c| c.challenge_acks),
];

/// Counter-like words (`TcpExt...`, `Tcp...`, `Ip...`, `Udp...`) in a name or pattern.
fn counter_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| ["Tcp", "Ip", "Udp", "Icmp", "Mptcp"].iter().any(|p| w.starts_with(p)) && w.len() > 3)
        .map(str::to_string)
        .collect()
}

/// The first counter the command names that has no engine counterpart.
pub(super) fn unmapped_counter(n: &NstatCmd) -> Option<String> {
    let known = |w: &str| MAPPED.iter().any(|(m, _)| *m == w);
    n.names
        .iter()
        .flat_map(|a| counter_words(a))
        .chain(n.greps.iter().flat_map(|(_, p)| counter_words(p)))
        .find(|w| !known(w))
}

impl Runner<'_> {
    pub(super) fn nstat(&mut self, line: usize, n: &NstatCmd) -> Res<()> {
        if let Some(c) = unmapped_counter(n) {
            return unsupported(line, format!("nstat counter {c} (no engine counter)"));
        }
        let counters = self.stack.as_ref().map(|s| s.counters().clone()).unwrap_or_default();
        let now: Vec<(&str, u64)> = MAPPED.iter().map(|(name, f)| (*name, f(&counters))).collect();
        if n.reset {
            self.nstat_hist = None;
        }
        let mut lines = Vec::new();
        for &(name, v) in &now {
            if !n.names.is_empty() && !n.names.iter().any(|a| a == name) {
                continue;
            }
            let base = if n.absolute { 0 } else { self.hist_value(name) };
            let shown = v.saturating_sub(base);
            if shown != 0 || n.zeros {
                lines.push(format!("{name:<32}{shown:<19}0.0"));
            }
        }
        if !n.no_update {
            self.nstat_hist = Some(now.clone());
        }
        if n.quiet {
            lines.clear();
        }
        let mut selected = true;
        for (flags, pat) in &n.greps {
            let pat = if flags.contains("-w") { format!(r"\b(?:{pat})\b") } else { pat.clone() };
            let Ok(re) = regex_lite::Regex::new(&pat) else {
                return unsupported(line, format!("nstat grep pattern `{pat}`"));
            };
            lines.retain(|l| re.is_match(l));
            selected = !lines.is_empty();
            if flags.contains("-c") {
                lines = vec![lines.len().to_string()];
            } else if flags.contains("-q") {
                lines.clear();
            }
        }
        if !selected {
            let shown: Vec<String> =
                now.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
            return fail(
                line,
                format!("nstat assertion selected nothing (counters now: {})", shown.join(" ")),
            );
        }
        Ok(())
    }

    fn hist_value(&self, name: &str) -> u64 {
        self.nstat_hist
            .as_ref()
            .and_then(|h| h.iter().find(|(k, _)| *k == name))
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::shell::{Stmt, classify};

    fn cmd(s: &str) -> NstatCmd {
        match classify(s) {
            Stmt::Nstat(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unmapped_counters_are_found_in_names_and_patterns() {
        assert_eq!(unmapped_counter(&cmd("nstat -az TcpRetransSegs | grep -w 2")), None);
        assert_eq!(
            unmapped_counter(&cmd("nstat -az TcpExtTCPTimeouts")),
            Some("TcpExtTCPTimeouts".to_string())
        );
        assert_eq!(
            unmapped_counter(&cmd("nstat | grep TcpExtTCPLossProbes")),
            Some("TcpExtTCPLossProbes".to_string())
        );
        assert_eq!(unmapped_counter(&cmd("nstat -a TcpInSegs")), Some("TcpInSegs".to_string()));
        assert_eq!(unmapped_counter(&cmd("nstat -a TcpPassiveOpens")), Some("TcpPassiveOpens".to_string()));
    }
}
