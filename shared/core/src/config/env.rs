use super::ConfigError;

/// Replaces `${VAR}` and `${VAR:-default}` with values from the environment.
/// `$$` stands for a literal `$`. An unset variable without a default is an error.
pub fn expand_env(text: &str) -> Result<String, ConfigError> {
    expand_with(text, |k| std::env::var(k).ok())
}

fn expand_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| {
                ConfigError::new(
                    "${...}",
                    "unterminated `${`; close it with `}` or write `$$` for a literal `$`",
                )
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::new(
                        format!("${{{name}}}"),
                        format!("environment variable {name} is not set; export it or write ${{{name}:-default}}"),
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(k: &str) -> Option<String> {
        (k == "A").then(|| "x".to_string())
    }

    #[test]
    fn expands() {
        assert_eq!(expand_with("a ${A} b", look).unwrap(), "a x b");
        assert_eq!(expand_with("${B:-dflt}", look).unwrap(), "dflt");
        assert_eq!(expand_with("$$A $5", look).unwrap(), "$A $5");
        assert!(
            expand_with("${B}", look)
                .unwrap_err()
                .to_string()
                .contains("B is not set")
        );
        assert!(expand_with("${A", look).is_err());
    }
}
