//! Decoding of Kubernetes protobuf request bodies for the built-in kinds kubectl's typed
//! commands send that way (`kubectl create namespace|configmap|secret`, `auth can-i`), into JSON.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The four bytes that open every Kubernetes protobuf body (`k8s\0`).
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
    TextList,
    TextMap,
    BytesMap,
    Message(&'static [Field]),
    MessageList(&'static [Field]),
}

type Field = (u64, &'static str, Kind);

const OWNER_REFERENCE: &[Field] = &[
    (1, "kind", Kind::Text),
    (3, "name", Kind::Text),
    (4, "uid", Kind::Text),
    (5, "apiVersion", Kind::Text),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Text),
    (2, "generateName", Kind::Text),
    (3, "namespace", Kind::Text),
    (5, "uid", Kind::Text),
    (6, "resourceVersion", Kind::Text),
    (7, "generation", Kind::Int),
    (11, "labels", Kind::TextMap),
    (12, "annotations", Kind::TextMap),
    (13, "ownerReferences", Kind::MessageList(OWNER_REFERENCE)),
    (14, "finalizers", Kind::TextList),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "data", Kind::TextMap),
    (3, "binaryData", Kind::BytesMap),
    (4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "data", Kind::BytesMap),
    (3, "type", Kind::Text),
    (4, "stringData", Kind::TextMap),
    (5, "immutable", Kind::Bool),
];

const NAMESPACE: &[Field] =
    &[(1, "metadata", Kind::Message(OBJECT_META)), (2, "spec", Kind::Message(&[(1, "finalizers", Kind::TextList)]))];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Kind::Text),
    (2, "verb", Kind::Text),
    (3, "group", Kind::Text),
    (4, "version", Kind::Text),
    (5, "resource", Kind::Text),
    (6, "subresource", Kind::Text),
    (7, "name", Kind::Text),
];

const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", Kind::Text), (2, "verb", Kind::Text)];

/// `kubectl auth can-i` sends its SelfSubjectAccessReview as protobuf.
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (
        2,
        "spec",
        Kind::Message(&[
            (1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", Kind::Message(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
];

const SUBJECT_ACCESS_REVIEW: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (
        2,
        "spec",
        Kind::Message(&[
            (1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", Kind::Message(NON_RESOURCE_ATTRIBUTES)),
            (3, "user", Kind::Text),
            (4, "groups", Kind::TextList),
            (6, "uid", Kind::Text),
        ]),
    ),
];

/// `kubectl auth can-i --list` sends its SelfSubjectRulesReview as protobuf.
const SELF_SUBJECT_RULES_REVIEW: &[Field] =
    &[(1, "metadata", Kind::Message(OBJECT_META)), (2, "spec", Kind::Message(&[(1, "namespace", Kind::Text)]))];

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body could not be decoded")
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at).ok_or_else(malformed)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed())
    }

    fn chunk(&mut self) -> Result<&'a [u8], ApiError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
        let end = self.at.checked_add(len).filter(|end| *end <= self.bytes.len()).ok_or_else(malformed)?;
        let chunk = &self.bytes[self.at..end];
        self.at = end;
        Ok(chunk)
    }

    /// The next field: its number and, for length-delimited fields, its bytes (else its varint).
    fn field(&mut self) -> Result<(u64, Result<&'a [u8], u64>), ApiError> {
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let payload = match wire {
            0 => Err(self.varint()?),
            2 => Ok(self.chunk()?),
            1 => {
                self.at = self.at.checked_add(8).filter(|a| *a <= self.bytes.len()).ok_or_else(malformed)?;
                Err(0)
            }
            5 => {
                self.at = self.at.checked_add(4).filter(|a| *a <= self.bytes.len()).ok_or_else(malformed)?;
                Err(0)
            }
            _ => return Err(malformed()),
        };
        Ok((number, payload))
    }
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
}

fn map_entry(bytes: &[u8], value_is_bytes: bool) -> Result<(String, String), ApiError> {
    let mut reader = Reader::new(bytes);
    let (mut key, mut value) = (String::new(), String::new());
    while !reader.done() {
        match reader.field()? {
            (1, Ok(k)) => key = text(k)?,
            (2, Ok(v)) if value_is_bytes => value = base64::engine::general_purpose::STANDARD.encode(v),
            (2, Ok(v)) => value = text(v)?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode_message(bytes: &[u8], fields: &[Field]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut reader = Reader::new(bytes);
    while !reader.done() {
        let (number, payload) = reader.field()?;
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == number) else { continue };
        let name = name.to_string();
        match (*kind, payload) {
            // Go's protobuf writes empty strings for unset fields; JSON would omit them.
            (Kind::Text, Ok([])) => {}
            (Kind::Text, Ok(b)) => {
                out.insert(name, json!(text(b)?));
            }
            (Kind::Int, Err(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Bool, Err(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Kind::TextList, Ok(b)) => push(&mut out, name, json!(text(b)?)),
            (Kind::TextMap | Kind::BytesMap, Ok(b)) => {
                let (key, value) = map_entry(b, matches!(kind, Kind::BytesMap))?;
                if let Value::Object(map) = out.entry(name).or_insert_with(|| json!({})) {
                    map.insert(key, json!(value));
                }
            }
            (Kind::Message(inner), Ok(b)) => {
                out.insert(name, decode_message(b, inner)?);
            }
            (Kind::MessageList(inner), Ok(b)) => push(&mut out, name, decode_message(b, inner)?),
            _ => return Err(malformed()),
        }
    }
    Ok(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: String, item: Value) {
    if let Value::Array(items) = out.entry(name).or_insert_with(|| json!([])) {
        items.push(item);
    }
}

/// Decodes a `k8s\0`-prefixed protobuf body of a Namespace, ConfigMap or Secret into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut reader = Reader::new(envelope);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !reader.done() {
        match reader.field()? {
            (1, Ok(type_meta)) => {
                let meta = decode_message(type_meta, &[(1, "apiVersion", Kind::Text), (2, "kind", Kind::Text)])?;
                api_version = meta["apiVersion"].as_str().unwrap_or_default().to_string();
                kind = meta["kind"].as_str().unwrap_or_default().to_string();
            }
            (2, Ok(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SubjectAccessReview") => SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => SELF_SUBJECT_RULES_REVIEW,
        _ => {
            return Err(ApiError::unsupported_media_type(format!(
                "protobuf bodies are decoded for v1 Namespace, ConfigMap, Secret and access reviews only, not {api_version} {kind}; send JSON"
            )));
        }
    };
    let mut object = decode_message(raw, fields)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let meta = [field(1, b"settings"), field(11, &[field(1, b"app"), field(2, b"x")].concat())].concat();
        let data = field(2, &[field(1, b"a"), field(2, b"1")].concat());
        let raw = [field(1, &meta), data].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let object = decode(&body).unwrap();
        assert_eq!(
            object,
            json!({"metadata": {"name": "settings", "labels": {"app": "x"}}, "data": {"a": "1"}, "apiVersion": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(decode(b"k8s\0\x0a\xff").unwrap_err().code, 400);
    }
}
