//! Times as `--at`, `:at` and `report` take them, and as replay's header says them.

/// A time as `--at` and `:at` take it, resolved against `now_ms` (ms since the epoch): RFC 3339
/// (`2026-11-27T03:12:00Z`), a time of day in UTC (`03:12`, `03:12:30`; today's, or yesterday's when that is
/// still to come), or an age (`2h`).
pub(crate) fn parse_time(text: &str, now_ms: u64) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return ms_of(t);
    }
    let parts: Vec<&str> = text.split(':').collect();
    if (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let n = |i: usize| {
            parts
                .get(i)
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (h, m, s) = (n(0), n(1), n(2));
        if h < 24 && m < 60 && s < 60 {
            const DAY: u64 = 86_400_000;
            let of_day = (h * 3600 + m * 60 + s) * 1000;
            let today = now_ms - now_ms % DAY + of_day;
            return Ok(if today > now_ms {
                today.saturating_sub(DAY)
            } else {
                today
            });
        }
    }
    if let Ok(age) = humantime::parse_duration(text) {
        let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        return now_ms.checked_sub(age).ok_or_else(|| {
            format!(
                "{} ago is before 1970-01-01, where Unix time (and Prometheus's) starts",
                crate::text::escape(text)
            )
        });
    }
    Err(format!(
        "{:?} is neither a time (2026-11-27T03:12:00Z, 03:12 UTC) nor an age (2h)",
        crate::text::escape(text)
    ))
}

fn ms_of(t: std::time::SystemTime) -> Result<u64, String> {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .map_err(|_| "a time before 1970".to_string())
}

/// The latest time a recording may hold (a later one in a damaged or hostile segment would overflow
/// `Instant` arithmetic in replay): the latest a calendar writes.
pub(crate) const LAST_MS: u64 = crate::text::LAST_DATE_MS;

/// `2026-11-27 03:12:00 UTC`, as the replay's header and errors say times.
pub(crate) fn utc(ms: u64) -> String {
    let text = crate::text::rfc3339_ms(ms);
    if ms > LAST_MS {
        return text;
    }
    text.replacen('T', " ", 1).replace('Z', " UTC")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
