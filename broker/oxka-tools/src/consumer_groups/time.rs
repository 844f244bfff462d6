//! The times `--reset-offsets` takes: `--to-datetime` (Kafka's `Utils.getDateTime` format,
//! `YYYY-MM-DDThh:mm:ss[.sss][Z|±hh:mm|±hhmm]`) and `--by-duration` (Java's `Duration.parse` format,
//! `[-]PnDTnHnMn.nS`). Pure: text in, milliseconds out, errors in the words Kafka's tool prints
//! after `Error: Executing consumer group command failed due to`.

use crate::error::ToolError;

/// `--to-datetime` as milliseconds since the epoch; no zone means UTC (Kafka: the JVM's zone).
pub fn parse_datetime(text: &str) -> Result<i64, ToolError> {
    let Some((date, time)) = text.split_once('T') else {
        return Err(ToolError::Kafka(
            "java.text.ParseException: Error parsing timestamp. It does not contain a 'T' according to ISO8601 format"
                .to_string(),
        ));
    };
    let bad = || ToolError::Kafka(format!("java.text.ParseException: Unparseable date: \"{text}\""));
    let (time, zone_ms) = split_zone(time).ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else { return Err(bad()) };
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, s] = t.as_slice() else { return Err(bad()) };
    let (y, mo, da, h, mi, s) = (num(y)?, num(mo)?, num(da)?, num(h)?, num(mi)?, num(s)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    if millis.is_empty() || millis.len() > 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let millis = num(&format!("{millis:0<3}"))?;
    let days = days_from_civil(y, mo, da);
    Ok((((days * 24 + h) * 60 + mi) * 60 + s) * 1000 + millis - zone_ms)
}

/// The time part and the zone offset in ms (`Z`, `+hh:mm`, `-hhmm`, or none).
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(t) = time.strip_suffix('Z') {
        return Some((t, 0));
    }
    if let Some(i) = time.rfind(['+', '-']) {
        let (t, zone) = time.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            return None;
        }
        let h: i64 = digits[..2].parse().ok()?;
        let m: i64 = digits[2..].parse().ok()?;
        return Some((t, sign * (h * 60 + m) * 60_000));
    }
    Some((time, 0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `--by-duration` as milliseconds (Java's `Duration.parse`: `P`, then days, then `T` and hours,
/// minutes, seconds with up to nine fraction digits; each amount may carry a sign, and so may the whole).
pub fn parse_duration(text: &str) -> Result<i64, ToolError> {
    parse_duration_ms(text).ok_or_else(|| ToolError::Kafka("Text cannot be parsed to a Duration".to_string()))
}

fn parse_duration_ms(text: &str) -> Option<i64> {
    let upper = text.to_ascii_uppercase();
    let (negate, rest) = match upper.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, upper.strip_prefix('+').unwrap_or(&upper)),
    };
    let rest = rest.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut any = false;
    if !date.is_empty() {
        let days = date.strip_suffix('D')?;
        total = total.checked_add(amount(days, 86_400_000)?)?;
        any = true;
    }
    if let Some(mut time) = time {
        for (unit, ms) in [('H', 3_600_000), ('M', 60_000)] {
            if let Some(i) = time.find(unit) {
                total = total.checked_add(amount(&time[..i], ms)?)?;
                time = &time[i + 1..];
                any = true;
            }
        }
        if !time.is_empty() {
            let seconds = time.strip_suffix('S')?;
            total = total.checked_add(seconds_ms(seconds)?)?;
            any = true;
        }
    }
    any.then_some(if negate { -total } else { total })
}

/// A signed whole amount of a unit, in ms.
fn amount(text: &str, unit_ms: i64) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()?.checked_mul(unit_ms)
}

/// Signed seconds with an optional fraction (`.` or `,`, up to nine digits), in ms.
fn seconds_ms(text: &str) -> Option<i64> {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
        Some(_) => return None,
        None => (text, ""),
    };
    let negative = whole.starts_with('-');
    let ms = amount(whole, 1000)?;
    let fraction_ms = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
    Some(if negative { ms - fraction_ms } else { ms + fraction_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_kafkas_iso_format() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(parse_datetime("2020-01-01T00:00:00.000").unwrap(), 1_577_836_800_000);
        assert_eq!(
            parse_datetime("2020-01-01T01:00:00.5+01:00").unwrap(),
            1_577_836_800_500
        );
        assert_eq!(parse_datetime("2020-01-01T00:00:00Z").unwrap(), 1_577_836_800_000);
        let e = parse_datetime("2020-01-01").unwrap_err().to_string();
        assert!(e.contains("It does not contain a 'T'"), "{e}");
        assert!(parse_datetime("2020-13-01T00:00:00").is_err());
        assert!(parse_datetime("2020-01-01T00:00:00.x").is_err());
    }

    #[test]
    fn durations_are_javas_format() {
        assert_eq!(parse_duration("PT1H").unwrap(), 3_600_000);
        assert_eq!(parse_duration("P1DT2H3M4.5S").unwrap(), 93_784_500);
        assert_eq!(parse_duration("pt15m").unwrap(), 900_000);
        assert_eq!(parse_duration("-PT1M").unwrap(), -60_000);
        assert_eq!(parse_duration("PT-1.5S").unwrap(), -1_500);
        assert_eq!(parse_duration("P2D").unwrap(), 172_800_000);
        for bad in ["", "P", "PT", "1H", "PT1", "P1H", "PTxS", "PT1.S"] {
            assert_eq!(
                parse_duration(bad).unwrap_err().to_string(),
                "Text cannot be parsed to a Duration",
                "{bad}"
            );
        }
    }
}
