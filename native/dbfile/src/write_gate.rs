//! `WriteGate`: the writers of one SQLite file inside one process take turns
//! here, in the order they arrive, instead of colliding on SQLite's file
//! lock and sleeping in its busy handler (whose back-off grows to 100 ms
//! steps, which is what made busy write loads slow at the tail).
//!
//! A gate belongs to a [`crate::DatabaseFile`]: in the default run the
//! Spin host's connections and the sidecar's share one (handed to both),
//! so a REST write and a socket write never meet in SQLite's lock. Writers in other processes (`spin up` beside a sidecar)
//! still meet there, and SQLite's own locking keeps them correct; the gate
//! is only about waiting well. A writer that cannot get the gate within its
//! wait goes on without it, so a stuck holder degrades to SQLite's busy
//! handling (and its timeout error), never to a deadlock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The gate of one database file.
#[derive(Debug, Default)]
pub struct WriteGate {
    state: Mutex<Turns>,
    turn: Condvar,
}

/// Tickets handed out in arrival order; `serving` is the one that may write.
#[derive(Debug, Default)]
struct Turns {
    next: u64,
    serving: u64,
    /// Tickets whose holder gave up waiting before its turn came.
    abandoned: Vec<u64>,
}

impl Turns {
    fn advance(&mut self) {
        self.serving += 1;
        while let Some(i) = self.abandoned.iter().position(|t| *t == self.serving) {
            self.abandoned.swap_remove(i);
            self.serving += 1;
        }
    }
}

/// The right to write, until dropped.
#[derive(Debug)]
pub struct WritePermit {
    gate: Arc<WriteGate>,
}

impl WriteGate {
    /// Waits (blocking the thread) for this caller's turn, at most `wait`.
    /// `None` when the turn did not come in time.
    pub fn acquire(self: &Arc<Self>, wait: Duration) -> Option<WritePermit> {
        let deadline = Instant::now() + wait;
        let mut turns = self.state.lock();
        let ticket = turns.next;
        turns.next += 1;
        while turns.serving != ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                turns.abandoned.push(ticket);
                return None;
            }
            self.turn.wait_for(&mut turns, left);
        }
        Some(WritePermit { gate: self.clone() })
    }

    /// The turn now, if nobody holds or waits for the gate; never waits.
    pub fn try_acquire(self: &Arc<Self>) -> Option<WritePermit> {
        let mut turns = self.state.lock();
        if turns.serving != turns.next {
            return None;
        }
        turns.next += 1;
        Some(WritePermit { gate: self.clone() })
    }
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.gate.state.lock().advance();
        self.gate.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_of_one_file_take_turns_in_arrival_order() {
        let gate = Arc::new(WriteGate::default());
        let first = gate.acquire(Duration::from_secs(1)).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..4 {
            let (gate, order) = (gate.clone(), order.clone());
            waiters.push(std::thread::spawn(move || {
                let _permit = gate.acquire(Duration::from_secs(5)).unwrap();
                order.lock().push(i);
            }));
            // Each waiter takes its ticket before the next one starts.
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(
            order.lock().is_empty(),
            "nobody writes while the first holds the gate"
        );
        drop(first);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*order.lock(), [0, 1, 2, 3]);
    }

    #[test]
    fn trying_takes_a_free_gate_and_never_jumps_the_queue() {
        let gate = Arc::new(WriteGate::default());
        let held = gate.try_acquire().expect("a free gate is taken at once");
        assert!(gate.try_acquire().is_none(), "not while it is held");
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.acquire(Duration::from_secs(5)).is_some())
        };
        while gate.state.lock().next < 2 {
            std::thread::yield_now();
        }
        drop(held);
        assert!(waiter.join().unwrap(), "the waiter got its turn");
        assert!(gate.try_acquire().is_some(), "free again once it is done");
    }

    #[test]
    fn a_waiter_gives_up_after_its_wait_and_does_not_block_the_next() {
        let gate = Arc::new(WriteGate::default());
        let held = gate.acquire(Duration::ZERO).unwrap();
        assert!(gate.acquire(Duration::from_millis(20)).is_none());
        drop(held);
        assert!(
            gate.acquire(Duration::ZERO).is_some(),
            "the abandoned turn is skipped"
        );
    }
}
