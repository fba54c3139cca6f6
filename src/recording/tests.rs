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

#[test]
fn a_time_past_year_9999_is_said_without_panicking() {
    // humantime cannot format it and `to_string` would panic on its error.
    assert_eq!(
        utc(u64::MAX),
        format!("{} ms after 1970 (not a date)", u64::MAX)
    );
    assert_eq!(utc(LAST_MS), "9999-12-31 23:59:59 UTC");
}

#[test]
fn a_block_dated_past_year_9999_is_refused_with_its_file_and_offset() {
    use crate::recording::block::{encode, BlockReader, SEGMENT_MAGIC};
    let mut file = SEGMENT_MAGIC.to_vec();
    file.extend(encode(b"", 0, u64::MAX).unwrap());
    let mut blocks = BlockReader::new(&file[..], "seg".into()).unwrap();
    let err = blocks.next_frames().unwrap_err();
    assert!(err.starts_with("seg: offset 8: "), "{err}");
    assert!(err.contains("past year 9999"), "{err}");
}

#[test]
fn a_segment_named_past_year_9999_is_refused_with_its_name() {
    use crate::recording::layout::{segment_path, segments};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(segment_path(dir.path(), 1_795_489_200_000), b"").unwrap();
    assert_eq!(segments(dir.path()).unwrap(), [1_795_489_200_000]);
    let hostile = segment_path(dir.path(), u64::MAX);
    std::fs::write(&hostile, b"").unwrap();
    let err = segments(dir.path()).unwrap_err();
    assert!(err.contains(&hostile.display().to_string()), "{err}");
}
