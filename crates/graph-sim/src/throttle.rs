//! Intune's write limit as the simulator enforces it: at most `writes` writes in any sliding
//! window of `window`, per app per tenant; the next write gets 429 with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The write limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Writes allowed in any window.
    pub writes: u32,
    /// Window length.
    pub window: Duration,
}

impl Default for ThrottleConfig {
    /// Intune's documented limit: 100 writes per 20 seconds per app per tenant.
    fn default() -> Self {
        ThrottleConfig { writes: 100, window: Duration::from_secs(20) }
    }
}

/// Arrival times of recent writes, per (tenant, app).
#[derive(Debug, Default)]
pub(crate) struct WriteThrottle {
    config: Option<ThrottleConfig>,
    arrivals: HashMap<(String, String), VecDeque<Instant>>,
}

impl WriteThrottle {
    pub fn new(config: Option<ThrottleConfig>) -> Self {
        WriteThrottle { config, arrivals: HashMap::new() }
    }

    pub fn set(&mut self, config: Option<ThrottleConfig>) {
        self.config = config;
        self.arrivals.clear();
    }

    /// Admits a write arriving at `now`, or returns how long until one would be admitted.
    /// A write counts against every window `(t - window, t]` that contains its arrival.
    pub fn admit(&mut self, tenant: &str, app: &str, now: Instant) -> Result<(), Duration> {
        let Some(config) = self.config else { return Ok(()) };
        let arrivals = self.arrivals.entry((tenant.to_string(), app.to_string())).or_default();
        while arrivals.front().is_some_and(|t| now.saturating_duration_since(*t) >= config.window) {
            arrivals.pop_front();
        }
        if arrivals.len() < config.writes as usize {
            arrivals.push_back(now);
            return Ok(());
        }
        let oldest = arrivals.front().copied().unwrap_or(now);
        Err((oldest + config.window).saturating_duration_since(now))
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_after_the_limit_waits_for_the_oldest_to_leave_the_window() {
        let mut throttle = WriteThrottle::new(Some(ThrottleConfig { writes: 3, window: Duration::from_secs(20) }));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(throttle.admit("t", "app", t0 + Duration::from_secs(i)).is_ok());
        }
        let wait = throttle.admit("t", "app", t0 + Duration::from_millis(5500)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(14500));
        assert_eq!(retry_after_secs(wait), 15);
        assert!(throttle.admit("t", "app", t0 + Duration::from_secs(20)).is_ok(), "the first write left the window");
        assert!(throttle.admit("t", "app", t0 + Duration::from_secs(20)).is_err());
    }

    #[test]
    fn each_app_in_each_tenant_has_its_own_window() {
        let mut throttle = WriteThrottle::new(Some(ThrottleConfig { writes: 1, window: Duration::from_secs(20) }));
        let now = Instant::now();
        assert!(throttle.admit("t", "a", now).is_ok());
        assert!(throttle.admit("t", "b", now).is_ok());
        assert!(throttle.admit("u", "a", now).is_ok());
        assert!(throttle.admit("t", "a", now).is_err());
    }

    #[test]
    fn no_config_means_no_limit() {
        let mut throttle = WriteThrottle::new(None);
        let now = Instant::now();
        assert!((0..1000).all(|_| throttle.admit("t", "a", now).is_ok()));
    }
}
