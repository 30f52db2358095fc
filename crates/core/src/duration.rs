//! Parses the Go-style durations Kubernetes users write (`90s`, `30m`, `1h30m`, `500ms`).
//! Used for `spec.previewTTL`; the CRD schema accepts the same grammar.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty string.
    #[error("duration is empty; write it like 30m, 1h or 1h30m")]
    Empty,
    /// A unit other than ms, s, m, h, or a number without a unit.
    #[error("duration {0:?} is not valid; write it like 30m, 1h or 1h30m (units ms, s, m, h)")]
    Invalid(String),
    /// Larger than the allowed maximum.
    #[error("duration {0:?} is longer than the maximum of 720h")]
    TooLong(String),
}

/// The longest accepted duration (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(720 * 3600);

/// Parses `1h`, `30m`, `1h30m`, `45s`, `500ms` (whole numbers, units ms/s/m/h).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid(text.to_string());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_ms: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i || i - start > 12 {
            return Err(invalid());
        }
        let number: u128 = text[start..i].parse().map_err(|_| invalid())?;
        let unit_ms: u128 = if text[i..].starts_with("ms") {
            i += 2;
            1
        } else {
            let unit = match bytes.get(i) {
                Some(b's') => 1_000,
                Some(b'm') => 60_000,
                Some(b'h') => 3_600_000,
                _ => return Err(invalid()),
            };
            i += 1;
            unit
        };
        total_ms += number * unit_ms;
    }
    if total_ms > MAX_DURATION.as_millis() {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(Duration::from_millis(total_ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn refuses_what_the_schema_refuses() {
        for bad in ["", "1", "h", "1d", "1.5h", "-1h", "1h ", "1H", "9999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(parse_duration("721h"), Err(DurationError::TooLong(_))));
    }
}
