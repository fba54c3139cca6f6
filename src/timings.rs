//! Where a command's time went: wall time and this process's CPU time (all threads) per phase, for
//! `snapshot --timings` and the benchmarks.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// This process's resource usage (all threads), or `None` where the kernel refuses.
fn usage() -> Option<libc::rusage> {
    // SAFETY: getrusage only writes the struct passed by pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    (unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0).then_some(usage)
}

/// CPU time this process has used so far, user and system, all threads.
pub(crate) fn cpu_time() -> Duration {
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    usage().map_or(Duration::ZERO, |u| time(u.ru_utime) + time(u.ru_stime))
}

/// Peak resident memory of this process, in MiB.
pub fn peak_rss_mib() -> f64 {
    usage().map_or(0.0, |u| u.ru_maxrss as f64 / 1024.0)
}

/// Phases one after another: each [`Phases::lap`] closes the phase that began at the previous one.
#[derive(Debug)]
pub(crate) struct Phases {
    since: (Instant, Duration),
    laps: Vec<(String, Duration, Duration)>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases::start()
    }
}

impl Phases {
    pub fn start() -> Self {
        Phases {
            since: (Instant::now(), cpu_time()),
            laps: Vec::new(),
        }
    }

    /// Ends the running phase, naming it.
    pub(crate) fn lap(&mut self, name: impl Into<String>) {
        let now = (Instant::now(), cpu_time());
        self.laps.push((
            name.into(),
            now.0 - self.since.0,
            now.1.saturating_sub(self.since.1),
        ));
        self.since = now;
    }

    /// One line a phase: wall, CPU, name; then the total.
    pub fn render(&self) -> String {
        let mut out = String::from("      wall        CPU  phase\n");
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        for (name, w, c) in &self.laps {
            let _ = writeln!(out, "{}  {}  {name}", seconds(*w), seconds(*c));
            wall += *w;
            cpu += *c;
        }
        let _ = writeln!(out, "{}  {}  total", seconds(wall), seconds(cpu));
        out
    }
}

/// A duration right-aligned in 9 columns: `   12.3 ms`, `    1.234 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:>6.1} ms", s * 1e3)
    } else {
        format!("{s:>7.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_and_cpu_counts_work_done() {
        let mut p = Phases::start();
        let mut x = 0u64;
        let busy = Instant::now();
        while busy.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        p.lap("busy");
        std::thread::sleep(Duration::from_millis(30));
        p.lap("asleep");
        assert!(x > 0);
        let text = p.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].ends_with("busy") && lines[2].ends_with("asleep"));
        assert!(lines[3].ends_with("total"));
        let (_, busy_wall, busy_cpu) = &p.laps[0];
        let (_, sleep_wall, _) = &p.laps[1];
        assert!(
            *busy_wall >= Duration::from_millis(30) && *sleep_wall >= Duration::from_millis(30)
        );
        // The CPU time is the whole process's (getrusage), and other tests' threads run meanwhile, so the two
        // phases' CPU cannot be compared with each other here; spinning must have been counted at all.
        assert!(*busy_cpu > Duration::ZERO, "spinning costs CPU: {text}");
        assert_eq!(seconds(Duration::from_millis(12)), "  12.0 ms");
        assert_eq!(seconds(Duration::from_millis(1234)), "  1.234 s");
    }
}
