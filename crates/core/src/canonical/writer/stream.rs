//! Canonical JSON of an object sent to a sink while it is serialized: its top-level keys are learnt
//! first (without their values), so each entry goes out as soon as every key before it went out.
//!
//! A large report's text is then never whole in memory (nor copied when its top-level keys are put
//! in order): the entry whose turn it is streams, settled text flushed whenever no object inside it is
//! open; an entry that comes early waits in its own buffer. Anything but an object with distinct
//! keys is written whole first, as [`write_canonical_of`] writes it.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

use serde::ser::{self, Impossible, Serialize};
use serde_json::Error;

use super::{CanonicalWriter, KeyWriter, write_canonical_of};

/// Settled text gathered before it goes to the sink.
const FLUSH_AT: usize = 64 * 1024;

/// Writes `value`'s canonical JSON (without the top-level keys in `skip`) to `sink`: the same bytes
/// [`write_canonical_of`] puts in a buffer.
pub fn stream_canonical_of<T: Serialize + ?Sized>(value: &T, skip: &[&str], sink: &mut dyn Write) -> Result<(), Error> {
    stream_flushing_at(value, skip, sink, FLUSH_AT)
}

fn stream_flushing_at<T: Serialize + ?Sized>(
    value: &T,
    skip: &[&str],
    sink: &mut dyn Write,
    flush_at: usize,
) -> Result<(), Error> {
    let Some(keys) = top_level_keys(value, skip) else {
        let mut text = Vec::new();
        write_canonical_of(value, skip, &mut text)?;
        return sink.write_all(&text).map_err(Error::io);
    };
    sink.write_all(b"{").map_err(Error::io)?;
    let mut top = TopObject {
        sink,
        flush_at,
        skip,
        expected: keys.into(),
        pending: BTreeMap::new(),
        first: true,
        key: None,
        buffer: Vec::new(),
    };
    value.serialize(&mut top)
}

/// The top-level keys `value` serializes (but those in `skip`) in canonical order, when it is an
/// object whose keys are distinct; values are not serialized.
fn top_level_keys<T: Serialize + ?Sized>(value: &T, skip: &[&str]) -> Option<Vec<String>> {
    let mut list = KeyList(Vec::new());
    value.serialize(&mut list).ok()?;
    let mut keys: Vec<String> = list.0.into_iter().filter(|k| !skipped(k, skip)).collect();
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1]).then_some(keys)
}

/// Whether a top-level key is left out: named in `skip`, and (as [`write_canonical_of`] compares
/// the written text) one that JSON writes without escapes.
fn skipped(key: &str, skip: &[&str]) -> bool {
    skip.contains(&key) && !key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A map key as the string `serde_json::to_value` makes of it.
fn key_string<K: Serialize + ?Sized>(key: &K) -> Result<String, Error> {
    let mut text = Vec::new();
    key.serialize(KeyWriter(&mut CanonicalWriter::new(&mut text, 1, &[], None)))?;
    serde_json::from_slice(&text)
}

fn not_an_object() -> Error {
    ser::Error::custom("not an object")
}

/// Collects the keys of a top-level object.
struct KeyList(Vec<String>);

/// The top-level object being streamed: the keys still to write in order, and entries that came early.
struct TopObject<'s> {
    sink: &'s mut dyn Write,
    flush_at: usize,
    skip: &'s [&'s str],
    expected: VecDeque<String>,
    pending: BTreeMap<String, Vec<u8>>,
    first: bool,
    /// The map key whose value comes next.
    key: Option<String>,
    /// Reused for each streamed entry's unsettled text.
    buffer: Vec<u8>,
}

impl TopObject<'_> {
    fn entry<V: Serialize + ?Sized>(&mut self, key: String, value: &V) -> Result<(), Error> {
        if skipped(&key, self.skip) {
            return Ok(());
        }
        if self.expected.front() == Some(&key) {
            self.expected.pop_front();
            self.write_key(&key)?;
            let mut text = std::mem::take(&mut self.buffer);
            text.clear();
            value.serialize(&mut CanonicalWriter::new(&mut text, 1, &[], Some((&mut *self.sink, self.flush_at))))?;
            self.sink.write_all(&text).map_err(Error::io)?;
            self.buffer = text;
            return self.write_pending();
        }
        if !self.expected.contains(&key) || self.pending.contains_key(&key) {
            return Err(ser::Error::custom("the object's keys changed while it was written"));
        }
        let mut text = Vec::new();
        value.serialize(&mut CanonicalWriter::new(&mut text, 1, &[], None))?;
        self.pending.insert(key, text);
        Ok(())
    }

    /// Writes the entries that came early and whose turn it now is.
    fn write_pending(&mut self) -> Result<(), Error> {
        while let Some(text) = self.expected.front().and_then(|next| self.pending.remove(next)) {
            let key = self.expected.pop_front().unwrap_or_default();
            self.write_key(&key)?;
            self.sink.write_all(&text).map_err(Error::io)?;
        }
        Ok(())
    }

    fn write_key(&mut self, key: &str) -> Result<(), Error> {
        if !self.first {
            self.sink.write_all(b",").map_err(Error::io)?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.sink, key)?;
        self.sink.write_all(b":").map_err(Error::io)
    }

    fn close(&mut self) -> Result<(), Error> {
        self.write_pending()?;
        if !self.expected.is_empty() {
            return Err(ser::Error::custom("the object's keys changed while it was written"));
        }
        self.sink.write_all(b"}").map_err(Error::io)
    }
}

impl ser::SerializeStruct for &mut KeyList {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, _: &T) -> Result<(), Error> {
        self.0.push(key.to_string());
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeMap for &mut KeyList {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.0.push(key_string(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Error> {
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut TopObject<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entry(key.to_string(), value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeMap for &mut TopObject<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key_string(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| ser::Error::custom("a value without a key"))?;
        self.entry(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A serializer that takes only a struct or a map (`$object` serializes it); anything else is refused.
macro_rules! objects_only {
    ($object:ty) => {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Impossible<(), Error>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = $object;
        type SerializeStruct = $object;
        type SerializeStructVariant = Impossible<(), Error>;

        fn serialize_map(self, _: Option<usize>) -> Result<$object, Error> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<$object, Error> {
            Ok(self)
        }
        fn serialize_bool(self, _: bool) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_i8(self, _: i8) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_i16(self, _: i16) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_i32(self, _: i32) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_i64(self, _: i64) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_u8(self, _: u8) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_u16(self, _: u16) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_u32(self, _: u32) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_u64(self, _: u64) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_f32(self, _: f32) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_f64(self, _: f64) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_char(self, _: char) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_str(self, _: &str) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_none(self) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_unit(self) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(not_an_object())
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(not_an_object())
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(not_an_object())
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
            Err(not_an_object())
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(not_an_object())
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(not_an_object())
        }
    };
}

impl<'l> ser::Serializer for &'l mut KeyList {
    objects_only!(&'l mut KeyList);
}

impl<'t, 's> ser::Serializer for &'t mut TopObject<'s> {
    objects_only!(&'t mut TopObject<'s>);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    use super::super::tests::{json_value, report, written};
    use super::stream_flushing_at;

    fn streamed<T: Serialize + ?Sized>(value: &T, skip: &[&str], flush_at: usize) -> String {
        let mut sink = Vec::new();
        stream_flushing_at(value, skip, &mut sink, flush_at).expect("streamed");
        String::from_utf8(sink).expect("UTF-8")
    }

    proptest! {
        #[test]
        fn any_json_value_is_streamed_as_it_is_written_whole(value in json_value(), flush_at in 0usize..64) {
            let expected = written(&value, &[]);
            prop_assert_eq!(streamed(&value, &[], flush_at), expected);
            prop_assert_eq!(streamed(&value, &["a", "\""], flush_at), written(&value, &["a", "\""]));
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Large {
        tenant_id: String,
        items: Vec<Value>,
        counts: Value,
        requests: u32,
        mappings: Value,
    }

    #[test]
    fn a_struct_whose_keys_come_unsorted_is_streamed_as_it_is_written_whole() {
        let items = (0..50)
            .map(|i| json!({"z": i, "a": {"y": [i, {"d": "é\n", "c": null}], "x": "s"}, "key\"": [1.5, -2]}))
            .collect();
        let large = Large {
            tenant_id: "t".into(),
            items,
            counts: json!({"update": 1, "create": 2}),
            requests: 7,
            mappings: json!({"groups": [{"b": 1, "a": 2}]}),
        };
        for flush_at in [0, 10, 1 << 20] {
            assert_eq!(streamed(&large, &[], flush_at), written(&large, &[]), "flush at {flush_at}");
            assert_eq!(streamed(&large, &["requests"], flush_at), written(&large, &["requests"]));
        }
    }

    #[test]
    fn every_shape_and_a_key_given_twice_are_written_as_whole_text_would_be() {
        let report = report();
        for flush_at in [0, 1 << 20] {
            assert_eq!(streamed(&report, &[], flush_at), written(&report, &[]));
        }
        for value in [json!([{"b": 1, "a": 2}]), json!("s"), json!(null), json!({})] {
            assert_eq!(streamed(&value, &["a"], 0), written(&value, &["a"]));
        }
    }
}
