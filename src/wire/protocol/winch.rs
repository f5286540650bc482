//! The WINCH content: ASCII `"<cols> <rows>"`, width first, as LAIN Entry sent it.
//!
//! Guarantees: parsing never panics; sizes are 1..=`MAX_DIMENSION` in each direction.

use std::fmt;
use std::str::FromStr;

/// The largest width or height accepted; terminals larger than this do not exist.
pub const MAX_DIMENSION: u16 = 10_000;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub cols: u16,
    pub rows: u16,
}

/// Why a WINCH content was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WinchError {
    #[error("window size is not ASCII \"<cols> <rows>\"")]
    Malformed,
    #[error("window size {0}x{1} is outside 1..={MAX_DIMENSION}")]
    OutOfRange(u32, u32),
}

impl WindowSize {
    /// Parses WINCH content. Surrounding whitespace is tolerated, as LAIN clients sent it.
    pub fn parse(content: &[u8]) -> Result<Self, WinchError> {
        let text = std::str::from_utf8(content).map_err(|_| WinchError::Malformed)?;
        text.parse()
    }
}

impl FromStr for WindowSize {
    type Err = WinchError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split_ascii_whitespace();
        let (Some(cols), Some(rows), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(WinchError::Malformed);
        };
        let number = |part: &str| -> Result<u32, WinchError> {
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(WinchError::Malformed);
            }
            part.parse().map_err(|_| WinchError::Malformed)
        };
        let (cols, rows) = (number(cols)?, number(rows)?);
        let limit = u32::from(MAX_DIMENSION);
        if cols == 0 || rows == 0 || cols > limit || rows > limit {
            return Err(WinchError::OutOfRange(cols, rows));
        }
        // Both are within 1..=MAX_DIMENSION, which fits u16.
        Ok(Self { cols: cols as u16, rows: rows as u16 })
    }
}

impl fmt::Display for WindowSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cols, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lain_format() {
        assert_eq!(WindowSize::parse(b"120 40"), Ok(WindowSize { cols: 120, rows: 40 }));
        assert_eq!(WindowSize::parse(b" 80  24\n"), Ok(WindowSize { cols: 80, rows: 24 }));
    }

    #[test]
    fn refuses_bad_sizes() {
        assert_eq!(WindowSize::parse(b"0 0"), Err(WinchError::OutOfRange(0, 0)));
        assert_eq!(WindowSize::parse(b"99999 99999"), Err(WinchError::OutOfRange(99999, 99999)));
        for bad in [&b""[..], b"80", b"80 24 1", b"-1 5", b"+80 24", b"a b", b"\xff\xfe", b"99999999999 1"] {
            assert_eq!(WindowSize::parse(bad), Err(WinchError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn round_trips() {
        let size = WindowSize { cols: 132, rows: 43 };
        assert_eq!(size.to_string().parse::<WindowSize>(), Ok(size));
    }
}
