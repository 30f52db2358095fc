//! Prometheus metrics of the controller: runs by phase and outcome, phase and run durations,
//! Graph requests by status, throttling waits, reconcile errors — rendered for `/metrics`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use restore_graph::GraphStats;

/// Distinct (namespace, tenant) label pairs exported; later pairs are counted under
/// [`OVERFLOW_LABEL`] so a cluster with many tenants cannot grow the series without bound.
pub const MAX_RUN_LABEL_SETS: usize = 200;
/// The namespace and tenant label of runs beyond [`MAX_RUN_LABEL_SETS`].
pub const OVERFLOW_LABEL: &str = "_other";
/// Longest namespace or tenant label value (longer values are cut).
const MAX_LABEL_CHARS: usize = 63;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RunPhaseLabel {
    namespace: String,
    tenant: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunOutcomeLabel {
    namespace: String,
    tenant: String,
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

/// Which run a metric is about: its namespace and its IntuneTenant's name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RunLabels {
    /// The run's namespace.
    pub namespace: String,
    /// `spec.tenantRef.name`.
    pub tenant: String,
}

/// One cached RestoreRun at scrape time.
#[derive(Clone, Copy, Debug)]
pub struct RunSample<'a> {
    /// The run's uid (tracks how long it has been in its phase).
    pub uid: &'a str,
    /// The run's namespace.
    pub namespace: &'a str,
    /// `spec.tenantRef.name`.
    pub tenant: &'a str,
    /// `status.phase` (`Pending` when unset).
    pub phase: &'a str,
}

/// Buckets of a wizard phase's duration, seconds.
const PHASE_BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0];
/// Buckets of a run's duration from creation to its outcome (it includes the human approval).
const RUN_BUCKETS: [f64; 10] =
    [10.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0, 86400.0, 3.0 * 86400.0, 7.0 * 86400.0];

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// Mutable bookkeeping behind the lock.
#[derive(Default)]
struct State {
    /// The (namespace, tenant) pairs given their own labels so far.
    label_sets: HashSet<RunLabels>,
    /// Per run uid: the phase it was last seen in and since when.
    seen: HashMap<String, (String, Instant)>,
}

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    runs_by_phase: Family<RunPhaseLabel, Gauge>,
    oldest_in_phase: Family<RunPhaseLabel, FloatGauge>,
    runs_finished: Family<RunOutcomeLabel, Counter>,
    phase_seconds: Family<PhaseLabel, Histogram>,
    run_seconds: Family<RunOutcomeLabel, Histogram>,
    reconcile_errors: Family<KindLabel, Counter>,
    graph_requests: Family<RequestLabel, Counter>,
    throttle_waits: Counter,
    throttle_wait_seconds: FloatCounter,
    pacing_waits: Counter,
    graph: GraphStats,
    state: Mutex<State>,
}

impl Metrics {
    /// Registers every metric; `graph` is the stats shared by all Graph clients.
    pub fn new(graph: GraphStats) -> Self {
        let mut registry = Registry::with_prefix("restore_operator");
        let runs_by_phase = Family::<RunPhaseLabel, Gauge>::default();
        registry.register("restoreruns", "RestoreRuns by namespace, tenant and phase", runs_by_phase.clone());
        let oldest_in_phase = Family::<RunPhaseLabel, FloatGauge>::default();
        registry.register(
            "restoreruns_oldest_in_phase_seconds",
            "Seconds the longest-waiting RestoreRun has been in its phase (since this leader saw it enter)",
            oldest_in_phase.clone(),
        );
        let runs_finished = Family::<RunOutcomeLabel, Counter>::default();
        registry.register(
            "restoreruns_finished",
            "RestoreRuns that reached a terminal phase, by namespace, tenant and outcome",
            runs_finished.clone(),
        );
        let phase_seconds =
            Family::<PhaseLabel, Histogram>::new_with_constructor(|| Histogram::new(PHASE_BUCKETS.iter().copied()));
        registry.register("phase_duration_seconds", "Time spent in a wizard phase", phase_seconds.clone());
        let run_seconds =
            Family::<RunOutcomeLabel, Histogram>::new_with_constructor(|| Histogram::new(RUN_BUCKETS.iter().copied()));
        registry.register(
            "restorerun_duration_seconds",
            "Time from a RestoreRun's creation to its terminal phase",
            run_seconds.clone(),
        );
        let reconcile_errors = Family::<KindLabel, Counter>::default();
        registry.register("reconcile_errors", "Reconcile errors by resource kind", reconcile_errors.clone());
        let graph_requests = Family::<RequestLabel, Counter>::default();
        registry.register("graph_requests", "Microsoft Graph requests by method and status", graph_requests.clone());
        let throttle_waits = Counter::default();
        registry.register("graph_throttle_waits", "Waits after 429 or retryable failures", throttle_waits.clone());
        let throttle_wait_seconds = FloatCounter::default();
        registry.register(
            "graph_throttle_wait_seconds",
            "Seconds waited after 429 or retryable failures",
            throttle_wait_seconds.clone(),
        );
        let pacing_waits = Counter::default();
        registry.register(
            "graph_pacing_waits",
            "Writes that waited for the tenant's write budget",
            pacing_waits.clone(),
        );
        Metrics {
            registry,
            runs_by_phase,
            oldest_in_phase,
            runs_finished,
            phase_seconds,
            run_seconds,
            reconcile_errors,
            graph_requests,
            throttle_waits,
            throttle_wait_seconds,
            pacing_waits,
            graph,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A run moved from `from` (entered `seconds` ago) to `to` (no namespace/tenant labels;
    /// see [`Metrics::run_phase_changed`]).
    pub fn phase_changed(&self, from: Option<&str>, seconds: Option<f64>, to: &str, terminal: bool) {
        self.run_phase_changed(&RunLabels::default(), from, seconds, to, terminal, None);
    }

    /// A run of `run` moved from `from` (entered `seconds` ago) to `to`; on a terminal phase,
    /// `run_seconds` (creation to now) goes into the run-duration histogram.
    pub fn run_phase_changed(
        &self,
        run: &RunLabels,
        from: Option<&str>,
        seconds: Option<f64>,
        to: &str,
        terminal: bool,
        run_seconds: Option<f64>,
    ) {
        if let (Some(from), Some(seconds)) = (from, seconds) {
            self.phase_seconds.get_or_create(&PhaseLabel { phase: from.into() }).observe(seconds);
        }
        if terminal {
            let (namespace, tenant) = self.bounded(&mut self.state(), &run.namespace, &run.tenant);
            let label = RunOutcomeLabel { namespace, tenant, outcome: to.into() };
            self.runs_finished.get_or_create(&label).inc();
            if let Some(seconds) = run_seconds {
                self.run_seconds.get_or_create(&label).observe(seconds);
            }
        }
    }

    /// A reconcile of `kind` failed.
    pub fn reconcile_error(&self, kind: &str) {
        self.reconcile_errors.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    /// The label values of a run: cut to [`MAX_LABEL_CHARS`], and [`OVERFLOW_LABEL`] once
    /// [`MAX_RUN_LABEL_SETS`] pairs are in use.
    fn bounded(&self, state: &mut State, namespace: &str, tenant: &str) -> (String, String) {
        let key = RunLabels {
            namespace: namespace.chars().take(MAX_LABEL_CHARS).collect(),
            tenant: tenant.chars().take(MAX_LABEL_CHARS).collect(),
        };
        if state.label_sets.contains(&key) || state.label_sets.len() < MAX_RUN_LABEL_SETS {
            state.label_sets.insert(key.clone());
            (key.namespace, key.tenant)
        } else {
            (OVERFLOW_LABEL.into(), OVERFLOW_LABEL.into())
        }
    }

    /// The text exposition, counting `phases` (one per cached run) without namespace/tenant
    /// labels; see [`Metrics::render_runs`].
    pub fn render<'a>(&self, phases: impl IntoIterator<Item = &'a str>) -> String {
        let phases: Vec<&str> = phases.into_iter().collect();
        let uids: Vec<String> = (0..phases.len()).map(|i| format!("unlabelled-{i}")).collect();
        self.render_runs(phases.iter().zip(&uids).map(|(phase, uid)| RunSample {
            uid,
            namespace: "",
            tenant: "",
            phase,
        }))
    }

    /// The text exposition, with the Graph counters refreshed and `runs` (every RestoreRun the
    /// controller's cache holds) counted by namespace, tenant and phase.
    pub fn render_runs<'a>(&self, runs: impl IntoIterator<Item = RunSample<'a>>) -> String {
        let mut state = self.state();
        let now = Instant::now();
        let mut counts: BTreeMap<RunPhaseLabel, (i64, f64)> = BTreeMap::new();
        let mut live = HashSet::new();
        for run in runs {
            live.insert(run.uid.to_string());
            let since = match state.seen.get(run.uid) {
                Some((phase, since)) if phase == run.phase => *since,
                _ => {
                    state.seen.insert(run.uid.to_string(), (run.phase.to_string(), now));
                    now
                }
            };
            let (namespace, tenant) = self.bounded(&mut state, run.namespace, run.tenant);
            let entry = counts.entry(RunPhaseLabel { namespace, tenant, phase: run.phase.into() }).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(now.duration_since(since).as_secs_f64());
        }
        state.seen.retain(|uid, _| live.contains(uid));
        let label_sets: Vec<(String, String)> = {
            let mut pairs: Vec<_> = counts.keys().map(|l| (l.namespace.clone(), l.tenant.clone())).collect();
            pairs.dedup();
            pairs
        };
        self.runs_by_phase.clear();
        self.oldest_in_phase.clear();
        // Every phase has a series (0 when empty) for each namespace/tenant with runs, and
        // for the unlabelled set when there is no run at all.
        let label_sets = if label_sets.is_empty() { vec![(String::new(), String::new())] } else { label_sets };
        for (namespace, tenant) in &label_sets {
            for phase in PHASES {
                let label = RunPhaseLabel { namespace: namespace.clone(), tenant: tenant.clone(), phase: phase.into() };
                let (count, oldest) = counts.get(&label).copied().unwrap_or((0, 0.0));
                self.runs_by_phase.get_or_create(&label).set(count);
                if count > 0 {
                    self.oldest_in_phase.get_or_create(&label).set(oldest);
                }
            }
        }
        self.refresh_graph_counters();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// An exposition in which every family has a series (families without one print nothing),
    /// so tests can check alert and dashboard queries against the names the binary exports.
    pub fn sample_exposition() -> String {
        let m = Metrics::new(GraphStats::default());
        let run = RunLabels { namespace: "ns".into(), tenant: "tenant".into() };
        m.run_phase_changed(&run, Some("Executing"), Some(1.0), "Succeeded", true, Some(60.0));
        m.reconcile_error("RestoreRun");
        m.graph_requests.get_or_create(&RequestLabel { method: "GET".into(), status: "200".into() }).inc();
        m.render_runs([RunSample { uid: "1", namespace: "ns", tenant: "tenant", phase: "AwaitingConfirmation" }])
    }

    /// The series names of an exposition (`name`, `name_total`, `name_bucket`, …).
    pub fn series_names(exposition: &str) -> BTreeSet<String> {
        exposition
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    /// Brings the counters up to the cumulative Graph statistics (they only grow).
    fn refresh_graph_counters(&self) {
        let snapshot = self.graph.snapshot();
        for r in &snapshot.requests {
            let counter =
                self.graph_requests.get_or_create(&RequestLabel { method: r.method.clone(), status: r.status.clone() });
            counter.inc_by(r.count.saturating_sub(counter.get()));
        }
        self.throttle_waits.inc_by(snapshot.throttle_waits.saturating_sub(self.throttle_waits.get()));
        let waited = snapshot.throttle_wait_seconds - self.throttle_wait_seconds.get();
        if waited > 0.0 {
            self.throttle_wait_seconds.inc_by(waited);
        }
        self.pacing_waits.inc_by(snapshot.pacing_waits.saturating_sub(self.pacing_waits.get()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(namespace: &str, tenant: &str) -> RunLabels {
        RunLabels { namespace: namespace.into(), tenant: tenant.into() }
    }

    fn sample<'a>(uid: &'a str, namespace: &'a str, tenant: &'a str, phase: &'a str) -> RunSample<'a> {
        RunSample { uid, namespace, tenant, phase }
    }

    #[test]
    fn exposition_carries_runs_phases_and_errors() {
        let m = Metrics::new(GraphStats::default());
        m.phase_changed(None, None, "Pending", false);
        m.phase_changed(Some("Pending"), Some(0.2), "Succeeded", true);
        m.reconcile_error("RestoreRun");
        let text = m.render(["Succeeded", "Previewed", "Succeeded"]);
        assert!(
            text.contains("restore_operator_restoreruns{namespace=\"\",tenant=\"\",phase=\"Succeeded\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("restore_operator_restoreruns{namespace=\"\",tenant=\"\",phase=\"Executing\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(
                "restore_operator_restoreruns_finished_total{namespace=\"\",tenant=\"\",outcome=\"Succeeded\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("restore_operator_phase_duration_seconds_count{phase=\"Pending\"} 1"), "{text}");
        assert!(text.contains("restore_operator_reconcile_errors_total{kind=\"RestoreRun\"} 1"), "{text}");
        assert!(text.contains("restore_operator_graph_throttle_waits_total 0"), "{text}");
    }

    #[test]
    fn counters_are_exported_as_counters() {
        let text = Metrics::sample_exposition();
        for name in [
            "restoreruns_finished",
            "reconcile_errors",
            "graph_requests",
            "graph_throttle_waits",
            "graph_throttle_wait_seconds",
            "graph_pacing_waits",
        ] {
            assert!(text.contains(&format!("# TYPE restore_operator_{name} counter")), "{name}: {text}");
        }
        assert!(text.contains("# TYPE restore_operator_restoreruns gauge"), "{text}");
        assert!(text.contains("# TYPE restore_operator_restoreruns_oldest_in_phase_seconds gauge"), "{text}");
        assert!(text.contains("# TYPE restore_operator_phase_duration_seconds histogram"), "{text}");
        assert!(text.contains("# TYPE restore_operator_restorerun_duration_seconds histogram"), "{text}");
        let names = Metrics::series_names(&text);
        assert!(names.contains("restore_operator_graph_requests_total"), "{names:?}");
        assert!(names.contains("restore_operator_restorerun_duration_seconds_bucket"), "{names:?}");
    }

    #[test]
    fn runs_are_labelled_by_namespace_and_tenant_with_a_run_duration() {
        let m = Metrics::new(GraphStats::default());
        m.run_phase_changed(&labels("team-a", "contoso"), Some("Executing"), Some(3.0), "Failed", true, Some(4000.0));
        let text = m.render_runs([
            sample("1", "team-a", "contoso", "AwaitingConfirmation"),
            sample("2", "team-b", "fabrikam", "Previewed"),
        ]);
        assert!(
            text.contains(
                "restore_operator_restoreruns{namespace=\"team-a\",tenant=\"contoso\",phase=\"AwaitingConfirmation\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "restore_operator_restoreruns{namespace=\"team-b\",tenant=\"fabrikam\",phase=\"Previewed\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("restore_operator_restorerun_duration_seconds_count{namespace=\"team-a\",tenant=\"contoso\",outcome=\"Failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "restore_operator_restorerun_duration_seconds_bucket{le=\"3600.0\",namespace=\"team-a\",tenant=\"contoso\",outcome=\"Failed\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("restore_operator_restoreruns_oldest_in_phase_seconds{namespace=\"team-a\",tenant=\"contoso\",phase=\"AwaitingConfirmation\"}"),
            "{text}"
        );
    }

    #[test]
    fn label_cardinality_is_bounded() {
        let m = Metrics::new(GraphStats::default());
        let names: Vec<String> = (0..MAX_RUN_LABEL_SETS + 50).map(|i| format!("ns-{i}")).collect();
        let text = m.render_runs(names.iter().map(|n| sample(n, n, "t", "Previewed")));
        let label_sets: HashSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("restore_operator_restoreruns{"))
            .filter_map(|l| l.split(",phase=").next())
            .collect();
        assert_eq!(label_sets.len(), MAX_RUN_LABEL_SETS + 1, "200 pairs plus the overflow set");
        assert!(
            text.contains(
                "restore_operator_restoreruns{namespace=\"_other\",tenant=\"_other\",phase=\"Previewed\"} 50"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_phase_that_ends_drops_its_series() {
        let m = Metrics::new(GraphStats::default());
        let first = m.render_runs([sample("1", "a", "t", "AwaitingConfirmation")]);
        assert!(first.contains("oldest_in_phase_seconds{namespace=\"a\",tenant=\"t\",phase=\"AwaitingConfirmation\"}"));
        let second = m.render_runs([sample("1", "a", "t", "Executing")]);
        assert!(!second.contains("phase=\"AwaitingConfirmation\"} 1"), "{second}");
        assert!(
            !second.contains("oldest_in_phase_seconds{namespace=\"a\",tenant=\"t\",phase=\"AwaitingConfirmation\"}"),
            "{second}"
        );
    }
}
