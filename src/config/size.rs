//! Sizes in the configuration: [`ByteSize`] (`"4MiB"` or a number of bytes) and
//! [`MinFree`] (a size or a share of a disk, `"2%"`).
//!
//! Guarantees: every size parses from a number or a string with a decimal or binary unit, and
//! prints in binary units (`512 MiB`), as the lines that name a limit show it.

use serde::{Deserialize, Serialize};

/// A size in bytes: a number, or a string with a unit (`"4MiB"`, `"512 MiB"`, `"1GB"`,
/// `"1.5GiB"`; `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses a size as in the configuration.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = (text[..split].trim(), text[split..].trim().to_ascii_lowercase());
        let scale: u64 = match unit.as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "ki" | "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mi" | "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gi" | "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "ti" | "tib" => 1 << 40,
            _ => return None,
        };
        let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
        let bytes = value * scale as f64;
        (bytes < u64::MAX as f64).then_some(Self(bytes.round() as u64))
    }
}

impl std::fmt::Display for ByteSize {
    /// In the largest binary unit that keeps one decimal honest: `512 MiB`, `1.5 GiB`, `120 B`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let (mut value, mut unit) = (self.0 as f64, 0);
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 || (value * 10.0).round() % 10.0 == 0.0 {
            write!(f, "{value:.0} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match SizeText::deserialize(deserializer)? {
            SizeText::Number(n) => Ok(Self(n)),
            SizeText::Text(text) => Self::parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a size such as \"4MiB\""))),
        }
    }
}

/// A size as written: a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Number(u64),
    Text(String),
}

/// Free space to keep on a disk: a size, or a share of the disk in percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinFree {
    Bytes(ByteSize),
    Percent(f64),
}

impl MinFree {
    /// The bytes to keep free on a disk of `total` bytes; 0 means no guard.
    pub fn bytes_of(&self, total: u64) -> u64 {
        match *self {
            Self::Bytes(size) => size.0,
            Self::Percent(percent) => (total as f64 * percent / 100.0) as u64,
        }
    }
}

impl std::fmt::Display for MinFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(size) => size.fmt(f),
            Self::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Serialize for MinFree {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bytes(size) => size.serialize(serializer),
            Self::Percent(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for MinFree {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match SizeText::deserialize(deserializer)? {
            SizeText::Number(n) => return Ok(Self::Bytes(ByteSize(n))),
            SizeText::Text(text) => text,
        };
        if let Some(percent) = text.trim().strip_suffix('%') {
            return match percent.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Self::Percent(p)),
                _ => Err(serde::de::Error::custom(format!("{text:?} is not a share of the disk such as \"2%\""))),
            };
        }
        ByteSize::parse(&text)
            .map(Self::Bytes)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a size such as \"512MiB\" or \"2%\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_print_in_binary_units() {
        assert_eq!(ByteSize::parse("4MiB"), Some(ByteSize(4 << 20)));
        assert_eq!(ByteSize::parse("512 mib"), Some(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("1.5GiB"), Some(ByteSize(3 << 29)));
        assert_eq!(ByteSize::parse("1GB"), Some(ByteSize(1_000_000_000)));
        assert_eq!(ByteSize::parse("4096"), Some(ByteSize(4096)));
        assert_eq!(ByteSize::parse("4 parsecs"), None);
        assert_eq!(ByteSize::parse("-1MiB"), None);
        assert_eq!(ByteSize(512 << 20).to_string(), "512 MiB");
        assert_eq!(ByteSize(120 << 20).to_string(), "120 MiB");
        assert_eq!(ByteSize(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(ByteSize((16 << 20) - 4096).to_string(), "16 MiB");
    }

    #[test]
    fn min_free_is_a_size_or_a_share_of_the_disk() {
        let parse = |toml: &str| crate::config::Config::from_toml_str(toml).map(|c| c.recording.min_free);
        assert_eq!(parse("[recording]\nmin_free = \"1GiB\"").unwrap(), MinFree::Bytes(ByteSize(1 << 30)));
        assert_eq!(parse("[recording]\nmin_free = \"5%\"").unwrap(), MinFree::Percent(5.0));
        assert_eq!(parse("[recording]\nmin_free = 0").unwrap(), MinFree::Bytes(ByteSize(0)));
        assert!(parse("[recording]\nmin_free = \"150%\"").is_err());
        assert_eq!(MinFree::Percent(5.0).bytes_of(1000), 50);
        let queue = crate::config::Config::from_toml_str("[recording]\nqueue_bytes = \"64KiB\"").unwrap();
        assert_eq!(queue.recording.queue_bytes, ByteSize(64 << 10));
        assert_eq!(crate::config::Config::default().recording.min_free.to_string(), "512 MiB");
    }
}
