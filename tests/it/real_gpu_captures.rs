//! A real NVIDIA H200's own output (tests/fixtures/real-gpu), served by nodes of the sshd fleet: what the agent
//! and nvidia-smi reported of the same GPU reads back the same and is judged alike.

use crate::common;

use common::{Behaviour, Fleet, Quirks};
use serde_json::{json, Value};

fn capture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/real-gpu/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A node whose "agent" prints the captured lines, its hello naming this build (the capture's build is older).
fn agent_capture(name: &str) -> Behaviour {
    let lines = capture(name).replace("d1c8b40d3418", fleetop::release::BUILD);
    Behaviour::Script(format!("cat <<'EOF'\n{lines}EOF\n"))
}

fn smi_capture(name: &str) -> Behaviour {
    Behaviour::Smi {
        rows: capture(name),
        legacy: false,
    }
}

#[test]
fn a_real_h200_reads_the_same_through_the_agent_and_nvidia_smi() {
    let fleet = Fleet::start(
        vec![
            agent_capture("h200-agent-idle.ndjson"),
            smi_capture("h200-smi-idle.csv"),
            agent_capture("h200-agent-busy.ndjson"),
            smi_capture("h200-smi-busy.csv"),
        ],
        Quirks::default(),
    );
    let path = fleet.dir.path().join("h200.toml");
    std::fs::write(&path, fleet.inventory(&[]).replace("gpus = 8", "gpus = 1")).unwrap();
    let out = fleet.snapshot(&path, "json", "10");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let logs = fleet.logs();
    let gpu = |name: &str| -> &Value {
        let node = doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap();
        assert_eq!(node["state"], "up", "{node:#}\n{logs}");
        assert_eq!(node["health"], "ok", "{node:#}");
        &node["gpus"][0]
    };
    let (agent_idle, smi_idle, agent_busy, smi_busy) =
        (gpu("tn01"), gpu("tn02"), gpu("tn03"), gpu("tn04"));
    assert_eq!(out.status.code(), Some(0), "{doc:#}");

    // What never changes reads the same both ways.
    for g in [agent_idle, smi_idle, agent_busy, smi_busy] {
        assert_eq!(g["uuid"], "GPU-f7a4a22d-afd7-60bf-7ab2-b9312bf6a3f5");
        assert_eq!(g["name"], "NVIDIA H200");
        assert_eq!(g["mem_total_mib"], 143771);
        assert_eq!(g["pci_bus_id"], "00000000:00:06.0");
        assert_eq!(g["ecc_uncorrected"], 0);
        assert_eq!(g["remapped_rows_pending"], false);
        assert_eq!(g["mig_enabled"], false);
        assert_eq!(g["power_limit_w"], 700.0);
        assert_eq!(g["health"], "ok", "{g:#}");
    }
    // Idle, moments apart: the same readings (power to NVML's milliwatts against nvidia-smi's two decimals).
    for field in [
        "util_pct",
        "mem_used_mib",
        "temp_c",
        "mem_temp_c",
        "sm_clock_mhz",
        "tlimit_margin_c",
    ] {
        assert_eq!(agent_idle[field], smi_idle[field], "{field}");
    }
    assert_eq!(agent_idle["power_w"], 82.008);
    assert_eq!(smi_idle["power_w"], 82.01);
    assert_eq!(agent_idle["throttle"], json!(["gpu_idle"]));
    assert_eq!(
        smi_idle["throttle"],
        json!([]),
        "nvidia-smi is not asked for the idle reason"
    );

    // Under load: at the power cap, which is the GPU working as configured, not a fault.
    assert_eq!(agent_busy["throttle"], json!(["sw_power_cap"]));
    assert_eq!(smi_busy["throttle"], json!(["sw_power_cap"]));
    for (g, util, watts) in [(agent_busy, 97, 689.715), (smi_busy, 98, 690.76)] {
        assert_eq!(g["util_pct"], util);
        assert_eq!(g["power_w"], watts);
    }
    assert_eq!(
        agent_busy["processes"],
        json!([{"pid": 518, "kind": "compute", "used_mib": 966, "uid": 0, "user": "root", "name": "python3"}]),
        "as nvidia-smi listed it: {}",
        capture("h200-smi-apps.csv")
    );
    assert_eq!(agent_idle["processes"], json!([]), "checked, none");
    assert_eq!(
        smi_busy["processes"],
        Value::Null,
        "nvidia-smi's rows do not say"
    );
}
