//! Canonical JSON (sorted keys, no insignificant white space) and `sha256:` digests over it.
//! Every digest the operator shows a human is computed here, so it is the same on any machine.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod escape;
mod writer;

/// `value`, written as itself; the canonical writer notes its text for a [`SameTextAs`] after it.
pub struct Remembered<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Remembered<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(writer::REMEMBER, self.0)
    }
}

/// `value`, which its caller knows to be written as the same text as the last [`Remembered`]
/// value: the canonical writer copies that text instead of writing it again. Anything else is
/// written as `value`, so the claim must hold (`engine::diff::same_text`).
pub struct SameTextAs<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for SameTextAs<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(writer::REPEAT, self.0)
    }
}

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no spaces,
/// numbers and strings as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // serde_json writes UTF-8 only; the fallback is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The `sha256:` digest of `value`'s canonical JSON, hashed as it is written (no copy of the text).
pub fn canonical_digest(value: &Value) -> String {
    let mut sink = HashingSink { pending: Vec::with_capacity(HASH_CHUNK), hasher: Sha256::new() };
    write_canonical(value, &mut sink);
    sink.hasher.update(&sink.pending);
    format!("sha256:{}", hex::encode(sink.hasher.finalize()))
}

/// The `sha256:` digest of `value`'s canonical JSON without the top-level keys in `skip`, written
/// straight from the value: the digest of `canonical_json(&serde_json::to_value(value)?)` with
/// those keys removed, without that copy of the whole value (a large report is copied into a
/// `Value` tree no more).
pub fn canonical_digest_of<T: Serialize + ?Sized>(value: &T, skip: &[&str]) -> Result<String, serde_json::Error> {
    // The text is hashed as it settles: a large report's text is never whole in memory.
    let mut sink = HashingSink { pending: Vec::with_capacity(HASH_CHUNK), hasher: Sha256::new() };
    writer::stream_canonical_of(value, skip, &mut sink)?;
    sink.hasher.update(&sink.pending);
    Ok(format!("sha256:{}", hex::encode(sink.hasher.finalize())))
}

/// Bytes gathered before they are fed to the hasher.
const HASH_CHUNK: usize = 64 * 1024;

/// Feeds written bytes to a SHA-256 in chunks.
struct HashingSink {
    pending: Vec<u8>,
    hasher: Sha256,
}

impl std::io::Write for HashingSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() && bytes.len() >= HASH_CHUNK {
            self.hasher.update(bytes);
            return Ok(bytes.len());
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= HASH_CHUNK {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_canonical<W: std::io::Write>(value: &Value, out: &mut W) {
    // Writing to memory or to a hasher cannot fail.
    let _ = try_write_canonical(value, out);
}

fn try_write_canonical<W: std::io::Write>(value: &Value, out: &mut W) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.write_all(b"{").map_err(serde_json::Error::io)?;
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",").map_err(serde_json::Error::io)?;
                }
                serde_json::to_writer(&mut *out, key)?;
                out.write_all(b":").map_err(serde_json::Error::io)?;
                try_write_canonical(item, out)?;
            }
            out.write_all(b"}").map_err(serde_json::Error::io)
        }
        Value::Array(items) => {
            out.write_all(b"[").map_err(serde_json::Error::io)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",").map_err(serde_json::Error::io)?;
                }
                try_write_canonical(item, out)?;
            }
            out.write_all(b"]").map_err(serde_json::Error::io)
        }
        scalar => serde_json::to_writer(&mut *out, scalar),
    }
}

/// `sha256:` + lower-case hex of the SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest of a serializable value's canonical JSON.
pub fn digest_of<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    Ok(canonical_digest(&value))
}

/// Whether `s` has the form `sha256:` + 64 lower-case hex characters.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_text() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#);
    }

    #[test]
    fn array_order_is_significant() {
        assert_ne!(canonical_json(&json!([1, 2])), canonical_json(&json!([2, 1])));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(canonical_json(&json!({"k\"": "a\nb"})), r#"{"k\"":"a\nb"}"#);
    }

    #[test]
    fn the_streamed_digest_is_the_digest_of_the_canonical_text() {
        let long = "é\"\n".repeat(HASH_CHUNK);
        for value in [json!({"b": [1, 2.5, -3, null, true], "a": {"é": long, "\u{1}": "x"}}), json!("s"), json!([])] {
            assert_eq!(canonical_digest(&value), sha256_digest(canonical_json(&value).as_bytes()));
        }
    }

    #[test]
    fn digest_has_the_documented_form() {
        let d = sha256_digest(b"");
        assert_eq!(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(is_digest(&d));
        assert!(!is_digest("sha256:E3B0"));
        assert!(!is_digest("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    }
}
