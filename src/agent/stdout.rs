//! The agent's stdout: its hello, then one line per sample, in the compact stream (`telemetry/delta.rs`) when
//! the jump host asked for it through `$FLEETOP_COMPACT`, else every sample whole.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::telemetry::delta::{Encoder, COMPACT_ENV};
use crate::telemetry::wire::AgentHello;
use crate::telemetry::NodeSample;

/// Set by SIGUSR1: the jump host lost its place in the compact stream and asks for a full sample.
static FULL_ASKED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_full_asked(_: libc::c_int) {
    FULL_ASKED.store(true, Ordering::Relaxed);
}

/// Writes the agent wire format to stdout.
pub(crate) struct Stdout {
    compact: Option<(u32, Encoder)>,
}

impl Stdout {
    /// Every sample whole with `once`, or when the jump host did not ask for the compact stream (an older one);
    /// else compact, with a full sample every `$FLEETOP_COMPACT` lines and on SIGUSR1.
    pub fn new(once: bool) -> Self {
        let asked = std::env::var(COMPACT_ENV).ok().filter(|_| !once);
        let full_every = asked.and_then(|value| match value.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                crate::text::warn(&format!(
                    "fleetop agent: ${COMPACT_ENV} is {value:?}, not a count of lines of at least 1; \
                     sending every sample whole"
                ));
                None
            }
        });
        if full_every.is_some() {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                let handler: extern "C" fn(libc::c_int) = on_full_asked;
                libc::signal(libc::SIGUSR1, handler as libc::sighandler_t);
            }
        }
        Stdout {
            compact: full_every.map(|n| (n, Encoder::new(n))),
        }
    }

    /// Writes the hello, saying whether the stream is compact; false once stdout is closed.
    pub fn hello(&mut self, hello: &AgentHello) -> bool {
        let line = match &self.compact {
            Some((full_every, _)) => {
                let mut hello = hello.clone();
                hello.compact = Some(*full_every);
                serde_json::to_vec(&hello)
            }
            None => serde_json::to_vec(hello),
        };
        write_line(line)
    }

    /// Writes a sample, whole or as what changed; false once stdout is closed, which means the jump host went
    /// away (a normal end).
    pub fn sample(&mut self, sample: &NodeSample) -> bool {
        let line = match &mut self.compact {
            Some((_, encoder)) => encoder.line(sample, FULL_ASKED.swap(false, Ordering::Relaxed)),
            None => serde_json::to_vec(sample),
        };
        write_line(line)
    }
}

fn write_line(line: serde_json::Result<Vec<u8>>) -> bool {
    let Ok(mut line) = line else {
        return false;
    };
    line.push(b'\n');
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    crate::text::stdout_written(out.write_all(&line).and_then(|()| out.flush()))
}
