//! Time in etcd's wire formats. Times inside the store are nanoseconds since the Unix epoch
//! (UTC), carried in raft entries so that apply never reads a clock.

use chrono::{DateTime, Utc};

/// Nanoseconds since the Unix epoch, now, from this machine's clock.
pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Go's RFC3339Nano in UTC: `2026-11-23T01:17:14.594204952Z`, trailing zeros of the
/// fraction dropped (and the dot with them when the fraction is zero).
pub fn format_rfc3339_nano(nanos: i64) -> String {
    let dt = DateTime::<Utc>::from_timestamp_nanos(nanos);
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = nanos.rem_euclid(1_000_000_000);
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// Go's `time.Duration.String()` for a non-negative duration, e.g. `1m18.544996775s`.
pub fn format_go_duration(nanos: u128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let secs = trim_fraction(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, _) => format!("{m}m{secs}s"),
        _ => format!("{h}h{m}m{secs}s"),
    }
}

fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_like_go() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339_nano(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            format_rfc3339_nano(1_000_000_001),
            "1970-01-01T00:00:01.000000001Z"
        );
        let t = 1_795_000_000_123_456_789;
        assert_eq!(parse_rfc3339(&format_rfc3339_nano(t)), Some(t));
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(1_291_425_027), "1.291425027s");
        assert_eq!(format_go_duration(78_544_996_775), "1m18.544996775s");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(1_500_000), "1.5ms");
    }
}
