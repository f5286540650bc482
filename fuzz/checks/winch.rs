//! `winch`: the WINCH content `"<cols> <rows>"` ([`WindowSize::parse`]).
//!
//! Checks: an accepted size is within 1..=`MAX_DIMENSION` both ways and is the two numbers
//! the text holds; a refused one says why truthfully; and for any two numbers written the
//! way clients write them, parsing accepts exactly the sizes in range.

use arbitrary::Unstructured;
use entry::wire::protocol::{MAX_DIMENSION, WinchError, WindowSize};

pub fn check(data: &[u8]) {
    content(data);
    let mut input = Unstructured::new(data);
    if let (Ok(cols), Ok(rows)) = (input.arbitrary::<u32>(), input.arbitrary::<u32>()) {
        formatted(cols, rows);
    }
}

/// Arbitrary bytes as a WINCH content; also what the gateway does for a WINCH message.
pub fn content(data: &[u8]) {
    let limit = u32::from(MAX_DIMENSION);
    match WindowSize::parse(data) {
        Ok(size) => {
            assert!((1..=MAX_DIMENSION).contains(&size.cols), "accepted {size:?}");
            assert!((1..=MAX_DIMENSION).contains(&size.rows), "accepted {size:?}");
            let text = std::str::from_utf8(data).expect("accepted content is text");
            let numbers: Vec<u32> = text.split_ascii_whitespace().map(|n| n.parse().expect("a number")).collect();
            assert_eq!(numbers, [u32::from(size.cols), u32::from(size.rows)], "{text:?}");
            assert_eq!(WindowSize::parse(size.to_string().as_bytes()), Ok(size));
        }
        Err(WinchError::OutOfRange(cols, rows)) => {
            let outside = |n: u32| n == 0 || n > limit;
            assert!(outside(cols) || outside(rows), "refused {cols}x{rows} as out of range");
        }
        Err(WinchError::Malformed) => {}
    }
}

/// `"<cols> <rows>"` as clients write it: accepted iff both are in range; numbers of more
/// than 9 digits are malformed rather than out of range.
fn formatted(cols: u32, rows: u32) {
    let limit = u32::from(MAX_DIMENSION);
    let parsed = WindowSize::parse(format!("{cols} {rows}").as_bytes());
    if cols > 999_999_999 || rows > 999_999_999 {
        assert_eq!(parsed, Err(WinchError::Malformed), "{cols} {rows}");
    } else if (1..=limit).contains(&cols) && (1..=limit).contains(&rows) {
        let size = parsed.expect("a size in range is accepted");
        assert_eq!((u32::from(size.cols), u32::from(size.rows)), (cols, rows));
    } else {
        assert_eq!(parsed, Err(WinchError::OutOfRange(cols, rows)));
    }
}
