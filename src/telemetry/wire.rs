//! The agent wire format (NDJSON: one hello line, then one sample line per interval) and a bounded line splitter.

use serde::{Deserialize, Serialize};

use super::sample::NodeSample;

/// Longest line accepted from a node; longer ones are dropped and counted, never buffered whole.
pub(crate) const MAX_LINE_BYTES: usize = 256 * 1024;
/// The agent's exit status when NVML cannot be loaded or initialised (sysexits' EX_UNAVAILABLE); the jump
/// host reads it as the node state `no-gpu-driver`.
pub(crate) const EXIT_NO_NVML: i32 = 69;
/// Buffer capacity a splitter keeps between lines.
const KEEP_CAPACITY: usize = 16 * 1024;
pub use super::bounded::MAX_GPUS_PER_SAMPLE;

/// The agent's first line: `{"fleetop_agent":1,"version":"…","driver":"…","cuda":"…","gpus":8}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHello {
    pub fleetop_agent: u32,
    pub version: String,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub gpus: u32,
    /// The node's kernel release (`uname -r`); absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The git commit the agent was built from; absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Present when the agent sends the compact stream (delta lines between full samples): a full sample
    /// every this many lines. Absent from older agents and when the jump host did not ask for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<u32>,
}

impl AgentHello {
    /// Every string in it escaped and bounded, like everything a node sends.
    pub fn sanitize(&mut self) {
        for field in [
            Some(&mut self.version),
            self.driver.as_mut(),
            self.cuda.as_mut(),
            self.kernel.as_mut(),
            self.build.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            super::sanitize::make_inert(field, 64);
        }
    }
}

/// What one line of agent output turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentLine {
    Hello(AgentHello),
    Sample(NodeSample),
    /// What changed since the line before (the compact stream).
    Delta(super::delta::NodeDelta),
    /// Unparseable line, with a short reason (the line itself is not kept: it may be huge or hostile).
    Bad(String),
}

/// Decodes one line of agent output.
pub fn decode_agent_line(line: &str) -> AgentLine {
    let trimmed = line.trim();
    if trimmed.starts_with("{\"fleetop_agent\"") {
        return match serde_json::from_str::<AgentHello>(trimmed) {
            Ok(h) => AgentLine::Hello(h),
            Err(e) => AgentLine::Bad(format!("bad hello line: {e}")),
        };
    }
    if trimmed.starts_with(super::delta::DELTA_PREFIX) {
        return match serde_json::from_str(trimmed) {
            Ok(d) => AgentLine::Delta(d),
            Err(e) => AgentLine::Bad(format!("bad delta line ({} bytes): {e}", trimmed.len())),
        };
    }
    match serde_json::from_str::<NodeSample>(trimmed) {
        Ok(s) => AgentLine::Sample(s),
        Err(e) => AgentLine::Bad(format!("unparseable line ({} bytes): {e}", trimmed.len())),
    }
}

/// A complete line, or the news that one was dropped.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Text(&'a str),
    Oversized(usize),
    NotUtf8,
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`], without ever holding more than that.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Bytes of the current oversized line dropped so far (0 when not discarding).
    discarding: usize,
}

impl LineSplitter {
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Line<'_>)) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if self.discarding > 0 {
                self.discarding += chunk.len();
                if complete {
                    emit(Line::Oversized(self.discarding));
                    self.discarding = 0;
                }
                continue;
            }
            if self.buf.len() + chunk.len() > MAX_LINE_BYTES {
                self.discarding = self.buf.len() + chunk.len();
                self.buf.clear();
                if complete {
                    emit(Line::Oversized(self.discarding));
                    self.discarding = 0;
                }
                continue;
            }
            if complete && self.buf.is_empty() {
                // A whole line in one read (a followed node's every sample): decoded where it lies.
                emit(text_line(chunk));
                continue;
            }
            self.buf.extend_from_slice(chunk);
            if complete {
                let line = std::mem::take(&mut self.buf);
                emit(text_line(&line));
                self.buf = line;
                self.buf.clear();
                // One huge line must not pin its buffer for the life of the connection.
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        }
    }
}

/// A complete line's text, without its carriage return, or why it has none.
fn text_line(line: &[u8]) -> Line<'_> {
    match std::str::from_utf8(line) {
        Ok(text) => Line::Text(text.trim_end_matches('\r')),
        Err(_) => Line::NotUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(splitter: &mut LineSplitter, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        splitter.push(bytes, |l| {
            out.push(match l {
                Line::Text(t) => t.to_string(),
                Line::Oversized(n) => format!("<oversized {n}>"),
                Line::NotUtf8 => "<not utf8>".into(),
            })
        });
        out
    }

    #[test]
    fn splits_across_chunks_and_drops_oversized_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(collect(&mut s, b"ab"), Vec::<String>::new());
        assert_eq!(collect(&mut s, b"c\r\nd\n"), ["abc", "d"]);
        let big = vec![b'x'; MAX_LINE_BYTES + 10];
        assert!(collect(&mut s, &big).is_empty());
        assert_eq!(
            collect(&mut s, b"yy\nok\n"),
            [format!("<oversized {}>", MAX_LINE_BYTES + 12), "ok".into()]
        );
        assert_eq!(collect(&mut s, b"\xff\xfe\n"), ["<not utf8>"]);
    }

    proptest::proptest! {
        /// However a stream is cut into reads, the same lines come out: whole lines in one read are decoded
        /// where they lie, the rest through the buffer.
        #[test]
        fn lines_do_not_depend_on_where_reads_end(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b'\n', b'\r', 0xff]), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..12),
        ) {
            let whole = collect(&mut LineSplitter::default(), &bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut splitter = LineSplitter::default();
            let (mut pieces, mut from) = (Vec::new(), 0);
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces.extend(collect(&mut splitter, &bytes[from..cut]));
                from = cut;
            }
            proptest::prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn decodes_hello_sample_and_garbage() {
        let hello =
            r#"{"fleetop_agent":1,"version":"0.1.0","driver":"550.90.07","cuda":"12.4","gpus":8}"#;
        assert!(matches!(decode_agent_line(hello), AgentLine::Hello(h) if h.gpus == 8));
        let sample = r#"{"t":5,"gpus":[{"index":0,"util_pct":97,"mem_temp_c":null}]}"#;
        match decode_agent_line(sample) {
            AgentLine::Sample(s) => {
                assert_eq!(s.gpus[0].util_pct, Some(97));
                assert_eq!(s.gpus[0].mem_temp_c, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(decode_agent_line("garbage{"), AgentLine::Bad(_)));
    }

    #[test]
    fn delta_lines_decode_strictly() {
        let line = r#"{"d":5,"gpus":[{"index":2,"util_pct":null,"temp_c":41}]}"#;
        let AgentLine::Delta(d) = decode_agent_line(line) else {
            panic!("not a delta");
        };
        let gpu = &d.gpus[0];
        assert_eq!(
            (gpu.index, gpu.util_pct, gpu.temp_c),
            (2, Some(None), Some(Some(41)))
        );
        assert_eq!(gpu.power_w, None, "absent: unchanged");
        for bad in [
            r#"{"d":5,"gpus":[{"util_pct":1}]}"#,
            r#"{"d":-1}"#,
            r#"{"d":5,"gpus":[{"index":0,"util_pct":"x"}]}"#,
            r#"{"d":5,"ib":[{"state":"4: ACTIVE"}]}"#,
        ] {
            assert!(
                matches!(decode_agent_line(bad), AgentLine::Bad(ref why) if why.starts_with("bad delta line")),
                "{bad}"
            );
        }
        let hello =
            r#"{"fleetop_agent":1,"version":"x","driver":null,"cuda":null,"gpus":8,"compact":60}"#;
        assert!(matches!(decode_agent_line(hello), AgentLine::Hello(h) if h.compact == Some(60)));
    }

    #[test]
    fn a_sample_from_an_older_agent_still_decodes() {
        // The previous release's wire format: `xid` codes only, none of the fields added since.
        let old = r#"{"t":5,"gpus":[{"index":5,"uuid":"GPU-x","util_pct":null,"xid":[79],"temp_slowdown_c":89}]}"#;
        let AgentLine::Sample(s) = decode_agent_line(old) else {
            panic!("older sample rejected");
        };
        let g = &s.gpus[0];
        assert_eq!(g.xid.as_deref(), Some(&[79][..]));
        assert_eq!(g.xid_events, None);
        assert!(g.errors.is_empty());
        assert!(s.warnings.is_empty());
        let verdict = crate::telemetry::health::judge_gpu(
            g,
            &Default::default(),
            &crate::telemetry::health::none_acknowledged,
        );
        assert_eq!(verdict.health, crate::telemetry::health::Health::Crit);
    }

    #[test]
    fn an_unknown_error_kind_from_a_newer_agent_reads_as_failed() {
        let newer =
            r#"{"t":5,"gpus":[{"index":0,"errors":[{"kind":"melted","query":"x","detail":"y"}]}]}"#;
        let AgentLine::Sample(s) = decode_agent_line(newer) else {
            panic!("newer sample rejected");
        };
        assert_eq!(
            s.gpus[0].errors[0].kind,
            crate::telemetry::GpuErrorKind::Failed
        );
    }

    #[test]
    fn a_flood_of_gpu_objects_is_cut_while_decoding() {
        let line = format!(r#"{{"t":1,"gpus":[{}{{}}]}}"#, "{},".repeat(80_000));
        let AgentLine::Sample(mut s) = decode_agent_line(&line) else {
            panic!("rejected");
        };
        assert_eq!(s.gpus.len(), MAX_GPUS_PER_SAMPLE + 1);
        s.sanitize(MAX_GPUS_PER_SAMPLE);
        assert_eq!(s.gpus.len(), 1, "64 objects, all index 0: one GPU");
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("more than the 64 accepted")));
    }

    #[test]
    fn rises_on_the_wire_decode_and_are_sanitized_and_older_lines_still_read() {
        let line = r#"{"t":1,"gpus":[{"index":0,"nvlink":{"total":18,"down":[],"errors":[],
            "rose":{"over_ms":60000,"links":[{"link":2,"replay":3},{"link":40,"replay":1}]}}}],
            "ib":[{"hca":"mlx5_0","port":1,"link_layer":"InfiniBand","state":"4: ACTIVE","phys_state":"5: LinkUp",
            "rate_gbps":400.0,"counters":{"symbol_error":9},"fw_ver":"28.39.1002\u001b[2J",
            "rose":{"over_ms":0,"counters":{"symbol_error":9}}}]}"#
            .replace('\n', "");
        let AgentLine::Sample(mut sample) = decode_agent_line(&line) else {
            panic!("not a sample");
        };
        sample.sanitize(64);
        let rise = sample.gpus[0]
            .nvlink
            .as_ref()
            .unwrap()
            .rose
            .as_ref()
            .unwrap();
        assert_eq!(rise.links.len(), 1, "link 40 is beyond the GPU's 18");
        let port = &sample.ib.as_ref().unwrap()[0];
        assert_eq!(port.rose, None, "no interval: unknown");
        assert!(!port.fw_ver.as_ref().unwrap().contains('\u{1b}'));
        // An older agent's line has no rise: unknown, not "none rose".
        let old =
            r#"{"t":1,"gpus":[{"index":0,"nvlink":{"total":18}}],"ib":[{"hca":"mlx5_0","port":1,
            "link_layer":null,"state":null,"phys_state":null,"rate_gbps":null}]}"#
                .replace('\n', "");
        let AgentLine::Sample(old) = decode_agent_line(&old) else {
            panic!("an older agent's line must decode");
        };
        assert_eq!(old.gpus[0].nvlink.as_ref().unwrap().rose, None);
        assert_eq!(old.ib.as_ref().unwrap()[0].rose, None);
    }
}
