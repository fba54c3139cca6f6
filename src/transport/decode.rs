//! Turns the bytes a node's remote command prints into [`NodeEvent`]s, for agent and nvidia-smi output alike.

use super::NodeEvent;
use crate::telemetry::delta::{Reassembler, Rebuilt};
use crate::telemetry::sanitize::make_inert;
use crate::telemetry::smi_csv::{self, Columns, RowAssembler};
use crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
use crate::telemetry::wire::{decode_agent_line, AgentLine, Line, LineSplitter};
use crate::telemetry::Source;

enum Format {
    /// The first line tells: [`SMI_FOLLOWS`] when the node has no agent and nvidia-smi runs instead, else the
    /// agent's own output.
    AgentOrSmi {
        expected_gpus: u32,
    },
    Agent(Source),
    Smi {
        /// Which of [`smi_csv::field_tiers`] the driver answers: one more for each field it rejected.
        tier: usize,
        columns: Columns,
        rows: RowAssembler,
    },
}

/// Stateful decoder for one remote command's stdout.
pub(crate) struct StreamDecoder {
    format: Format,
    lines: LineSplitter,
    /// The last full sample of a compact stream, which its delta lines apply to.
    compact: Reassembler,
    /// Samples decoded so far.
    pub samples: u64,
    /// The last line that was not data, kept short: nvidia-smi prints its errors on stdout.
    pub last_bad: Option<String>,
}

impl StreamDecoder {
    /// Agent wire format; `source` is what the node reports as (`agent`, or `sim` for the demo fleet).
    pub fn agent(source: Source) -> Self {
        Self::with(Format::Agent(source))
    }

    /// `nvidia-smi --format=csv,noheader,nounits` rows of [`smi_csv::remote_command`]'s field lists.
    pub fn smi(expected_gpus: u32) -> Self {
        Self::with(smi_format(expected_gpus))
    }

    /// The output of a command that runs the agent when the node has one, else prints [`SMI_FOLLOWS`] and
    /// runs nvidia-smi: one remote command per node either way.
    pub(crate) fn agent_or_smi(expected_gpus: u32) -> Self {
        Self::with(Format::AgentOrSmi { expected_gpus })
    }

    /// Whether the node's output turned out to be nvidia-smi's.
    pub(crate) fn is_smi(&self) -> bool {
        matches!(self.format, Format::Smi { .. })
    }

    fn with(format: Format) -> Self {
        StreamDecoder {
            format,
            lines: LineSplitter::default(),
            compact: Reassembler::default(),
            samples: 0,
            last_bad: None,
        }
    }

    /// Feeds bytes as they arrive; calls `emit` for each event they complete, which says whether it sent the
    /// event on (after a sample not sent, the next delta goes whole).
    pub(crate) fn feed(&mut self, bytes: &[u8], emit: &mut dyn FnMut(NodeEvent) -> bool) {
        let StreamDecoder {
            format,
            lines,
            compact,
            samples,
            last_bad,
        } = self;
        lines.push(bytes, |line| {
            let event = match line {
                Line::Oversized(n) => {
                    NodeEvent::BadLine(format!("oversized line ({n} bytes) dropped"))
                }
                Line::NotUtf8 => NodeEvent::BadLine("line is not UTF-8".into()),
                Line::Text(text) if text.trim().is_empty() => return,
                Line::Text(text) => match decode_line(format, compact, text) {
                    Some(event) => event,
                    None => return,
                },
            };
            let mut event = event;
            match &mut event {
                // Every sample is range-checked here, once, whichever format it came in; a compact
                // stream's patches only when they need none (`Reassembler::apply`).
                NodeEvent::Sample(s) => {
                    s.sanitize(MAX_GPUS_PER_SAMPLE);
                    compact.sanitized(s);
                    *samples += 1
                }
                NodeEvent::Delta(_) => *samples += 1,
                // A bad line may quote what the node sent: bounded and escaped. In a compact stream the
                // deltas after it describe changes to what was lost: none applies until a full sample.
                NodeEvent::BadLine(why) => {
                    compact.lost();
                    make_inert(why, 200);
                    *last_bad = Some(why.clone());
                }
                _ => {}
            }
            // A sample not sent on, whole or patch, leaves the receiver behind the stream: the next delta
            // goes whole.
            let sample = event.is_sample();
            if !emit(event) && sample {
                compact.unsent();
            }
        });
    }
}

impl StreamDecoder {
    /// Whether the agent should be asked for a full sample now: its compact stream lost its place. Asked once
    /// per loss; only an agent whose hello said it sends the compact stream is ever asked.
    pub fn take_full_request(&mut self) -> bool {
        self.compact.take_full_request()
    }

    /// The end of the stream: emits an nvidia-smi sample still being assembled.
    pub fn finish(&mut self, emit: &mut dyn FnMut(NodeEvent) -> bool) {
        if let Format::Smi { rows, .. } = &mut self.format {
            if let Some(mut sample) = rows.flush(crate::telemetry::unix_ms()) {
                sample.sanitize(MAX_GPUS_PER_SAMPLE);
                self.samples += 1;
                emit(NodeEvent::Sample(sample));
            }
        }
    }
}

/// The line a node's shell prints before running nvidia-smi because it has no agent.
pub(crate) const SMI_FOLLOWS: &str = "#fleetop: no agent, nvidia-smi follows";

fn smi_format(expected_gpus: u32) -> Format {
    Format::Smi {
        tier: 0,
        columns: Columns::from_query(&smi_csv::field_tiers()[0]),
        rows: RowAssembler::new(expected_gpus),
    }
}

/// The event a line makes; `None` for an nvidia-smi row that does not yet complete a sample.
fn decode_line(format: &mut Format, compact: &mut Reassembler, text: &str) -> Option<NodeEvent> {
    if let Format::AgentOrSmi { expected_gpus } = *format {
        if text.trim_end() == SMI_FOLLOWS {
            *format = smi_format(expected_gpus);
            return Some(NodeEvent::Streaming {
                source: Source::NvidiaSmi,
                detail: "nvidia-smi (no fleetop agent on the node)".into(),
                hello: None,
            });
        }
        *format = Format::Agent(Source::Agent);
    }
    Some(match format {
        // Decided by the first line, above.
        Format::AgentOrSmi { .. } => return None,
        Format::Agent(source) => match decode_agent_line(text) {
            AgentLine::Hello(mut h) => {
                compact.start(h.compact.is_some());
                // The node's own words: escaped and bounded like every string it sends.
                let mut detail = format!(
                    "fleetop agent {} · driver {} · CUDA {} · {} GPUs",
                    h.version,
                    h.driver.as_deref().unwrap_or("?"),
                    h.cuda.as_deref().unwrap_or("?"),
                    h.gpus
                );
                make_inert(&mut detail, 200);
                h.sanitize();
                NodeEvent::Streaming {
                    source: *source,
                    detail,
                    hello: Some(Box::new(h)),
                }
            }
            AgentLine::Sample(s) => {
                compact.full(&s);
                NodeEvent::Sample(s)
            }
            AgentLine::Delta(d) => match compact.apply(d) {
                Ok(Rebuilt::Patch(p)) => NodeEvent::Delta(Box::new(p)),
                Ok(Rebuilt::Whole(s)) => NodeEvent::Sample(s),
                Err(why) => NodeEvent::BadLine(why),
            },
            AgentLine::Bad(why) => NodeEvent::BadLine(why),
        },
        Format::Smi {
            tier,
            columns,
            rows,
        } => {
            if smi_csv::is_unknown_field(text) {
                // The remote command asks the next, smaller field list: read the rows that follow by it.
                let tiers = smi_csv::field_tiers();
                *tier = (*tier + 1).min(tiers.len() - 1);
                *columns = Columns::from_query(&tiers[*tier]);
                return None;
            }
            match smi_csv::parse_row(columns, text) {
                Ok(row) => NodeEvent::Sample(rows.push(row, crate::telemetry::unix_ms())?),
                Err(why) => NodeEvent::BadLine(why),
            }
        }
    })
}
