//! What one refresh may hold, for all its queries together: each answer is bounded on its own, but a refresh
//! asks some thirty families and keeps every family's readings until the merge, so without a bound for the
//! whole refresh its memory grew with the sum of the answers (100 MB answers took 2 GB). Past the budget the
//! refresh is refused with the reason, and the next one tries again.

use std::sync::atomic::{AtomicU64, Ordering};

/// Answer bytes one refresh may receive in all: the reference fleet's answers come to a few MB, 100,000 GPUs'
/// to some 350 MB.
pub(crate) const MAX_REFRESH_BYTES: u64 = 1 << 30;
/// Readings one refresh may keep until the merge (about 50 bytes each): 100,000 GPUs' families come to some
/// two million.
pub(crate) const MAX_REFRESH_READINGS: u64 = 4_000_000;
/// Bytes taken from the budget at a time while an answer is read.
const BYTES_AT_A_TIME: u64 = 1 << 20;

/// The budget of one refresh, shared by its query threads: what is left of it, and what it was.
#[derive(Debug)]
pub(crate) struct Budget {
    bytes: AtomicU64,
    readings: AtomicU64,
    max_bytes: u64,
    max_readings: u64,
}

impl Budget {
    pub fn new(bytes: u64, readings: u64) -> Self {
        Budget {
            bytes: AtomicU64::new(bytes),
            readings: AtomicU64::new(readings),
            max_bytes: bytes,
            max_readings: readings,
        }
    }

    /// A full budget for one refresh.
    pub(crate) fn for_refresh() -> Self {
        Budget::new(MAX_REFRESH_BYTES, MAX_REFRESH_READINGS)
    }

    /// Takes up to [`BYTES_AT_A_TIME`] bytes; how many it got (0: the budget is spent).
    pub(crate) fn take_bytes(&self) -> u64 {
        take_up_to(&self.bytes, BYTES_AT_A_TIME)
    }

    /// Returns bytes taken but not used.
    pub(crate) fn give_back_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Readings still allowed: a family being parsed stops keeping readings past this (so families in
    /// flight hold at most this many each), and is then refused by [`Budget::charge_readings`].
    pub(crate) fn readings_left(&self) -> u64 {
        self.readings.load(Ordering::Relaxed)
    }

    /// Charges a parsed family's `n` readings; false when they do not fit in what is left. The outcome
    /// does not depend on the order families finish in: they all fit exactly when their sum does.
    pub(crate) fn charge_readings(&self, n: u64) -> bool {
        self.readings
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(n))
            .is_ok()
    }

    /// Why a refresh whose answers passed the byte budget was refused.
    pub(crate) fn over_bytes(&self, query: &str) -> String {
        format!(
            "{query}: this refresh's answers passed {} bytes in all, the budget for one refresh; the \
             refresh was refused",
            self.max_bytes
        )
    }

    /// Why a refresh whose answers passed the readings budget was refused.
    pub(crate) fn over_readings(&self, query: &str) -> String {
        format!(
            "{query}: this refresh's answers passed {} series in all, the budget for one refresh; the \
             refresh was refused",
            self.max_readings
        )
    }
}

/// Takes up to `want` from `left`; how much it got.
fn take_up_to(left: &AtomicU64, want: u64) -> u64 {
    match left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
        Some(l - l.min(want))
    }) {
        Ok(before) | Err(before) => before.min(want),
    }
}

/// Reads `reader` to its end into a new buffer, taking every byte from `budget`; `Err(None)` once the
/// budget is spent before the end, `Err(Some(e))` on a read error.
pub(crate) fn read_within(
    reader: &mut impl std::io::Read,
    budget: &Budget,
) -> Result<Vec<u8>, Option<std::io::Error>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    loop {
        let granted = budget.take_bytes();
        if granted == 0 {
            // Spent: an answer that ends exactly here is still whole.
            let mut probe = [0u8; 1];
            return match reader.read(&mut probe) {
                Ok(0) => Ok(bytes),
                Ok(_) => Err(None),
                Err(e) => Err(Some(e)),
            };
        }
        let read = reader
            .by_ref()
            .take(granted)
            .read_to_end(&mut bytes)
            .map_err(Some)? as u64;
        budget.give_back_bytes(granted - read);
        if read < granted {
            return Ok(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_share_one_budget_and_the_one_past_it_is_refused() {
        let budget = Budget::new(3 * BYTES_AT_A_TIME, 0);
        let answer = vec![b'x'; (BYTES_AT_A_TIME + 10) as usize];
        let first = read_within(&mut answer.as_slice(), &budget).unwrap();
        assert_eq!(first.len(), answer.len());
        // Less than two chunks are left: a second answer of the same size still fits, a third does not.
        assert!(read_within(&mut answer.as_slice(), &budget).is_ok());
        assert!(matches!(
            read_within(&mut answer.as_slice(), &budget),
            Err(None)
        ));
        // What is left after the refusal is nothing: no later answer of this refresh gets any byte.
        assert!(matches!(read_within(&mut &b"y"[..], &budget), Err(None)));
        assert!(read_within(&mut &b""[..], &budget).is_ok());
    }

    /// A store on 127.0.0.1 that answers every query with one series per GPU of nodes n1–n3 (8 GPUs each),
    /// labelled for either exporter and every tag; it stops after `answers` connections.
    fn store(answers: usize) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let series: Vec<String> = (1..=3)
            .flat_map(|n| (0..8).map(move |g| (n, g)))
            .map(|(n, g)| {
                format!(
                    r#"{{"metric":{{"Hostname":"n{n}","node":"n{n}","gpu":"{g}","xid":"13","link":"1","counter":"replay"}},"value":[1700000000,"1"]}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        );
        // Bounded in count and time: a refused refresh stops asking early.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        std::thread::spawn(move || {
            let mut served = 0;
            while served < answers && std::time::Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    #[test]
    fn a_refresh_past_its_budget_is_refused_by_count() {
        use super::super::families::FAMILIES;
        use super::super::query::Client;
        use super::super::transport::{Asked, PrometheusTransport};
        let inv = crate::inventory::Inventory::parse(
            "t.toml",
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-3]\"\n",
        )
        .unwrap();
        let refresh = |budget: Budget| {
            let source = crate::inventory::PrometheusSource::at(&store(FAMILIES.len() + 1));
            let client = Client::new(&source).unwrap();
            let transport = PrometheusTransport::new(source);
            transport.refresh(&inv, &client, &mut Asked::default(), &budget)
        };
        // Every family answers 24 series: the refresh keeps 24 readings per family.
        let needed = 24 * FAMILIES.len() as u64;
        let round = refresh(Budget::new(MAX_REFRESH_BYTES, needed)).unwrap();
        assert_eq!(round.nodes.iter().flatten().count(), 3);
        let err = refresh(Budget::new(MAX_REFRESH_BYTES, needed - 1))
            .err()
            .unwrap();
        assert!(err.contains("series in all"), "{err}");
        // Bytes: enough for all but the last answer.
        let answer = 24 * 130;
        let err = refresh(Budget::new(answer, MAX_REFRESH_READINGS))
            .err()
            .unwrap();
        assert!(err.contains("bytes in all"), "{err}");
    }

    #[test]
    fn readings_are_charged_until_none_are_left() {
        let budget = Budget::new(0, 10);
        assert!(budget.charge_readings(6) && budget.charge_readings(4));
        assert!(!budget.charge_readings(1));
        assert_eq!(budget.readings_left(), 0);
    }
}
