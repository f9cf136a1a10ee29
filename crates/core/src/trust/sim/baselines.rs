//! The baselines the model is compared with, each blocking by its own rule at its usual
//! threshold, on the same reports.

/// A baseline model: its name in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Block anything any source reported.
    Union,
    /// Block when at least 3 distinct sources reported it.
    KOfN,
    /// Block when reporters sit in at least 2 distinct ASNs.
    TwoAsns,
    /// CESNET NERD: (1 − 2^−events)(1 − 2^−detectors) ≥ 0.5.
    Nerd,
    /// AbuseIPDB-like: confidence = min(100, 15 · distinct reporters) ≥ 75.
    DistinctReporters,
    /// Unsupervised one-coin Dawid–Skene EM; block at posterior ≥ 0.5.
    DawidSkene,
}

impl Baseline {
    pub const ALL: [Baseline; 6] =
        [Baseline::Union, Baseline::KOfN, Baseline::TwoAsns, Baseline::Nerd, Baseline::DistinctReporters, Baseline::DawidSkene];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::Union => "union",
            Baseline::KOfN => "k-of-n",
            Baseline::TwoAsns => "two-asns",
            Baseline::Nerd => "nerd",
            Baseline::DistinctReporters => "distinct-reporters",
            Baseline::DawidSkene => "dawid-skene",
        }
    }

    /// The counting baselines' (score, blocked) from an indicator's counts. Dawid–Skene is
    /// computed over all indicators at once by [`dawid_skene`].
    pub fn counting(self, sources: u32, asns: u32, events: u32) -> (f64, bool) {
        match self {
            Baseline::Union => (f64::from(sources), sources >= 1),
            Baseline::KOfN => (f64::from(sources), sources >= 3),
            Baseline::TwoAsns => (f64::from(asns), asns >= 2),
            Baseline::Nerd => {
                let s = (1.0 - 0.5f64.powi(events as i32)) * (1.0 - 0.5f64.powi(sources as i32));
                (s, s >= 0.5)
            }
            Baseline::DistinctReporters => {
                let c = (15.0 * f64::from(sources)).min(100.0);
                (c + f64::from(sources) * 1e-3, c >= 75.0)
            }
            Baseline::DawidSkene => (0.0, false),
        }
    }
}

/// One-coin Dawid–Skene: every source has a sensitivity and a false-positive rate, every item a
/// latent label; a source that did not report an item said "benign". `reporters[i]` lists the
/// sources that reported item i. Returns P(malicious) per item.
pub fn dawid_skene(reporters: &[Vec<u32>], n_sources: usize, iterations: usize) -> Vec<f64> {
    let n = reporters.len();
    // Initialise from the reporter count (majority-style): 2+ reporters looks malicious.
    let mut q: Vec<f64> = reporters.iter().map(|r| if r.len() >= 2 { 0.9 } else { 0.2 }).collect();
    let mut sens = vec![0.5; n_sources];
    let mut fpr = vec![0.1; n_sources];
    for _ in 0..iterations {
        let total_q: f64 = q.iter().sum();
        let total_nq = n as f64 - total_q;
        let mut rq = vec![0.0; n_sources];
        let mut rnq = vec![0.0; n_sources];
        for (i, r) in reporters.iter().enumerate() {
            for &s in r {
                rq[s as usize] += q[i];
                rnq[s as usize] += 1.0 - q[i];
            }
        }
        for s in 0..n_sources {
            sens[s] = (rq[s] + 1.0) / (total_q + 2.0);
            fpr[s] = (rnq[s] + 1.0) / (total_nq + 2.0);
        }
        let pi = ((total_q + 1.0) / (n as f64 + 2.0)).clamp(1e-6, 1.0 - 1e-6);
        let base: f64 = (pi / (1.0 - pi)).ln() + (0..n_sources).map(|s| ((1.0 - sens[s]) / (1.0 - fpr[s])).ln()).sum::<f64>();
        let gain: Vec<f64> =
            (0..n_sources).map(|s| (sens[s] / fpr[s]).ln() - ((1.0 - sens[s]) / (1.0 - fpr[s])).ln()).collect();
        for (i, r) in reporters.iter().enumerate() {
            let l = base + r.iter().map(|&s| gain[s as usize]).sum::<f64>();
            q[i] = 1.0 / (1.0 + (-l).exp());
        }
    }
    q
}
