//! Client properties of the console tools, as Kafka's tools gather them: a properties file
//! (`--producer.config`, `--consumer.config`) overridden by `key=value` flags (`--producer-property`,
//! `--consumer-property`, and the formatter's and reader's `--property`). The merged map is read once
//! here into `ClientSettings` (connection keys, security refused) and by each tool for its own keys.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::ToolError;
use crate::settings::ClientSettings;

/// Properties by key, later sources winning.
pub type Props = BTreeMap<String, String>;

/// The properties of `file` (if any), then of `flags` (`key=value` each), the flags winning.
/// `flag` names the flag in errors (`--producer-property`).
pub fn load(file: Option<&Path>, flags: &[String], flag: &str) -> Result<Props, ToolError> {
    let mut props = Props::new();
    if let Some(path) = file {
        let error = |reason: String| ToolError::Usage(format!("cannot read {}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        for entry in oxka_config::properties::parse(&text).map_err(|e| error(e.to_string()))? {
            props.insert(entry.key, entry.value.trim().to_string());
        }
    }
    props.extend(parse_flags(flags, flag)?);
    Ok(props)
}

/// `key=value` flags as Kafka's `CommandLineUtils.parseKeyValueArgs` reads them: split at the first
/// `=`; `key=` is an empty value; a flag without `=` is refused.
pub fn parse_flags(flags: &[String], flag: &str) -> Result<Props, ToolError> {
    let mut props = Props::new();
    for text in flags {
        let Some((key, value)) = text.split_once('=') else {
            return Err(ToolError::Usage(format!(
                "{flag} {text}: expected key=value (Invalid command line properties)"
            )));
        };
        props.insert(key.to_string(), value.to_string());
    }
    Ok(props)
}

/// Connection settings from `--bootstrap-server` and the client properties (client.id defaulting to
/// `default_client_id`, request.timeout.ms, security keys refused with the key named).
pub fn settings(bootstrap: &str, props: &Props, default_client_id: &str) -> Result<ClientSettings, ToolError> {
    let mut settings = ClientSettings::from_flags(bootstrap, None)?;
    settings.client_id = default_client_id.to_string();
    for (key, value) in props {
        settings
            .apply(key, value)
            .map_err(|what| ToolError::Usage(format!("client property {key}={value}: {what}")))?;
    }
    settings
        .secure()
        .map_err(|what| ToolError::Usage(format!("client properties: {what}")))?;
    Ok(settings)
}

/// A boolean property as Kafka reads it (`true`, any case, after trimming; anything else is false).
pub fn flag(props: &Props, key: &str) -> Option<bool> {
    props.get(key).map(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A numeric property, or `default`; a malformed number is refused with its key.
pub fn number<T: std::str::FromStr>(props: &Props, key: &str, default: T) -> Result<T, ToolError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ToolError::Usage(format!("client property {key}={v}: expected a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_need_an_equals_sign() {
        let dir = std::env::temp_dir().join(format!("oxka-client-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.properties");
        std::fs::write(&file, "acks=1\nclient.id=from-file\n").unwrap();
        let props = load(Some(&file), &["acks=all".into(), "linger.ms=".into()], "--x").unwrap();
        assert_eq!(props["acks"], "all");
        assert_eq!(props["client.id"], "from-file");
        assert_eq!(props["linger.ms"], "");
        assert!(parse_flags(&["acks".into()], "--x").is_err());
        let s = settings("localhost:9092", &props, "console-producer").unwrap();
        assert_eq!(s.client_id, "from-file");
        let refused = settings(
            "localhost:9092",
            &parse_flags(&["sasl.mechanism=PLAIN".into()], "--x").unwrap(),
            "c",
        );
        assert!(
            refused.is_ok(),
            "PLAINTEXT with a SASL mechanism named is what Kafka's clients accept too"
        );
        let refused = settings(
            "localhost:9092",
            &parse_flags(&["security.protocol=SASL_PLAINTEXT".into()], "--x").unwrap(),
            "c",
        );
        assert!(refused.unwrap_err().to_string().contains("sasl.mechanism=GSSAPI"));
    }
}
