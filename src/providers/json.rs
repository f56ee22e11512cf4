//! Reading providers' JSON without losing money to floating point: every JSON number
//! is turned into a string holding its exact text before parsing, and read back as a
//! `Decimal`. Shared by the wire clients (provider-neutral: it knows no provider).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// Rewrites a JSON text so every number becomes a string of its exact digits; strings
/// (escapes included) are copied untouched.
pub(crate) fn quote_numbers(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 16);
    let mut i = 0;
    let mut in_string = false;
    while i < input.len() {
        let c = input[i];
        if in_string {
            out.push(c);
            if c == b'\\' {
                if let Some(&next) = input.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
        } else if c == b'"' {
            in_string = true;
            out.push(c);
            i += 1;
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < input.len()
                && matches!(input[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            out.push(b'"');
            out.extend_from_slice(&input[start..i]);
            out.push(b'"');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A scalar's text: strings as they are, numbers and booleans written out.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar read as an exact decimal (plain or scientific notation).
pub(crate) fn value_dec(v: &Value) -> Option<Decimal> {
    let text = value_text(v)?;
    let t = text.trim();
    Decimal::from_str(t)
        .ok()
        .or_else(|| Decimal::from_scientific(t).ok())
}

/// An error with all its sources, for messages that must say why a call failed
/// (never carrying a URL or a body: callers strip those first).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_every_digit_and_strings_are_untouched() {
        let raw = br#"{"price": 0.0150000, "big": 123456789.123456789, "s": "1.5 \" 2", "n": -3e2, "ok": true}"#;
        let value: Value = serde_json::from_slice(&quote_numbers(raw)).unwrap();
        assert_eq!(value["price"], Value::String("0.0150000".into()));
        assert_eq!(
            value_dec(&value["big"]),
            Decimal::from_str("123456789.123456789").ok()
        );
        assert_eq!(value["s"], Value::String("1.5 \" 2".into()));
        assert_eq!(value_dec(&value["n"]), Some(Decimal::from(-300)));
        assert_eq!(value_text(&value["ok"]).as_deref(), Some("true"));
    }
}
