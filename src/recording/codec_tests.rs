//! The lanes' primitives and a GPU's record: bit for bit back, short where they should be, refused where damaged.

use super::*;

fn cursor(l: &Lanes) -> Cursor<'_> {
    Cursor::new(std::array::from_fn(|i| l.lane[i].as_slice()))
}

#[test]
fn floats_come_back_bit_for_bit_and_decimals_are_short() {
    let values = [
        0.0,
        -0.0,
        700.0,
        425.200_000_000_000_05,
        68.125,
        -12.5,
        1e300,
        f64::MIN_POSITIVE,
        312.47,
    ];
    let mut l = Lanes::default();
    let mut prev = None;
    for v in values {
        l.float(Some(v), prev);
        prev = Some(v);
    }
    l.float(None, prev);
    let mut c = cursor(&l);
    let mut prev = None;
    for v in values {
        let got = c.float(prev).unwrap().unwrap();
        assert_eq!(got.to_bits(), v.to_bits(), "{v}");
        prev = Some(got);
    }
    assert_eq!(c.float(prev).unwrap(), None);
    let mut one = Lanes::default();
    one.float(Some(425.3), Some(421.7));
    assert!(one.len() <= 3, "a decimal change takes {} bytes", one.len());
}

/// Writes `records` one after another and reads them back.
fn records_round_trip(records: &[Moving]) -> (Vec<Moving>, Lanes) {
    let mut l = Lanes::default();
    let mut old = Moving::default();
    for r in records {
        l.record(r, &old);
        old = r.clone();
    }
    let mut c = cursor(&l);
    let mut old = Moving::default();
    let back = records
        .iter()
        .map(|_| {
            old = c.record(&old).unwrap();
            old.clone()
        })
        .collect();
    assert_eq!(c.left(), [0; LANES]);
    (back, l)
}

fn bits(records: &[Moving]) -> Vec<([Option<u64>; 6], Option<u64>)> {
    records
        .iter()
        .map(|r| (r.ints, r.power.map(f64::to_bits)))
        .collect()
}

#[test]
fn a_record_s_numbers_come_back_bit_for_bit_whatever_their_scale() {
    let powers = [
        None,
        Some(68.0),
        Some(190.0 + 77.0 * 4.6 + 31.0),
        Some(588.599_999_999_999_9),
        Some(412.337),
        Some(412.337),
        Some(1e300),
        None,
        None,
        Some(-0.0),
        Some(0.0),
        Some(f64::MIN_POSITIVE),
    ];
    let ints = [None, Some(0), Some(u64::MAX), Some(7), Some(7), None];
    let records: Vec<Moving> = powers
        .iter()
        .enumerate()
        .map(|(i, &power)| Moving {
            ints: std::array::from_fn(|f| ints[(i + f) % ints.len()]),
            power,
        })
        .collect();
    let (back, _) = records_round_trip(&records);
    assert_eq!(bits(&back), bits(&records));
    // Nothing changed: a byte a number; power's change in tenths of a watt two bytes at most.
    let same = Moving {
        ints: [Some(70); 6],
        power: Some(425.3),
    };
    let (_, l) = records_round_trip(&[same.clone(), same.clone()]);
    let first = l.len();
    let (_, l) = records_round_trip(&[
        same.clone(),
        Moving {
            power: Some(455.3),
            ..same
        },
    ]);
    assert!(
        l.len() - first <= 1,
        "a change takes {} bytes more",
        l.len() - first
    );
}

#[test]
fn a_record_refuses_what_no_sample_holds() {
    let refused = |record: &[u8], float: &[u8]| {
        let mut l = Lanes::default();
        l.lane[Lane::Record as usize] = record.to_vec();
        l.lane[Lane::Float as usize] = float.to_vec();
        cursor(&l).record(&Moving::default()).unwrap_err()
    };
    assert!(refused(&[3], &[]).contains("correction code"));
    assert!(refused(&[0, 2, 0, 0, 0, 0, 0, 0], &[]).contains("float lane"));
    assert!(refused(&[0, 0, 0, 0, 0, 0, 0, 2], &[0]).contains("no value"));
    assert!(refused(&[1, 0, 0, 0, 0, 0, 0, 0], &[]).contains("no power change"));
    assert!(refused(&[0xff; 12], &[]).contains("past 64 bits"));
    assert!(refused(&[0, 0], &[]).contains("ends early"));
}

use proptest::prelude::*;

proptest::proptest! {
    /// Any finite power, a decimal or not, and any integer come back bit for bit from a run of records.
    #[test]
    fn any_record_comes_back_bit_for_bit(
        values in proptest::collection::vec((
            proptest::option::of(proptest::prop_oneof![
                proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
                (0u32..1_000_000).prop_map(|mw| f64::from(mw) / 1000.0),
                (0u32..7_000).prop_map(|dw| 190.0 + f64::from(dw % 100) * 4.6 + f64::from(dw / 100)),
            ]),
            proptest::option::of(proptest::num::u64::ANY),
        ), 0..40)
    ) {
        let records: Vec<Moving> = values
            .iter()
            .map(|&(power, int)| Moving { ints: [int, None, Some(3), int, int.map(|i| i / 2), int], power })
            .collect();
        let (back, _) = records_round_trip(&records);
        prop_assert_eq!(bits(&back), bits(&records));
    }
}

#[test]
fn integers_are_deltas_and_survive_the_extremes() {
    let mut l = Lanes::default();
    let values = [Some(5u64), Some(u64::MAX), Some(0), None, Some(7)];
    let mut prev = 0;
    for v in values {
        l.delta(v, prev);
        prev = v.unwrap_or(prev);
    }
    let mut c = cursor(&l);
    let mut prev = 0;
    for v in values {
        let got = c.delta(prev).unwrap();
        assert_eq!(got, v);
        prev = got.unwrap_or(prev);
    }
    assert!(c.delta(0).unwrap_err().contains("ends early"));
}

#[test]
fn lengths_past_their_cap_or_the_block_are_refused() {
    let mut l = Lanes::default();
    l.uint(Lane::Text, 1000);
    assert!(cursor(&l)
        .bytes(10, "a name")
        .unwrap_err()
        .contains("more than"));
    assert!(cursor(&l)
        .bytes(5000, "a name")
        .unwrap_err()
        .contains("past the end"));
    let mut l = Lanes::default();
    l.lane[0] = vec![0xff; 30];
    assert!(cursor(&l)
        .varint(Lane::Head)
        .unwrap_err()
        .contains("longer"));
    l.lane[2] = vec![1 + (7 << 2) + 2, 9];
    assert!(cursor(&l).float(None).unwrap_err().contains("correction"));
}
