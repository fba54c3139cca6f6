//! What a refresh from the store cost, query by query: waiting for the store (it evaluates and starts
//! sending), receiving, parsing; and merging by node. `snapshot --timings` prints it.

use std::fmt::Write as _;
use std::time::Duration;

use super::query::Cost;
use crate::timings::seconds;

/// One query's cost.
#[derive(Debug, Clone)]
pub(crate) struct QueryCost {
    pub name: &'static str,
    pub fetch: Cost,
    pub parse: Duration,
    pub series: usize,
}

impl QueryCost {
    pub fn new(name: &'static str, fetch: Cost, parse: Duration, series: usize) -> Self {
        QueryCost {
            name,
            fetch,
            parse,
            series,
        }
    }
}

/// One refresh's cost.
#[derive(Debug, Clone)]
pub(crate) struct RefreshCost {
    pub wall: Duration,
    pub queries: Vec<QueryCost>,
    /// Filing every answer's series under its node and GPU, after the last answer.
    pub merge: Duration,
}

impl RefreshCost {
    /// A line per query that answered series, one for those that answered none, and the merge.
    pub fn render(&self, url: &str, in_flight: usize) -> String {
        let mut out = format!(
            "source: Prometheus {}: one refresh in {} wall, {} queries, {in_flight} in flight\n\
             {:>10} {:>10} {:>10} {:>8} {:>9}  query\n",
            crate::text::escape(url),
            seconds(self.wall).trim(),
            self.queries.len(),
            "store",
            "receive",
            "parse",
            "series",
            "MB"
        );
        let (empty, answered): (Vec<&QueryCost>, Vec<&QueryCost>) =
            self.queries.iter().partition(|q| q.series == 0);
        for q in &answered {
            let _ = writeln!(
                out,
                "{:>10} {:>10} {:>10} {:>8} {:>9.1}  {}",
                seconds(q.fetch.wait),
                seconds(q.fetch.receive),
                seconds(q.parse),
                q.series,
                q.fetch.bytes as f64 / 1e6,
                q.name
            );
        }
        if !empty.is_empty() {
            let sum = |f: fn(&QueryCost) -> Duration| empty.iter().map(|q| f(q)).sum::<Duration>();
            let _ = writeln!(
                out,
                "{:>10} {:>10} {:>10} {:>8} {:>9.1}  {} queries that answered no series",
                seconds(sum(|q| q.fetch.wait)),
                seconds(sum(|q| q.fetch.receive)),
                seconds(sum(|q| q.parse)),
                0,
                empty.iter().map(|q| q.fetch.bytes).sum::<usize>() as f64 / 1e6,
                empty.len()
            );
        }
        let _ = writeln!(
            out,
            "{:>10}  merging every answer by node and GPU",
            seconds(self.merge)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_listed_per_query_with_empty_ones_summed() {
        let fetch = |ms: u64, bytes: usize| Cost {
            wait: Duration::from_millis(ms),
            receive: Duration::from_millis(1),
            bytes,
        };
        let cost = RefreshCost {
            wall: Duration::from_millis(2500),
            queries: vec![
                QueryCost::new(
                    "DCGM_FI_DEV_GPU_UTIL",
                    fetch(1200, 16_000_000),
                    Duration::from_millis(300),
                    100_000,
                ),
                QueryCost::new(
                    "DCGM_FI_DEV_MEM_COPY_UTIL",
                    fetch(2, 300),
                    Duration::ZERO,
                    0,
                ),
                QueryCost::new(
                    super::super::query::TARGETS_DOWN,
                    fetch(3, 300),
                    Duration::ZERO,
                    0,
                ),
            ],
            merge: Duration::from_millis(90),
        };
        let text = cost.render("http://prom:9090", 4);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "source: Prometheus http://prom:9090: one refresh in 2.500 s wall, 3 queries, 4 in flight"
        );
        assert_eq!(
            lines[2],
            "   1.200 s     1.0 ms   300.0 ms   100000      16.0  DCGM_FI_DEV_GPU_UTIL"
        );
        assert_eq!(
            lines[3],
            "    5.0 ms     2.0 ms     0.0 ms        0       0.0  2 queries that answered no series"
        );
        assert_eq!(lines[4], "   90.0 ms  merging every answer by node and GPU");
    }
}
