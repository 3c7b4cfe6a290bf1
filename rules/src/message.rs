//! Message templates: `"Outlet pressure {value:.2} MPa below {limit:.2} MPa"`.
//!
//! Parsed once when the rule is compiled; rendered only when an alarm is pending or active, so
//! the formatting cost is paid by the rare alarm, not by every evaluation.

use std::fmt::Write as _;

/// A parsed message template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field {
        name: String,
        decimals: Option<usize>,
    },
}

/// A template that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message template: {0}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `{name}` and `{name:.N}` fields; `{{` and `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut field = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => field.push(c),
                            None => {
                                return Err(TemplateError(format!(
                                    "unclosed `{{{field}` in {text:?}"
                                )))
                            }
                        }
                    }
                    let (name, decimals) = match field.split_once(":.") {
                        Some((n, d)) => (
                            n.trim().to_owned(),
                            Some(d.trim().parse::<usize>().map_err(|_| {
                                TemplateError(format!("bad precision in `{{{field}}}`"))
                            })?),
                        ),
                        None => (field.trim().to_owned(), None),
                    };
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(TemplateError(format!("bad field `{{{field}}}`")));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field { name, decimals });
                }
                '}' => return Err(TemplateError(format!("stray `}}` in {text:?}"))),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Self { parts })
    }

    /// The field names used.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Renders; `lookup(name, decimals)` gives a field's text, `None` renders as `?`.
    pub fn render(&self, lookup: impl Fn(&str, Option<usize>) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { name, decimals } => match lookup(name, *decimals) {
                    Some(v) => out.push_str(&v),
                    None => {
                        let _ = write!(out, "?");
                    }
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_braces() {
        let t = Template::parse("P {value:.2} < {limit} on {device} {{x}}").unwrap();
        let s = t.render(|n, d| match n {
            "value" => Some(format!("{:.*}", d.unwrap_or(3), 0.123_456)),
            "limit" => Some("0.4".into()),
            _ => None,
        });
        assert_eq!(s, "P 0.12 < 0.4 on ? {x}");
        assert_eq!(
            t.fields().collect::<Vec<_>>(),
            vec!["value", "limit", "device"]
        );
        assert!(Template::parse("oops {value").is_err());
        assert!(Template::parse("oops }").is_err());
        assert!(Template::parse("{a b}").is_err());
    }
}
