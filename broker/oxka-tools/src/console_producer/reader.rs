//! Kafka's `LineMessageReader`: one record per line of standard input, optionally
//! `headers<delimiter>key<separator>value` (`parse.headers`, `parse.key`), with its properties and
//! its error messages. Pure: a line in, a record (or Kafka's error text) out.

use bytes::Bytes;
use regex::Regex;

use crate::client_props::{flag, Props};
use crate::records::OutRecord;

/// The reader's settings (`--property` / `--reader-config`), validated as Kafka's `configure` does.
#[derive(Debug)]
pub struct LineReader {
    parse_key: bool,
    key_separator: String,
    parse_headers: bool,
    headers_delimiter: String,
    /// `headers.separator` is a Java regular expression in Kafka's reader.
    headers_separator: Regex,
    headers_key_separator: String,
    ignore_error: bool,
    null_marker: Option<String>,
}

impl LineReader {
    /// The reader for `props`; the error is Kafka's message for a conflicting setting.
    pub fn configure(props: &Props) -> Result<LineReader, String> {
        let get = |key: &str, default: &str| props.get(key).cloned().unwrap_or_else(|| default.to_string());
        let key_separator = get("key.separator", "\t");
        let headers_delimiter = get("headers.delimiter", "\t");
        let headers_separator = get("headers.separator", ",");
        let headers_key_separator = get("headers.key.separator", ":");
        let null_marker = props.get("null.marker").cloned();
        let pairs: [(&str, &str, &str, &str); 3] = [
            (
                "headers.delimiter",
                &headers_delimiter,
                "headers.separator",
                &headers_separator,
            ),
            (
                "headers.delimiter",
                &headers_delimiter,
                "headers.key.separator",
                &headers_key_separator,
            ),
            (
                "headers.separator",
                &headers_separator,
                "headers.key.separator",
                &headers_key_separator,
            ),
        ];
        for (a, va, b, vb) in pairs {
            if va == vb {
                return Err(format!("{a} and {b} may not be equal"));
            }
        }
        if let Some(marker) = &null_marker {
            for (name, value) in [
                ("key.separator", &key_separator),
                ("headers.separator", &headers_separator),
                ("headers.delimiter", &headers_delimiter),
                ("headers.key.separator", &headers_key_separator),
            ] {
                if value == marker {
                    return Err(format!("null.marker and {name} may not be equal"));
                }
            }
        }
        let headers_separator = Regex::new(&headers_separator)
            .map_err(|e| format!("headers.separator '{headers_separator}' is not a regular expression: {e}"))?;
        Ok(LineReader {
            parse_key: flag(props, "parse.key").unwrap_or(false),
            key_separator,
            parse_headers: flag(props, "parse.headers").unwrap_or(false),
            headers_delimiter,
            headers_separator,
            headers_key_separator,
            ignore_error: flag(props, "ignore.error").unwrap_or(false),
            null_marker,
        })
    }

    /// The record of `line` (without its line ending), `number` counting from 1.
    pub fn read(&self, line: &str, number: usize) -> Result<OutRecord, String> {
        let headers = self.field(
            self.parse_headers,
            line,
            0,
            &self.headers_delimiter,
            "headers delimiter",
            number,
        )?;
        let header_end = headers.map_or(0, |h| h.len() + self.headers_delimiter.len());
        let key = self.field(
            self.parse_key,
            line,
            header_end,
            &self.key_separator,
            "key separator",
            number,
        )?;
        let key_end = key.map_or(0, |k| k.len() + self.key_separator.len());
        let value = &line[header_end + key_end..];
        let mut record = OutRecord {
            key: key.and_then(|k| self.bytes(k)),
            value: self.bytes(value),
            headers: Vec::new(),
        };
        if let Some(headers) = headers.filter(|h| !self.is_null(h)) {
            record.headers = self.split_headers(headers, number)?;
        }
        Ok(record)
    }

    fn is_null(&self, text: &str) -> bool {
        self.null_marker.as_deref() == Some(text)
    }

    fn bytes(&self, text: &str) -> Option<Bytes> {
        (!self.is_null(text)).then(|| Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The text from `start` to the next `separator`, when `enabled`.
    fn field<'a>(
        &self,
        enabled: bool,
        line: &'a str,
        start: usize,
        separator: &str,
        name: &str,
        number: usize,
    ) -> Result<Option<&'a str>, String> {
        if !enabled {
            return Ok(None);
        }
        match line[start..].find(separator) {
            Some(i) => Ok(Some(&line[start..start + i])),
            None if self.ignore_error => Ok(None),
            None => Err(format!("No {name} found on line number {number}: '{line}'")),
        }
    }

    fn split_headers(&self, headers: &str, number: usize) -> Result<Vec<(String, Option<Bytes>)>, String> {
        // Java's String.split drops trailing empty strings.
        let mut pairs: Vec<&str> = self.headers_separator.split(headers).collect();
        while pairs.len() > 1 && pairs.last() == Some(&"") {
            pairs.pop();
        }
        let mut out = Vec::new();
        for pair in pairs {
            let Some(i) = pair.find(&self.headers_key_separator) else {
                if self.ignore_error {
                    out.push((pair.to_string(), None));
                    continue;
                }
                return Err(format!(
                    "No header key separator found in pair '{pair}' on line number {number}"
                ));
            };
            let key = &pair[..i];
            if self.is_null(key) {
                return Err(format!(
                    "Header keys should not be equal to the null marker '{}' as they can't be null",
                    self.null_marker.as_deref().unwrap_or_default()
                ));
            }
            out.push((
                key.to_string(),
                self.bytes(&pair[i + self.headers_key_separator.len()..]),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> LineReader {
        let props = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LineReader::configure(&props).unwrap()
    }

    fn text(b: &Option<Bytes>) -> Option<&str> {
        b.as_ref().map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn plain_lines_are_values() {
        let r = reader(&[]).read("a\tb", 1).unwrap();
        assert_eq!((r.key, text(&r.value)), (None, Some("a\tb")));
    }

    #[test]
    fn keys_headers_and_null_markers() {
        let r = reader(&[("parse.key", "true"), ("key.separator", ":")]);
        let rec = r.read("k:v:w", 1).unwrap();
        assert_eq!((text(&rec.key), text(&rec.value)), (Some("k"), Some("v:w")));
        assert_eq!(
            r.read("nokey", 3).unwrap_err(),
            "No key separator found on line number 3: 'nokey'"
        );

        let r = reader(&[
            ("parse.key", "true"),
            ("parse.headers", "true"),
            ("null.marker", "NULL"),
        ]);
        let rec = r.read("h1:v1,h2:NULL\tNULL\tvalue", 1).unwrap();
        assert_eq!(rec.key, None);
        assert_eq!(text(&rec.value), Some("value"));
        assert_eq!(rec.headers.len(), 2);
        assert_eq!(rec.headers[1], ("h2".to_string(), None));
        assert!(r
            .read("h1\tk\tv", 2)
            .unwrap_err()
            .contains("No header key separator found in pair 'h1'"));

        let r = reader(&[("parse.key", "true"), ("ignore.error", "true")]);
        assert_eq!(text(&r.read("plain", 1).unwrap().value), Some("plain"));
    }

    #[test]
    fn conflicting_separators_are_refused_with_kafkas_words() {
        let props = [("headers.separator".to_string(), ":".to_string())].into();
        assert_eq!(
            LineReader::configure(&props).unwrap_err(),
            "headers.separator and headers.key.separator may not be equal"
        );
        let props = [("null.marker".to_string(), "\t".to_string())].into();
        assert_eq!(
            LineReader::configure(&props).unwrap_err(),
            "null.marker and key.separator may not be equal"
        );
    }
}
