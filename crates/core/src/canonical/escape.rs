//! JSON strings written byte for byte as serde_json writes them, eight bytes at a time where nothing
//! needs escaping (the long texts of a report, its diffs, are mostly such runs).

/// Every byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const ONES: u64 = splat(0x01);
const HIGHS: u64 = splat(0x80);

/// Whether one of the word's bytes is below `n` (`n` at most 0x80; exact, no false answer).
const fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(splat(n)) & !word & HIGHS != 0
}

/// Whether one of the word's bytes is zero.
const fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Whether one of the word's bytes must be escaped: a control byte, `"` or `\`.
const fn needs_escape(word: u64) -> bool {
    has_byte_below(word, 0x20) || has_zero_byte(word ^ splat(b'"')) || has_zero_byte(word ^ splat(b'\\'))
}

/// The escape of one byte, as serde_json writes it; `None` for a byte written as it is.
fn escape_of(byte: u8) -> Option<&'static [u8]> {
    const CONTROL: [&[u8]; 32] = [
        b"\\u0000", b"\\u0001", b"\\u0002", b"\\u0003", b"\\u0004", b"\\u0005", b"\\u0006", b"\\u0007", b"\\b", b"\\t",
        b"\\n", b"\\u000b", b"\\f", b"\\r", b"\\u000e", b"\\u000f", b"\\u0010", b"\\u0011", b"\\u0012", b"\\u0013",
        b"\\u0014", b"\\u0015", b"\\u0016", b"\\u0017", b"\\u0018", b"\\u0019", b"\\u001a", b"\\u001b", b"\\u001c",
        b"\\u001d", b"\\u001e", b"\\u001f",
    ];
    match byte {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        0..0x20 => Some(CONTROL[usize::from(byte)]),
        _ => None,
    }
}

/// Appends `text` to `out` as a JSON string: the same bytes as `serde_json::to_writer(out, text)`.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok())
            && !needs_escape(u64::from_ne_bytes(word))
        {
            at += 8;
            continue;
        }
        if let Some(escape) = escape_of(bytes[at]) {
            out.extend_from_slice(&bytes[start..at]);
            out.extend_from_slice(escape);
            start = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn as_serde_json_writes(text: &str) -> String {
        serde_json::to_string(text).unwrap()
    }

    fn written(text: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_byte_below_0x80_is_written_as_serde_json_writes_it_at_every_offset() {
        for byte in 0u8..0x80 {
            for offset in 0..17 {
                let text = format!("{}{}{}", "a".repeat(offset), char::from(byte), "b".repeat(offset % 5));
                assert_eq!(written(&text), as_serde_json_writes(&text), "byte {byte:#x} at {offset}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_text_is_written_as_serde_json_writes_it(text in any::<String>()) {
            prop_assert_eq!(written(&text), as_serde_json_writes(&text));
        }

        #[test]
        fn texts_dense_with_escapes_are_written_as_serde_json_writes_them(
            text in prop::collection::vec(prop::sample::select(vec!['"', '\\', '\n', '\t', '\u{1}', '\u{1f}', '\u{7f}', 'é', 'a', ' ', '€']), 0..64)
        ) {
            let text: String = text.into_iter().collect();
            prop_assert_eq!(written(&text), as_serde_json_writes(&text));
        }
    }
}
