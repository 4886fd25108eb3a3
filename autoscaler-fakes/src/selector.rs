//! Label selectors and label syntax, as Kubernetes and Hetzner Cloud share them: equality
//! (`k=v`, `k==v`, `k!=v`), sets (`k in (a,b)`, `k notin (a,b)`) and existence (`k`, `!k`),
//! ANDed by commas; keys an optional DNS-subdomain prefix and `/` then a name of at most 63
//! characters, alphanumeric at both ends.

use serde_json::Value;

/// One term of a label selector.
#[derive(Debug, PartialEq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Has(String),
    Lacks(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// The terms of `selector`, split at the commas outside parentheses.
fn split_terms(selector: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&selector[start..]);
    out.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("{rest:?} is not a set like (a,b)"))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
}

fn parse_term(term: &str) -> Result<Term, String> {
    let t = term.trim();
    let key = |k: &str| -> Result<String, String> {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_owned())
        } else {
            Err(format!("{k:?} is not a label key"))
        }
    };
    if let Some((k, rest)) = t.split_once(" notin ") {
        return Ok(Term::NotIn(key(k)?, parse_set(rest)?));
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        return Ok(Term::In(key(k)?, parse_set(rest)?));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Term::Ne(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Ok(Term::Eq(key(k)?, v.trim().to_owned()));
    }
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Term::Lacks(key(k)?));
    }
    Ok(Term::Has(key(t)?))
}

/// A parsed selector: its terms, ANDed.
#[derive(Debug, PartialEq)]
pub(crate) struct Selector(Vec<Term>);

/// Parses a label selector: `k==v`, `k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
/// ANDed by commas.
pub(crate) fn parse(selector: &str) -> Result<Selector, String> {
    split_terms(selector)
        .into_iter()
        .map(parse_term)
        .collect::<Result<_, _>>()
        .map(Selector)
}

impl Selector {
    /// Whether `labels` (a JSON object of strings) satisfy every term.
    pub(crate) fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|t| match t {
            Term::Eq(k, v) => get(k) == Some(v.as_str()),
            Term::Ne(k, v) => get(k) != Some(v.as_str()),
            Term::Has(k) => get(k).is_some(),
            Term::Lacks(k) => get(k).is_none(),
            Term::In(k, set) => get(k).is_some_and(|v| set.iter().any(|s| s == v)),
            Term::NotIn(k, set) => get(k).is_none_or(|v| set.iter().all(|s| s != v)),
        })
    }
}

/// A label name or value's body: alphanumeric at both ends, `-`, `_`, `.` between.
pub(crate) fn label_word(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name (the SPEC's §Labels).
pub(crate) fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|part| {
                let b = part.as_bytes();
                !part.is_empty()
                    && b.first().is_some_and(u8::is_ascii_alphanumeric)
                    && b.last().is_some_and(u8::is_ascii_alphanumeric)
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            })
    });
    prefix_ok && label_word(name)
}
