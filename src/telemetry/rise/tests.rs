//! Tests of the rise rules: DCGM's NVLink rates, InfiniBand saturation and congestion, and the wire shape.

use super::*;
use crate::telemetry::fabric::{IbCounters, IbRise, NvLinkCounts, NvLinkErrors, MAX_OVER_MS};
use crate::telemetry::sanitize::{sanitize_ib_rise, sanitize_nvlink_rise};

const MIN: Duration = Duration::from_secs(60);

#[test]
fn replay_and_recovery_fail_at_one_a_minute_and_warn_below() {
    assert_eq!(nvlink_rise_health("replay", 1, MIN), Health::Crit);
    assert_eq!(nvlink_rise_health("recovery", 5, 5 * MIN), Health::Crit);
    assert_eq!(nvlink_rise_health("replay", 1, 2 * MIN), Health::Warn);
    assert_eq!(nvlink_rise_health("recovery", 59, 60 * MIN), Health::Warn);
    assert_eq!(nvlink_rise_health("replay", 0, MIN), Health::Ok);
}

#[test]
fn crc_errors_warn_and_fail_at_a_hundred_a_second() {
    assert_eq!(nvlink_rise_health("crc_flit", 1, MIN), Health::Warn);
    assert_eq!(nvlink_rise_health("crc_data", 5_999, MIN), Health::Warn);
    assert_eq!(nvlink_rise_health("crc_data", 6_000, MIN), Health::Crit);
    assert_eq!(
        nvlink_rise_health("crc_flit", 100, Duration::from_millis(999)),
        Health::Crit
    );
    assert_eq!(
        nvlink_rise_health("crc_flit", 7, Duration::ZERO),
        Health::Warn
    );
}

#[test]
fn a_snapshot_rise_names_link_counter_and_interval() {
    let rise = NvLinkRise {
        over_ms: 200_000,
        links: vec![NvLinkErrors {
            link: 4,
            counts: NvLinkCounts {
                crc_flit: Some(12),
                replay: Some(0),
                ..Default::default()
            },
        }],
    };
    assert_eq!(
        judge_nvlink_rise(&rise),
        [(
            Health::Warn,
            "NVLink 4: crc_flit rose by 12 in 3 min 20 s (since the agent's previous run)".into()
        )]
    );
}

fn port(counters: IbCounters) -> IbPort {
    IbPort {
        hca: "mlx5_0".into(),
        port: 1,
        counters,
        ..Default::default()
    }
}

#[test]
fn counters_at_their_width_are_saturated_and_discards_inform() {
    let p = port(IbCounters {
        symbol_error: Some(65_535),
        link_downed: Some(255),
        local_link_integrity_errors: Some(15),
        port_rcv_errors: Some(65_534),
        rnr_nak_retry_err: Some(u64::from(u32::MAX)),
        ..Default::default()
    });
    let (health, text) = judge_port_saturation(&p).unwrap();
    assert_eq!(health, Health::Warn);
    assert_eq!(
        text,
        "IB mlx5_0 port 1: link_downed at 255, symbol_error at 65535, local_link_integrity_errors at 15 \
         saturated — rises unknown; clear with `perfquery -R`"
    );
    let congested = port(IbCounters {
        port_xmit_discards: Some(65_535),
        ..Default::default()
    });
    assert_eq!(judge_port_saturation(&congested).unwrap().0, Health::Ok);
    assert_eq!(judge_port_saturation(&port(IbCounters::default())), None);
}

#[test]
fn a_port_rise_warns_unless_it_is_congestion() {
    let mut p = port(IbCounters::default());
    p.rose = Some(IbRise {
        over_ms: 42_000,
        counters: IbCounters {
            port_xmit_discards: Some(9),
            ..Default::default()
        },
    });
    assert_eq!(
        judge_port_rise(&p).unwrap(),
        (
            Health::Ok,
            "IB mlx5_0 port 1: port_xmit_discards rose by 9 (congestion) in 42 s (since the agent's previous run)"
                .into()
        )
    );
    p.rose.as_mut().unwrap().counters.symbol_error = Some(3);
    assert_eq!(judge_port_rise(&p).unwrap().0, Health::Warn);
    p.rose = Some(IbRise::default());
    assert_eq!(judge_port_rise(&p), None, "checked, nothing rose");
}

fn gpu_with_links(down: &[u32], mig: Option<bool>) -> crate::telemetry::GpuSample {
    crate::telemetry::GpuSample {
        index: 0,
        mig_enabled: mig,
        nvlink: Some(crate::telemetry::fabric::NvLinks {
            total: 18,
            down: down.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn judge(gpu: &crate::telemetry::GpuSample) -> crate::telemetry::health::Verdict {
    crate::telemetry::health::judge_gpu(
        gpu,
        &crate::inventory::Thresholds::default(),
        &crate::telemetry::health::none_acknowledged,
    )
}

#[test]
fn a_down_nvlink_is_crit_unless_mig_is_enabled() {
    let v = judge(&gpu_with_links(&[7], Some(false)));
    assert_eq!(v.health, Health::Crit);
    assert_eq!(v.reasons, ["NVLink 7 down (17 of 18 active)"]);
    let mig = judge(&gpu_with_links(&[0, 1], Some(true)));
    assert_eq!(mig.health, Health::Ok);
    assert!(
        mig.reasons.iter().any(|r| r.starts_with(
            "NVLink check skipped: MIG enabled (NVML reports MIG GPUs' links as down; NVLink 0, 1 down"
        )),
        "{:?}",
        mig.reasons
    );
    assert_eq!(judge(&gpu_with_links(&[], None)).health, Health::Ok);
}

#[test]
fn a_snapshot_judges_nvlink_rises_at_dcgm_rates() {
    let rise = |replay| NvLinkRise {
        over_ms: 10 * 60_000,
        links: vec![NvLinkErrors {
            link: 2,
            counts: NvLinkCounts {
                replay: Some(replay),
                ..Default::default()
            },
        }],
    };
    assert_eq!(
        judge_nvlink_rise(&rise(10)),
        [(
            Health::Crit,
            "NVLink 2: replay rose by 10 in 10 min 0 s (since the agent's previous run)"
                .to_string()
        )]
    );
    assert_eq!(
        judge_nvlink_rise(&rise(3))[0].0,
        Health::Warn,
        "3 in 10 min is below 1 a minute"
    );
    assert!(judge_nvlink_rise(&NvLinkRise {
        over_ms: 1000,
        links: vec![]
    })
    .is_empty());
}

#[test]
fn implausible_intervals_make_a_rise_unknown() {
    let mut r = Some(NvLinkRise {
        over_ms: MAX_OVER_MS + 1,
        links: vec![],
    });
    sanitize_nvlink_rise(&mut r, 18);
    assert_eq!(r, None);
    let mut r = Some(NvLinkRise {
        over_ms: 1000,
        links: [20, 3, 3]
            .map(|link| NvLinkErrors {
                link,
                counts: NvLinkCounts::default(),
            })
            .to_vec(),
    });
    sanitize_nvlink_rise(&mut r, 18);
    assert_eq!(
        r.unwrap().links.iter().map(|l| l.link).collect::<Vec<_>>(),
        [3]
    );
    let mut ib = Some(IbRise::default());
    sanitize_ib_rise(&mut ib);
    assert_eq!(ib, None, "over_ms 0 is no interval");
}
