//! Canonical JSON written straight from a `Serialize` value (no `serde_json::Value` copy): the
//! same text as `canonical_json(&serde_json::to_value(v)?)`, for digests of large reports.

use std::cmp::Ordering;

use serde::ser::{self, Impossible, Serialize};
use serde_json::Error;

mod stream;

pub use stream::stream_canonical_of;

/// A newtype name: the canonical writer notes where the value's text lies, for [`REPEAT`].
pub const REMEMBER: &str = "$restore_core::canonical::remember";

/// A newtype name for a value its caller knows to be written as the same text as the last value
/// marked [`REMEMBER`]: the canonical writer copies that text when it still holds it whole, and
/// writes the value otherwise. Every other serializer writes both newtypes as their values.
pub const REPEAT: &str = "$restore_core::canonical::repeat";

/// Writes `value`'s canonical JSON into `out`, leaving out the top-level object's keys in `skip`.
/// The text equals [`super::canonical_json`] of `serde_json::to_value(value)` with those keys removed.
pub fn write_canonical_of<T: Serialize + ?Sized>(value: &T, skip: &[&str], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut writer = CanonicalWriter::new(out, 0, skip, None);
    value.serialize(&mut writer)
}

/// The text being written, a scratch buffer for reordering objects, and how deep the writer is;
/// with `flush`, the text written so far goes to that sink whenever no object is open (an open
/// object may still be reordered), once at least `flush_at` bytes are waiting.
struct CanonicalWriter<'a> {
    out: &'a mut Vec<u8>,
    scratch: Vec<u8>,
    depth: usize,
    skip: &'a [&'a str],
    flush: Option<(&'a mut (dyn std::io::Write + 'a), usize)>,
    objects_open: usize,
    /// The text of the last value marked [`REMEMBER`]: where it lies in `out`, and `rewrites` then.
    remembered: Option<(usize, usize, u64)>,
    /// How many times text already in `out` was moved or let go (flushed, reordered, cut).
    rewrites: u64,
}

impl<'a> CanonicalWriter<'a> {
    fn new(
        out: &'a mut Vec<u8>,
        depth: usize,
        skip: &'a [&'a str],
        flush: Option<(&'a mut (dyn std::io::Write + 'a), usize)>,
    ) -> Self {
        CanonicalWriter { out, scratch: Vec::new(), depth, skip, flush, objects_open: 0, remembered: None, rewrites: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Hands the text written so far to the sink when nothing in it can move any more.
    fn flush_if_settled(&mut self) -> Result<(), Error> {
        if let Some((sink, flush_at)) = self.flush.as_mut()
            && self.objects_open == 0
            && self.out.len() >= *flush_at
        {
            sink.write_all(self.out).map_err(Error::io)?;
            self.out.clear();
            self.rewrites += 1;
        }
        Ok(())
    }

    /// A JSON string, escaped as serde_json escapes it.
    fn string(&mut self, s: &str) -> Result<(), Error> {
        super::escape::write_json_string(self.out, s);
        Ok(())
    }

    /// A scalar written by serde_json's own writer.
    fn scalar<T: Serialize>(&mut self, v: T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v)
    }

    /// Opens an object (inside a variant's `{"variant":` when `variant`); entries are written in
    /// the order they come and sorted when it closes.
    fn object(&mut self, variant: bool) -> ObjectWriter<'_, 'a> {
        self.push(b"{");
        let top = self.depth == 0 && !variant;
        self.depth += 1;
        self.objects_open += 1;
        let open = self.out.len();
        ObjectWriter { writer: self, open, entries: Vec::new(), in_order: true, top, skipping: false, variant }
    }

    /// Opens an array (inside a variant's `{"variant":` when `variant`).
    fn array(&mut self, variant: bool) -> ArrayWriter<'_, 'a> {
        self.push(b"[");
        self.depth += 1;
        ArrayWriter { writer: self, first: true, variant }
    }

    /// `{"variant":` before a variant's content; closed by `}`.
    fn open_variant(&mut self, variant: &str) -> Result<(), Error> {
        self.push(b"{");
        self.string(variant)?;
        self.push(b":");
        Ok(())
    }
}

/// One `"key":value` of an object: where its key and value end in the text.
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    key_end: usize,
    end: usize,
    /// The key needed no escaping (its bytes between the quotes are the key's).
    plain: bool,
}

impl Entry {
    fn shifted(self, by: usize) -> Entry {
        Entry { start: self.start - by, key_end: self.key_end - by, end: self.end - by, plain: self.plain }
    }
}

/// Compares two keys written in `text` by the keys' own UTF-8 bytes (the canonical order).
fn compare_keys(text: &[u8], a: &Entry, b: &Entry) -> Ordering {
    if a.plain && b.plain {
        return text[a.start + 1..a.key_end - 1].cmp(&text[b.start + 1..b.key_end - 1]);
    }
    let raw = |e: &Entry| serde_json::from_slice::<String>(&text[e.start..e.key_end]).unwrap_or_default();
    raw(a).cmp(&raw(b))
}

/// An object being written.
struct ObjectWriter<'w, 'a> {
    writer: &'w mut CanonicalWriter<'a>,
    /// Where its first entry starts (just after `{`).
    open: usize,
    entries: Vec<Entry>,
    /// Every key so far came after the one before it.
    in_order: bool,
    /// The top-level object, whose keys in `skip` are left out.
    top: bool,
    /// The map key just written is left out, so is its value.
    skipping: bool,
    /// Closes a variant's `{"variant":` too.
    variant: bool,
}

impl ObjectWriter<'_, '_> {
    /// Writes `,"key":` (the comma unless first) with the key written by `key`; `false` when the
    /// key is one the top level leaves out (nothing is then written).
    fn key(&mut self, key: impl FnOnce(&mut CanonicalWriter<'_>) -> Result<usize, Error>) -> Result<bool, Error> {
        let mark = self.writer.out.len();
        if !self.entries.is_empty() {
            self.writer.push(b",");
        }
        let start = self.writer.out.len();
        let raw_len = key(self.writer)?;
        let key_end = self.writer.out.len();
        let plain = key_end - start == raw_len + 2;
        let entry = Entry { start, key_end, end: key_end, plain };
        if self.top
            && self.writer.skip.iter().any(|s| plain && &self.writer.out[start + 1..key_end - 1] == s.as_bytes())
        {
            self.writer.out.truncate(mark);
            self.writer.rewrites += 1;
            return Ok(false);
        }
        if let Some(last) = self.entries.last()
            && compare_keys(self.writer.out.as_slice(), last, &entry) != Ordering::Less
        {
            self.in_order = false;
        }
        self.writer.push(b":");
        self.entries.push(entry);
        Ok(true)
    }

    /// Records where the value of the last key ended.
    fn value_written(&mut self) {
        let end = self.writer.out.len();
        if let Some(last) = self.entries.last_mut() {
            last.end = end;
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        if self.key(|w| w.string(key).map(|()| key.len()))? {
            value.serialize(&mut *self.writer)?;
            self.value_written();
        }
        Ok(())
    }

    /// Closes the object, putting its entries in key order when they came in another (a key given
    /// twice keeps its last value, as `serde_json::to_value` does).
    fn close(self) -> Result<(), Error> {
        let ObjectWriter { writer, open, mut entries, in_order, variant, .. } = self;
        writer.depth -= 1;
        writer.objects_open -= 1;
        if !in_order {
            writer.rewrites += 1;
            let mut text = std::mem::take(&mut writer.scratch);
            text.clear();
            text.extend_from_slice(&writer.out[open..]);
            writer.out.truncate(open);
            entries.iter_mut().for_each(|e| *e = e.shifted(open));
            entries.sort_by(|a, b| compare_keys(&text, a, b));
            let mut first = true;
            for (i, entry) in entries.iter().enumerate() {
                let overridden =
                    entries.get(i + 1).is_some_and(|next| compare_keys(&text, entry, next) == Ordering::Equal);
                if overridden {
                    continue;
                }
                if !first {
                    writer.push(b",");
                }
                first = false;
                writer.push(&text[entry.start..entry.end]);
            }
            writer.scratch = text;
        }
        writer.push(if variant { b"}}" } else { b"}" });
        Ok(())
    }
}

/// Captures a map key: strings are written as they are; any other key is turned into the string
/// `serde_json::to_value` would make of it.
struct KeyWriter<'w, 'a>(&'w mut CanonicalWriter<'a>);

impl KeyWriter<'_, '_> {
    /// The key as `serde_json::to_value` makes it (integers, booleans, floats, chars, variants).
    fn via_value<K: Serialize + ?Sized>(self, key: &K) -> Result<usize, Error> {
        struct One<'k, K: ?Sized>(&'k K);
        impl<K: Serialize + ?Sized> Serialize for One<'_, K> {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                ser::SerializeMap::serialize_entry(&mut map, self.0, &())?;
                ser::SerializeMap::end(map)
            }
        }
        let serde_json::Value::Object(map) = serde_json::to_value(One(key))? else {
            return Err(ser::Error::custom("key must be a string"));
        };
        let key = map.keys().next().cloned().unwrap_or_default();
        self.0.string(&key)?;
        Ok(key.len())
    }
}

macro_rules! key_via_value {
    ($($method:ident($ty:ty)),*) => {
        $(fn $method(self, v: $ty) -> Result<usize, Error> { self.via_value(&v) })*
    };
}

impl ser::Serializer for KeyWriter<'_, '_> {
    type Ok = usize;
    type Error = Error;
    type SerializeSeq = Impossible<usize, Error>;
    type SerializeTuple = Impossible<usize, Error>;
    type SerializeTupleStruct = Impossible<usize, Error>;
    type SerializeTupleVariant = Impossible<usize, Error>;
    type SerializeMap = Impossible<usize, Error>;
    type SerializeStruct = Impossible<usize, Error>;
    type SerializeStructVariant = Impossible<usize, Error>;

    fn serialize_str(self, v: &str) -> Result<usize, Error> {
        self.0.string(v)?;
        Ok(v.len())
    }

    key_via_value!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char)
    );

    fn serialize_bytes(self, _: &[u8]) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_none(self) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_unit(self) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<usize, Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<usize, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<usize, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom("key must be a string"))
    }
}

/// An array being written.
struct ArrayWriter<'w, 'a> {
    writer: &'w mut CanonicalWriter<'a>,
    first: bool,
    /// Closes a variant's `{"variant":` too.
    variant: bool,
}

impl ArrayWriter<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.writer.push(b",");
        }
        self.first = false;
        value.serialize(&mut *self.writer)?;
        self.writer.flush_if_settled()
    }

    fn close(self) -> Result<(), Error> {
        self.writer.depth -= 1;
        self.writer.push(if self.variant { b"]}" } else { b"]" });
        Ok(())
    }
}

impl ser::SerializeSeq for ArrayWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTuple for ArrayWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for ArrayWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for ArrayWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeMap for ObjectWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.skipping = !self.key(|w| key.serialize(KeyWriter(w)))?;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.skipping {
            value.serialize(&mut *self.writer)?;
            self.value_written();
        }
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStruct for ObjectWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStructVariant for ObjectWriter<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<'w, 'a> ser::Serializer for &'w mut CanonicalWriter<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ArrayWriter<'w, 'a>;
    type SerializeTuple = ArrayWriter<'w, 'a>;
    type SerializeTupleStruct = ArrayWriter<'w, 'a>;
    type SerializeTupleVariant = ArrayWriter<'w, 'a>;
    type SerializeMap = ObjectWriter<'w, 'a>;
    type SerializeStruct = ObjectWriter<'w, 'a>;
    type SerializeStructVariant = ObjectWriter<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        // As `serde_json::to_value`: only what fits a u64 or an i64 is a number.
        match (u64::try_from(v), i64::try_from(v)) {
            (Ok(u), _) => self.scalar(u),
            (_, Ok(i)) => self.scalar(i),
            _ => Err(ser::Error::custom("number out of range")),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => self.scalar(u),
            Err(_) => Err(ser::Error::custom("number out of range")),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // As `serde_json::to_value`: an f32 becomes the f64 of the same value.
        self.scalar(serde_json::Value::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.scalar(serde_json::Value::from(v))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut array = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for byte in v {
            ser::SerializeSeq::serialize_element(&mut array, byte)?;
        }
        ser::SerializeSeq::end(array)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.push(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.push(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.push(b"null");
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<(), Error> {
        match name {
            REMEMBER => {
                let start = self.out.len();
                value.serialize(&mut *self)?;
                self.remembered = Some((start, self.out.len(), self.rewrites));
                Ok(())
            }
            REPEAT => match self.remembered {
                Some((start, end, rewrites)) if rewrites == self.rewrites && end <= self.out.len() => {
                    self.out.extend_from_within(start..end);
                    Ok(())
                }
                _ => value.serialize(self),
            },
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant)?;
        self.depth += 1;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        self.push(b"}");
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Ok(self.array(false))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        self.open_variant(variant)?;
        Ok(self.array(true))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Ok(self.object(false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Ok(self.object(false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        self.open_variant(variant)?;
        Ok(self.object(true))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{Map, Value, json};

    use super::write_canonical_of;
    use crate::canonical::canonical_json;

    pub(super) fn written<T: Serialize + ?Sized>(value: &T, skip: &[&str]) -> String {
        let mut out = Vec::new();
        write_canonical_of(value, skip, &mut out).expect("written");
        String::from_utf8(out).expect("UTF-8")
    }

    /// The reference: the value copied into a `serde_json::Value`, written canonically.
    fn through_a_value_copy<T: Serialize + ?Sized>(value: &T) -> String {
        canonical_json(&serde_json::to_value(value).expect("a value"))
    }

    fn key() -> impl Strategy<Value = String> {
        // Keys that sort differently once escaped (`"`, `\`, control characters) and non-ASCII ones.
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "B", "\"", "\\", "\n", "\u{1}", "é", "z", "@odata.type"]),
            0..4,
        )
        .prop_map(|parts| parts.concat())
    }

    pub(super) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            key().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<String, Value>>())),
            ]
        })
    }

    /// An object whose second field repeats its first (the newtypes), with `between` written in
    /// between: the writer copies the text only while it still holds it whole.
    #[derive(Serialize)]
    struct Repeating<'a> {
        first: crate::canonical::Remembered<'a, Value>,
        between: &'a Value,
        second: crate::canonical::SameTextAs<'a, Value>,
    }

    proptest! {
        #[test]
        fn rule_2_a_repeated_value_is_written_as_the_value_itself(value in json_value(), between in json_value()) {
            let repeating = Repeating {
                first: crate::canonical::Remembered(&value),
                between: &between,
                second: crate::canonical::SameTextAs(&value),
            };
            let expected = json!({"first": value, "between": between, "second": value});
            prop_assert_eq!(written(&repeating, &[]), canonical_json(&expected));
            prop_assert_eq!(serde_json::to_value(&repeating).unwrap(), expected.clone());
            prop_assert_eq!(
                crate::canonical::canonical_digest_of(&repeating, &[]).unwrap(),
                crate::canonical::canonical_digest(&expected)
            );
        }
    }

    #[test]
    fn rule_2_a_repeat_copies_the_remembered_text_and_writes_its_own_value_once_that_text_moved() {
        // The claim is false on purpose: what is written shows where the copy was made.
        let (a, b) = (json!({"k": 1}), json!({"k": 2}));
        let held = Repeating {
            first: crate::canonical::Remembered(&a),
            between: &json!("in order"),
            second: crate::canonical::SameTextAs(&b),
        };
        assert_eq!(written(&held, &[]), r#"{"between":"in order","first":{"k":1},"second":{"k":1}}"#);
        let moved = Repeating {
            first: crate::canonical::Remembered(&a),
            between: &json!({"z": 1, "a": 2}),
            second: crate::canonical::SameTextAs(&b),
        };
        assert_eq!(written(&moved, &[]), r#"{"between":{"a":2,"z":1},"first":{"k":1},"second":{"k":2}}"#);
        assert_eq!(serde_json::to_value(&held).unwrap()["second"], b, "other serializers write the value");
    }

    proptest! {
        #[test]
        fn any_json_value_is_written_as_canonical_json_writes_it(value in json_value()) {
            prop_assert_eq!(written(&value, &[]), canonical_json(&value));
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Shape {
        Unit,
        Newtype(Vec<u8>),
        Tuple(u8, String),
        Struct { z: u8, a: Option<f32> },
    }

    #[derive(Serialize)]
    struct Inner {
        zeta: i128,
        alpha: char,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<u8>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Report {
        tenant_id: String,
        format: u32,
        shapes: Vec<Shape>,
        by_number: BTreeMap<u32, Inner>,
        by_flag: HashMap<bool, ()>,
        ratio: f32,
        nothing: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
        #[serde(with = "serde_bytes_as_seq")]
        raw: Vec<u8>,
    }

    mod serde_bytes_as_seq {
        pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(bytes)
        }
    }

    pub(super) fn report() -> Report {
        let mut extra = Map::new();
        extra.insert("format".into(), json!("given twice: the last one counts"));
        extra.insert("b\"q".into(), json!({"y": [1, {"d": 2, "c": 3.5}], "x": null}));
        Report {
            tenant_id: "t".into(),
            format: 2,
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(vec![1, 2]),
                Shape::Tuple(7, "é\n".into()),
                Shape::Struct { z: 1, a: Some(0.1) },
                Shape::Struct { z: 2, a: None },
            ],
            by_number: BTreeMap::from([
                (10, Inner { zeta: -5, alpha: '"', gone: None }),
                (9, Inner { zeta: i128::from(u64::MAX), alpha: 'x', gone: Some(1) }),
            ]),
            by_flag: HashMap::from([(true, ()), (false, ())]),
            ratio: f32::NAN,
            nothing: None,
            extra,
            raw: vec![0, 255],
        }
    }

    #[test]
    fn a_typed_value_is_written_as_its_value_copy_would_be() {
        let report = report();
        assert_eq!(written(&report, &[]), through_a_value_copy(&report));
    }

    #[test]
    fn skipped_keys_are_left_out_of_the_top_level_object_only() {
        let value = json!({"requests": 1, "a": {"requests": 2}, "list": [{"requests": 3}]});
        assert_eq!(written(&value, &["requests"]), r#"{"a":{"requests":2},"list":[{"requests":3}]}"#);
        let list = json!([{"requests": 1}]);
        assert_eq!(written(&list, &["requests"]), r#"[{"requests":1}]"#);
    }
}
