//! Results of a network run: medians with min–max per workload × system, ratios, and the
//! two output formats (a text table and one JSON object, written by serde_json).

use super::{Sample, SystemKind, Workload};
use serde::{Serialize, Serializer};
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

    /// utcp's median over `other`'s, for one row (`None` unless both are finite and
    /// `other`'s is positive).
    pub fn ratio(&self, row: &str, other: SystemKind) -> Option<f64> {
        let u = self.summary(row, SystemKind::Utcp)?;
        let o = self.summary(row, other)?;
        Some(u.median / o.median).filter(|r| o.median > 0.0 && r.is_finite())
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

    /// Exactly one JSON object, on one line:
    /// `{"rounds":N,"results":[{"workload","system","median","min","max","unit","failures"}],
    /// "ratios":{ROW:{"utcp/kernel":R,"utcp/smoltcp":R}}}`. A row without a successful
    /// sample has `null` median, min and max; a ratio that cannot be formed is left out.
    pub fn json(&self) -> String {
        let results = self
            .sorted_rows()
            .into_iter()
            .map(|r| {
                let s = Summary::of(&r.values);
                JsonRow {
                    workload: r.name,
                    system: r.system.name(),
                    median: s.map(|s| s.median),
                    min: s.map(|s| s.min),
                    max: s.map(|s| s.max),
                    unit: r.unit,
                    failures: r.failures,
                }
            })
            .collect();
        let ratios = self
            .row_names()
            .into_iter()
            .map(|n| {
                let (kernel, smoltcp) =
                    (self.ratio(n, SystemKind::Kernel), self.ratio(n, SystemKind::Smoltcp));
                (n, JsonRatios { kernel, smoltcp })
            })
            .filter(|(_, r)| r.kernel.is_some() || r.smoltcp.is_some())
            .collect();
        let report = JsonReport { rounds: self.rounds, results, ratios: InOrder(ratios) };
        to_json(&report)
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

/// `value` as one line of JSON. serde_json fails only on maps with non-string keys or a
/// `Serialize` that errors, which the bench's and the script runner's types do not have;
/// the output stays JSON even then.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// `Report::json`'s object; fields in output order.
#[derive(Serialize)]
struct JsonReport {
    rounds: usize,
    results: Vec<JsonRow>,
    ratios: InOrder<&'static str, JsonRatios>,
}

#[derive(Serialize)]
struct JsonRow {
    workload: &'static str,
    system: &'static str,
    /// `None` (null) when no sample succeeded; serde_json also writes NaN/inf as null.
    median: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    unit: &'static str,
    failures: usize,
}

#[derive(Serialize)]
struct JsonRatios {
    #[serde(rename = "utcp/kernel", skip_serializing_if = "Option::is_none")]
    kernel: Option<f64>,
    #[serde(rename = "utcp/smoltcp", skip_serializing_if = "Option::is_none")]
    smoltcp: Option<f64>,
}

/// A JSON object whose keys keep the order of the pairs (rows in table order).
struct InOrder<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for InOrder<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
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
    fn json_writes_non_finite_values_as_null() {
        let mut r = Report::new(1);
        r.add(Workload::BulkToStack, SystemKind::Utcp, sample(Workload::BulkToStack, vec![f64::NAN]));
        r.add(Workload::BulkToStack, SystemKind::Kernel, sample(Workload::BulkToStack, vec![f64::INFINITY]));
        let v: serde_json::Value = serde_json::from_str(&r.json()).expect("valid JSON");
        for row in v["results"].as_array().unwrap() {
            assert!(row["median"].is_null() && row["min"].is_null(), "{row}");
        }
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
        assert!(j.starts_with("{\"rounds\":2,\"results\":[{\"workload\":\"bulk_to_stack\",\"system\":\"kernel\",\"median\":15.0,\"min\":10.0,\"max\":20.0,\"unit\":\"Gbit/s\",\"failures\":0}"), "{j}");
        assert!(j.contains("\"bulk_to_stack\":{\"utcp/kernel\":0.5}"), "{j}");
        assert!(j.contains("\"rr_p50\":{\"utcp/smoltcp\":0.5}"), "{j}");
        // A failed sample is null, never 0.
        assert!(
            j.contains("{\"workload\":\"connect\",\"system\":\"utcp\",\"median\":null,\"min\":null,\"max\":null,\"unit\":\"conn/s\",\"failures\":1}"),
            "{j}"
        );
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        let names: Vec<&str> = v["ratios"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["bulk_to_stack", "rr", "rr_p50", "rr_p99"], "table order: {j}");
        assert!(v["ratios"].get("connect").is_none(), "no ratio without samples: {j}");
        let t = r.table();
        assert!(t.contains("rr_p99"), "{t}");
        assert!(t.contains("utcp/smoltcp"), "{t}");
    }
}
