//! A parser for Java `.properties` files, the format of Kafka's `server.properties` and ZooKeeper's
//! `zookeeper.properties`.
//!
//! It follows `java.util.Properties.load`: `#` and `!` start comment lines, the key ends at the first
//! unescaped `=`, `:` or whitespace, a line ending in an odd number of backslashes continues on the next
//! line (whose leading whitespace is dropped), and `\t \n \r \f \uXXXX` and `\<char>` are escapes.
//! Every entry remembers the line it started on so that later validation can say `file:line`.

use std::fmt;

/// One `key=value` entry and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line number where the entry starts.
    pub line: usize,
}

/// Where a value came from, for error messages: a file and line, or a command-line override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: String, line: usize },
    Override,
    Environment(&'static str),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Override => write!(f, "--override"),
            Origin::Environment(var) => write!(f, "environment variable {var}"),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// A malformed `\uXXXX` escape is the only syntax error `java.util.Properties` reports.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: malformed \\uXXXX escape in {text:?}; write four hexadecimal digits after \\u")]
pub struct SyntaxError {
    pub line: usize,
    pub text: String,
}

/// Parses properties text into entries in file order (later duplicates win when looked up by key).
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let start_line = index + 1;
        let first = raw.trim_start_matches([' ', '\t', '\x0c']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines: a line ending in an odd number of backslashes continues.
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key_raw, value_raw) = split_key_value(&logical);
        let key = unescape(key_raw, start_line)?;
        let value = unescape(value_raw, start_line)?;
        entries.push(Entry {
            key,
            value,
            line: start_line,
        });
    }
    Ok(entries)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// Splits a logical line into the raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(bytes.len());
    let mut rest = &line[key_end..];
    rest = rest.trim_start_matches([' ', '\t', '\x0c']);
    if let Some(stripped) = rest.strip_prefix(['=', ':']) {
        rest = stripped.trim_start_matches([' ', '\t', '\x0c']);
    }
    (&line[..key_end], rest)
}

fn unescape(raw: &str, line: usize) -> Result<String, SyntaxError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                match decoded {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(SyntaxError {
                            line,
                            text: raw.to_string(),
                        });
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    #[test]
    fn separators_comments_and_whitespace() {
        let got = kv("# comment\n! also\n\na=1\nb : 2\nc 3\n  d=  4  \ne=\nf\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into(), 4),
                ("b".into(), "2".into(), 5),
                ("c".into(), "3".into(), 6),
                ("d".into(), "4  ".into(), 7),
                ("e".into(), "".into(), 8),
                ("f".into(), "".into(), 9),
            ]
        );
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let got = kv("listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT://b:2\nk\\=x=v\\tw\\u0041\npath=C:\\\\dir\n");
        assert_eq!(
            got[0],
            ("listeners".into(), "PLAINTEXT://a:1,PLAINTEXT://b:2".into(), 1)
        );
        assert_eq!(got[1], ("k=x".into(), "v\twA".into(), 3));
        assert_eq!(got[2], ("path".into(), "C:\\dir".into(), 4));
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        let got = kv("a=x\\\\\nb=y\n");
        assert_eq!(got, vec![("a".into(), "x\\".into(), 1), ("b".into(), "y".into(), 2)]);
    }

    #[test]
    fn inline_hash_is_part_of_the_value() {
        let got = kv("broker.id=0 # (1)\n");
        assert_eq!(got[0].1, "0 # (1)");
    }

    #[test]
    fn malformed_unicode_escape_is_an_error() {
        let err = parse("a=\\u12\n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}
