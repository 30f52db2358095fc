//! OData system query options as the simulator understands them: `$filter` (`eq`, `startswith`,
//! joined by `and` and `or`), `$select`, `$expand`, `$top` and the `$skiptoken` of its own next links.

use serde_json::{Map, Value};

use crate::model::{model, short_type};

/// Parsed query options of one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct QueryOptions {
    pub filter: Option<Filter>,
    pub select: Option<Vec<String>>,
    pub expand: Vec<String>,
    pub top: Option<usize>,
    pub skip: usize,
    /// Every pair as sent (decoded), to rebuild next links.
    pub pairs: Vec<(String, String)>,
}

/// A literal on the right of `eq`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Bool(bool),
    Num(f64),
    Null,
}

/// One clause of a `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Clause {
    Eq(String, Literal),
    StartsWith(String, String),
}

/// A disjunction (`or`) of conjunctions (`and`) of clauses; `and` binds tighter, as in OData.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Filter(pub Vec<Vec<Clause>>);

impl Filter {
    /// Whether an object satisfies every clause of at least one conjunction (string comparisons
    /// ignore case, as Graph's do).
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        self.0.iter().any(|conjunction| conjunction.iter().all(|clause| clause_matches(clause, object)))
    }
}

fn clause_matches(clause: &Clause, object: &Map<String, Value>) -> bool {
    match clause {
        Clause::Eq(prop, literal) => {
            let value = property_value(object, prop);
            match (literal, value) {
                (Literal::Str(s), Value::String(v)) => v.eq_ignore_ascii_case(s),
                (Literal::Bool(b), Value::Bool(v)) => b == v,
                (Literal::Num(n), Value::Number(v)) => v.as_f64() == Some(*n),
                (Literal::Null, Value::Null) => true,
                _ => false,
            }
        }
        Clause::StartsWith(prop, prefix) => object
            .get(prop)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_lowercase().starts_with(&prefix.to_lowercase())),
    }
}

/// The value of `prop` in `object`. A type-cast path (`microsoft.graph.managedApp/appAvailability`)
/// reads the property only on objects of that type or a derived one, and `null` on others, as
/// OData defines casts ("Use the $filter query parameter": casts in filter expressions).
fn property_value<'v>(object: &'v Map<String, Value>, prop: &str) -> &'v Value {
    let Some((cast, name)) = prop.split_once('/') else {
        return object.get(prop).unwrap_or(&Value::Null);
    };
    let own_type = object.get("@odata.type").and_then(Value::as_str).map(short_type).unwrap_or_default();
    if model().is_a(own_type, short_type(cast)) { object.get(name).unwrap_or(&Value::Null) } else { &Value::Null }
}

/// Graph beta accepts system query options without their `$` prefix ("Use query parameters to
/// customize responses": "in beta the `$` prefix is optional"): `top=5` is `$top=5`.
///
/// A stray leading `?` is ignored too: IntuneCD passes `params="?$expand=…"` to `requests`, which
/// sends `…??$expand=…`, and its backups of real tenants hold the expanded navigation (an IntuneCD
/// observation: Graph reads the option anyway).
fn system_option(key: &str) -> String {
    let key = key.trim_start_matches('?');
    const OPTIONS: &[&str] =
        &["filter", "select", "expand", "top", "skip", "skiptoken", "orderby", "count", "search", "format"];
    if OPTIONS.iter().any(|o| key.eq_ignore_ascii_case(o)) {
        format!("${}", key.to_ascii_lowercase())
    } else {
        key.to_string()
    }
}

/// Parses a raw query string (percent-encoded). Errors carry Graph-style messages.
pub(crate) fn parse_query(raw: &str) -> Result<QueryOptions, String> {
    let mut options = QueryOptions::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let (key, value) = (system_option(&key), value.into_owned());
        match key.as_str() {
            "$filter" => options.filter = Some(parse_filter(&value)?),
            "$select" => options.select = Some(split_list(&value)),
            "$expand" => {
                options.expand = split_list(&value)
                    .into_iter()
                    .map(|e| e.split('(').next().unwrap_or_default().trim().to_string())
                    .collect();
            }
            "$top" => {
                let top: usize = value.parse().map_err(|_| format!("Invalid $top value '{value}'."))?;
                options.top = Some(top);
            }
            "$skiptoken" => {
                options.skip = value.parse().map_err(|_| format!("Invalid $skiptoken value '{value}'."))?;
            }
            _ => {}
        }
        options.pairs.push((key, value));
    }
    Ok(options)
}

/// Splits a comma list at top level (commas inside parentheses stay).
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Parses `a eq 'x' and startswith(b,'y') or c eq 1`.
pub(crate) fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut disjunction = Vec::new();
    for conjunction in split_keyword(text, "or") {
        disjunction.push(parse_conjunction(text, &conjunction)?);
    }
    Ok(Filter(disjunction))
}

fn parse_conjunction(text: &str, conjunction: &str) -> Result<Vec<Clause>, String> {
    let invalid = || format!("Invalid filter clause: '{text}'.");
    let mut clauses = Vec::new();
    for part in split_keyword(conjunction, "and") {
        let part = part.trim();
        if let Some(args) = part.strip_prefix("startswith(").and_then(|p| p.strip_suffix(')')) {
            let (prop, literal) = args.split_once(',').ok_or_else(invalid)?;
            match parse_literal(literal.trim()).ok_or_else(invalid)? {
                Literal::Str(prefix) => clauses.push(Clause::StartsWith(prop.trim().to_string(), prefix)),
                _ => return Err(invalid()),
            }
            continue;
        }
        let mut words = part.splitn(3, ' ');
        // A property path may be parenthesized: `(microsoft.graph.managedApp/appAvailability) eq null`.
        let prop = words.next().map(|p| p.strip_prefix('(').and_then(|p| p.strip_suffix(')')).unwrap_or(p));
        let (op, literal) = (words.next(), words.next());
        match (prop, op, literal) {
            (Some(prop), Some(op), Some(literal)) if op.eq_ignore_ascii_case("eq") && is_identifier(prop) => {
                clauses.push(Clause::Eq(prop.to_string(), parse_literal(literal.trim()).ok_or_else(invalid)?));
            }
            _ => return Err(invalid()),
        }
    }
    if clauses.is_empty() {
        return Err(invalid());
    }
    Ok(clauses)
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "_@./".contains(c))
}

/// Splits at ` {keyword} ` outside quoted strings.
fn split_keyword(text: &str, keyword: &str) -> Vec<String> {
    let separator = format!(" {keyword} ");
    let width = separator.chars().count();
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_quote = !in_quote;
        }
        if !in_quote && c == ' ' {
            let rest: String = chars[i..chars.len().min(i + width)].iter().collect();
            if rest.eq_ignore_ascii_case(&separator) {
                parts.push(std::mem::take(&mut current));
                i += width;
                continue;
            }
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

fn parse_literal(text: &str) -> Option<Literal> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(Literal::Str(inner.replace("''", "'")));
    }
    match text {
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        "null" => Some(Literal::Null),
        _ => text.parse().ok().map(Literal::Num),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn display_name_eq_ignores_case_and_unescapes_doubled_quotes() {
        let filter = parse_filter("displayName eq 'O''Brien Devices'").unwrap();
        assert!(filter.matches(&object(json!({"displayName": "o'brien devices"}))));
        assert!(!filter.matches(&object(json!({"displayName": "Other"}))));
    }

    #[test]
    fn and_joins_clauses_but_not_inside_quotes() {
        let filter = parse_filter("name eq 'Salt and Pepper' and startswith(platforms,'win')").unwrap();
        assert_eq!(filter.0[0].len(), 2);
        assert!(filter.matches(&object(json!({"name": "Salt and Pepper", "platforms": "windows10"}))));
        assert!(!filter.matches(&object(json!({"name": "Salt and Pepper", "platforms": "macOS"}))));
    }

    #[test]
    fn or_joins_conjunctions_and_and_binds_tighter() {
        let filter = parse_filter("displayName eq 'A' or displayName eq 'B' and platform eq 'x'").unwrap();
        assert!(filter.matches(&object(json!({"displayName": "A"}))));
        assert!(!filter.matches(&object(json!({"displayName": "B", "platform": "y"}))));
        assert!(filter.matches(&object(json!({"displayName": "B", "platform": "x"}))));
        assert!(
            parse_filter("displayName eq 'Salt or Pepper'")
                .unwrap()
                .matches(&object(json!({"displayName": "salt or pepper"})))
        );
    }

    #[test]
    fn a_type_cast_path_reads_the_property_only_on_objects_of_that_type() {
        let filter = parse_filter("(microsoft.graph.iosGeneralDeviceConfiguration/cameraBlocked) eq true").unwrap();
        let ios =
            object(json!({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration", "cameraBlocked": true}));
        let windows =
            object(json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "cameraBlocked": true}));
        assert!(filter.matches(&ios));
        assert!(!filter.matches(&windows), "the cast reads null on another type");
        // IntuneCD's filter of deviceAppManagement/mobileApps parses.
        assert!(parse_filter(
            "(microsoft.graph.managedApp/appAvailability) eq null or (microsoft.graph.managedApp/appAvailability) eq 'lineOfBusiness' or isAssigned eq true"
        )
        .is_ok());
    }

    #[test]
    fn query_options_without_dollar_are_system_options() {
        let options = parse_query("top=1000&expand=settings&filter=name%20eq%20%27x%27&select=id").unwrap();
        assert_eq!(parse_query("?$expand=settings").unwrap().expand, vec!["settings"], "IntuneCD's `??$expand`");
        assert_eq!(options.top, Some(1000));
        assert_eq!(options.expand, vec!["settings"]);
        assert!(options.filter.is_some());
        assert_eq!(options.select, Some(vec!["id".to_string()]));
    }

    #[test]
    fn unsupported_filters_are_refused() {
        assert!(parse_filter("displayName ne 'x'").is_err());
        assert!(parse_filter("").is_err());
        assert!(parse_filter("displayName eq x").is_err());
    }

    #[test]
    fn query_options_are_decoded() {
        let options =
            parse_query("%24filter=displayName%20eq%20%27A%27&%24top=5&%24expand=assignments,settings($select=id)&%24select=id,displayName&%24skiptoken=10")
                .unwrap();
        assert_eq!(options.top, Some(5));
        assert_eq!(options.skip, 10);
        assert_eq!(options.expand, vec!["assignments", "settings"]);
        assert_eq!(options.select, Some(vec!["id".to_string(), "displayName".to_string()]));
        assert!(options.filter.is_some());
        assert!(parse_query("$top=abc").is_err());
    }
}
