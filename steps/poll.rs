//! One bounded wait for real state: probe, and probe again after `interval` until the probe
//! finds what it waits for or `bound` has passed. An interruption (Ctrl-C, SIGTERM) ends the
//! wait at once. Every wait for the host to catch up (a map to appear, a port to go Active,
//! a partition node to hold still) goes through here instead of sleeping a fixed time.
//! Each look after the first forgets the host's reusable probe outputs
//! ([`Host::forget`]): a wait sees the host as it is now.

use std::time::{Duration, Instant};

use crate::steps::{Host, HostError, StepError};

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Give up after this long.
    pub bound: Duration,
    /// Look again after this long.
    pub interval: Duration,
}

impl Wait {
    /// A wait of `bound`, looking every `interval`.
    pub const fn new(bound: Duration, interval: Duration) -> Self {
        Wait { bound, interval }
    }
}

/// Probe until it returns `Some`, or `wait.bound` passes (`Ok(None)`: the caller says what
/// did not happen). The probe runs at least once; a probe error ends the wait.
pub fn poll_until<T>(
    host: &dyn Host,
    wait: Wait,
    mut probe: impl FnMut() -> Result<Option<T>, StepError>,
) -> Result<Option<T>, StepError> {
    let start = Instant::now();
    let mut first = true;
    loop {
        // Looking again means looking at the host, not at outputs kept from before.
        if !first {
            host.forget();
        }
        first = false;
        if let Some(v) = probe()? {
            return Ok(Some(v));
        }
        let waited = start.elapsed();
        if waited >= wait.bound {
            return Ok(None);
        }
        let pause = wait.interval.min(wait.bound - waited);
        // Sleep in short slices so an interruption is seen within 50 ms.
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if host.interrupted() {
                return Err(StepError::Host(HostError::Interrupted));
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        if host.interrupted() {
            return Err(StepError::Host(HostError::Interrupted));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::fake::FakeHost;

    #[test]
    fn returns_what_the_probe_finds_and_gives_up_after_the_bound() {
        let h = FakeHost::new();
        let mut n = 0;
        let got = poll_until(
            &h,
            Wait::new(Duration::from_secs(5), Duration::ZERO),
            || {
                n += 1;
                Ok((n == 3).then_some(n))
            },
        )
        .unwrap();
        assert_eq!(got, Some(3));
        let none: Option<()> = poll_until(
            &h,
            Wait::new(Duration::from_millis(30), Duration::from_millis(10)),
            || Ok(None),
        )
        .unwrap();
        assert_eq!(none, None);
    }
}
