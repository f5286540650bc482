//! The TIME of `entry play --from TIME`, a time of the session in seconds, and how such a
//! time is shown in messages.
//!
//! Accepted: plain seconds (`3730`, `12.5`), units in order with at most one of each (`1h02m`,
//! `62m10s`, `90s`, `1h 2m`, `1.5m`), or clock form (`1:02:10`, `62:10`, `1:02:10.5`), whose
//! minutes and seconds after the first field are below 60. Nothing negative, nothing else.

/// What a bad TIME is told (after clap's "invalid value … for '--from <TIME>'").
const EXPECTED: &str = "expected a time of the session like 90, 12.5, 1h02m, 62m10s, 1:02:10 or 62:10";

/// Parses TIME into seconds.
pub(super) fn parse(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let seconds = if text.contains(':') {
        clock(text)
    } else if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        number(text)
    } else {
        units(text)
    };
    seconds.filter(|s| s.is_finite()).ok_or_else(|| EXPECTED.to_owned())
}

/// `digits[.digits]`, the only numbers TIME has.
fn number(text: &str) -> Option<f64> {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match text.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(text),
    };
    well_formed.then(|| text.parse().ok()).flatten()
}

/// `[H:]M:SS[.f]`: the first field whole and any size, the others two digits at most and
/// below 60, only the seconds with a fraction.
fn clock(text: &str) -> Option<f64> {
    let fields: Vec<&str> = text.split(':').collect();
    let (seconds, rest) = fields.split_last()?;
    let (first, middle) = rest.split_first()?;
    if middle.len() > 1 || first.contains('.') {
        return None;
    }
    let mut total = number(first)?;
    for minutes in middle {
        let minutes = (minutes.len() <= 2 && !minutes.contains('.')).then(|| number(minutes)).flatten()?;
        total = total * 60.0 + (minutes < 60.0).then_some(minutes)?;
    }
    let whole = seconds.split('.').next().unwrap_or_default();
    let seconds = (whole.len() <= 2).then(|| number(seconds)).flatten()?;
    Some(total * 60.0 + (seconds < 60.0).then_some(seconds)?)
}

/// `1h02m10s`, `62m10s`, `90s`, `1h 2m`: numbers each followed by a unit, h before m before s.
fn units(text: &str) -> Option<f64> {
    const UNITS: [(char, f64); 3] = [('h', 3600.0), ('m', 60.0), ('s', 1.0)];
    let mut rest = text;
    let mut next_unit = 0;
    let mut total = 0.0;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value = number(&rest[..end])?;
        let unit = rest[end..].chars().next()?;
        let found = UNITS.iter().skip(next_unit).position(|(u, _)| *u == unit)? + next_unit;
        total += value * UNITS[found].1;
        next_unit = found + 1;
        rest = rest[end + unit.len_utf8()..].trim_start();
    }
    (next_unit > 0).then_some(total)
}

/// `seconds` as `M:SS.s` or `H:MM:SS.s`, tenths rounded: `2:21.5`, `1:02:10.0`.
pub(super) fn show(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    let (hours, minutes, seconds) = (tenths / 36_000, tenths / 600 % 60, tenths % 600);
    let seconds = format!("{:02}.{}", seconds / 10, seconds % 10);
    if hours > 0 { format!("{hours}:{minutes:02}:{seconds}") } else { format!("{minutes}:{seconds}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let cases = [
            ("1h02m", 3720.0),
            ("62m10s", 3730.0),
            ("90s", 90.0),
            ("1:02:10", 3730.0),
            ("62:10", 3730.0),
            ("3730", 3730.0),
            ("12.5", 12.5),
            (" 1h 2m ", 3720.0),
            ("1h2m3s", 3723.0),
            ("1.5m", 90.0),
            ("2h", 7200.0),
            ("0", 0.0),
            ("0:00", 0.0),
            ("1:02:10.5", 3730.5),
            ("0:3.5", 3.5),
            ("100:00:00", 360_000.0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refused_forms() {
        for text in [
            "", " ", "abc", "-5", "-1:00", "1e3", "inf", "NaN", "1.", ".5", "1..2", "1:60", "1:60:00", "1:2:3:4",
            ":10", "10:", "1:1.5:00", "1m1h", "1s2s", "1h02", "5x", "1 h", "h", "1:-5", "1:100", "1:5e1",
        ] {
            assert_eq!(parse(text), Err(EXPECTED.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn shown_times() {
        assert_eq!(show(141.5), "2:21.5");
        assert_eq!(show(5.26), "0:05.3");
        assert_eq!(show(3730.0), "1:02:10.0");
        assert_eq!(show(59.96), "1:00.0");
        assert_eq!(show(-1.0), "0:00.0");
    }
}
