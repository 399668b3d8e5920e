//! When the demo's planted problems show: a cycle that repeats, so a demo
//! left running keeps telling the same story, and whose length a test can
//! shorten to get the whole story within seconds.
//!
//! Within each cycle, as fractions of its length:
//!
//! - the N+1 loop in order-service is always there (a bug shipped long ago);
//! - the slow catalog query runs from 5 % to 55 % (an index dropped by a
//!   migration, restored half a cycle later);
//! - the retry storm on payment → Stripe runs from 15 % to 50 %: its
//!   intensity rises for the first 30 % of that window, holds at its peak
//!   for 40 %, and fades over the last 30 %, as an incident does when Stripe
//!   degrades and recovers while payment-service retries without backoff.

use std::time::Duration;

/// The slow catalog query's window, as fractions of the cycle.
const SLOW_QUERY: (f64, f64) = (0.05, 0.55);
/// The retry storm's window, as fractions of the cycle.
const STORM: (f64, f64) = (0.15, 0.50);
/// Shares of the storm window spent rising and fading.
const STORM_RISE: f64 = 0.3;
const STORM_FADE: f64 = 0.3;

/// The planted problems' timetable.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    cycle: Duration,
}

/// What is going wrong at one moment of the cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Whether product-catalog's search query runs without its index.
    pub slow_catalog_query: bool,
    /// How hard the storm hits, 0 (no storm) to 1 (its peak): the chance
    /// that a payment meets a failing Stripe and retries.
    pub storm: f64,
}

impl Schedule {
    /// A schedule repeating every `cycle` (at least one second).
    pub fn new(cycle: Duration) -> Self {
        Self {
            cycle: cycle.max(Duration::from_secs(1)),
        }
    }

    pub fn cycle(&self) -> Duration {
        self.cycle
    }

    /// The phase `elapsed` after the demo started.
    pub fn phase(&self, elapsed: Duration) -> Phase {
        let cycle = self.cycle.as_secs_f64();
        let at = (elapsed.as_secs_f64() % cycle) / cycle;
        Phase {
            slow_catalog_query: (SLOW_QUERY.0..SLOW_QUERY.1).contains(&at),
            storm: storm_intensity(at),
        }
    }

    /// When the storm first peaks, after the start.
    pub fn storm_peak(&self) -> Duration {
        let (start, end) = STORM;
        self.cycle.mul_f64(start + (end - start) * STORM_RISE)
    }
}

/// The storm's intensity at `at`, a fraction of the cycle: a trapezoid.
fn storm_intensity(at: f64) -> f64 {
    let (start, end) = STORM;
    if !(start..end).contains(&at) {
        return 0.0;
    }
    let into = (at - start) / (end - start);
    if into < STORM_RISE {
        into / STORM_RISE
    } else if into > 1.0 - STORM_FADE {
        (1.0 - into) / STORM_FADE
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(schedule: &Schedule, fraction: f64) -> Phase {
        schedule.phase(schedule.cycle().mul_f64(fraction))
    }

    #[test]
    fn the_storm_rises_peaks_and_fades_within_its_window() {
        let schedule = Schedule::new(Duration::from_secs(600));
        let storm: Vec<f64> = (0..100)
            .map(|i| at(&schedule, i as f64 / 100.0).storm)
            .collect();
        assert!(storm[..15].iter().all(|&s| s == 0.0));
        assert!(storm[50..].iter().all(|&s| s == 0.0));
        // Rising, then at its peak, then fading.
        assert!(storm[16] < storm[20] && storm[20] < storm[25]);
        assert!(storm[27..39].iter().all(|&s| s == 1.0), "{storm:?}");
        assert!(storm[40] > storm[45] && storm[45] > storm[49]);
        assert!(storm.iter().all(|s| (0.0..=1.0).contains(s)));
        assert_eq!(schedule.storm_peak(), Duration::from_secs(153));
    }

    #[test]
    fn the_slow_query_has_its_window_and_the_cycle_repeats() {
        let schedule = Schedule::new(Duration::from_secs(40));
        assert!(!at(&schedule, 0.01).slow_catalog_query);
        assert!(at(&schedule, 0.1).slow_catalog_query);
        assert!(!at(&schedule, 0.6).slow_catalog_query);
        for fraction in [0.1, 0.3, 0.42, 0.7] {
            let (now, later) = (at(&schedule, fraction), at(&schedule, fraction + 3.0));
            assert_eq!(now.slow_catalog_query, later.slow_catalog_query);
            assert!((now.storm - later.storm).abs() < 1e-9, "{now:?} {later:?}");
        }
    }

    #[test]
    fn a_cycle_is_at_least_a_second() {
        assert_eq!(
            Schedule::new(Duration::ZERO).cycle(),
            Duration::from_secs(1)
        );
    }
}
