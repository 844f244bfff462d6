//! `RawConfig`: the key/value pairs of a properties file plus `--override`s, each with its origin,
//! and typed getters that turn a bad value into an error naming the key, the value, `file:line` and why.
//!
//! Typed configs (`BrokerConfig`, `CoordinatorConfig`) are built from a `RawConfig` once at start-up;
//! every key a builder reads is marked used, so whatever is left over is reported as unknown.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::properties::{self, Origin};

/// Everything that can be wrong with a configuration, each a sentence a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{}", .source)]
    Syntax {
        path: String,
        #[source]
        source: properties::SyntaxError,
    },
    #[error("--override {0:?} is not of the form key=value")]
    BadOverride(String),
    #[error("invalid value {value:?} for {key} at {origin}: {reason}{}", hint_suffix(.hint))]
    Invalid {
        key: String,
        value: String,
        origin: Origin,
        reason: String,
        hint: Option<String>,
    },
    #[error("{key} is required but not set; {what}")]
    Missing { key: String, what: String },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default()
}

/// A value in a config together with where it was set.
#[derive(Debug, Clone)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// The raw settings of one process, before validation.
#[derive(Debug, Default)]
pub struct RawConfig {
    settings: BTreeMap<String, Setting>,
    used: RefCell<BTreeSet<String>>,
}

impl RawConfig {
    /// Parses properties text; `path` is only used to label origins.
    pub fn from_text(text: &str, path: &str) -> Result<Self, ConfigError> {
        let entries = properties::parse(text).map_err(|source| ConfigError::Syntax {
            path: path.to_string(),
            source,
        })?;
        let mut settings = BTreeMap::new();
        for entry in entries {
            let origin = Origin::File {
                path: path.to_string(),
                line: entry.line,
            };
            settings.insert(
                entry.key,
                Setting {
                    value: entry.value,
                    origin,
                },
            );
        }
        Ok(Self {
            settings,
            used: RefCell::default(),
        })
    }

    /// Reads and parses a properties file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_text(&text, &shown)
    }

    /// Applies a `key=value` override, as `kafka-server-start.sh --override` does.
    pub fn apply_override(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| ConfigError::BadOverride(pair.to_string()))?;
        self.set(key.trim(), value.trim(), Origin::Override);
        Ok(())
    }

    pub fn set(&mut self, key: &str, value: &str, origin: Origin) {
        self.settings.insert(
            key.to_string(),
            Setting {
                value: value.to_string(),
                origin,
            },
        );
    }

    /// The raw setting for `key`, marking it as understood.
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.used.borrow_mut().insert(key.to_string());
        self.settings.get(key)
    }

    /// Marks a key understood without reading it (keys accepted for compatibility that need no action).
    pub fn accept(&self, key: &str) {
        self.used.borrow_mut().insert(key.to_string());
    }

    /// The trimmed string value of `key`, if set.
    pub fn string(&self, key: &str) -> Option<String> {
        self.setting(key).map(|s| s.value.trim().to_string())
    }

    /// Parses `key` with `FromStr`; `what` describes the expected form for the error message.
    pub fn parse<T: FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, ConfigError> {
        let Some(setting) = self.setting(key) else {
            return Ok(None);
        };
        setting
            .value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| self.invalid(key, format!("expected {what}")))
    }

    /// Like `parse`, but also checks `min <= value <= max`.
    pub fn ranged<T>(&self, key: &str, min: T, max: T) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(value) = self.parse::<T>(key, "an integer")? else {
            return Ok(None);
        };
        if value < min || value > max {
            return Err(self.invalid(key, format!("must be between {min} and {max}")));
        }
        Ok(Some(value))
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(setting) = self.setting(key) else {
            return Ok(None);
        };
        match setting.value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(self.invalid(key, "expected true or false".to_string())),
        }
    }

    /// An error for the current value of `key`, with a hint when the value looks like it carries an
    /// inline comment (the seed's `broker.id=0 # (1)`).
    pub fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let (value, origin) = match self.settings.get(key) {
            Some(s) => (s.value.clone(), s.origin.clone()),
            None => (String::new(), Origin::Default),
        };
        let hint = value.find('#').map(|at| {
            format!(
                "properties files have no inline comments, so {:?} is part of the value; \
                 move it to a line of its own starting with #",
                value[at..].trim()
            )
        });
        ConfigError::Invalid {
            key: key.to_string(),
            value,
            origin,
            reason,
            hint,
        }
    }

    /// Keys that were set but never read by any builder, sorted.
    pub fn unknown_keys(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.settings.keys().filter(|k| !used.contains(*k)).cloned().collect()
    }

    /// All settings in key order (for logging the effective config).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Setting)> {
        self.settings.iter()
    }
}

/// Parses a JVM memory size as `-Xmx` takes it (`1G`, `512m`, `1048576`).
pub fn parse_jvm_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 'b'),
    };
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        't' => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The `-Xmx` value in a `KAFKA_HEAP_OPTS` string, if any.
pub fn heap_from_opts(opts: &str) -> Result<Option<u64>, String> {
    let mut found = None;
    for token in opts.split_whitespace() {
        if let Some(size) = token.strip_prefix("-Xmx") {
            found = Some(
                parse_jvm_size(size)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{token:?} is not a valid -Xmx size such as -Xmx1G"))?,
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_report_key_value_and_line() {
        let raw = RawConfig::from_text("a=1\nbroker.id=0 # (1)\n", "server.properties").unwrap();
        assert_eq!(raw.parse::<i32>("a", "an integer").unwrap(), Some(1));
        let err = raw.parse::<i32>("broker.id", "an integer").unwrap_err().to_string();
        assert!(err.contains("broker.id"), "{err}");
        assert!(err.contains("server.properties:2"), "{err}");
        assert!(err.contains("\"0 # (1)\""), "{err}");
        assert!(err.contains("no inline comments"), "{err}");
    }

    #[test]
    fn overrides_win_and_unknown_keys_are_listed() {
        let mut raw = RawConfig::from_text("a=1\nb=2\n", "f").unwrap();
        raw.apply_override("a=5").unwrap();
        assert!(raw.apply_override("novalue").is_err());
        assert_eq!(raw.ranged::<i32>("a", 0, 10).unwrap(), Some(5));
        assert_eq!(raw.unknown_keys(), vec!["b".to_string()]);
        assert!(raw.ranged::<i32>("a", 0, 4).is_err());
    }

    #[test]
    fn jvm_sizes() {
        assert_eq!(parse_jvm_size("1G"), Some(1 << 30));
        assert_eq!(parse_jvm_size("512m"), Some(512 << 20));
        assert_eq!(parse_jvm_size("4096"), Some(4096));
        assert_eq!(parse_jvm_size("x"), None);
        assert_eq!(heap_from_opts("-Xms1G -Xmx2g").unwrap(), Some(2 << 30));
        assert_eq!(heap_from_opts("-Xms1G").unwrap(), None);
        assert!(heap_from_opts("-Xmxlots").is_err());
    }
}
