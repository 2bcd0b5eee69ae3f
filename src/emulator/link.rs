//! The link model: how fast an emulated device takes data.
//!
//! Each byte the device reads is acknowledged one round trip later; at most
//! `window` bytes may be read and not yet acknowledged (the TCP receive window), and
//! flash writes take `len / flash_rate` seconds during which the device reads
//! nothing. So a stop-and-wait client moves `chunk / rtt` bytes per second and a
//! streaming one about `min(window / rtt, flash_rate)`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    pub rtt: Duration,
    pub window: usize,
    /// Bytes per second; `None` for no limit.
    pub flash_rate: Option<u64>,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            rtt: Duration::ZERO,
            window: 5760,
            flash_rate: None,
        }
    }
}

impl LinkModel {
    pub fn is_ideal(&self) -> bool {
        self.rtt.is_zero() && self.flash_rate.is_none()
    }
}

/// What the link lets the device do now.
pub enum Allowance {
    /// Read at most this many bytes.
    Read(usize),
    /// Nothing to read before this instant.
    Wait(Instant),
}

/// Tracks acks in flight and flash time for one connection.
pub struct Pacer {
    model: LinkModel,
    /// (due, ack count, bytes read) acks not yet sent.
    pending: VecDeque<(Instant, usize, usize)>,
    in_flight: usize,
    flash_busy_until: Instant,
}

impl Pacer {
    pub fn new(model: LinkModel) -> Self {
        Pacer {
            model,
            pending: VecDeque::new(),
            in_flight: 0,
            flash_busy_until: Instant::now(),
        }
    }

    pub fn allowance(&self, now: Instant) -> Allowance {
        if self.model.flash_rate.is_some() && self.flash_busy_until > now {
            return Allowance::Wait(self.flash_busy_until);
        }
        if self.model.rtt.is_zero() {
            return Allowance::Read(usize::MAX);
        }
        match self.model.window.saturating_sub(self.in_flight) {
            0 => Allowance::Wait(self.pending.front().map_or(now, |(due, _, _)| *due)),
            room => Allowance::Read(room),
        }
    }

    /// `read` bytes arrived at `now`, of which `ack` were consumed.
    pub fn on_read(&mut self, now: Instant, read: usize, ack: usize) {
        if let Some(rate) = self.model.flash_rate {
            let secs = read as f64 / rate.max(1) as f64;
            self.flash_busy_until = self.flash_busy_until.max(now) + Duration::from_secs_f64(secs);
        }
        self.pending.push_back((now + self.model.rtt, ack, read));
        self.in_flight += read;
    }

    /// Acks whose time has come (in order), removed from the queue.
    pub fn due_acks(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(&(due, ack, read)) = self.pending.front() {
            if due > now {
                break;
            }
            self.pending.pop_front();
            self.in_flight -= read;
            out.push(ack);
        }
        out
    }

    /// When the next ack is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.front().map(|(d, _, _)| *d)
    }
}
