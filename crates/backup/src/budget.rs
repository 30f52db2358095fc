//! The resource budget of one backup load — values produced (YAML alias expansions included),
//! string bytes, nesting depth, item count and a deadline — enforced while JSON and YAML parse.

use std::time::{Duration, Instant};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{BackupError, json_error};
use crate::limits::Limits;

/// Extra string bytes a YAML file may produce beyond its own size (short aliases re-used a little).
const ALIAS_STRING_ALLOWANCE: u64 = 64 * 1024;
/// The deadline is looked at once per this many values.
const DEADLINE_STRIDE: u64 = 4096;

/// What one load may still spend. One per load; every file of the load draws from it.
#[derive(Debug)]
pub struct LoadBudget {
    max_depth: usize,
    max_values_per_file: u64,
    values_left: u64,
    items_left: usize,
    max_items: usize,
    max_values_total: u64,
    deadline: Instant,
    timeout: Duration,
}

/// Which part of the budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exhausted {
    Depth,
    FileValues,
    TotalValues,
    StringBytes,
    Deadline,
}

/// The running count of one file's parse.
struct Meter {
    max_depth: usize,
    values: u64,
    values_cap: u64,
    file_cap_is_total: bool,
    string_bytes: u64,
    string_cap: u64,
    deadline: Instant,
    exhausted: Option<Exhausted>,
}

impl Meter {
    fn value<E: de::Error>(&mut self) -> Result<(), E> {
        self.values += 1;
        if self.values > self.values_cap {
            let which = if self.file_cap_is_total { Exhausted::TotalValues } else { Exhausted::FileValues };
            return Err(self.stop(which));
        }
        if self.values.is_multiple_of(DEADLINE_STRIDE) && Instant::now() > self.deadline {
            return Err(self.stop(Exhausted::Deadline));
        }
        Ok(())
    }

    fn string<E: de::Error>(&mut self, len: usize) -> Result<(), E> {
        self.string_bytes = self.string_bytes.saturating_add(len as u64);
        if self.string_bytes > self.string_cap {
            return Err(self.stop(Exhausted::StringBytes));
        }
        Ok(())
    }

    fn stop<E: de::Error>(&mut self, which: Exhausted) -> E {
        self.exhausted = Some(which);
        E::custom("load budget exhausted")
    }
}

impl LoadBudget {
    /// A fresh budget for one load under `limits`; the deadline starts now.
    pub fn new(limits: &Limits) -> Self {
        let timeout = Duration::from_secs(limits.load_timeout_seconds);
        LoadBudget {
            max_depth: limits.max_depth,
            max_values_per_file: limits.max_values_per_file,
            values_left: limits.max_values_total,
            items_left: limits.max_items,
            max_items: limits.max_items,
            max_values_total: limits.max_values_total,
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    /// Fails once the load's deadline has passed.
    pub fn check_deadline(&self) -> Result<(), BackupError> {
        if Instant::now() > self.deadline {
            return Err(BackupError::LoadTimeout { seconds: self.timeout.as_secs() });
        }
        Ok(())
    }

    /// Counts one more item of the backup.
    pub fn item(&mut self) -> Result<(), BackupError> {
        if self.items_left == 0 {
            return Err(BackupError::TooManyItems { limit: self.max_items });
        }
        self.items_left -= 1;
        Ok(())
    }

    /// Parses one JSON file within the budget. Syntax errors keep their line and column;
    /// `shape` turns a wrong-shape message into the caller's error.
    pub fn parse_json(
        &mut self,
        file: &str,
        bytes: &[u8],
        shape: impl FnOnce(String) -> BackupError,
    ) -> Result<Value, BackupError> {
        self.check_deadline()?;
        let mut meter = self.meter(bytes.len());
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = ValueSeed { meter: &mut meter, depth: 0 }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        self.settle(file, meter, parsed, |e| json_error(file, e, shape))
    }

    /// Parses one YAML file within the budget. Nesting is bounded by a linear pre-scan before the
    /// YAML parser runs; alias expansions count as the values they produce.
    pub fn parse_yaml(&mut self, file: &str, bytes: &[u8]) -> Result<Value, BackupError> {
        self.check_deadline()?;
        if let Some(depth) = yaml_nesting_over(bytes, self.max_depth) {
            return Err(BackupError::TooDeep { file: file.to_string(), depth, limit: self.max_depth });
        }
        let mut meter = self.meter(bytes.len());
        let de = serde_yaml::Deserializer::from_slice(bytes);
        let parsed = ValueSeed { meter: &mut meter, depth: 0 }.deserialize(de);
        self.settle(file, meter, parsed, |e| BackupError::InvalidYaml {
            file: file.to_string(),
            message: e.to_string(),
        })
    }

    fn meter(&self, file_len: usize) -> Meter {
        let file_cap_is_total = self.values_left < self.max_values_per_file;
        Meter {
            max_depth: self.max_depth,
            values: 0,
            values_cap: self.values_left.min(self.max_values_per_file),
            file_cap_is_total,
            string_bytes: 0,
            string_cap: (file_len as u64).saturating_add(ALIAS_STRING_ALLOWANCE),
            deadline: self.deadline,
            exhausted: None,
        }
    }

    fn settle<E>(
        &mut self,
        file: &str,
        meter: Meter,
        parsed: Result<Value, E>,
        other: impl FnOnce(E) -> BackupError,
    ) -> Result<Value, BackupError> {
        self.values_left = self.values_left.saturating_sub(meter.values);
        let file = file.to_string();
        match (parsed, meter.exhausted) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some(Exhausted::Depth)) => {
                Err(BackupError::TooDeep { file, depth: meter.max_depth + 1, limit: meter.max_depth })
            }
            (Err(_), Some(Exhausted::FileValues)) => {
                Err(BackupError::TooManyValues { file, limit: self.max_values_per_file, scope: "max_values_per_file" })
            }
            (Err(_), Some(Exhausted::TotalValues)) => {
                Err(BackupError::TooManyValues { file, limit: self.max_values_total, scope: "max_values_total" })
            }
            (Err(_), Some(Exhausted::StringBytes)) => Err(BackupError::StringExpansion { file }),
            (Err(_), Some(Exhausted::Deadline)) => Err(BackupError::LoadTimeout { seconds: self.timeout.as_secs() }),
            (Err(e), None) => Err(other(e)),
        }
    }
}

/// Builds a `serde_json::Value` while metering every value, string byte and nesting level.
struct ValueSeed<'m> {
    meter: &'m mut Meter,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn child(&mut self) -> ValueSeed<'_> {
        ValueSeed { meter: self.meter, depth: self.depth + 1 }
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.meter.value()?;
        if self.depth >= self.meter.max_depth {
            return Err(self.meter.stop(Exhausted::Depth));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.meter.value()?;
        self.meter.string(v.len())?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.meter.value()?;
        self.meter.string(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.meter.value()?;
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.meter.string(key.len())?;
            let value = map.next_value_seed(self.child())?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A linear pre-scan of YAML text: the first nesting depth past `limit` it sees (block levels by
/// indentation and compact `- ` entries, plus flow `[`/`{` levels), or `None`. It errs on the
/// side of counting, so the YAML parser only ever sees shallow documents.
pub fn yaml_nesting_over(text: &[u8], limit: usize) -> Option<usize> {
    let mut scan = YamlScan::default();
    for raw_line in text.split(|&b| b == b'\n') {
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let depth = scan.line(line);
        if depth > limit {
            return Some(depth);
        }
    }
    None
}

#[derive(Default)]
struct YamlScan {
    /// Indentation columns of the open block levels.
    indents: Vec<usize>,
    /// Open flow collections.
    flow: usize,
    /// Inside a quoted scalar that spans lines: its quote character.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`): lines indented more than this belong to it.
    block_scalar_parent: Option<usize>,
}

impl YamlScan {
    /// Scans one line and returns the deepest nesting open on it.
    fn line(&mut self, line: &[u8]) -> usize {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let rest = &line[indent..];
        let blank = rest.iter().all(u8::is_ascii_whitespace);
        if let Some(parent) = self.block_scalar_parent {
            if blank || indent > parent {
                return 0;
            }
            self.block_scalar_parent = None;
        }
        if self.quote.is_none() && self.flow == 0 {
            if blank || rest.starts_with(b"#") {
                return 0;
            }
            while self.indents.last().is_some_and(|&open| open >= indent) {
                self.indents.pop();
            }
            self.indents.push(indent);
        }
        let start = if self.quote.is_some() || self.flow > 0 { 0 } else { indent };
        self.tokens(line, start, indent)
    }

    fn tokens(&mut self, line: &[u8], start: usize, indent: usize) -> usize {
        let mut compact = 0;
        let mut deepest = self.indents.len() + self.flow;
        let mut at_value_start = self.quote.is_none();
        let mut i = start;
        while i < line.len() {
            let b = line[i];
            if let Some(q) = self.quote {
                if b == q {
                    if q == b'\'' && line.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                } else if q == b'"' && b == b'\\' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            let next_is_space = line.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
            let prev_is_space = i == 0 || line[i - 1].is_ascii_whitespace();
            match b {
                b' ' | b'\t' => {}
                b'#' if prev_is_space => break,
                b'"' | b'\'' if at_value_start || self.flow > 0 => {
                    self.quote = Some(b);
                    at_value_start = false;
                }
                b'[' | b'{' if at_value_start || self.flow > 0 => {
                    self.flow += 1;
                    at_value_start = true;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    at_value_start = false;
                }
                b',' if self.flow > 0 => at_value_start = true,
                b'-' | b'?' if at_value_start && next_is_space && self.flow == 0 => {
                    compact += 1;
                }
                b':' if next_is_space || self.flow > 0 => at_value_start = true,
                b'|' | b'>' if at_value_start && self.flow == 0 => {
                    self.block_scalar_parent = Some(indent);
                    break;
                }
                b'&' | b'!' | b'*' if at_value_start => {
                    while i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() && !b",[]{}".contains(&line[i + 1]) {
                        i += 1;
                    }
                }
                _ => {
                    at_value_start = false;
                    // A plain scalar runs to `: `, ` #` or (in flow) a flow indicator.
                    while i + 1 < line.len() {
                        let c = line[i + 1];
                        let ends_flow = self.flow > 0 && b",[]{}".contains(&c);
                        let ends_key = c == b':' && line.get(i + 2).is_none_or(|d| d.is_ascii_whitespace());
                        let comment = c == b'#' && line[i].is_ascii_whitespace();
                        if ends_flow || ends_key || comment {
                            break;
                        }
                        i += 1;
                    }
                }
            }
            deepest = deepest.max(self.indents.len() + compact + self.flow);
            i += 1;
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_yaml_is_shallow() {
        let text = b"displayName: x\nassignments:\n  - target:\n      groupName: \"a [b\"\n    intent: apply\nlist: [1, [2, {a: 3}]]\ndesc: |\n  [[[[[[[[[[[[[[\n  more\n";
        assert_eq!(yaml_nesting_over(text, 5), None);
        assert!(yaml_nesting_over(text, 2).is_some());
    }

    #[test]
    fn deep_flow_and_compact_block_nesting_are_counted() {
        let flow = "[".repeat(200);
        assert!(yaml_nesting_over(flow.as_bytes(), 64).is_some_and(|d| d > 64));
        let block = "- ".repeat(200);
        assert!(yaml_nesting_over(block.as_bytes(), 64).is_some());
        let indented: String = (0..100).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(yaml_nesting_over(indented.as_bytes(), 64).is_some());
    }

    #[test]
    fn values_are_metered_per_file_and_per_load() {
        let limits = Limits { max_values_per_file: 10, max_values_total: 15, ..Limits::default() };
        let mut budget = LoadBudget::new(&limits);
        let shape = |m| BackupError::InvalidManifest { message: m };
        assert!(budget.parse_json("a", b"[1,2,3,4,5,6,7,8]", shape).is_ok());
        let err = budget.parse_json("b", b"[1,2,3,4,5,6,7,8,9,10,11]", shape).unwrap_err();
        assert_eq!(err.class(), "TooManyValues");
        assert!(err.to_string().contains("max_values_total"), "{err}");
    }
}
