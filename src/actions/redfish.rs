//! Redfish reboots: read the system's allowed reset types, then post `ComputerSystem.Reset`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::inventory::{expand_home, Redfish};

/// `user:password` from the credentials file, else from the environment variable; never from the inventory.
fn credentials(r: &Redfish) -> Result<(String, String), String> {
    let text = match &r.credentials_file {
        Some(file) => std::fs::read_to_string(expand_home(file))
            .map_err(|e| format!("redfish credentials {file}: {e}"))?,
        None => std::env::var(&r.credentials_env)
            .map_err(|_| format!("redfish credentials: ${} is not set", r.credentials_env))?,
    };
    let line = text.lines().next().unwrap_or("").trim();
    line.split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .ok_or_else(|| "redfish credentials must read user:password".to_string())
}

fn agent(r: &Redfish, limit: Duration) -> Result<ureq::Agent, String> {
    let mut tls = native_tls::TlsConnector::builder();
    if let Some(ca) = &r.ca_file {
        let pem =
            std::fs::read(expand_home(ca)).map_err(|e| format!("redfish CA file {ca}: {e}"))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| format!("redfish CA file {ca}: {e}"))?;
        tls.add_root_certificate(cert);
    }
    let connector = tls.build().map_err(|e| format!("TLS: {e}"))?;
    Ok(ureq::AgentBuilder::new()
        .timeout(limit)
        .tls_connector(Arc::new(connector))
        .build())
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, response) => {
            let body = response.into_string().unwrap_or_default();
            format!(
                "HTTP {code}: {}",
                body.chars().take(300).collect::<String>()
            )
        }
        other => other.to_string(),
    }
}

/// Posts a reset to the BMC at `argv[0]` with ResetType `argv[1]`; returns (ok, HTTP status, detail).
pub fn reset(r: &Redfish, argv: &[String], limit: Duration) -> (bool, Option<i32>, String) {
    match try_reset(r, argv, limit) {
        Ok((status, detail)) => (true, Some(status), detail),
        Err(e) => (false, None, e),
    }
}

fn try_reset(r: &Redfish, argv: &[String], limit: Duration) -> Result<(i32, String), String> {
    let (base, reset_type) = match argv {
        [base, reset_type] => (base.as_str(), reset_type.as_str()),
        _ => return Err("bad Redfish step".into()),
    };
    let (user, password) = credentials(r)?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let agent = agent(r, limit)?;
    let get = |path: &str| -> Result<Value, String> {
        agent
            .get(&format!("{base}{path}"))
            .set("Authorization", &auth)
            .call()
            .map_err(|e| format!("GET {path}: {}", describe(e)))?
            .into_json::<Value>()
            .map_err(|e| format!("GET {path}: {e}"))
    };
    let system = match &r.system {
        Some(s) => s.clone(),
        None => get("/redfish/v1/Systems")?["Members"][0]["@odata.id"]
            .as_str()
            .ok_or("the BMC lists no systems")?
            .to_string(),
    };
    let doc = get(&system)?;
    let action = &doc["Actions"]["#ComputerSystem.Reset"];
    let target = action["target"]
        .as_str()
        .ok_or_else(|| format!("{system} offers no ComputerSystem.Reset"))?;
    if let Some(allowed) = action["ResetType@Redfish.AllowableValues"].as_array() {
        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        if !names.contains(&reset_type) {
            return Err(format!(
                "this BMC does not offer ResetType {reset_type} (it offers {})",
                names.join(", ")
            ));
        }
    }
    let response = agent
        .post(&format!("{base}{target}"))
        .set("Authorization", &auth)
        .send_json(serde_json::json!({ "ResetType": reset_type }))
        .map_err(|e| format!("POST {target}: {}", describe(e)))?;
    Ok((
        i32::from(response.status()),
        format!(
            "POST {target} ResetType={reset_type}: HTTP {}",
            response.status()
        ),
    ))
}
