//! The exporter: a one-node fleet state fed by the agent loop and rendered as `/metrics` per scrape; the
//! process ends when its listener does.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::http;
use crate::agent::Published;
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::telemetry::Source;
use crate::transport::{Msg, NodeEvent};

/// The last samples, shared between the agent loop and the HTTP thread.
#[derive(Clone, Default)]
pub(crate) struct Exporter {
    state: Arc<Mutex<Option<FleetState>>>,
}

impl Exporter {
    /// Listens on `addr` and answers `GET /metrics` on a thread of its own. Should that thread's listener
    /// fail for good (or the thread panic), the process ends with [`EXIT_CANNOT_RUN`]: an agent that lives
    /// on without its port would never be restarted.
    pub fn start(addr: &str) -> Result<Exporter, String> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let exporter = Exporter::default();
        let shared = exporter.clone();
        let pages: http::Pages = Arc::new(move |method, path| shared.answer(method, path));
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let _ends = EndsProcess;
                let why = http::serve(listener, pages);
                crate::text::warn(&format!("fleetop agent: {why}"));
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(exporter)
    }

    /// Takes what the agent publishes; always true (a scrape server has no reader to lose).
    pub(crate) fn publish(&self, published: Published) -> bool {
        let mut slot = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let event = match published {
            Published::Hello(hello) => {
                *slot = this_node(hello.gpus).map(|inv| FleetState::new(Arc::new(inv)));
                NodeEvent::Streaming {
                    source: Source::Agent,
                    detail: format!("fleetop agent {}", hello.version),
                    hello: Some(Box::new(hello.clone())),
                }
            }
            Published::Sample(sample) => NodeEvent::Sample(sample.clone()),
        };
        if let Some(state) = slot.as_mut() {
            state.apply(Msg {
                node: 0,
                at: Instant::now(),
                event,
            });
        }
        true
    }

    /// The body and content type for a path, or an HTTP status with a reason.
    pub fn page(&self, method: &str, path: &str) -> Result<(String, &'static str), (u16, String)> {
        if method != "GET" && method != "HEAD" {
            return Err((405, "only GET\n".into()));
        }
        match path {
            "/metrics" => {
                let slot = self.state.lock().unwrap_or_else(|p| p.into_inner());
                match slot.as_ref() {
                    Some(state) => Ok((
                        crate::snapshot::prometheus(state, Instant::now()),
                        "text/plain; version=0.0.4; charset=utf-8",
                    )),
                    None => Err((503, "the agent is starting: NVML not read yet\n".into())),
                }
            }
            "/" => Ok((
                "fleetop agent: Prometheus metrics at /metrics\n".into(),
                "text/plain; charset=utf-8",
            )),
            _ => Err((404, "not found: try /metrics\n".into())),
        }
    }

    fn answer(&self, method: &str, path: &str) -> http::Answer {
        match self.page(method, path) {
            Ok((body, content_type)) => http::Answer {
                status: 200,
                content_type,
                body,
            },
            Err((status, body)) => http::Answer {
                status,
                content_type: "text/plain; charset=utf-8",
                body,
            },
        }
    }
}

/// Ends the process when dropped: on the metrics thread, whether it returns or unwinds.
struct EndsProcess;

impl Drop for EndsProcess {
    fn drop(&mut self) {
        crate::text::warn(
            "fleetop agent: the metrics listener stopped; exiting so that it is restarted",
        );
        std::process::exit(EXIT_CANNOT_RUN);
    }
}

/// A one-node inventory named after this host (its first label; `node` when that is no valid name),
/// expecting the GPUs NVML lists.
fn this_node(gpus: u32) -> Option<Inventory> {
    let name = hostname()
        .split('.')
        .next()
        .map(|h| {
            h.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty() && h.len() <= 63)
        .unwrap_or_else(|| "node".into());
    let gpus = gpus.clamp(1, crate::inventory::MAX_GPUS_PER_NODE);
    let named = |name: &str| {
        let text = format!(
            "[defaults]\ngpus_per_node = {gpus}\n[[cabinet]]\nname = \"local\"\nnodes = \"{name}\"\n"
        );
        Inventory::parse("agent", &text).ok()
    };
    named(&name).or_else(|| named("node"))
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::wire::AgentHello;
    use crate::telemetry::{GpuSample, NodeSample};

    #[test]
    fn a_scrape_renders_the_last_sample_and_refuses_what_it_does_not_serve() {
        let e = Exporter::default();
        assert_eq!(e.page("GET", "/metrics").unwrap_err().0, 503);
        e.publish(Published::Hello(&AgentHello {
            fleetop_agent: 1,
            version: "0.1.0".into(),
            driver: Some("550.90.07".into()),
            cuda: None,
            gpus: 1,
            kernel: None,
            build: None,
            compact: None,
        }));
        e.publish(Published::Sample(&NodeSample {
            t: 1,
            gpus: vec![GpuSample {
                index: 0,
                util_pct: Some(42),
                temp_c: Some(50),
                xid: Some(vec![]),
                ..Default::default()
            }],
            ..Default::default()
        }));
        let (text, kind) = e.page("GET", "/metrics").unwrap();
        assert!(kind.starts_with("text/plain; version=0.0.4"));
        assert!(text.contains("fleetop_node_up{"), "{text}");
        assert!(text.contains(",gpu=\"0\",uuid=\"\"} 0.42\n"), "{text}");
        assert_eq!(e.page("POST", "/metrics").unwrap_err().0, 405);
        assert_eq!(e.page("GET", "/other").unwrap_err().0, 404);
    }
}
