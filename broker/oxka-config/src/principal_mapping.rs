//! `ssl.principal.mapping.rules` (KIP-371): how a TLS client certificate's subject (the distinguished
//! name as Java's `X500Principal.getName()` writes it, `CN=alice,OU=eng,O=oxka`) becomes a principal
//! name. Rules are tried in order: `DEFAULT` keeps the whole name; `RULE:pattern/replacement/` (with an
//! optional `L` or `U` to lower- or upper-case the result) applies when the pattern matches the whole
//! name, as Kafka's `SslPrincipalMapper` does. A name no rule applies to is refused.

use regex::Regex;

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub enum PrincipalRule {
    Default,
    Rule {
        /// The pattern, anchored at both ends (Java's `Matcher.matches`).
        pattern: Regex,
        /// The replacement in the `regex` crate's syntax (`${1}`).
        replacement: String,
        case: Case,
    },
}

impl Eq for PrincipalRule {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Keep,
    Lower,
    Upper,
}

impl PartialEq for PrincipalRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Default, Self::Default) => true,
            (
                Self::Rule {
                    pattern: a,
                    replacement: ra,
                    case: ca,
                },
                Self::Rule {
                    pattern: b,
                    replacement: rb,
                    case: cb,
                },
            ) => a.as_str() == b.as_str() && ra == rb && ca == cb,
            _ => false,
        }
    }
}

/// Parses the rules (Kafka's default is `DEFAULT`). The error says which rule is wrong and why.
pub fn parse_rules(value: &str) -> Result<Vec<PrincipalRule>, String> {
    let mut rules = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("DEFAULT") {
            rules.push(PrincipalRule::Default);
            rest = after;
        } else if let Some(body) = rest.strip_prefix("RULE:") {
            let (pattern, after) =
                until_slash(body).ok_or_else(|| format!("rule {rest:?} has no / after its pattern"))?;
            let (replacement, after) =
                until_slash(after).ok_or_else(|| format!("rule {rest:?} has no / after its replacement"))?;
            let (case, after) = match after.chars().next() {
                Some('L') => (Case::Lower, &after[1..]),
                Some('U') => (Case::Upper, &after[1..]),
                _ => (Case::Keep, after),
            };
            let anchored = format!("^(?:{pattern})$");
            let pattern = Regex::new(&anchored)
                .map_err(|e| format!("rule {rest:?}: its pattern is not a regular expression: {e}"))?;
            rules.push(PrincipalRule::Rule {
                pattern,
                replacement: rust_replacement(&replacement),
                case,
            });
            rest = after;
        } else {
            return Err(format!(
                "{rest:?} is not a rule: write DEFAULT or RULE:pattern/replacement/ (optionally followed by L or U), separated by commas"
            ));
        }
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("expected a comma before {rest:?}")),
        }
    }
    if rules.is_empty() {
        rules.push(PrincipalRule::Default);
    }
    Ok(rules)
}

/// The text up to the first unescaped `/` (a `\/` stands for `/`), and what follows that slash.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's replacement syntax (`$1`, `\$` for a dollar) in the `regex` crate's (`${1}`, `$$`).
fn rust_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The principal name of a certificate subject: the first rule that applies, or why none does.
pub fn map_name(rules: &[PrincipalRule], distinguished_name: &str) -> Result<String, String> {
    for rule in rules {
        match rule {
            PrincipalRule::Default => return Ok(distinguished_name.to_string()),
            PrincipalRule::Rule {
                pattern,
                replacement,
                case,
            } => {
                if pattern.is_match(distinguished_name) {
                    let name = pattern.replace(distinguished_name, replacement.as_str()).into_owned();
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
    }
    Err(format!(
        "no rule of ssl.principal.mapping.rules applies to {distinguished_name}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(rules: &str, dn: &str) -> Result<String, String> {
        map_name(&parse_rules(rules).unwrap(), dn)
    }

    #[test]
    fn kafkas_examples() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT";
        assert_eq!(
            mapped(rules, "CN=kafka-server1,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "kafka-server1"
        );
        assert_eq!(
            mapped(rules, "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US").unwrap(),
            "duke@javasoft"
        );
        assert_eq!(mapped(rules, "cN=Alice.B,O=x").unwrap(), "alice.b");
        assert_eq!(mapped(rules, "O=nobody").unwrap(), "O=nobody");
    }

    #[test]
    fn default_escapes_and_no_match() {
        assert_eq!(mapped("", "CN=a,O=b").unwrap(), "CN=a,O=b");
        assert_eq!(mapped("DEFAULT", "CN=a").unwrap(), "CN=a");
        assert_eq!(mapped("RULE:^CN=(.*)$/$1\\/x/U", "CN=ab").unwrap(), "AB/X");
        assert_eq!(mapped("RULE:^CN=(.*)$/\\$$1/", "CN=ab").unwrap(), "$ab");
        let e = mapped("RULE:^CN=(.*)$/$1/", "O=x").unwrap_err();
        assert!(e.contains("no rule") && e.contains("O=x"), "{e}");
    }

    #[test]
    fn bad_rules_say_why() {
        assert!(parse_rules("RULE:^CN=(.*)$")
            .unwrap_err()
            .contains("no / after its pattern"));
        assert!(parse_rules("RULE:(/x/")
            .unwrap_err()
            .contains("not a regular expression"));
        assert!(parse_rules("CN=(.*)").unwrap_err().contains("is not a rule"));
        assert_eq!(parse_rules(" DEFAULT , DEFAULT ").unwrap().len(), 2);
    }
}
