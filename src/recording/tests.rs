use super::*;

#[test]
fn times_of_day_ages_and_dates_resolve_against_now() {
    // 2026-11-24T03:00:00Z
    let now = 1_795_489_200_000;
    assert_eq!(
        parse_time("2026-11-24T02:12:00Z", now).unwrap(),
        now - 48 * 60_000
    );
    assert_eq!(parse_time("02:12", now).unwrap(), now - 48 * 60_000);
    // Later today has not come yet: yesterday's.
    assert_eq!(
        parse_time("04:00", now).unwrap(),
        now + 3_600_000 - 86_400_000
    );
    assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
    assert!(parse_time("25:00", now).is_err());
    assert!(parse_time("soon", now)
        .unwrap_err()
        .contains("neither a time"));
    assert_eq!(utc(now), "2026-11-24 03:00:00 UTC");
}
