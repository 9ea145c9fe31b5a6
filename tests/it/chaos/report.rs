//! What a scenario (or a whole soak) found: counts, worst cases and the
//! violations, merged across rounds and printed as one paragraph.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::faults::Kind;
use super::ms;
use crate::support::percentile;

/// Counts, worst cases and violations of one scenario (or many, merged).
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub runs: usize,
    pub sections: usize,
    pub exits: BTreeMap<String, usize>,
    pub lost: usize,
    pub term_ignoring_killed: usize,
    pub stale_rejections: usize,
    pub overlaps_promised: usize,
    pub overlaps_frozen: usize,
    pub overlaps_data_loss: usize,
    /// Sections that began within AMBIGUOUS_NS of a data loss.
    pub epoch_ambiguous: usize,
    /// Writes the resource refused because of a section of uncertain epoch
    /// (a token the old incarnation granted, written just after the
    /// restart): a data loss, not promised.
    pub refused_data_loss: usize,
    pub lease_checked: usize,
    pub lease_unverifiable: usize,
    /// Smallest margin between a stopped command's death and the lower
    /// bound of its lease's expiry (leases that ran out, not removed ones).
    pub min_lease_slack_ns: Option<i64>,
    /// Locks still in Redis after their run exited, while a fault excused it.
    pub left_behind_excused: usize,
    pub handovers: Vec<u64>,
    /// The slowest clean hand-over, and between which sections.
    pub worst_handover: Option<(u64, String)>,
    pub max_gap_ns: u64,
    pub min_separation_ns: Option<i64>,
    pub faults: BTreeMap<Kind, usize>,
    pub restarts_survived: usize,
    pub duration_ns: u64,
    pub violations: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, o: Report) {
        self.runs += o.runs;
        self.sections += o.sections;
        for (k, v) in o.exits {
            *self.exits.entry(k).or_default() += v;
        }
        self.lost += o.lost;
        self.term_ignoring_killed += o.term_ignoring_killed;
        self.stale_rejections += o.stale_rejections;
        self.overlaps_promised += o.overlaps_promised;
        self.overlaps_frozen += o.overlaps_frozen;
        self.overlaps_data_loss += o.overlaps_data_loss;
        self.epoch_ambiguous += o.epoch_ambiguous;
        self.refused_data_loss += o.refused_data_loss;
        self.lease_checked += o.lease_checked;
        self.lease_unverifiable += o.lease_unverifiable;
        self.left_behind_excused += o.left_behind_excused;
        self.min_lease_slack_ns = match (self.min_lease_slack_ns, o.min_lease_slack_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.handovers.extend(o.handovers);
        if let Some((g, w)) = o.worst_handover {
            if self
                .worst_handover
                .as_ref()
                .is_none_or(|(mine, _)| *mine < g)
            {
                self.worst_handover = Some((g, w));
            }
        }
        self.max_gap_ns = self.max_gap_ns.max(o.max_gap_ns);
        self.min_separation_ns = match (self.min_separation_ns, o.min_separation_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in o.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.restarts_survived += o.restarts_survived;
        self.duration_ns += o.duration_ns;
        self.violations.extend(o.violations);
    }

    pub fn handover_ms(&self, q: f64) -> f64 {
        let mut h = self.handovers.clone();
        h.sort_unstable();
        if h.is_empty() {
            return 0.0;
        }
        ms(percentile(&h, q))
    }

    /// One paragraph for a scenario's output.
    pub fn summary(&self, name: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "chaos {name}: {} runs, {} sections in {:.1} s; exits {:?}",
            self.runs,
            self.sections,
            self.duration_ns as f64 / 1e9,
            self.exits
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k:?} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "  faults: {}; term-ignoring commands SIGKILLed: {}; held locks seen to survive \
             a restart: {}",
            faults.join(", "),
            self.term_ignoring_killed,
            self.restarts_survived
        );
        let _ = writeln!(
            s,
            "  lost leases (70): {}; lease deadline checks: {} ok (min slack {}), \
             {} unverifiable; stale-token rejections: {}; locks left behind during a fault: {}",
            self.lost,
            self.lease_checked,
            self.min_lease_slack_ns
                .map_or("–".into(), |s| format!("{:.1} ms", s as f64 / 1e6)),
            self.lease_unverifiable,
            self.stale_rejections,
            self.left_behind_excused
        );
        let _ = writeln!(
            s,
            "  overlaps: {} where promised, {} with a frozen holder, {} across a data loss \
             ({} sections of uncertain epoch, {} writes refused because of one)",
            self.overlaps_promised,
            self.overlaps_frozen,
            self.overlaps_data_loss,
            self.epoch_ambiguous,
            self.refused_data_loss
        );
        let _ = writeln!(
            s,
            "  hand-over (release -> next start): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             over {}; max gap {:.1} ms; min separation {:.2} ms",
            self.handover_ms(0.5),
            self.handover_ms(0.99),
            self.handover_ms(1.0),
            self.handovers.len(),
            ms(self.max_gap_ns),
            self.min_separation_ns.unwrap_or(0) as f64 / 1e6
        );
        if let Some((g, w)) = &self.worst_handover {
            let _ = writeln!(s, "  slowest clean hand-over: {:.2} ms, {w}", ms(*g));
        }
        if !self.violations.is_empty() {
            let _ = writeln!(s, "  VIOLATIONS ({}):", self.violations.len());
            for v in self.violations.iter().take(20) {
                let _ = writeln!(s, "   - {v}");
            }
        }
        s
    }

    /// Print the summary; fail with it if any guarantee was broken.
    pub fn assert_clean(&self, name: &str) {
        let s = self.summary(name);
        eprintln!("{s}");
        assert!(self.violations.is_empty(), "{s}");
    }

    /// That the scenario tested something: at least `sections` sections
    /// ran; with `lost`, leases were lost and their kills were checked
    /// against the lease (few left unverifiable: at most one in four, plus
    /// one); every empty restart's holder was observed (no section of
    /// uncertain epoch, compared with nobody).
    pub fn assert_effective(&self, name: &str, sections: usize, lost: bool) {
        let s = self.summary(name);
        assert!(
            self.sections >= sections,
            "{name}: {} sections, fewer than {sections}: the scenario tested little\n{s}",
            self.sections
        );
        if lost {
            assert!(
                self.lost > 0 && self.lease_checked > 0,
                "{name}: no lease lost ({}) or no kill checked against its lease ({}): \
                 the faults missed\n{s}",
                self.lost,
                self.lease_checked
            );
        }
        assert!(
            self.lease_unverifiable <= self.lease_checked / 4 + 1,
            "{name}: {} lease checks unverifiable against {} verified\n{s}",
            self.lease_unverifiable,
            self.lease_checked
        );
        assert_eq!(
            self.epoch_ambiguous, 0,
            "{name}: sections of uncertain epoch (an empty restart's holder not observed)\n{s}"
        );
    }
}
