//! The connection settings every tool shares: `--bootstrap-server` (a comma-separated list, tried in
//! order) and `--command-config` (a Kafka client properties file). Validated here once, so the tools
//! work with a `ClientSettings` and never look at strings again.

use std::path::Path;
use std::time::Duration;

use oxka_protocol::network::secure::ClientSecurity;

use crate::error::ToolError;
use crate::security::SecurityProps;

/// How a tool talks to the cluster.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `host:port` addresses to try in order until one answers.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    /// How long one request may take (`request.timeout.ms`, Kafka's default 30 s).
    pub request_timeout: Duration,
    /// How long connecting to one address may take.
    pub connect_timeout: Duration,
    /// `security.protocol`, `ssl.*`, `sasl.*` as given; `security` is built from them by `secure`.
    pub security_props: SecurityProps,
    pub security: ClientSecurity,
}

impl ClientSettings {
    /// Settings from the flags: `bootstrap` as given to `--bootstrap-server`, and the optional
    /// `--command-config` file.
    pub fn from_flags(bootstrap: &str, command_config: Option<&Path>) -> Result<ClientSettings, ToolError> {
        let addresses: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if addresses.is_empty() {
            return Err(ToolError::Usage(
                "--bootstrap-server is empty: give host:port[,host:port...]".to_string(),
            ));
        }
        for address in &addresses {
            let port_ok = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(ToolError::Usage(format!(
                    "--bootstrap-server {address}: expected host:port (e.g. localhost:9092)"
                )));
            }
        }
        let mut settings = ClientSettings {
            bootstrap: addresses,
            client_id: "oxka-tools".to_string(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            security_props: SecurityProps::default(),
            security: ClientSecurity::default(),
        };
        if let Some(path) = command_config {
            settings.apply_command_config(path)?;
            settings.secure().map_err(|reason| ToolError::CommandConfig {
                path: path.display().to_string(),
                reason,
            })?;
        }
        Ok(settings)
    }

    /// Builds the connection security from the security keys applied so far.
    pub fn secure(&mut self) -> Result<(), String> {
        self.security = self.security_props.security()?;
        Ok(())
    }

    fn apply_command_config(&mut self, path: &Path) -> Result<(), ToolError> {
        let error = |reason: String| ToolError::CommandConfig {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let entries = oxka_config::properties::parse(&text).map_err(|e| error(e.to_string()))?;
        for entry in entries {
            let (key, value) = (entry.key.as_str(), entry.value.trim());
            self.apply(key, value)
                .map_err(|what| error(format!("line {}: {key}={value}: {what}", entry.line)))?;
        }
        Ok(())
    }

    /// Applies one client property (from a file or a `--producer-property`-style flag); the error says
    /// what is wrong with it.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        if SecurityProps::takes(key) {
            self.security_props.set(key, value)?;
        } else if key == "client.id" {
            self.client_id = value.to_string();
        } else if key == "request.timeout.ms" || key == "default.api.timeout.ms" {
            let ms: u64 = value
                .parse()
                .map_err(|_| "expected a number of milliseconds".to_string())?;
            if key == "request.timeout.ms" {
                self.request_timeout = Duration::from_millis(ms);
            }
        }
        // bootstrap.servers: --bootstrap-server wins, as in Kafka's tools. Other client settings
        // (buffer sizes, retries, ...) change nothing in a one-shot tool, or are read by the tool itself.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config(text: &str) -> Result<ClientSettings, ToolError> {
        let dir = std::env::temp_dir().join(format!("oxka-tools-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.properties", text.len()));
        std::fs::write(&file, text).unwrap();
        ClientSettings::from_flags("localhost:9092", Some(&file))
    }

    #[test]
    fn bootstrap_lists_are_split_and_checked() {
        let s = ClientSettings::from_flags("a:1, b:2,", None).unwrap();
        assert_eq!(s.bootstrap, ["a:1", "b:2"]);
        assert!(ClientSettings::from_flags("localhost", None).is_err());
        assert!(ClientSettings::from_flags("", None).is_err());
    }

    #[test]
    fn command_config_sets_client_keys_and_checks_security() {
        let s = with_config("client.id=me\nrequest.timeout.ms=5000\nsecurity.protocol=PLAINTEXT\n").unwrap();
        assert_eq!(s.client_id, "me");
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        let e = with_config("# sasl\nsecurity.protocol=SASL_PLAINTEXT\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sasl.mechanism=GSSAPI"), "{e}");
        let e = with_config("sasl.kerberos.service.name=kafka\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1: sasl.kerberos.service.name=kafka: this security setting is not supported"),
            "{e}"
        );
    }
}
