//! Escaping of text from backups and from Graph before it reaches a terminal, as kubectl does
//! (`^[` for ESC, `\r` for CR): no name, path or message can move the cursor or recolour a line.

use std::borrow::Cow;
use std::io;

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls, DEL, and the Unicode
/// bidirectional overrides that reorder what is shown ("Trojan Source"). `\n` and `\t` are kept
/// when `multiline`.
fn needs_escape(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' => true,
        _ => false,
    }
}

fn escaped(text: &str, multiline: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, multiline)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            _ if !needs_escape(c, multiline) => out.push(c),
            '\u{1b}' => out.push_str("^["),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            other => out.push_str(&format!("\\u{{{:x}}}", u32::from(other))),
        }
    }
    Cow::Owned(out)
}

/// One value (a name, a path, a key) made safe for a terminal line: every control character,
/// newlines included, is shown escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    escaped(text, false)
}

/// A block of text made safe for a terminal: lines and tabs stay, every other control character
/// is shown escaped.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escaped(text, true)
}

/// A writer that passes text through [`escape_text`]: wrap a terminal's stdout in it and nothing
/// written can carry an escape sequence.
pub struct EscapingWriter<W> {
    inner: W,
}

impl<W: io::Write> EscapingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        EscapingWriter { inner }
    }
}

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(escape_text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn finding_8_escape_sequences_in_names_never_reach_the_terminal() {
        let forged = "Set wallpaper\r\u{1b}[2K\u{1b}[32munchanged\u{1b}[0m";
        let shown = escape(forged);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r'), "{shown}");
        assert_eq!(shown, "Set wallpaper\\r^[[2K^[[32munchanged^[[0m");
        assert_eq!(escape("two\nlines"), "two\\nlines");
        assert_eq!(escape_text("two\nlines\tok"), "two\nlines\tok");
        assert_eq!(escape("a\u{202e}b\u{9b}c"), "a\\u{202e}b\\u{9b}c");
        assert!(matches!(escape("Corp laptops — é"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_escaping_writer_escapes_what_passes_through_it() {
        let mut out = Vec::new();
        let name = "x\u{1b}]0;title\u{7}";
        writeln!(EscapingWriter::new(&mut out), "create {name}").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "create x^[]0;title\\u{7}\n");
    }
}
