//! Humane units in configs: durations such as `"5ms"` and sizes such as `"64MiB"`.
//!
//! Parsing happens inside serde deserialisers, so a malformed value is reported by the TOML
//! parser with its line and column, like any other type error.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Parses `"1.5ms"`, `"10us"`, `"2s"`, ... into a duration. Units: ns, us (or µs), ms, s, m, h.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text);
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "" => {
            return Err(format!(
                "\"{text}\" has no unit: write e.g. \"{text}ms\" or \"{text}s\""
            ));
        }
        other => {
            return Err(format!(
                "unknown unit \"{other}\" in \"{text}\": use ns, us, ms, s, m or h"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration: expected a number and a unit, e.g. \"5ms\""))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!(
            "\"{text}\" is not a duration: it must be zero or positive"
        ));
    }
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("\"{text}\" is too long a duration"))
}

/// Parses `"64MiB"`, `"4KB"`, `"512B"` or `"1000"` into a byte count. Binary (KiB, MiB, GiB)
/// and decimal (KB, MB, GB) prefixes are both accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text);
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit \"{other}\" in \"{text}\": use B, KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size: expected a number and a unit, e.g. \"64MiB\""))?;
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) || bytes.fract() != 0.0 {
        return Err(format!("\"{text}\" is not a whole, non-negative number of bytes"));
    }
    Ok(bytes as u64)
}

/// Parses a rate in bytes per second: `"1.25GB/s"`, `"10Gbit/s"`, `"800MiB/s"`. Bit units
/// (bit, kbit, Mbit, Gbit) are divided by 8; the `/s` is required, so that a size is never
/// mistaken for a rate.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let Some(per) = text.trim().strip_suffix("/s") else {
        return Err(format!(
            "\"{text}\" is not a rate: write bytes or bits per second, e.g. \"1.25GB/s\" or \"10Gbit/s\""
        ));
    };
    let (number, unit) = split_number(per);
    let scale: f64 = match unit {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "bit" => 1.0 / 8.0,
        "kbit" | "Kbit" => 1e3 / 8.0,
        "Mbit" => 1e6 / 8.0,
        "Gbit" => 1e9 / 8.0,
        other => {
            return Err(format!(
                "unknown unit \"{other}\" in \"{text}\": use B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit or Gbit, then /s"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a rate: expected a number and a unit, e.g. \"1GB/s\""))?;
    let rate = value * scale;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("\"{text}\" must be a positive rate"));
    }
    Ok(rate)
}

/// Splits `"1.5ms"` into `("1.5", "ms")`, trimming spaces around both.
fn split_number(text: &str) -> (&str, &str) {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == '_'))
        .unwrap_or(text.len());
    (text[..end].trim(), text[end..].trim())
}

/// Formats a duration compactly for labels and tables: `250us`, `1.5ms`, `2s`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "us")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// A duration field: a string such as `"5ms"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HumanDuration(pub Duration);

impl<'de> de::Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"5ms\", \"250us\" or \"2s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A duration field that may also list one duration per task in turn: `"5ms"` or
/// `["3s", "1s", "1s"]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Durations {
    /// One duration, the mean of every task's.
    One(Duration),
    /// One duration per task, in turn (task `id` takes entry `id % len`).
    Each(Vec<Duration>),
}

impl<'de> de::Deserialize<'de> for Durations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Durations;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"5ms\", or a list of them such as [\"3s\", \"1s\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Durations, E> {
                parse_duration(v).map(Durations::One).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Durations, A::Error> {
                let mut each = Vec::new();
                while let Some(HumanDuration(d)) = seq.next_element()? {
                    each.push(d);
                }
                Ok(Durations::Each(each))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size field: an integer byte count or a string such as `"64MiB"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HumanSize(pub u64);

impl<'de> de::Deserialize<'de> for HumanSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count such as 4096 or a size string such as \"64MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanSize, E> {
                u64::try_from(v)
                    .map(HumanSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative (got {v})")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanSize, E> {
                Ok(HumanSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanSize, E> {
                parse_size(v).map(HumanSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("5ms", 5_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("1.5ms", 1_500_000),
            ("2s", 2_000_000_000),
            (" 3 ms ", 3_000_000),
            ("0s", 0),
        ];
        for (text, ns) in ok {
            assert_eq!(parse_duration(text), Ok(Duration::from_nanos(ns)), "{text}");
        }
        for bad in ["", "5", "ms", "5 parsecs", "-1ms", "1e999s", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("64MiB", 64 << 20),
            ("4KB", 4000),
            ("512", 512),
            ("512B", 512),
            ("1.5KiB", 1536),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MiB", "4 furlongs", "-1KB", "0.5B"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rates() {
        let ok = [
            ("1GB/s", 1e9),
            ("10Gbit/s", 1.25e9),
            ("800 MiB/s", 800.0 * 1024.0 * 1024.0),
            ("100Mbit/s", 12.5e6),
        ];
        for (text, rate) in ok {
            assert_eq!(parse_rate(text), Ok(rate), "{text}");
        }
        for bad in ["", "1GB", "0GB/s", "-1MB/s", "5 furlongs/s", "GB/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formatted_durations_read_back() {
        for ns in [500, 1_500, 250_000, 1_500_000, 2_000_000_000] {
            let d = Duration::from_nanos(ns);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
