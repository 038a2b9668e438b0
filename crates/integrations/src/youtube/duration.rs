//! ISO 8601 durations as YouTube writes them (`PT1H2M3S`, `P1DT2H`, `P0D`).

use std::time::Duration;

/// The text is not an ISO 8601 duration this parser accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 8601 duration: {0:?}")]
pub struct InvalidDuration(pub String);

/// Parses `P[nW][nD][T[nH][nM][n[.n]S]]`.
///
/// Years and months are refused: their length depends on the calendar, and
/// YouTube never uses them (a 40-day stream is `P5W5D…`). At least one component
/// is required, and `T` must be followed by one.
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_string());
    let rest = text.trim().strip_prefix('P').ok_or_else(invalid)?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return Err(invalid()),
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return Err(invalid());
    }
    let mut seconds = 0f64;
    // Date part: weeks, then days, in that order, whole numbers.
    seconds += components(date, &[('W', 604_800.0), ('D', 86_400.0)], false).ok_or_else(invalid)?;
    if let Some(time) = time {
        seconds += components(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)], true)
            .ok_or_else(invalid)?;
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

/// Sums `number unit` pairs whose units appear in `units`' order, each at most
/// once; only seconds (when `fraction_last`) may carry a fraction.
fn components(text: &str, units: &[(char, f64)], fraction_last: bool) -> Option<f64> {
    let mut total = 0.0;
    let mut next_unit = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            number.push(if c == ',' { '.' } else { c });
            continue;
        }
        let position = units[next_unit..].iter().position(|(unit, _)| *unit == c)? + next_unit;
        let is_last = position == units.len() - 1;
        if number.is_empty() || (number.contains('.') && !(fraction_last && is_last)) {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        total += value * units[position].1;
        number.clear();
        next_unit = position + 1;
    }
    // Digits without a unit at the end.
    number.is_empty().then_some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_iso8601_duration(text).unwrap().as_secs()
    }

    #[test]
    fn parses_what_youtube_writes() {
        assert_eq!(secs("PT3M33S"), 213);
        assert_eq!(secs("PT1H2M3S"), 3723);
        assert_eq!(secs("PT15S"), 15);
        assert_eq!(secs("PT2H"), 7200);
        assert_eq!(secs("PT1H5S"), 3605);
        assert_eq!(secs("P1DT2H"), 93_600);
        assert_eq!(
            secs("P1W2DT3H4M5S"),
            604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5
        );
        assert_eq!(secs("P0D"), 0, "live streams");
        assert_eq!(secs("PT0S"), 0);
        assert_eq!(
            parse_iso8601_duration("PT1.5S").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_iso8601_duration("PT0,25S").unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn refuses_malformed_and_calendar_durations() {
        for bad in [
            "", "P", "PT", "3M33S", "PT3M33", "PTS", "PT33S3M", "PT1H1H", "P1Y", "P1M", "PT1.5M",
            "P1.5D", "PT-5S", "pt5s", "P1DT", "PT5X",
        ] {
            assert!(parse_iso8601_duration(bad).is_err(), "{bad}");
        }
    }
}
