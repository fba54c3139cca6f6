//! One query against a Prometheus-compatible HTTP API (`/api/v1/query`, `/api/v1/query_range`), bounded in
//! size, with the store's auth; the answer parsed in place: labels and values borrow from the answer's bytes,
//! so 100,000 series cost one small vector each rather than a string per label.

use std::borrow::Cow;
use std::io::Read;
use std::time::{Duration, Instant};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::budget::{self, Budget};
use crate::inventory::{expand_home, PrometheusSource};

/// The largest answer read for one family: 100,000 GPUs' series with dcgm-exporter's labels fit well inside.
const MAX_ANSWER_BYTES: u64 = 512 * 1024 * 1024;
/// The scrape targets that failed their last scrape (Prometheus' own `up` series): the one spelling of the
/// query, for the refresh and the list of queries asked.
pub(crate) const TARGETS_DOWN: &str = "up == 0";
/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);
/// Labels kept per series: dcgm-exporter sends about a dozen; a series with hundreds is refused.
const MAX_LABELS: usize = 64;
/// The most of a store's error text kept: the API's messages are a line or two, and the text is copied into
/// every node's failure (1,025 copies at the reference fleet), so a megabyte of it must not be.
const MAX_ERROR_BYTES: usize = 4096;

/// A store's own text (its error, an unexpected result type) as fleetop shows it: at most
/// [`MAX_ERROR_BYTES`] of it, cut at a character boundary, with terminal controls made visible.
fn store_text(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "…" } else { "" };
    format!("{}{cut}", crate::text::escape(&text[..end]))
}

/// A string of the answer, borrowed where JSON needed no unescaping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A series' labels as the store sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Labels<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'a> Labels<'a> {
    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.as_str())
    }

    #[cfg(test)]
    pub fn of(pairs: &[(&'a str, &'a str)]) -> Self {
        Labels(
            pairs
                .iter()
                .map(|(k, v)| (Text(Cow::Borrowed(*k)), Text(Cow::Borrowed(*v))))
                .collect(),
        )
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of label names to values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Labels<'de>, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4).min(MAX_LABELS));
                while let Some(pair) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    if pairs.len() == MAX_LABELS {
                        return Err(serde::de::Error::custom(format!(
                            "a series with more than {MAX_LABELS} labels"
                        )));
                    }
                    pairs.push(pair);
                }
                Ok(Labels(pairs))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// One series of an instant vector: its labels, sample time (Unix seconds) and value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Series<'a> {
    #[serde(borrow)]
    pub metric: Labels<'a>,
    #[serde(borrow)]
    pub value: (f64, Text<'a>),
}

/// One series of a range query: its labels and its points (Unix seconds, value).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct RangeSeries<'a> {
    #[serde(borrow)]
    pub metric: Labels<'a>,
    #[serde(borrow)]
    pub values: Vec<(f64, Text<'a>)>,
}

/// How an answer's envelope read, its series having gone to the caller one by one.
#[derive(Default)]
struct Envelope {
    status: Option<String>,
    error: Option<String>,
    result_type: Option<String>,
    has_data: bool,
    series: usize,
}

/// Reads an answer (`{"status", "data": {"resultType", "result": […]}, "error"}`, in any key order), handing
/// each series of `result` to `each` as it is parsed, so no list of 100,000 series is ever built.
struct AnswerSeed<'f, T, F> {
    each: &'f mut F,
    item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> serde::de::DeserializeSeed<'de>
    for AnswerSeed<'_, T, F>
{
    type Value = Envelope;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for AnswerSeed<'_, T, F> {
    type Value = Envelope;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Prometheus API answer")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Envelope, M::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.as_str() {
                "status" => envelope.status = Some(map.next_value()?),
                "error" => envelope.error = map.next_value()?,
                "data" => {
                    envelope.has_data = true;
                    let (result_type, series) = map.next_value_seed(DataSeed {
                        each: &mut *self.each,
                        item: self.item,
                    })?;
                    envelope.result_type = result_type;
                    envelope.series = series;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// `data`: its `resultType` and how many series `result` held.
struct DataSeed<'f, T, F> {
    each: &'f mut F,
    item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> serde::de::DeserializeSeed<'de> for DataSeed<'_, T, F> {
    type Value = (Option<String>, usize);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for DataSeed<'_, T, F> {
    type Value = (Option<String>, usize);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the answer's data")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (mut result_type, mut series) = (None, 0);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.as_str() {
                "resultType" => result_type = Some(map.next_value()?),
                "result" => {
                    series = map.next_value_seed(ResultSeed {
                        each: &mut *self.each,
                        item: self.item,
                    })?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((result_type, series))
    }
}

/// `result`: every series handed over in turn; how many there were.
struct ResultSeed<'f, T, F> {
    each: &'f mut F,
    item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> serde::de::DeserializeSeed<'de>
    for ResultSeed<'_, T, F>
{
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for ResultSeed<'_, T, F> {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<usize, S::Error> {
        let mut count = 0;
        while let Some(series) = seq.next_element::<T>()? {
            (self.each)(series);
            count += 1;
        }
        Ok(count)
    }
}

/// What one query cost: waiting for the store (request sent → headers back), receiving its body, its size.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cost {
    pub wait: Duration,
    pub receive: Duration,
    pub bytes: usize,
}

/// An answer's body, and what fetching it cost.
pub(crate) struct Body {
    pub bytes: Vec<u8>,
    pub cost: Cost,
}

/// An HTTP client for one store, with its credentials read once.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    pub fn new(source: &PrometheusSource) -> Result<Client, String> {
        let read = |path: &str| {
            std::fs::read_to_string(expand_home(path))
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("{path}: {e}"))
        };
        let authorization = match (&source.bearer_token_file, &source.basic_auth_file) {
            (Some(token), _) => Some(format!("Bearer {}", read(token)?)),
            (None, Some(basic)) => {
                use base64::Engine;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(read(basic)?)
                ))
            }
            (None, None) => None,
        };
        let mut builder = ureq::AgentBuilder::new().timeout(QUERY_TIMEOUT);
        if let Some(ca) = &source.ca_file {
            let pem = std::fs::read(expand_home(ca)).map_err(|e| format!("{ca}: {e}"))?;
            let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| format!("{ca}: {e}"))?;
            let tls = native_tls::TlsConnector::builder()
                .add_root_certificate(cert)
                .build()
                .map_err(|e| e.to_string())?;
            builder = builder.tls_connector(std::sync::Arc::new(tls));
        }
        Ok(Client {
            agent: builder.build(),
            base: source.url.clone(),
            authorization,
        })
    }

    /// The answer to instant query `query`, evaluated now or at `time` (Unix seconds), its bytes taken from
    /// `budget`; parse it with [`each_vector`].
    pub fn instant(&self, query: &str, time: Option<f64>, budget: &Budget) -> Result<Body, String> {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        self.get("query", query, &params, budget)
    }

    /// The answer to range query `query` from `start` to `end` (Unix seconds) every `step` seconds; parse it
    /// with [`each_matrix`].
    pub fn range(
        &self,
        query: &str,
        (start, end, step): (f64, f64, f64),
        budget: &Budget,
    ) -> Result<Body, String> {
        let params = [
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step:.3}")),
        ];
        self.get("query_range", query, &params, budget)
    }

    /// One GET of `/api/v1/ENDPOINT`, its body bounded on its own and by what is left of `budget`.
    fn get(
        &self,
        endpoint: &str,
        query: &str,
        params: &[(&str, String)],
        budget: &Budget,
    ) -> Result<Body, String> {
        let mut req = self.agent.get(&format!("{}/api/v1/{endpoint}", self.base));
        for (k, v) in params {
            req = req.query(k, v);
        }
        if let Some(auth) = &self.authorization {
            req = req.set("Authorization", auth);
        }
        let asked = Instant::now();
        let response = match req.call() {
            Ok(r) => r,
            // The API explains a bad query in its JSON body, with a 400 or 422.
            Err(ureq::Error::Status(code, r)) => {
                let mut body = Vec::new();
                let _ = r
                    .into_reader()
                    .take(MAX_ERROR_BYTES as u64)
                    .read_to_end(&mut body);
                let body = String::from_utf8_lossy(&body);
                return Err(format!("{query}: HTTP {code}: {}", store_text(body.trim())));
            }
            Err(e) => return Err(format!("{}: {e}", self.base)),
        };
        let answered = Instant::now();
        let mut reader = response.into_reader().take(MAX_ANSWER_BYTES + 1);
        let bytes = budget::read_within(&mut reader, budget).map_err(|e| match e {
            Some(e) => format!("{query}: {e}"),
            None => budget.over_bytes(query),
        })?;
        if bytes.len() as u64 > MAX_ANSWER_BYTES {
            return Err(format!(
                "{query}: answer larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        let cost = Cost {
            wait: answered - asked,
            receive: answered.elapsed(),
            bytes: bytes.len(),
        };
        Ok(Body { bytes, cost })
    }
}

/// Hands each series of an instant-query answer to `each`; how many there were, or the store's error. A
/// failed answer may have handed some series over before its error was read: the caller keeps none of them.
pub(crate) fn each_vector<'a>(
    query: &str,
    body: &'a [u8],
    each: impl FnMut(Series<'a>),
) -> Result<usize, String> {
    each_series(query, body, "vector", each)
}

/// Hands each series of a range-query answer to `each`, as [`each_vector`] does.
pub(crate) fn each_matrix<'a>(
    query: &str,
    body: &'a [u8],
    each: impl FnMut(RangeSeries<'a>),
) -> Result<usize, String> {
    each_series(query, body, "matrix", each)
}

fn each_series<'a, T: Deserialize<'a>>(
    query: &str,
    body: &'a [u8],
    kind: &str,
    mut each: impl FnMut(T),
) -> Result<usize, String> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let seed = AnswerSeed {
        each: &mut each,
        item: std::marker::PhantomData,
    };
    let envelope = serde::de::DeserializeSeed::deserialize(seed, &mut reader)
        .and_then(|e| reader.end().map(|()| e))
        .map_err(|e| format!("{query}: not a Prometheus answer: {e}"))?;
    if envelope.status.as_deref() != Some("success") {
        return Err(format!(
            "{query}: {}",
            store_text(envelope.error.as_deref().unwrap_or("query failed"))
        ));
    }
    if !envelope.has_data {
        return Err(format!("{query}: answer without data"));
    }
    let result_type = envelope.result_type.unwrap_or_default();
    if result_type != kind {
        return Err(format!(
            "{query}: a {} where a {kind} was expected",
            store_text(&result_type)
        ));
    }
    Ok(envelope.series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_vector<'a>(query: &str, body: &'a [u8]) -> Result<Vec<Series<'a>>, String> {
        let mut all = Vec::new();
        each_vector(query, body, |s| all.push(s))?;
        Ok(all)
    }

    #[test]
    fn vectors_errors_and_garbage() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","Hostname":"n1","gpu":"0","modelName":"H\u0031"},"value":[1700000000.123,"97"]}]}}"#;
        let series = parse_vector("DCGM_FI_DEV_GPU_UTIL", ok).unwrap();
        assert_eq!(series[0].metric.get("gpu"), Some("0"));
        assert_eq!(series[0].metric.get("Hostname"), Some("n1"));
        assert_eq!(
            series[0].metric.get("modelName"),
            Some("H1"),
            "escapes are read"
        );
        assert_eq!(series[0].metric.get("UUID"), None);
        assert_eq!(series[0].value.0, 1_700_000_000.123);
        assert_eq!(series[0].value.1.as_str(), "97");
        let failed =
            br#"{"status":"error","errorType":"bad_data","error":"parse error \u001b[2J"}"#;
        assert_eq!(
            parse_vector("x", failed).unwrap_err(),
            "x: parse error \\x1b[2J"
        );
        assert!(parse_vector("x", b"<html>")
            .unwrap_err()
            .contains("not a Prometheus answer"));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_vector("x", matrix)
            .unwrap_err()
            .contains("a matrix where a vector"));
        assert_eq!(each_matrix("x", matrix, |_| {}), Ok(0));
        // Keys in any order; unknown keys skipped; warnings ignored.
        let reordered = br#"{"data":{"result":[{"value":[1,"5"],"metric":{"gpu":"1"}}],"extra":[1],"resultType":"vector"},"warnings":["w"],"status":"success"}"#;
        assert_eq!(
            parse_vector("x", reordered).unwrap()[0].value.1.as_str(),
            "5"
        );
        assert!(parse_vector("x", br#"{"status":"success"}"#)
            .unwrap_err()
            .contains("answer without data"));
        assert!(parse_vector(
            "x",
            br#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#
        )
        .unwrap_err()
        .contains("not a Prometheus answer"));
    }

    #[test]
    fn a_huge_store_error_is_cut_before_it_is_copied_into_every_node() {
        // HTTP 200 with `status: error` and a 2 MB message (issue 25 case 16).
        let huge = "é".repeat(1024 * 1024);
        let body = format!(r#"{{"status":"error","errorType":"execution","error":"{huge}"}}"#);
        let err = parse_vector("up", body.as_bytes()).unwrap_err();
        assert!(err.len() <= MAX_ERROR_BYTES + 64, "{} bytes", err.len());
        assert!(err.starts_with("up: éé") && err.ends_with('…'), "{err:.40}");
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"{}","result":[]}}}}"#,
            "m".repeat(2 << 20)
        );
        let err = parse_vector("up", body.as_bytes()).unwrap_err();
        assert!(err.len() <= MAX_ERROR_BYTES + 64, "{} bytes", err.len());
    }

    #[test]
    fn a_series_with_too_many_labels_is_refused() {
        let labels: Vec<String> = (0..=MAX_LABELS)
            .map(|i| format!("\"l{i}\":\"v\""))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{{}}},"value":[1,"1"]}}]}}}}"#,
            labels.join(",")
        );
        let err = parse_vector("x", body.as_bytes()).unwrap_err();
        assert!(err.contains("more than 64 labels"), "{err}");
    }
}
