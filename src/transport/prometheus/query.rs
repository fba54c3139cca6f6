//! One instant query against a Prometheus-compatible HTTP API (`/api/v1/query`), bounded in size, with the
//! store's auth; the answer's vector as plain series.

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;

use crate::inventory::{expand_home, PrometheusSource};

/// The largest answer read for one family: 100,000 GPUs' series with dcgm-exporter's labels fit well inside.
const MAX_ANSWER_BYTES: u64 = 512 * 1024 * 1024;
/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// The labels fleetop reads, the node's under one name whichever exporter sent it (queries rename it to
/// `fleetop_node`); every other label is skipped while parsing, so a series costs a few small strings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Labels {
    #[serde(alias = "node")]
    pub fleetop_node: Option<String>,
    pub gpu: Option<String>,
    /// dcgm-exporter's `UUID`, fleetop's `uuid`.
    #[serde(alias = "UUID")]
    pub uuid: Option<String>,
    #[serde(rename = "modelName")]
    pub model: Option<String>,
    pub pci_bus_id: Option<String>,
    pub xid: Option<String>,
}

/// One series of an instant vector: its labels, sample time (Unix seconds) and value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Series {
    pub metric: Labels,
    pub value: (f64, String),
}

/// One series of a range query: its labels and its points (Unix seconds, value).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RangeSeries {
    pub metric: Labels,
    pub values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct RangeAnswer {
    status: String,
    #[serde(default)]
    data: Option<RangeData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct RangeData {
    #[serde(default)]
    result: Vec<RangeSeries>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Series>,
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

    /// The instant vector of `query`, evaluated now or at `time` (Unix seconds).
    pub fn instant(&self, query: &str, time: Option<f64>) -> Result<Vec<Series>, String> {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        parse(query, &self.get("query", query, &params)?)
    }

    /// The matrix of `query` from `start` to `end` (Unix seconds) every `step` seconds.
    pub fn range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<RangeSeries>, String> {
        let params = [
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step:.3}")),
        ];
        let body = self.get("query_range", query, &params)?;
        let answer: RangeAnswer = serde_json::from_slice(&body)
            .map_err(|e| format!("{query}: not a Prometheus answer: {e}"))?;
        if answer.status != "success" {
            return Err(format!(
                "{query}: {}",
                crate::text::escape(answer.error.as_deref().unwrap_or("query failed"))
            ));
        }
        Ok(answer.data.map(|d| d.result).unwrap_or_default())
    }

    /// One GET of `/api/v1/ENDPOINT`, its body bounded.
    fn get(
        &self,
        endpoint: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, String> {
        let mut req = self.agent.get(&format!("{}/api/v1/{endpoint}", self.base));
        for (k, v) in params {
            req = req.query(k, v);
        }
        if let Some(auth) = &self.authorization {
            req = req.set("Authorization", auth);
        }
        let response = match req.call() {
            Ok(r) => r,
            // The API explains a bad query in its JSON body, with a 400 or 422.
            Err(ureq::Error::Status(code, r)) => {
                let mut body = String::new();
                let _ = r.into_reader().take(4096).read_to_string(&mut body);
                return Err(format!(
                    "{query}: HTTP {code}: {}",
                    crate::text::escape(body.trim())
                ));
            }
            Err(e) => return Err(format!("{}: {e}", self.base)),
        };
        let mut body = Vec::new();
        response
            .into_reader()
            .take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("{query}: {e}"))?;
        if body.len() as u64 > MAX_ANSWER_BYTES {
            return Err(format!(
                "{query}: answer larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        Ok(body)
    }
}

/// The series of an instant-query answer, or the store's error.
pub(crate) fn parse(query: &str, body: &[u8]) -> Result<Vec<Series>, String> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("{query}: not a Prometheus answer: {e}"))?;
    if answer.status != "success" {
        return Err(format!(
            "{query}: {}",
            crate::text::escape(answer.error.as_deref().unwrap_or("query failed"))
        ));
    }
    let data = answer
        .data
        .ok_or_else(|| format!("{query}: answer without data"))?;
    if data.result_type != "vector" {
        return Err(format!(
            "{query}: a {} where a vector was expected",
            data.result_type
        ));
    }
    Ok(data.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_errors_and_garbage() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","Hostname":"n1","gpu":"0"},"value":[1700000000.123,"97"]}]}}"#;
        let series = parse("DCGM_FI_DEV_GPU_UTIL", ok).unwrap();
        assert_eq!(series[0].metric.gpu.as_deref(), Some("0"));
        assert_eq!(
            series[0].metric.fleetop_node, None,
            "Hostname is renamed by the query, not here"
        );
        assert_eq!(series[0].value, (1_700_000_000.123, "97".to_string()));
        let failed =
            br#"{"status":"error","errorType":"bad_data","error":"parse error \u001b[2J"}"#;
        assert_eq!(parse("x", failed).unwrap_err(), "x: parse error \\x1b[2J");
        assert!(parse("x", b"<html>")
            .unwrap_err()
            .contains("not a Prometheus answer"));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse("x", matrix)
            .unwrap_err()
            .contains("a matrix where a vector"));
    }
}
