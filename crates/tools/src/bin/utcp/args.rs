//! Minimal argument parsing shared by the subcommands: `--flag value`, `--switch`, positionals.

use std::collections::HashMap;

pub struct Args {
    pub flags: HashMap<String, Vec<String>>,
    pub switches: Vec<String>,
    pub positional: Vec<String>,
}

impl Args {
    /// `takes_value` lists the flags that take a value; any other `--x` is a switch.
    pub fn parse(argv: &[String], takes_value: &[&str]) -> Result<Args, String> {
        let mut a = Args { flags: HashMap::new(), switches: Vec::new(), positional: Vec::new() };
        let mut i = 0;
        while i < argv.len() {
            let s = &argv[i];
            if let Some(name) = s.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if takes_value.contains(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            argv.get(i).cloned().ok_or_else(|| format!("--{name} needs a value"))?
                        }
                    };
                    a.flags.entry(name.to_string()).or_default().push(v);
                } else if inline.is_some() {
                    return Err(format!("--{name} takes no value"));
                } else {
                    a.switches.push(name.to_string());
                }
            } else {
                a.positional.push(s.clone());
            }
            i += 1;
        }
        Ok(a)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).and_then(|v| v.last()).map(|s| s.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// Reject switches not in `known` (flags with values are checked by `parse`).
    pub fn check_switches(&self, known: &[&str]) -> Result<(), String> {
        for s in &self.switches {
            if !known.contains(&s.as_str()) {
                return Err(format!("unknown option --{s}"));
            }
        }
        Ok(())
    }

    pub fn parse_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: cannot parse {v:?}")),
        }
    }
}

/// Parse a byte size with an optional K/M/G suffix (powers of 1024): `10M`, `64K`, `1G`, `512`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1u64 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(format!("bad size {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parse a probability given as a fraction in [0, 1].
pub fn parse_prob(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("bad probability {s:?}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability {s} is not in [0, 1]"));
    }
    Ok(p)
}
