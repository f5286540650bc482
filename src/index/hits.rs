//! Search hits as the API shows them: the command whole, or a snippet of the output line
//! around the match, with the match's character offsets for the page or the CLI to mark.
//!
//! Guarantees: a snippet is at most [`SNIPPET_CHARS`] characters plus ellipses and contains the
//! match whenever the stored text does; offsets are characters, never bytes; the match is found
//! with the store's meaning (a case-insensitive substring).

use crate::store::{CommandRow, HitRow, IndexKind};
use crate::wire::search::{CommandEntry, CommandFlag, HitKind, SearchHit};

/// Characters of output text shown around a match.
pub const SNIPPET_CHARS: usize = 160;

/// A stored command as the API lists it (and as a signed manifest's index digest covers it).
pub fn command_entry(row: CommandRow) -> CommandEntry {
    CommandEntry { seq: row.seq, at: row.at_ms as f64 / 1000.0, text: row.text, flags: CommandFlag::split(&row.flags) }
}

/// The API's view of a hit of `query`.
pub fn view(hit: HitRow, query: &str) -> SearchHit {
    let (kind, flags) = match hit.kind {
        IndexKind::Command => (HitKind::Command, CommandFlag::split(&hit.flags)),
        IndexKind::Output => (HitKind::Output, Vec::new()),
    };
    let (text, highlight) = match kind {
        HitKind::Command => {
            let highlight = find(&hit.text, query);
            (hit.text, highlight)
        }
        HitKind::Output => snippet(&hit.text, query),
    };
    SearchHit {
        session_id: hit.session_id,
        user: hit.user,
        container: hit.container,
        session_started_at: hit.session_started_at,
        at: hit.at_ms as f64 / 1000.0,
        kind,
        text,
        highlight,
        flags,
    }
}

/// Where `query` is in `text`, case-insensitively, as character offsets.
pub fn find(text: &str, query: &str) -> Option<[usize; 2]> {
    let needle: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
    if needle.is_empty() {
        return None;
    }
    let hay: Vec<char> = text.chars().collect();
    let lower: Vec<char> = hay.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    (0..hay.len()).find(|&start| lower[start..].starts_with(&needle)).map(|start| [start, start + needle.len()])
}

/// A window of `text` around the match of `query`, and the match's offsets in the window.
fn snippet(text: &str, query: &str) -> (String, Option<[usize; 2]>) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= SNIPPET_CHARS {
        return (text.to_owned(), find(text, query));
    }
    let Some([start, end]) = find(text, query) else {
        return (chars[..SNIPPET_CHARS].iter().collect::<String>() + "…", None);
    };
    let room = SNIPPET_CHARS.saturating_sub(end - start) / 2;
    let from = start.saturating_sub(room);
    let to = (end + room).max(from + SNIPPET_CHARS).min(chars.len());
    let mut window = String::new();
    let mut shift = 0;
    if from > 0 {
        window.push('…');
        shift = 1;
    }
    window.extend(&chars[from..to]);
    if to < chars.len() {
        window.push('…');
    }
    (window, Some([start - from + shift, end - from + shift]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_found_case_insensitively_in_characters() {
        assert_eq!(find("日本 RM -rf /", "rm -RF"), Some([3, 9]));
        assert_eq!(find("abc", "x"), None);
        assert_eq!(find("abc", ""), None);
    }

    #[test]
    fn a_long_line_gives_a_window_around_its_match() {
        let text = format!("{}needle{}", "a".repeat(500), "b".repeat(500));
        let (window, highlight) = snippet(&text, "NEEDLE");
        let [start, end] = highlight.unwrap();
        let chars: Vec<char> = window.chars().collect();
        assert_eq!(chars[start..end].iter().collect::<String>(), "needle");
        assert!(chars.len() <= SNIPPET_CHARS + 2, "{}", chars.len());
        assert!(window.starts_with('…') && window.ends_with('…'));
    }
}
