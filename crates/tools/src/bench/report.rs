//! Results of a network run: medians with min–max per workload × system, ratios, and the
//! two output formats (a text table and one hand-written JSON object).

use super::{Sample, SystemKind, Workload};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// All samples of one run, keyed by (row, system); a row is one of `Workload::metrics`.
#[derive(Clone, Debug)]
pub struct Report {
    pub rounds: usize,
    rows: Vec<Row>,
}

#[derive(Clone, Debug)]
struct Row {
    workload: Workload,
    name: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    system: SystemKind,
    values: Vec<f64>,
    failures: usize,
}

/// Median, min and max of one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no values. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Summary { median, min: v[0], max: v[n - 1] })
    }
}

impl Report {
    pub fn new(rounds: usize) -> Report {
        Report { rounds, rows: Vec::new() }
    }

    fn row(&mut self, w: Workload, i: usize, s: SystemKind) -> &mut Row {
        let (name, unit, hib) = w.metrics()[i];
        let pos = self.rows.iter().position(|r| r.name == name && r.system == s);
        match pos {
            Some(p) => &mut self.rows[p],
            None => {
                self.rows.push(Row {
                    workload: w,
                    name,
                    unit,
                    higher_is_better: hib,
                    system: s,
                    values: Vec::new(),
                    failures: 0,
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        }
    }

    pub fn add(&mut self, w: Workload, s: SystemKind, sample: Sample) {
        for (i, v) in sample.values.iter().enumerate().take(w.metrics().len()) {
            self.row(w, i, s).values.push(*v);
        }
    }

    pub fn add_failure(&mut self, w: Workload, s: SystemKind) {
        for i in 0..w.metrics().len() {
            self.row(w, i, s).failures += 1;
        }
    }

    fn sorted_rows(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| {
            let idx = r.workload.metrics().iter().position(|m| m.0 == r.name);
            (r.workload, idx, r.system)
        });
        rows
    }

    /// The summary of one row, if it has any successful sample.
    pub fn summary(&self, row: &str, s: SystemKind) -> Option<Summary> {
        self.rows.iter().find(|r| r.name == row && r.system == s).and_then(|r| Summary::of(&r.values))
    }

    /// Row names in output order, without duplicates.
    fn row_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for r in self.sorted_rows() {
            if !names.contains(&r.name) {
                names.push(r.name);
            }
        }
        names
    }

    /// utcp's median over `other`'s, for one row.
    pub fn ratio(&self, row: &str, other: SystemKind) -> Option<f64> {
        let u = self.summary(row, SystemKind::Utcp)?;
        let o = self.summary(row, other)?;
        (o.median > 0.0).then(|| u.median / o.median)
    }

    /// The text table: one line per row × system, then the ratios.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>12} {:>25} {:<8} {:>5}",
            "workload", "system", "median", "min-max", "unit", "fails"
        );
        for r in self.sorted_rows() {
            let (med, range) = match Summary::of(&r.values) {
                Some(s) => (fmt_num(s.median), format!("{} - {}", fmt_num(s.min), fmt_num(s.max))),
                None => ("-".to_string(), "-".to_string()),
            };
            let _ = writeln!(
                out,
                "{:<16} {:<8} {:>12} {:>25} {:<8} {:>5}",
                r.name,
                r.system.name(),
                med,
                range,
                r.unit,
                r.failures
            );
        }
        let names = self.row_names();
        let any_ratio = names.iter().any(|n| {
            self.ratio(n, SystemKind::Kernel).is_some() || self.ratio(n, SystemKind::Smoltcp).is_some()
        });
        if any_ratio {
            let _ = writeln!(
                out,
                "\n{:<16} {:>12} {:>13}  (medians; for *_p50/*_p99 lower is better)",
                "ratios", "utcp/kernel", "utcp/smoltcp"
            );
            for n in names {
                let f = |k| self.ratio(n, k).map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into());
                let _ =
                    writeln!(out, "{:<16} {:>12} {:>13}", n, f(SystemKind::Kernel), f(SystemKind::Smoltcp));
            }
        }
        out
    }

    /// Exactly one JSON object:
    /// `{"rounds":N,"results":[{"workload","system","median","min","max","unit"}],"ratios":{..}}`.
    /// Rows without a successful sample report 0 (JSON has no NaN).
    pub fn json(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{{\"rounds\":{},\"results\":[", self.rounds);
        for (i, r) in self.sorted_rows().into_iter().enumerate() {
            let s = Summary::of(&r.values).unwrap_or(Summary { median: 0.0, min: 0.0, max: 0.0 });
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"workload\":{},\"system\":{},\"median\":{},\"min\":{},\"max\":{},\"unit\":{}}}",
                json_str(r.name),
                json_str(r.system.name()),
                json_num(s.median),
                json_num(s.min),
                json_num(s.max),
                json_str(r.unit)
            );
        }
        out.push_str("],\"ratios\":{");
        let mut first = true;
        let ratios: BTreeMap<usize, _> = self
            .row_names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (i, (n, self.ratio(n, SystemKind::Kernel), self.ratio(n, SystemKind::Smoltcp))))
            .collect();
        for (_, (name, k, s)) in ratios {
            if k.is_none() && s.is_none() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{}:{{", json_str(name));
            let mut parts = Vec::new();
            if let Some(k) = k {
                parts.push(format!("\"utcp/kernel\":{}", json_num(k)));
            }
            if let Some(s) = s {
                parts.push(format!("\"utcp/smoltcp\":{}", json_num(s)));
            }
            out.push_str(&parts.join(","));
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// Higher-is-better flag of a row (for readers of the table).
    pub fn higher_is_better(&self, row: &str) -> Option<bool> {
        self.rows.iter().find(|r| r.name == row).map(|r| r.higher_is_better)
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A JSON number: finite values only (others become 0).
pub fn json_num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    if v != 0.0 && v.abs() < 1e-3 {
        // Keep tiny values positive: `1.5e-7` is a JSON number too.
        return format!("{v:e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
}

/// A JSON string literal with the escapes RFC 8259 §7 requires.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(w: Workload, values: Vec<f64>) -> Sample {
        Sample { workload: w, values, volume: 1, elapsed: Duration::from_secs(1) }
    }

    #[test]
    fn summary_median_min_max() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn json_numbers_and_strings() {
        assert_eq!(json_num(1.5), "1.5");
        assert_eq!(json_num(2.0), "2");
        assert_eq!(json_num(0.0), "0");
        assert_eq!(json_num(f64::NAN), "0");
        assert_eq!(json_num(-0.25), "-0.25");
        assert_eq!(json_num(1.5e-7), "1.5e-7");
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn report_rows_ratios_and_json_shape() {
        let mut r = Report::new(2);
        for v in [10.0, 20.0] {
            r.add(Workload::BulkToStack, SystemKind::Kernel, sample(Workload::BulkToStack, vec![v]));
            r.add(Workload::BulkToStack, SystemKind::Utcp, sample(Workload::BulkToStack, vec![v / 2.0]));
        }
        r.add(Workload::Rr, SystemKind::Smoltcp, sample(Workload::Rr, vec![1000.0, 50.0, 90.0]));
        r.add(Workload::Rr, SystemKind::Utcp, sample(Workload::Rr, vec![2000.0, 25.0, 45.0]));
        r.add_failure(Workload::Connect, SystemKind::Utcp);
        assert_eq!(r.summary("bulk_to_stack", SystemKind::Kernel).unwrap().median, 15.0);
        assert_eq!(r.ratio("bulk_to_stack", SystemKind::Kernel), Some(0.5));
        assert_eq!(r.ratio("rr", SystemKind::Smoltcp), Some(2.0));
        assert_eq!(r.ratio("rr_p99", SystemKind::Smoltcp), Some(0.5));
        assert_eq!(r.ratio("rr", SystemKind::Kernel), None);
        let j = r.json();
        assert!(j.starts_with("{\"rounds\":2,\"results\":[{\"workload\":\"bulk_to_stack\",\"system\":\"kernel\",\"median\":15,\"min\":10,\"max\":20,\"unit\":\"Gbit/s\"}"), "{j}");
        assert!(j.contains("\"bulk_to_stack\":{\"utcp/kernel\":0.5}"), "{j}");
        assert!(j.contains("\"rr_p50\":{\"utcp/smoltcp\":0.5}"), "{j}");
        assert!(j.contains("{\"workload\":\"connect\",\"system\":\"utcp\",\"median\":0,"), "{j}");
        assert!(j.ends_with("}}"));
        assert_eq!(j.matches('{').count(), j.matches('}').count());
        let t = r.table();
        assert!(t.contains("rr_p99"), "{t}");
        assert!(t.contains("utcp/smoltcp"), "{t}");
    }
}
