//! Prometheus metrics of the controller: runs by phase and outcome, phase durations, Graph
//! requests by status, throttling waits, reconcile errors — rendered for `/metrics`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use restore_graph::GraphStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    method: String,
    status: String,
}

/// Every phase name, so each has a series even at zero.
const PHASES: [&str; 12] = [
    "Pending",
    "ResolvingSource",
    "Scoping",
    "Checking",
    "Previewing",
    "Previewed",
    "Blocked",
    "AwaitingConfirmation",
    "Executing",
    "Succeeded",
    "PartiallySucceeded",
    "Failed",
];

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    runs_by_phase: Family<PhaseLabel, Gauge>,
    runs_finished: Family<OutcomeLabel, Counter>,
    phase_seconds: Family<PhaseLabel, Histogram>,
    reconcile_errors: Family<KindLabel, Counter>,
    graph_requests: Family<RequestLabel, Gauge>,
    throttle_waits: Gauge,
    throttle_wait_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pacing_waits: Gauge,
    graph: GraphStats,
    lock: Mutex<()>,
}

impl Metrics {
    /// Registers every metric; `graph` is the stats shared by all Graph clients.
    pub fn new(graph: GraphStats) -> Self {
        let mut registry = Registry::with_prefix("restore_operator");
        let runs_by_phase = Family::<PhaseLabel, Gauge>::default();
        registry.register("restoreruns", "RestoreRuns by phase", runs_by_phase.clone());
        let runs_finished = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "restoreruns_finished",
            "RestoreRuns that reached a terminal phase, by outcome",
            runs_finished.clone(),
        );
        let phase_seconds = Family::<PhaseLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0])
        });
        registry.register("phase_duration_seconds", "Time spent in a wizard phase", phase_seconds.clone());
        let reconcile_errors = Family::<KindLabel, Counter>::default();
        registry.register("reconcile_errors", "Reconcile errors by resource kind", reconcile_errors.clone());
        let graph_requests = Family::<RequestLabel, Gauge>::default();
        registry.register("graph_requests", "Microsoft Graph requests by method and status", graph_requests.clone());
        let throttle_waits = Gauge::default();
        registry.register("graph_throttle_waits", "Waits after 429 or retryable failures", throttle_waits.clone());
        let throttle_wait_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "graph_throttle_wait_seconds",
            "Seconds waited after 429 or retryable failures",
            throttle_wait_seconds.clone(),
        );
        let pacing_waits = Gauge::default();
        registry.register(
            "graph_pacing_waits",
            "Writes that waited for the tenant's write budget",
            pacing_waits.clone(),
        );
        Metrics {
            registry,
            runs_by_phase,
            runs_finished,
            phase_seconds,
            reconcile_errors,
            graph_requests,
            throttle_waits,
            throttle_wait_seconds,
            pacing_waits,
            graph,
            lock: Mutex::new(()),
        }
    }

    /// A run moved from `from` (entered `seconds` ago) to `to`.
    pub fn phase_changed(&self, from: Option<&str>, seconds: Option<f64>, to: &str, terminal: bool) {
        if let (Some(from), Some(seconds)) = (from, seconds) {
            self.phase_seconds.get_or_create(&PhaseLabel { phase: from.into() }).observe(seconds);
        }
        if terminal {
            self.runs_finished.get_or_create(&OutcomeLabel { outcome: to.into() }).inc();
        }
    }

    /// A reconcile of `kind` failed.
    pub fn reconcile_error(&self, kind: &str) {
        self.reconcile_errors.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    /// The text exposition, with the Graph counters refreshed and the runs counted by phase
    /// (`phases`: the phase of every RestoreRun the controller's cache holds).
    pub fn render<'a>(&self, phases: impl IntoIterator<Item = &'a str>) -> String {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut counts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for phase in phases {
            *counts.entry(phase).or_insert(0) += 1;
        }
        for phase in PHASES {
            let count = counts.get(phase).copied().unwrap_or(0);
            self.runs_by_phase.get_or_create(&PhaseLabel { phase: phase.to_string() }).set(count);
        }
        let snapshot = self.graph.snapshot();
        for r in &snapshot.requests {
            let label = RequestLabel { method: r.method.clone(), status: r.status.clone() };
            self.graph_requests.get_or_create(&label).set(i64::try_from(r.count).unwrap_or(i64::MAX));
        }
        self.throttle_waits.set(i64::try_from(snapshot.throttle_waits).unwrap_or(i64::MAX));
        self.throttle_wait_seconds.set(snapshot.throttle_wait_seconds);
        self.pacing_waits.set(i64::try_from(snapshot.pacing_waits).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_runs_phases_and_errors() {
        let m = Metrics::new(GraphStats::default());
        m.phase_changed(None, None, "Pending", false);
        m.phase_changed(Some("Pending"), Some(0.2), "Succeeded", true);
        m.reconcile_error("RestoreRun");
        let text = m.render(["Succeeded", "Previewed", "Succeeded"]);
        assert!(text.contains("restore_operator_restoreruns{phase=\"Succeeded\"} 2"), "{text}");
        assert!(text.contains("restore_operator_restoreruns{phase=\"Executing\"} 0"), "{text}");
        assert!(text.contains("restore_operator_restoreruns_finished_total{outcome=\"Succeeded\"} 1"), "{text}");
        assert!(text.contains("restore_operator_phase_duration_seconds_count{phase=\"Pending\"} 1"), "{text}");
        assert!(text.contains("restore_operator_reconcile_errors_total{kind=\"RestoreRun\"} 1"), "{text}");
        assert!(text.contains("restore_operator_graph_throttle_waits 0"), "{text}");
    }
}
