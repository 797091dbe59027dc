//! Parsers for the values of the command-line flags: percentages, durations, bit rates,
//! rate steps, MTUs and burst lengths.
//!
//! Each returns `Err(String)` with a short reason; clap puts it after the flag's name
//! (`invalid value '150%' for '--loss <PERCENT>': ...`).

use std::time::Duration;

use rotorlink::config::MIN_HANDSHAKE_MTU;
use rotorlink::wire::MAX_DATAGRAM_LEN;
use rotorlink_sim::RateStep;

/// A plain decimal number: digits, at most one point, no sign, no exponent, not NaN.
fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.chars().filter(|&c| c == '.').count() <= 1;
    if ok {
        s.parse().ok().filter(|v: &f64| v.is_finite())
    } else {
        None
    }
}

/// A probability, written as a percentage (`5%`, `0.5%`) or as a fraction (`0.05`),
/// between 0 and 100 % inclusive. Returns the fraction (`5%` is `0.05`).
pub(crate) fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v = number(p.trim())
            .ok_or_else(|| format!("'{s}' is not a percentage (write it like 5% or 0.05)"))?;
        if v > 100.0 {
            return Err(format!("{s} is more than 100%"));
        }
        Ok(v / 100.0)
    } else {
        let v = number(t)
            .ok_or_else(|| format!("'{s}' is not a percentage (write it like 5% or 0.05)"))?;
        if v > 1.0 {
            return Err(format!(
                "{s} is more than 1 (a fraction); write {s}% for a percentage"
            ));
        }
        Ok(v)
    }
}

/// A percentage in a sweep list: `5` and `5%` both mean five percent, between 0 and 100
/// inclusive. Returns the fraction (`5` is `0.05`).
pub(crate) fn percent_point(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let p = t.strip_suffix('%').unwrap_or(t).trim();
    let v =
        number(p).ok_or_else(|| format!("'{s}' is not a percentage (write it like 5 or 5%)"))?;
    if v > 100.0 {
        return Err(format!("{s} is more than 100%"));
    }
    Ok(v / 100.0)
}

/// `s` as a number followed by one of `units` (name, scale), scaled. `what` names the kind
/// of value and `example` shows how to write one, for the error messages.
fn with_unit(
    s: &str,
    t: &str,
    what: &str,
    example: &str,
    units: &[(&str, f64)],
) -> Result<f64, String> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (value, unit) = t.split_at(split);
    let unit = unit.trim();
    if value.is_empty() {
        return Err(format!("'{s}' is not a {what} (write it like {example})"));
    }
    if unit.is_empty() {
        return Err(format!("'{s}' has no unit (write it like {example})"));
    }
    let Some(&(_, scale)) = units.iter().find(|(name, _)| *name == unit) else {
        let names: Vec<&str> = units.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "unknown unit '{unit}' in '{s}' (use {})",
            names.join(", ")
        ));
    };
    let v =
        number(value).ok_or_else(|| format!("'{s}' is not a {what} (write it like {example})"))?;
    Ok(v * scale)
}

/// A duration with its unit: `500us` (or `500µs`), `10ms`, `1.5s`, `2min`. Rounded to
/// the microsecond.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let units = [
        ("us", 1.0),
        ("µs", 1.0),
        ("ms", 1e3),
        ("s", 1e6),
        ("min", 60e6),
    ];
    let micros = with_unit(s, s.trim(), "duration", "10ms, 1.5s or 500us", &units)?.round();
    // About 11 days: far beyond any flight, and far from overflowing virtual time.
    if micros > 1e12 {
        return Err(format!("{s} is too long"));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// A duration that is at least a millisecond (a flight's length).
pub(crate) fn flight_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{s} is too short (at least 1ms)"));
    }
    Ok(d)
}

/// A bit rate: `500kbit`, `50mbit`, `1gbit`, `9600bit` (case-insensitive, `/s` optional,
/// decimals allowed: `1.5mbit`). Returns bits per second, which must be at least 1.
pub(crate) fn rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("/s").unwrap_or(&t);
    let units = [("bit", 1.0), ("kbit", 1e3), ("mbit", 1e6), ("gbit", 1e9)];
    let bps = with_unit(s, t, "rate", "50mbit, 500kbit or 1gbit", &units)?.round();
    if bps < 1.0 {
        return Err(format!("{s} is less than 1 bit/s"));
    }
    if bps > 1e12 {
        return Err(format!("{s} is more than 1000gbit"));
    }
    Ok(bps as u64)
}

/// A change of the radio's rate during the flight, `TIME=RATE` (`10s=8mbit`: from 10 s
/// on, 8 Mbit/s): a [`duration`] and a [`rate`].
pub(crate) fn rate_step(s: &str) -> Result<RateStep, String> {
    let (at, bps) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not a rate step (write it like 10s=8mbit)"))?;
    Ok(RateStep {
        at: duration(at)?,
        bps: rate(bps)?,
    })
}

/// A window of virtual time, `FROM..TO` (`1s..2.5s`), two [`duration`]s with FROM < TO.
pub(crate) fn outage(s: &str) -> Result<(Duration, Duration), String> {
    let (from, to) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a window of time (write it like 1s..2.5s)"))?;
    let (from, to) = (duration(from)?, duration(to)?);
    if from >= to {
        return Err(format!("{s}: the window must end after it starts"));
    }
    Ok((from, to))
}

/// A video bit rate: as [`rate`], and `0` (or `0mbit`) turns the video off.
pub(crate) fn video_rate(s: &str) -> Result<u64, String> {
    if number(s.trim()) == Some(0.0) {
        return Ok(0);
    }
    match rate(s) {
        Err(e) if e.contains("less than 1 bit/s") => Ok(0),
        other => other,
    }
}

/// An MTU in bytes, from what the handshake needs (400) to the largest datagram (16384).
pub(crate) fn mtu(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of bytes"))?;
    if !(MIN_HANDSHAKE_MTU..=MAX_DATAGRAM_LEN).contains(&v) {
        return Err(format!(
            "{v} bytes is outside {MIN_HANDSHAKE_MTU}..={MAX_DATAGRAM_LEN} (the pairing \
             handshake needs {MIN_HANDSHAKE_MTU})"
        ));
    }
    Ok(v)
}

/// A size in bytes: `65536`, `64k` or `64KiB` (1024), `1M` or `1MiB`, `1G` or `1GiB`; at
/// least 1, at most 4 GiB.
pub(crate) fn bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (value, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "'{s}' is not a size in bytes (write it like 65536, 64KiB, 1MiB or 1GiB)"
            ))
        }
    };
    let v: u64 = value.parse().map_err(|_| {
        format!("'{s}' is not a size in bytes (write it like 65536, 64KiB, 1MiB or 1GiB)")
    })?;
    match v.checked_mul(scale) {
        Some(0) => Err(format!("{s} is empty (at least 1 byte)")),
        Some(n) if n <= 1 << 32 => Ok(n as usize),
        _ => Err(format!("{s} is more than 4GiB")),
    }
}

/// A size of a stored file: as [`bytes`], and `0` for none.
pub(crate) fn file_size(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    bytes(s).map(|n| n as u64)
}

/// A number of photos, 0 to 1000.
pub(crate) fn photos(s: &str) -> Result<u32, String> {
    let v: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of photos"))?;
    if v > 1000 {
        return Err(format!("{v} photos is more than 1000"));
    }
    Ok(v)
}

/// A mean loss-burst length in datagrams: a number, at least 1.
pub(crate) fn burst_length(s: &str) -> Result<f64, String> {
    let v = number(s.trim())
        .ok_or_else(|| format!("'{s}' is not a number of datagrams (write it like 4 or 2.5)"))?;
    if v < 1.0 {
        return Err(format!("{s} is shorter than one datagram"));
    }
    if v > 1e6 {
        return Err(format!("{s} is longer than a million datagrams"));
    }
    Ok(v)
}

/// `rate` for people: `50 Mbit/s`, `500 kbit/s`, `1.5 Gbit/s`.
pub(crate) fn show_rate(bps: u64) -> String {
    let b = bps as f64;
    if bps >= 1_000_000_000 {
        format!("{} Gbit/s", trim(b / 1e9))
    } else if bps >= 1_000_000 {
        format!("{} Mbit/s", trim(b / 1e6))
    } else if bps >= 1_000 {
        format!("{} kbit/s", trim(b / 1e3))
    } else {
        format!("{bps} bit/s")
    }
}

/// `duration` for people: `500 us`, `10 ms`, `1.5 s`.
pub(crate) fn show_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0 ms".into()
    } else if us < 1_000 {
        format!("{us} us")
    } else if us < 1_000_000 {
        format!("{} ms", trim(us as f64 / 1e3))
    } else {
        format!("{} s", trim(us as f64 / 1e6))
    }
}

/// A size for people: `1.5 MiB`, `64 KiB`, `300 B`, `1 GiB`.
pub(crate) fn show_bytes(n: usize) -> String {
    let b = n as f64;
    if n >= 1 << 30 {
        format!("{} GiB", trim(b / f64::from(1 << 30)))
    } else if n >= 1 << 20 {
        format!("{} MiB", trim(b / f64::from(1 << 20)))
    } else if n >= 1 << 10 {
        format!("{} KiB", trim(b / 1024.0))
    } else {
        format!("{n} B")
    }
}

/// A fraction as a percentage for people: `0.05` is `5%`, `0.001` is `0.1%`.
pub(crate) fn show_percent(p: f64) -> String {
    format!("{}%", trim(p * 100.0))
}

/// A number with up to three decimals and no trailing zeros.
pub(crate) fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent("5%"), Ok(0.05));
        assert_eq!(percent("0.05"), Ok(0.05));
        assert_eq!(percent("0%"), Ok(0.0));
        assert_eq!(percent("100%"), Ok(1.0));
        assert_eq!(percent("1"), Ok(1.0));
        assert_eq!(percent("0"), Ok(0.0));
        assert_eq!(percent(" 0.5% "), Ok(0.005));
        assert!((percent("0.1%").unwrap() - 0.001).abs() < 1e-15);
        for bad in [
            "150%", "5", "1.5", "-1%", "-0.1", "abc", "%", "", "5%%", "nan", "inf", "1e-2", "5 %x",
            "1.2.3%",
        ] {
            assert!(percent(bad).is_err(), "{bad:?} accepted");
        }
        assert!(percent("150%").unwrap_err().contains("more than 100%"));
        assert!(percent("5").unwrap_err().contains("5%"));
    }

    #[test]
    fn sweep_points() {
        assert_eq!(percent_point("5"), Ok(0.05));
        assert_eq!(percent_point("5%"), Ok(0.05));
        assert_eq!(percent_point("0"), Ok(0.0));
        assert_eq!(percent_point("100"), Ok(1.0));
        assert_eq!(percent_point("0.5"), Ok(0.005));
        for bad in ["101", "150%", "-1", "x", "", "5mbit"] {
            assert!(percent_point(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(duration("500µs"), Ok(Duration::from_micros(500)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(duration("0.25ms"), Ok(Duration::from_micros(250)));
        for bad in [
            "abc",
            "10",
            "",
            "ms",
            "-5ms",
            "10 parsecs",
            "1.2.3s",
            "10h",
            "1e3ms",
            "99999999999s",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(duration("10").unwrap_err().contains("no unit"));
        assert_eq!(flight_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(flight_duration("0s").is_err());
        assert!(flight_duration("500us").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(rate("50mbit"), Ok(50_000_000));
        assert_eq!(rate("500kbit"), Ok(500_000));
        assert_eq!(rate("1gbit"), Ok(1_000_000_000));
        assert_eq!(rate("20mbit"), Ok(20_000_000));
        assert_eq!(rate("20Mbit/s"), Ok(20_000_000));
        assert_eq!(rate("1.5mbit"), Ok(1_500_000));
        assert_eq!(rate("9600bit"), Ok(9600));
        for bad in [
            "50",
            "abc",
            "",
            "mbit",
            "-5mbit",
            "5mb",
            "5mbps",
            "0mbit",
            "0.0001bit",
            "2000gbit",
        ] {
            assert!(rate(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(video_rate("0"), Ok(0));
        assert_eq!(video_rate("0mbit"), Ok(0));
        assert_eq!(video_rate("2mbit"), Ok(2_000_000));
        assert!(video_rate("fast").is_err());
    }

    #[test]
    fn outages() {
        assert_eq!(
            outage("1s..2.5s"),
            Ok((Duration::from_secs(1), Duration::from_millis(2500)))
        );
        assert_eq!(
            outage(" 0s .. 300ms "),
            Ok((Duration::ZERO, Duration::from_millis(300)))
        );
        for bad in ["1s", "2s..1s", "1s..1s", "1s..x", "..1s"] {
            assert!(outage(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rate_steps() {
        assert_eq!(
            rate_step("10s=8mbit"),
            Ok(RateStep {
                at: Duration::from_secs(10),
                bps: 8_000_000
            })
        );
        assert_eq!(
            rate_step(" 1.5s = 500kbit "),
            Ok(RateStep {
                at: Duration::from_millis(1500),
                bps: 500_000
            })
        );
        for bad in [
            "10s",
            "8mbit",
            "10s=0mbit",
            "=8mbit",
            "10s=",
            "10=8mbit",
            "x=8mbit",
        ] {
            assert!(rate_step(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mtus() {
        assert_eq!(mtu("1400"), Ok(1400));
        assert_eq!(mtu("400"), Ok(400));
        assert_eq!(mtu("16384"), Ok(16384));
        for bad in ["10", "399", "16385", "0", "-1", "1400b", "abc", ""] {
            assert!(mtu(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("65536"), Ok(65536));
        assert_eq!(bytes("64k"), Ok(65536));
        assert_eq!(bytes("64KiB"), Ok(65536));
        assert_eq!(bytes("1MiB"), Ok(1 << 20));
        assert_eq!(bytes("1m"), Ok(1 << 20));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert_eq!(bytes("4g"), Ok(1 << 32));
        for bad in ["0", "0k", "", "k", "-1", "1.5k", "5GiB", "64kb", "x"] {
            assert!(bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stored_files() {
        assert_eq!(file_size("0"), Ok(0));
        assert_eq!(file_size("64MiB"), Ok(64 << 20));
        assert_eq!(file_size("1024m"), Ok(1 << 30));
        assert!(file_size("0MiB").is_err());
        assert!(file_size("-1").is_err());
        assert_eq!(photos("0"), Ok(0));
        assert_eq!(photos("1000"), Ok(1000));
        for bad in ["1001", "-1", "2.5", "x", ""] {
            assert!(photos(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn burst_lengths() {
        assert_eq!(burst_length("4"), Ok(4.0));
        assert_eq!(burst_length("1"), Ok(1.0));
        assert_eq!(burst_length("2.5"), Ok(2.5));
        for bad in ["0.5", "0", "-3", "x", ""] {
            assert!(burst_length(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn shown_for_people() {
        assert_eq!(show_rate(50_000_000), "50 Mbit/s");
        assert_eq!(show_rate(1_500_000_000), "1.5 Gbit/s");
        assert_eq!(show_rate(500_000), "500 kbit/s");
        assert_eq!(show_rate(300), "300 bit/s");
        assert_eq!(show_duration(Duration::from_millis(10)), "10 ms");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(show_duration(Duration::from_micros(500)), "500 us");
        assert_eq!(show_duration(Duration::ZERO), "0 ms");
        assert_eq!(show_bytes(1 << 20), "1 MiB");
        assert_eq!(show_bytes(64 * 1024), "64 KiB");
        assert_eq!(show_bytes(1536), "1.5 KiB");
        assert_eq!(show_bytes(300), "300 B");
        assert_eq!(show_percent(0.05), "5%");
        assert_eq!(show_percent(0.001), "0.1%");
        assert_eq!(show_percent(0.0), "0%");
    }
}
