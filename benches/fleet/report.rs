//! The report: a Markdown table of every measurement with ratios against the peers measured in the same
//! run, and an SVG chart of the cold snapshots.

use std::fmt::Write as _;

use crate::measure::*;
use crate::scenarios::*;

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    format!("{cores} cores, {mem} memory, measured {date}")
}

pub(crate) fn report(
    colds: &[Cold],
    live: &Live,
    render: &str,
    memory: &str,
    agent: (f64, f64, usize),
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# fleetop benchmarks\n\nMachine: {}. Produced by `scripts/bench-fleet`; every number below comes from that one run.\n", machine());
    let _ = writeln!(r, "Client and server share the machine: each node is a real OpenSSH sshd on its own loopback address,");
    let _ = writeln!(r, "running the real `fleetop agent --once` on the fake NVML library (8 GPUs). All tools use the same keys,");
    let _ = writeln!(r, "user and key exchange (curve25519-sha256). CPU is jump-host CPU only (the tool plus its ssh children).\n");
    let _ = writeln!(r, "## Cold snapshot\n\nRatios say how much faster fleetop's wall time was and how much less jump-host CPU it used.");
    let _ = writeln!(r, "\"Rest of the machine\" is the busy CPU of the whole machine meanwhile minus the tool's own: the");
    let _ = writeln!(r, "fleet's sshds, the commands they ran and the kernel's share of the traffic, on the same cores. On a real");
    let _ = writeln!(
        r,
        "fleet each node pays its part on its own CPU; here it bounds wall time from below, at"
    );
    let _ = writeln!(r, "(rest of the machine + jump-host CPU) / cores.\n");
    let _ = writeln!(r, "| nodes | tool | fanout | answered | wall s | jump-host CPU s | rest of the machine CPU s | fleetop wall | fleetop CPU |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in colds {
        let f = &c.fleetop;
        let _ = writeln!(
            r,
            "| {} | fleetop snapshot | {} | {} | {:.2} | {:.2} | {:.2} | | |",
            c.n,
            96,
            f.answered,
            secs(f.wall),
            secs(f.cpu),
            f.rest_cpu
        );
        for (name, (fanout, m)) in [("pdsh", &c.pdsh), ("clush", &c.clush)] {
            let _ = writeln!(
                r,
                "| {} | {name} | {fanout} | {} | {:.2} | {:.2} | {:.2} | {:.1}× faster | {:.1}× less |",
                c.n,
                m.answered,
                secs(m.wall),
                secs(m.cpu),
                m.rest_cpu,
                secs(m.wall) / secs(f.wall).max(1e-9),
                secs(m.cpu) / secs(f.cpu).max(1e-9)
            );
        }
        if let Some(m) = &c.pdsh_default_kex {
            let _ = writeln!(
                r,
                "| {} | pdsh, OpenSSH default kex | {} | {} | {:.2} | {:.2} | {:.2} | | |",
                c.n,
                c.pdsh.0,
                m.answered,
                secs(m.wall),
                secs(m.cpu),
                m.rest_cpu
            );
        }
    }
    let _ = writeln!(
        r,
        "\n## Live following at 1 Hz ({} nodes, {} s each, scaled to a minute)\n\n\
         fleetop keeps one session and one streaming channel per node; its CPU is measured once every node is up\n\
         (connecting them all is the cold snapshot's work, above). The peers poll: each poll is a full pdsh or\n\
         clush run over every node. Polling once per second costs 60 polls a minute; where one poll takes longer\n\
         than a second the peer cannot follow at 1 Hz at all, and the middle column is what it used while polling\n\
         back to back.\n\n\
         | tool | seconds per poll | CPU s per minute, as measured | CPU s per minute at 1 Hz | share of one core at 1 Hz |\n|---|---:|---:|---:|---:|",
        live.n, live.seconds
    );
    let f = live.fleetop_cpu_per_min;
    let _ = writeln!(
        r,
        "| fleetop (persistent sessions) | (streaming) | {f:.2} | {f:.2} | {:.1} % |",
        f / 60.0 * 100.0
    );
    for (name, p) in [("pdsh -f 64", &live.pdsh), ("clush -f 64", &live.clush)] {
        let _ = writeln!(
            r,
            "| {name} | {:.2} | {:.2} | {:.1} | {:.0} % |",
            p.wall_per_poll,
            p.cpu_per_min,
            p.at_one_hz(),
            p.at_one_hz() / 60.0 * 100.0
        );
    }
    let better = live.pdsh.at_one_hz().min(live.clush.at_one_hz());
    let measured = live.pdsh.cpu_per_min.min(live.clush.cpu_per_min);
    let _ = writeln!(
        r,
        "\nAt 1 Hz fleetop uses {:.0}× less jump-host CPU than the better poller would; against what the pollers used while\n\
         falling behind, {:.0}× less.",
        better / f.max(1e-9),
        measured / f.max(1e-9)
    );
    let _ = writeln!(
        r,
        "\n## Render (8,200 GPUs, off-screen, 200×50)\n\n```\n{}```",
        render
    );
    let _ = writeln!(
        r,
        "\n## Memory (1,025 nodes, 10 minutes of 1 Hz history)\n\n```\n{}```",
        memory
    );
    let _ = writeln!(
        r,
        "\n## Agent (fake NVML, 8 GPUs, {} samples at 5 ms)\n\nCPU per sample: {:.3} ms. Peak RSS: {:.1} MiB.",
        agent.2, agent.0, agent.1
    );
    r += "\n\n## Prometheus as the source (100,000 GPUs)\n\nMeasured separately \
          (`FLEETOP_BENCH_ONLY=prometheus scripts/bench-fleet`): see \
          [benchmarks-prometheus.md](benchmarks-prometheus.md).\n";
    r
}

/// A grouped bar chart of cold-snapshot wall time and CPU per tool and fleet size.
pub(crate) fn chart(colds: &[Cold]) -> String {
    let (w, h, pad) = (760.0, 360.0, 50.0);
    let max = colds
        .iter()
        .flat_map(|c| {
            [
                c.fleetop.wall,
                c.fleetop.cpu,
                c.pdsh.1.wall,
                c.pdsh.1.cpu,
                c.clush.1.wall,
                c.clush.1.cpu,
            ]
        })
        .map(secs)
        .fold(1e-9, f64::max);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <text x='{pad}' y='20' font-size='14'>Cold snapshot: wall s (solid) and jump-host CPU s (pale), lower is better</text>"
    );
    let group = (w - 2.0 * pad) / colds.len().max(1) as f64;
    let colours = [
        ("fleetop", "#0072B2"),
        ("pdsh", "#E69F00"),
        ("clush", "#009E73"),
    ];
    for (gi, c) in colds.iter().enumerate() {
        let x0 = pad + gi as f64 * group;
        let bars = [(&c.fleetop, 0), (&c.pdsh.1, 1), (&c.clush.1, 2)];
        for (m, ti) in bars {
            for (k, v) in [secs(m.wall), secs(m.cpu)].iter().enumerate() {
                let bw = group / 8.0;
                let x = x0 + (ti * 2 + k) as f64 * bw + bw * 0.5;
                let bh = v / max * (h - 2.0 * pad);
                let opacity = if k == 0 { 1.0 } else { 0.45 };
                let _ = write!(
                    svg,
                    "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{bh:.1}' fill='{}' fill-opacity='{opacity}'/>",
                    h - pad - bh,
                    bw * 0.9,
                    colours[ti].1
                );
            }
        }
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}'>{} nodes</text>",
            x0 + group / 3.0,
            h - pad + 20.0,
            c.n
        );
    }
    for (i, (name, colour)) in colours.iter().enumerate() {
        let _ = write!(svg, "<rect x='{}' y='30' width='12' height='12' fill='{colour}'/><text x='{}' y='41'>{name}</text>", pad + i as f64 * 90.0, pad + 16.0 + i as f64 * 90.0);
    }
    let _ = write!(
        svg,
        "<text x='{}' y='{:.1}'>max {:.1} s</text></svg>",
        w - 110.0,
        pad - 5.0,
        max
    );
    svg
}
