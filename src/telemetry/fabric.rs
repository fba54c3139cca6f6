//! The fabric beside the GPUs: InfiniBand ports as the kernel's sysfs describes them
//! (`/sys/class/infiniband/<hca>/ports/<n>/`), parsed, bounded, and judged port by port.

use serde::{Deserialize, Serialize};

pub use super::port_state::PortState;

/// The error counters read per port, each a count since the HCA's driver loaded: the IBTA PortCounters the
/// kernel mirrors in `counters/<name>` (Documentation/ABI/stable/sysfs-class-infiniband), then the HCA's own
/// `hw_counters/<name>` ([`IB_HW_COUNTERS`]).
pub(crate) const IB_COUNTERS: [&str; 10] = [
    "link_downed",
    "symbol_error",
    "port_rcv_errors",
    "port_xmit_discards",
    "excessive_buffer_overrun_errors",
    "local_link_integrity_errors",
    "link_error_recovery",
    "port_rcv_remote_physical_errors",
    "rnr_nak_retry_err",
    "local_ack_timeout_err",
];

/// The counters read from `hw_counters/` (mlx5: retries that ran out; 64-bit counts, they do not saturate).
/// Source: the kernel's Documentation/ABI/stable/sysfs-class-infiniband and NVIDIA's "Understanding mlx5 Linux
/// Counters": `rnr_nak_retry_err` (the peer had no receive buffer after every retry) and
/// `local_ack_timeout_err` (no ACK after every retry) end a queue pair with an error.
pub(crate) const IB_HW_COUNTERS: [&str; 2] = ["rnr_nak_retry_err", "local_ack_timeout_err"];

/// The width in bits of each PortCounters attribute as the kernel reads it (drivers/infiniband/core/sysfs.c,
/// `PORT_PMA_ATTR(name, counter, width, offset)`): such a counter stops at its maximum and never rises again
/// until it is cleared (`perfquery -R`). `None`: 64 bits, never saturates in practice.
pub(crate) fn counter_width(name: &str) -> Option<u32> {
    match name {
        "symbol_error"
        | "port_rcv_errors"
        | "port_xmit_discards"
        | "port_rcv_remote_physical_errors" => Some(16),
        "link_downed" | "link_error_recovery" => Some(8),
        "local_link_integrity_errors" | "excessive_buffer_overrun_errors" => Some(4),
        _ => None,
    }
}

/// Whether `value` of counter `name` is at its width's maximum: it can no longer count, so its value and
/// its rises are unknown.
pub fn saturated(name: &str, value: u64) -> bool {
    counter_width(name).is_some_and(|bits| value >= (1u64 << bits) - 1)
}

/// Most HCAs and ports per HCA kept from a node.
pub(crate) const MAX_HCAS: usize = 32;
pub(crate) const MAX_PORTS_PER_HCA: usize = 8;
/// The fastest rate a port may claim (XDR 4X is 800 Gb/s; 12X links reach 2,400).
pub(crate) const MAX_RATE_GBPS: f64 = 3200.0;

/// Most NVLinks per GPU: nvml.h's `NVML_NVLINK_MAX_LINKS` (18, Hopper).
pub(crate) const MAX_NVLINKS: usize = 18;

/// A GPU's NVLinks, compact on the wire: how many there are, which are not active, and the data-link
/// error counters of the links where one is not zero (a healthy H100 costs some 40 bytes a sample instead
/// of 18 link objects). Counters: nvml.h `nvmlNvLinkErrorCounter_t` `DL_REPLAY`, `DL_RECOVERY`,
/// `DL_CRC_FLIT`, `DL_CRC_DATA`, counts since the driver loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvLinks {
    /// Links the GPU has; 0 where the source does not say (dcgm-exporter's default families).
    pub total: u32,
    #[serde(default)]
    pub down: Vec<u32>,
    #[serde(default)]
    pub errors: Vec<NvLinkErrors>,
    /// The error counters summed over the links, where the source keeps no per-link ones (a metrics store:
    /// dcgm-exporter's `DCGM_FI_DEV_NVLINK_*_ERROR_COUNT_TOTAL`, fleetop's `fleetop_gpu_nvlink_errors_total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summed: Option<NvLinkCounts>,
    /// What the counters rose by since the agent's previous one-pass run (`None`: unknown, see
    /// [`IbPort::rose`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rose: Option<NvLinkRise>,
}

/// One link's error counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvLinkErrors {
    pub link: u32,
    #[serde(flatten)]
    pub counts: NvLinkCounts,
}

/// NVLink data-link error counters, of one link or summed over a GPU's links (`None`: the GPU or the source
/// does not keep that counter).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvLinkCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc_flit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc_data: Option<u64>,
}

/// The counter names, as the watch and renderers name them.
pub(crate) const NVLINK_COUNTERS: [&str; 4] = ["replay", "recovery", "crc_flit", "crc_data"];

impl NvLinkCounts {
    pub fn counters(&self) -> [(&'static str, Option<u64>); 4] {
        [
            (NVLINK_COUNTERS[0], self.replay),
            (NVLINK_COUNTERS[1], self.recovery),
            (NVLINK_COUNTERS[2], self.crc_flit),
            (NVLINK_COUNTERS[3], self.crc_data),
        ]
    }

    /// Sets counter `index` of [`NVLINK_COUNTERS`].
    pub fn set(&mut self, index: usize, value: u64) {
        let slot = match index {
            0 => &mut self.replay,
            1 => &mut self.recovery,
            2 => &mut self.crc_flit,
            3 => &mut self.crc_data,
            _ => return,
        };
        *slot = Some(value);
    }

    pub(crate) fn any(&self) -> bool {
        self.counters()
            .iter()
            .any(|(_, v)| v.is_some_and(|n| n > 0))
    }
}

impl NvLinks {
    /// Whether the source said how many links the GPU has and which are down (a store may send counters
    /// alone).
    pub(crate) fn states_known(&self) -> bool {
        self.total > 0
    }

    /// Every counter summed over the GPU's links.
    pub(crate) fn sums(&self) -> [(&'static str, u64); 4] {
        if let Some(summed) = &self.summed {
            return summed.counters().map(|(name, v)| (name, v.unwrap_or(0)));
        }
        let mut sums = NVLINK_COUNTERS.map(|name| (name, 0u64));
        for link in 0..self.total {
            for (sum, (_, n)) in sums.iter_mut().zip(self.counters_of(link)) {
                sum.1 = sum.1.saturating_add(n);
            }
        }
        sums
    }

    /// Links active.
    pub fn active(&self) -> u32 {
        self.total.saturating_sub(self.down.len() as u32)
    }

    /// Each link's counters, zero where the link is not listed among `errors`.
    pub(crate) fn counters_of(&self, link: u32) -> [(&'static str, u64); 4] {
        let listed = self.errors.iter().find(|e| e.link == link);
        std::array::from_fn(|i| {
            let value = listed.and_then(|e| e.counts.counters()[i].1).unwrap_or(0);
            (NVLINK_COUNTERS[i], value)
        })
    }

    /// From every link's reading: the down ones and the ones with errors.
    pub(crate) fn from_links(links: &[(u32, bool, NvLinkErrors)]) -> NvLinks {
        NvLinks {
            total: links.len() as u32,
            down: links.iter().filter(|l| !l.1).map(|l| l.0).collect(),
            errors: links
                .iter()
                .map(|l| l.2.clone())
                .filter(|e| e.counts.any())
                .collect(),
            summed: None,
            rose: None,
        }
    }
}

/// Why a GPU's NVLinks are short, or `None`: `NVLink 3, 11 down (16 of 18 active)`. On NVSwitch systems
/// every link a GPU has is in use, so an inactive one is a lost path whether or not it was seen up.
/// Source: nvml.h `nvmlDeviceGetNvLinkState`.
pub(crate) fn judge_nvlinks(links: &NvLinks) -> Option<String> {
    if links.down.is_empty() {
        return None;
    }
    let names: Vec<String> = links.down.iter().map(u32::to_string).collect();
    Some(format!(
        "NVLink {} down ({} of {} active)",
        names.join(", "),
        links.active(),
        links.total
    ))
}

/// The longest interval a rise may span on the wire (a year): a longer or zero one is dropped as implausible.
pub(crate) const MAX_OVER_MS: u64 = 366 * 24 * 3600 * 1000;

/// What a GPU's NVLink counters rose by, per link, over `over_ms` (the time since the agent's previous run).
/// `links` lists only links with a rise: `[]` is "checked, none rose".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvLinkRise {
    /// Milliseconds between the two readings; 0 or beyond [`MAX_OVER_MS`] makes the rise unknown (sanitize).
    #[serde(default)]
    pub over_ms: u64,
    #[serde(default)]
    pub links: Vec<NvLinkErrors>,
}

/// What a port's counters rose by over `over_ms`; a counter that did not rise, or whose rise is unknown
/// (saturated, or missing in either reading), is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IbRise {
    #[serde(default)]
    pub over_ms: u64,
    #[serde(default)]
    pub counters: IbCounters,
}

/// One InfiniBand (or RoCE) port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IbPort {
    /// The HCA's name: `mlx5_0`.
    pub hca: String,
    pub port: u32,
    /// `hca_type`: `MT4129` (ConnectX-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_type: Option<String>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<String>,
    /// The logical state as sysfs writes it: `4: ACTIVE`.
    pub state: Option<PortState>,
    /// The physical state: `5: LinkUp`.
    pub phys_state: Option<PortState>,
    /// `400 Gb/sec (4X NDR)` as Gb/s.
    pub rate_gbps: Option<f64>,
    /// [`IB_COUNTERS`] the port reports (a counter the HCA does not keep, `N/A (no PMA)`, is absent).
    #[serde(default)]
    pub counters: IbCounters,
    /// The HCA's firmware (`fw_ver`: `28.39.1002`), a drift aspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw_ver: Option<String>,
    /// What the counters rose by since the agent's previous one-pass run (`None`: unknown: a live stream, an
    /// older agent, the first run since boot, or no state kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rose: Option<IbRise>,
}

/// A port's error counters, by their sysfs names (`None`: the HCA does not keep it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IbCounters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_downed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_error: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_rcv_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_xmit_discards: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excessive_buffer_overrun_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_link_integrity_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_error_recovery: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_rcv_remote_physical_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rnr_nak_retry_err: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ack_timeout_err: Option<u64>,
}

impl IbCounters {
    /// Each counter with its name, in [`IB_COUNTERS`] order.
    pub fn all(&self) -> [(&'static str, Option<u64>); 10] {
        [
            (IB_COUNTERS[0], self.link_downed),
            (IB_COUNTERS[1], self.symbol_error),
            (IB_COUNTERS[2], self.port_rcv_errors),
            (IB_COUNTERS[3], self.port_xmit_discards),
            (IB_COUNTERS[4], self.excessive_buffer_overrun_errors),
            (IB_COUNTERS[5], self.local_link_integrity_errors),
            (IB_COUNTERS[6], self.link_error_recovery),
            (IB_COUNTERS[7], self.port_rcv_remote_physical_errors),
            (IB_COUNTERS[8], self.rnr_nak_retry_err),
            (IB_COUNTERS[9], self.local_ack_timeout_err),
        ]
    }

    /// Sets the counter named `name` (one of [`IB_COUNTERS`]); other names are ignored.
    pub fn set(&mut self, name: &str, value: u64) {
        let slot = match name {
            "link_downed" => &mut self.link_downed,
            "symbol_error" => &mut self.symbol_error,
            "port_rcv_errors" => &mut self.port_rcv_errors,
            "port_xmit_discards" => &mut self.port_xmit_discards,
            "excessive_buffer_overrun_errors" => &mut self.excessive_buffer_overrun_errors,
            "local_link_integrity_errors" => &mut self.local_link_integrity_errors,
            "link_error_recovery" => &mut self.link_error_recovery,
            "port_rcv_remote_physical_errors" => &mut self.port_rcv_remote_physical_errors,
            "rnr_nak_retry_err" => &mut self.rnr_nak_retry_err,
            "local_ack_timeout_err" => &mut self.local_ack_timeout_err,
            _ => return,
        };
        *slot = Some(value);
    }
}

impl IbPort {
    /// `mlx5_0 port 1`.
    pub fn name(&self) -> String {
        format!("{} port {}", self.hca, self.port)
    }

    /// ACTIVE and LinkUp: the port carries traffic.
    pub(crate) fn is_up(&self) -> bool {
        let number = |state: &Option<PortState>| state.as_ref().and_then(PortState::number);
        number(&self.state) == Some(ACTIVE) && number(&self.phys_state) == Some(LINK_UP)
    }

    pub(crate) fn is_infiniband(&self) -> bool {
        self.link_layer.as_deref() == Some("InfiniBand")
    }
}

/// The IB spec's logical port state ACTIVE and physical state LinkUp, as sysfs numbers them.
const ACTIVE: u8 = 4;
const LINK_UP: u8 = 5;

/// `400 Gb/sec (4X NDR)` → 400.0; `2.5 Gb/sec (1X SDR)` → 2.5.
pub(crate) fn parse_rate(text: &str) -> Option<f64> {
    let (number, rest) = text.trim().split_once(' ')?;
    rest.starts_with("Gb/sec")
        .then(|| number.parse().ok())
        .flatten()
}

/// Why a port is not carrying traffic, or `None`: `mlx5_1 port 1 down: 1: DOWN, 3: Disabled`.
pub(crate) fn judge_port_state(port: &IbPort) -> Option<String> {
    (!port.is_up()).then(|| {
        format!(
            "IB {} down: {}, {}",
            port.name(),
            port.state.as_deref().unwrap_or("state unknown"),
            port.phys_state
                .as_deref()
                .unwrap_or("physical state unknown")
        )
    })
}

/// Why an up port is slower than `reference` Gb/s (the `[expect]` or fleet rate), or `None`.
pub(crate) fn judge_port_rate(port: &IbPort, reference: f64, from: &str) -> Option<String> {
    let rate = port.rate_gbps?;
    (rate + 0.001 < reference && port.is_up()).then(|| {
        format!(
            "IB {} at {} Gb/s, {from} {} Gb/s",
            port.name(),
            gbps(rate),
            gbps(reference)
        )
    })
}

/// 400.0 → `400`, 2.5 → `2.5`.
pub(crate) fn gbps(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(state: &str, phys: &str, rate: f64) -> IbPort {
        IbPort {
            hca: "mlx5_0".into(),
            port: 1,
            link_layer: Some("InfiniBand".into()),
            state: Some(state.into()),
            phys_state: Some(phys.into()),
            rate_gbps: Some(rate),
            ..Default::default()
        }
    }

    #[test]
    fn rates_parse_as_sysfs_writes_them() {
        assert_eq!(parse_rate("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(parse_rate("40 Gb/sec (4X QDR)\n"), Some(40.0));
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("10 Mb/sec"), None);
    }

    #[test]
    fn a_port_not_active_and_linkup_is_down() {
        assert_eq!(
            judge_port_state(&port("4: ACTIVE", "5: LinkUp", 400.0)),
            None
        );
        assert_eq!(
            judge_port_state(&port("1: DOWN", "3: Disabled", 400.0)).unwrap(),
            "IB mlx5_0 port 1 down: 1: DOWN, 3: Disabled"
        );
        assert!(judge_port_state(&port("2: INIT", "5: LinkUp", 400.0)).is_some());
    }

    #[test]
    fn a_slower_up_port_is_named() {
        let slow = port("4: ACTIVE", "5: LinkUp", 200.0);
        assert_eq!(
            judge_port_rate(&slow, 400.0, "fleet runs").unwrap(),
            "IB mlx5_0 port 1 at 200 Gb/s, fleet runs 400 Gb/s"
        );
        assert_eq!(
            judge_port_rate(&port("4: ACTIVE", "5: LinkUp", 400.0), 400.0, "x"),
            None
        );
        assert_eq!(
            judge_port_rate(&port("1: DOWN", "3: Disabled", 0.0), 400.0, "x"),
            None,
            "down says so itself"
        );
    }
}
