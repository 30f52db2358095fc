//! The subset of Kubernetes JSONPath used by printer columns and selectable fields:
//! `.a.b`, `.a[0]`, `.a[*].b`, `.a['x.y']` and filters like `.a[?(@.type=="Ready")].status`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter { path: Vec<String>, op: FilterOp, literal: Value },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FilterOp {
    Eq,
    Ne,
}

fn parse(expr: &str) -> Result<Vec<Step>, String> {
    let mut expr = expr.trim();
    if let Some(inner) = expr.strip_prefix('{').and_then(|e| e.strip_suffix('}')) {
        expr = inner.trim();
    }
    let expr = expr.strip_prefix('$').unwrap_or(expr);
    let chars: Vec<char> = expr.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name == "*" {
                    steps.push(Step::Wildcard);
                } else if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let close = find_close(&chars, i).ok_or_else(|| format!("unclosed '[' in {expr}"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = close + 1;
            }
            c => return Err(format!("unexpected '{c}' in JSONPath {expr}")),
        }
    }
    Ok(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (offset, &c) in chars[open..].iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + offset);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name.to_string()));
    }
    if let Ok(index) = inner.parse::<i64>() {
        return Ok(Step::Index(index));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported JSONPath subscript [{inner}]"))?;
    let (lhs, op, rhs) = if let Some((l, r)) = filter.split_once("==") {
        (l, FilterOp::Eq, r)
    } else if let Some((l, r)) = filter.split_once("!=") {
        (l, FilterOp::Ne, r)
    } else {
        return Err(format!("unsupported JSONPath filter {filter}"));
    };
    let path = lhs
        .trim()
        .strip_prefix('@')
        .ok_or_else(|| format!("filter must start with @: {filter}"))?
        .split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let rhs = rhs.trim();
    let literal = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs).map_err(|_| format!("bad filter literal {rhs}"))?,
    };
    Ok(Step::Filter { path, op, literal })
}

/// Evaluates a JSONPath against an object; a missing field yields no values (not an error).
pub fn evaluate(object: &Value, expr: &str) -> Result<Vec<Value>, String> {
    let steps = parse(expr)?;
    let mut current = vec![object.clone()];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => {
                    if let Some(v) = value.get(name) {
                        next.push(v.clone());
                    }
                }
                Step::Index(index) => {
                    if let Value::Array(items) = &value {
                        let len = items.len() as i64;
                        let at = if *index < 0 { len + index } else { *index };
                        if (0..len).contains(&at) {
                            next.push(items[at as usize].clone());
                        }
                    }
                }
                Step::Wildcard => match value {
                    Value::Array(items) => next.extend(items),
                    Value::Object(map) => next.extend(map.into_iter().map(|(_, v)| v)),
                    _ => {}
                },
                Step::Filter { path, op, literal } => {
                    if let Value::Array(items) = value {
                        for item in items {
                            let mut probe = Some(&item);
                            for segment in path {
                                probe = probe.and_then(|p| p.get(segment));
                            }
                            let equal = probe == Some(literal);
                            if (*op == FilterOp::Eq) == equal {
                                next.push(item.clone());
                            }
                        }
                    }
                }
            }
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_fields_indices_wildcards_and_filters() {
        let obj = json!({"status": {"phase": "Ready", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}]},
            "metadata": {"labels": {"a.b/c": "x"}}});
        assert_eq!(evaluate(&obj, ".status.phase").unwrap(), vec![json!("Ready")]);
        assert_eq!(evaluate(&obj, "{.status.conditions[1].type}").unwrap(), vec![json!("Stalled")]);
        assert_eq!(evaluate(&obj, ".status.conditions[*].type").unwrap(), vec![json!("Ready"), json!("Stalled")]);
        assert_eq!(evaluate(&obj, ".status.conditions[?(@.type==\"Ready\")].status").unwrap(), vec![json!("True")]);
        assert_eq!(evaluate(&obj, ".metadata.labels['a.b/c']").unwrap(), vec![json!("x")]);
        assert!(evaluate(&obj, ".spec.missing").unwrap().is_empty());
        assert!(evaluate(&obj, ".status[").is_err());
    }
}
