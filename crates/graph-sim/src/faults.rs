//! Seeded fault injection: latency, 503/504/429 responses, 429 or 503 storms, and connections
//! dropped before a request is handled or after a write was applied.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which faults to inject into Graph API calls (the token endpoint is never faulted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Seed of the fault generator: the same seed and request sequence give the same faults.
    pub seed: u64,
    /// Added latency per request, drawn uniformly from `latency_min_ms..=latency_max_ms`.
    pub latency_min_ms: u64,
    /// See `latency_min_ms`.
    pub latency_max_ms: u64,
    /// Share of requests answered 503 before they are handled.
    pub rate_503: f64,
    /// Share of applied writes answered 504 (the gateway timed out, but the write happened).
    pub rate_504: f64,
    /// Share of requests answered 429 before they are handled.
    pub rate_429: f64,
    /// `Retry-After` on injected 429 and 503 answers; none when unset.
    pub retry_after_secs: Option<u64>,
    /// Share of requests whose connection is dropped before they are handled.
    pub drop_rate: f64,
    /// Share of successful writes whose connection is dropped after the write was applied.
    pub drop_after_write_rate: f64,
    /// A storm: the next `requests` API calls all fail with `status`.
    pub storm: Option<Storm>,
}

/// A run of consecutive failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Storm {
    /// 429, 503 or 504.
    pub status: u16,
    /// How many consecutive API calls fail.
    pub requests: u32,
    /// `Retry-After` sent with each failure; none when unset.
    pub retry_after_secs: Option<u64>,
}

/// What happens to a request before it is handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Before {
    Handle,
    Drop,
    Fail { status: u16, retry_after_secs: Option<u64>, cause: &'static str },
}

/// What happens to a successful write after it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum After {
    Answer,
    Drop,
    GatewayTimeout,
}

/// The fault generator.
#[derive(Debug)]
pub(crate) struct FaultState {
    config: FaultConfig,
    rng: StdRng,
    storm_left: u32,
}

impl FaultState {
    pub fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        let storm_left = config.storm.as_ref().map_or(0, |s| s.requests);
        FaultState { config, rng, storm_left }
    }

    /// Latency to add and the fate of a request before handling.
    pub fn before(&mut self) -> (Duration, Before) {
        let latency = if self.config.latency_max_ms > 0 {
            let low = self.config.latency_min_ms.min(self.config.latency_max_ms);
            Duration::from_millis(self.rng.random_range(low..=self.config.latency_max_ms))
        } else {
            Duration::ZERO
        };
        if self.storm_left > 0
            && let Some(storm) = &self.config.storm
        {
            self.storm_left -= 1;
            let fate = Before::Fail { status: storm.status, retry_after_secs: storm.retry_after_secs, cause: "storm" };
            return (latency, fate);
        }
        let retry_after_secs = self.config.retry_after_secs;
        let fate = if self.roll(self.config.drop_rate) {
            Before::Drop
        } else if self.roll(self.config.rate_503) {
            Before::Fail { status: 503, retry_after_secs, cause: "injected-503" }
        } else if self.roll(self.config.rate_429) {
            Before::Fail { status: 429, retry_after_secs, cause: "injected-429" }
        } else {
            Before::Handle
        };
        (latency, fate)
    }

    /// The fate of a write that was applied.
    pub fn after_write(&mut self) -> After {
        if self.roll(self.config.drop_after_write_rate) {
            After::Drop
        } else if self.roll(self.config.rate_504) {
            After::GatewayTimeout
        } else {
            After::Answer
        }
    }

    fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config =
            FaultConfig { seed: 7, rate_503: 0.3, drop_rate: 0.1, latency_max_ms: 5, ..FaultConfig::default() };
        let run = |config: &FaultConfig| {
            let mut faults = FaultState::new(config.clone());
            (0..200).map(|_| faults.before()).collect::<Vec<_>>()
        };
        assert_eq!(run(&config), run(&config));
        let failures = run(&config).iter().filter(|(_, f)| *f != Before::Handle).count();
        assert!((40..120).contains(&failures), "about 37% of 200 fail, got {failures}");
    }

    #[test]
    fn a_storm_fails_exactly_its_length_then_stops() {
        let storm = Storm { status: 429, requests: 3, retry_after_secs: None };
        let mut faults = FaultState::new(FaultConfig { storm: Some(storm), ..FaultConfig::default() });
        let fates: Vec<Before> = (0..5).map(|_| faults.before().1).collect();
        assert!(fates[..3].iter().all(|f| matches!(f, Before::Fail { status: 429, retry_after_secs: None, .. })));
        assert_eq!(&fates[3..], &[Before::Handle, Before::Handle]);
    }

    #[test]
    fn no_config_injects_nothing() {
        let mut faults = FaultState::new(FaultConfig::default());
        assert!((0..100).all(|_| faults.before() == (Duration::ZERO, Before::Handle)));
        assert!((0..100).all(|_| faults.after_write() == After::Answer));
    }
}
