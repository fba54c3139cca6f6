//! A counting semaphore bounding SSH handshakes in flight: they cost CPU on both ends.

use std::sync::{Condvar, Mutex};

/// A counting semaphore bounding handshakes in flight (they cost CPU on both ends).
pub(super) struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

pub(super) struct Pass<'a>(&'a Gate);

impl Gate {
    pub(super) fn new(n: usize) -> Self {
        Gate {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    pub(super) fn enter(&self) -> Pass<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}
