//! Time as an input. Every rule that depends on time (session expiry, lockouts,
//! 3-year terms, 6-month retention) reads a [`Clock`], so tests can walk years
//! in milliseconds with a [`SimClock`].

use std::sync::{Arc, Mutex};

pub use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// A shareable clock handle, as held by long-lived services.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The wall clock shifted by a fixed offset: drills and tests that walk a multi-year
/// lifecycle (terms, renewal windows, expiry) through the real server, which starts with
/// `SHUYU_CLOCK_OFFSET_DAYS` set and says so loudly.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset: SignedDuration,
}

impl OffsetClock {
    /// The wall clock plus `offset`.
    pub fn new(offset: SignedDuration) -> Self {
        Self { offset }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        now.saturating_add(self.offset).unwrap_or(now)
    }
}

/// A clock that only moves when told to: deterministic tests of time rules.
#[derive(Debug)]
pub struct SimClock {
    now: Mutex<Timestamp>,
}

impl SimClock {
    /// A simulated clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// A simulated clock at a fixed, arbitrary instant (2026-01-01T00:00:00Z).
    pub fn fixed() -> Self {
        Self::new(Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    /// Moves the clock forward (or backward, for a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now.saturating_add(by).unwrap_or(*now);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned lock only means another test thread panicked; the value is still valid.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

/// Milliseconds since the Unix epoch: the one way timestamps are stored.
pub fn to_millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the nearest representable instant.
pub fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_moves_only_when_told() {
        let c = SimClock::fixed();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(SignedDuration::from_hours(24 * 365));
        assert_eq!(c.now().duration_since(t0), SignedDuration::from_hours(24 * 365));
    }

    #[test]
    fn millis_round_trip() {
        let t = SimClock::fixed().now();
        assert_eq!(from_millis(to_millis(t)), t);
    }
}
