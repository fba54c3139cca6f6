//! The standing fuzz suite: every parser of outside input (inventory and nodesets, `--filter`, theme and config
//! files, the agent wire decoder, nvidia-smi CSV, the kernel log, known_hosts, the line splitter) fed generated
//! hostile input. Seeded and bounded, so a run is reproducible and quick; a failing case is kept in
//! `tests/fixtures/fuzz/regressions.txt` and replayed first, and the hand-collected crashers in
//! `tests/fixtures/fuzz/crashers.txt` are replayed every run.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

use fleetop::fleet::filter::Filter;
use fleetop::inventory::{nodeset, Inventory};
use fleetop::telemetry::delta::{Reassembler, Rebuilt};
use fleetop::telemetry::kernel_log::{self, PciAddr};
use fleetop::telemetry::smi_csv::{self, Columns};
use fleetop::telemetry::wire::{decode_agent_line, AgentLine, LineSplitter, MAX_GPUS_PER_SAMPLE};
use fleetop::telemetry::NodeSample;

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x00f1_ee70),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fixtures/fuzz/regressions.txt",
        ))),
        ..Config::default()
    }
}

/// Text built from pieces that matter to the parsers, with arbitrary characters between them.
fn pieces(parts: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(parts).prop_map(str::to_string),
            1 => "\\PC{0,8}",
            1 => "[\\x00-\\x1f\\x7f\\u{9b}\\u{202e}]{1,3}",
            1 => "[0-9]{1,25}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

const INVENTORY_PARTS: &[&str] = &[
    "[defaults]\n",
    "[[cabinet]]\n",
    "[[tenant]]\n",
    "[[node]]\n",
    "[drain]\n",
    "[reboot]\n",
    "[thresholds]\n",
    "[actions]\n",
    "name = \"c[1-3]\"\n",
    "nodes = \"{cabinet}n[1-4]\"\n",
    "nodes = \"n[0-18446744073709551615]\"\n",
    "nodes = \"n[1-5,0-18446744073709551614]\"\n",
    "gpus = \"0-18446744073709551615\"\n",
    "gpus = \"4294967296\"\n",
    "gpus = \"0-63/9223372036854775808\"\n",
    "name = \"n[1-2]\"\n",
    concat!(
        "nodes = \"",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "[1-99999]\"\n"
    ),
    concat!(
        "nodes = \"{cabinet}.",
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ".",
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        ".",
        "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
        ".n[0-99999]\"\n"
    ),
    "0",
    "1",
    "4294967296",
    "9223372036854775808",
    "18446744073709551615",
    ".",
    "gpus = \"0-3\"\n",
    "gpus_per_node = 4294967295\n",
    "interval_ms = 1\n",
    "timeout_s = 9223372036854775807\n",
    "backend = \"command\"\n",
    "drain_command = \"x {node} {reason}\"\n",
    "power_budget_kw = nan\n",
    "gpu_temp_crit_c = inf\n",
    "port = 70000\n",
    "host = \"--oops\"\n",
    "\"",
    "=",
    "\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "-",
    "/",
];

const NODESET_PARTS: &[&str] = &[
    "[",
    "]",
    "-",
    ",",
    "/",
    "n",
    "c",
    "0",
    "1",
    "9",
    "001",
    "18446744073709551615",
    "99999999999",
    "{cabinet}",
    "!",
    "*",
    " ",
    ".",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551614",
];

/// Long names: a label at the 63-byte limit, and a piece that passes it (with the parts above, names cross
/// 253 bytes too).
const NAME_PARTS: &[&str] = &[
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "[0000000000000000000000000000000000000000000000000000000000000001-2]",
    "[1-99999]",
    "[0-18446744073709551615]",
    ".",
];

const FILTER_PARTS: &[&str] = &[
    "node=", "cabinet=", "tenant=", "state=", "health=", "crit", "up", "c0*", "?", "*", " ", "=",
    "spare", "x",
];

const THEME_PARTS: &[&str] = &[
    "ok = \"green\"\n",
    "warn = \"#ff00ff\"\n",
    "crit = \"rgb(1,2,3)\"\n",
    "util_ramp = [\"red\", \"blue\"]\n",
    "[keys]\n",
    "quit = \"ctrl-c\"\n",
    "drain = [\"D\", \"x\"]\n",
    "read_only = true\n",
    "theme = \"light\"\n",
    "\"",
    "=",
    "\n",
    "[",
    "]",
];

const WIRE_PARTS: &[&str] = &[
    "{\"fleetop_agent\":1,\"version\":\"x\",\"gpus\":8}",
    "{\"t\":1,\"gpus\":[",
    "{\"index\":0",
    ",\"util_pct\":",
    "4294967295",
    "1.7e308",
    "-1",
    ",\"errors\":[{\"kind\":\"lost\",\"query\":\"q\",\"detail\":\"d\"}]",
    ",\"xid_events\":[{\"code\":79,\"count\":18446744073709551615}]",
    ",\"name\":\"\\u001b[2J\"",
    "}",
    "]",
    "{}",
    ",",
    "null",
    "\"",
    "[",
    "{",
];

/// A compact stream's pieces: whole samples, delta lines and the keys they use.
const COMPACT_PARTS: &[&str] = &[
    "{\"fleetop_agent\":1,\"version\":\"x\",\"gpus\":8,\"compact\":60}",
    "{\"t\":1,\"gpus\":[{\"index\":0},{\"index\":3}],\"ib\":[{\"hca\":\"m\",\"port\":1}]}",
    "{\"d\":2,\"gpus\":[",
    "{\"d\":2,\"ib\":[{\"at\":",
    "{\"d\":2",
    "{\"index\":",
    "3",
    "99",
    ",\"util_pct\":",
    ",\"power_w\":",
    ",\"temp_c\":",
    ",\"counters\":{\"symbol_error\":",
    ",\"processes\":[{\"pid\":1,\"kind\":\"compute\",\"used_mib\":1}]",
    ",\"warnings\":[\"\\u001b[2J\"]",
    "4294967295",
    "1.7e308",
    "-1",
    "null",
    "}",
    "]",
    ",",
    "\"",
];

const SMI_PARTS: &[&str] = &[
    "0",
    ", ",
    "GPU-x",
    "NVIDIA H100",
    "[N/A]",
    "[GPU is lost]",
    "[GPU requires reset]",
    "ERR!",
    "[Unknown Error]",
    "Active",
    "Not Active",
    "650.5",
    "-1",
    "1e400",
    "99999999999999999999",
];

const KERNEL_PARTS: &[&str] = &[
    "6,1,2,-;",
    "14,1,2,-;",
    "<6>",
    "<14>",
    "kern  :err   : ",
    "user  :notice: ",
    "Aug 30 11:43:09 ",
    "Aug  5 11:43:09 ",
    "Fri 2024-08-30 11:43:09 UTC ",
    "2024-08-30T11:43:09+0000 ",
    "1725018189.123456 ",
    "gpu01 ",
    "kernel: ",
    "a.out[4242]: segfault at 0 ip 0 sp 0 error 4 in ",
    "[400000+1000]",
    "nvidia-nvswitch",
    "[ 12.5] ",
    "[18446744073709.551615] ",
    "[Fri Aug 30 11:43:09 2024] ",
    "NVRM: Xid (PCI:",
    "0000:18:00",
    "): ",
    "79",
    "4294967296",
    ", pid=1, name=x, ",
    "pid='<unknown>', ",
    "SXid (PCI:",
    "Fatal, ",
    "Non-fatal, ",
    "Data {",
    "Severity ",
    " ",
    ",",
    ")",
    ":",
];

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn inventory_files(text in pieces(INVENTORY_PARTS)) {
        let _ = Inventory::parse("fuzz.toml", &text);
    }

    #[test]
    fn nodesets(expr in pieces(NODESET_PARTS)) {
        check_nodeset(&expr)?;
    }

    #[test]
    fn long_names(parts in prop::collection::vec(prop::sample::select(NAME_PARTS), 1..8)) {
        check_nodeset(&parts.concat())?;
    }

    #[test]
    fn filters(expr in pieces(FILTER_PARTS)) {
        let _ = Filter::parse(&expr);
    }

    #[test]
    fn themes_and_config_files(text in pieces(THEME_PARTS)) {
        let _ = fleetop::tui::theme::Theme::parse("fuzz.toml", &text);
        let _ = fleetop::config::Config::parse("fuzz.toml", &text);
    }

    #[test]
    fn agent_lines(line in pieces(WIRE_PARTS)) {
        if let AgentLine::Sample(mut s) = decode_agent_line(&line) {
            prop_assert!(s.gpus.len() <= MAX_GPUS_PER_SAMPLE + 1);
            s.sanitize(MAX_GPUS_PER_SAMPLE);
            for g in &s.gpus {
                prop_assert!(g.util_pct.is_none_or(|u| u <= 100));
                prop_assert!(g.power_w.is_none_or(f64::is_finite));
            }
        }
    }

    #[test]
    fn compact_streams(lines in prop::collection::vec(pieces(COMPACT_PARTS), 1..8)) {
        // As the jump host reads a compact stream: whole samples are kept, deltas apply to them or are refused,
        // and whatever comes out is bounded and range-checked like any sample.
        // A patch applies to the sample sent before, which only a sample that needed no sanitizing allows.
        let mut stream = Reassembler::default();
        stream.start(true);
        let mut held: Option<NodeSample> = None;
        for line in &lines {
            let sample = match decode_agent_line(line) {
                AgentLine::Sample(s) => {
                    stream.full(&s);
                    s
                }
                AgentLine::Delta(d) => {
                    prop_assert!(d.gpus.len() <= MAX_GPUS_PER_SAMPLE + 1);
                    prop_assert!(d.ib.len() <= MAX_GPUS_PER_SAMPLE + 1);
                    match stream.apply(d) {
                        Ok(Rebuilt::Whole(s)) => s,
                        Ok(Rebuilt::Patch(p)) => {
                            let Some(sample) = held.as_mut() else {
                                return Err(TestCaseError::fail("a patch before any sample"));
                            };
                            p.apply_to(sample);
                            for g in &sample.gpus {
                                prop_assert!(g.util_pct.is_none_or(|u| u <= 100));
                                prop_assert!(g.power_w.is_none_or(f64::is_finite));
                            }
                            continue;
                        }
                        Err(_) => {
                            prop_assert!(stream.take_full_request());
                            continue;
                        }
                    }
                }
                _ => {
                    stream.lost();
                    continue;
                }
            };
            let mut sample = sample;
            prop_assert!(sample.gpus.len() <= MAX_GPUS_PER_SAMPLE + 1);
            sample.sanitize(MAX_GPUS_PER_SAMPLE);
            stream.sanitized(&sample);
            held = Some(sample.clone());
            for g in &sample.gpus {
                prop_assert!(g.util_pct.is_none_or(|u| u <= 100));
                prop_assert!(g.power_w.is_none_or(f64::is_finite));
            }
        }
    }

    #[test]
    fn nvidia_smi_rows(cells in prop::collection::vec(prop::sample::select(SMI_PARTS), 0..30)) {
        let columns = Columns::from_query(&smi_csv::modern_fields());
        let _ = smi_csv::parse_row(&columns, &cells.concat());
        let _ = Columns::from_header(&cells.concat());
    }

    #[test]
    fn kernel_log_lines(line in pieces(KERNEL_PARTS)) {
        if let Some(r) = kernel_log::record(&line) {
            // Only a message that begins with the driver's prefix is an XID: text quoted later in another
            // message (a segfault report's file name) never is.
            if kernel_log::find(r.text).is_some() {
                prop_assert!(
                    r.text.starts_with("NVRM: Xid (") || r.text.starts_with("nvidia-nvswitch"),
                    "{:?}", r.text
                );
            }
        }
        let _ = PciAddr::parse(&line);
    }

    #[test]
    fn line_splitter(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4096), 0..16)) {
        let mut splitter = LineSplitter::default();
        for chunk in &chunks {
            splitter.push(chunk, |_| {});
        }
    }

    #[test]
    fn known_hosts_files(text in pieces(&["@revoked ", "@cert-authority ", "|1|", "!", "*", "?", "[h]:22 ", "h,",
        "ssh-ed25519 ", "AAAAC3NzaC1lZDI1NTE5AAAAIBH2o+d4NNHYB125MNdHmSlEGaF2XOre3O8EDcpPc8Yd", "\n", "#"])) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, &text).unwrap();
        let known = fleetop::transport::ssh::known::KnownHosts::new(path);
        let _ = known.check("h", 22, b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x01x");
    }
}

/// What every expansion keeps to: the count, each name's length and labels, the bytes in all, no name that
/// reads as an option, GPU indices in range.
fn check_nodeset(expr: &str) -> Result<(), TestCaseError> {
    if let Ok(hosts) = nodeset::expand(expr) {
        prop_assert!(hosts.len() <= nodeset::MAX_EXPANSION);
        prop_assert!(hosts.iter().all(|h| !h.starts_with('-')));
        prop_assert!(hosts.iter().all(|h| h.len() <= nodeset::MAX_NAME_BYTES));
        prop_assert!(hosts
            .iter()
            .all(|h| h.split('.').all(|l| l.len() <= nodeset::MAX_LABEL_BYTES)));
        let bytes: u64 = hosts.iter().map(|h| h.len() as u64).sum();
        prop_assert!(bytes <= nodeset::MAX_EXPANSION_BYTES);
    }
    if let Ok(indices) = nodeset::expand_indices(expr) {
        prop_assert!(indices.iter().all(|&i| i <= 63));
    }
    Ok(())
}

/// Inputs that once crashed, hung or exhausted memory somewhere, one per line as `parser<TAB>input`
/// (`\n` and `\t` written as escapes); every parser named gets its input again each run.
#[test]
fn known_crashers_stay_fixed() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/crashers.txt"
    ))
    .unwrap();
    let mut replayed = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (parser, input) = line.split_once('\t').unwrap_or((line, ""));
        let input = input.replace("\\n", "\n").replace("\\t", "\t");
        match parser {
            "inventory" => {
                let _ = Inventory::parse("crasher.toml", &input);
            }
            "nodeset" => {
                let _ = nodeset::expand(&input);
            }
            "wire" => match decode_agent_line(&input) {
                AgentLine::Sample(mut s) => s.sanitize(MAX_GPUS_PER_SAMPLE),
                AgentLine::Delta(d) => {
                    let _ = Reassembler::default().apply(d);
                }
                _ => {}
            },
            "filter" => {
                let _ = Filter::parse(&input);
            }
            "kernel" => {
                if let Some(r) = kernel_log::record(&input) {
                    let _ = kernel_log::find(r.text);
                }
            }
            other => panic!("unknown parser {other:?} in crashers.txt"),
        }
        replayed += 1;
    }
    assert!(
        replayed >= 8,
        "the crasher list is read ({replayed} replayed)"
    );
}
