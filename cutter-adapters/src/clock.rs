//! The system clock, for the core's `Clock` port.

use chrono::{DateTime, Utc};
use cutter_core::ports::Clock;

/// Reads the operating system's UTC time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
