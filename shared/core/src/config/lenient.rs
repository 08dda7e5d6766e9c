//! Parsing that reports every problem at once: each field that fails to
//! deserialize is recorded with its path, removed, and parsing is retried, so
//! `strata validate` lists unknown keys, bad values and semantic errors together.

use serde_path_to_error::Segment;
use serde_yaml::Value;

use super::{Config, ConfigError, expand_env};

const MAX_ROUNDS: usize = 32;

/// The config with every bad field replaced by its default, and the errors found.
pub fn parse(text: &str) -> (Option<Config>, Vec<ConfigError>) {
    let expanded = match expand_env(text) {
        Ok(t) => t,
        Err(e) => return (None, vec![e]),
    };
    let mut value: Value = match serde_yaml::from_str(&expanded) {
        Ok(v) => v,
        Err(e) => {
            let at = e
                .location()
                .map_or("<document>".into(), |l| format!("line {}", l.line()));
            return (None, vec![ConfigError::new(at, format!("is not valid YAML: {e}"))]);
        }
    };
    if value.is_null() {
        value = Value::Mapping(Default::default());
    }
    let mut errors = Vec::new();
    for _ in 0..MAX_ROUNDS {
        match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) => return (Some(config), errors),
            Err(e) => {
                let segments: Vec<Segment> = e.path().iter().cloned().collect();
                let inner = e.into_inner().to_string();
                let unknown = unknown_field(&inner);
                let mut field = e_path(&segments);
                if let Some(u) = &unknown
                    && !field.ends_with(u.as_str())
                {
                    field = if field == "." {
                        u.clone()
                    } else {
                        format!("{field}.{u}")
                    };
                }
                errors.push(ConfigError::new(field.clone(), hint(&inner)));
                let mut path = segments;
                if let Some(u) = unknown
                    && !matches!(path.last(), Some(Segment::Map { key }) if *key == u)
                {
                    path.push(Segment::Map { key: u });
                }
                if !remove(&mut value, &path) {
                    return (None, errors);
                }
            }
        }
    }
    (None, errors)
}

fn e_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    if out.is_empty() { ".".into() } else { out }
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn hint(msg: &str) -> String {
    if msg.starts_with("unknown field") {
        format!("{msg}; remove it or check its spelling against the config reference in README.md")
    } else {
        format!("{msg}; see the config reference in README.md")
    }
}

/// Removes the value at `path`; false when nothing could be removed.
fn remove(value: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (seg, cur) {
            (Segment::Map { key }, Value::Mapping(m)) => match m.get_mut(key.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Sequence(s)) => match s.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Enum { .. }, v) => v,
            _ => return false,
        };
    }
    match (last, cur) {
        (Segment::Map { key }, Value::Mapping(m)) => m.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, Value::Sequence(s)) if *index < s.len() => {
            s.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_and_keeps_going() {
        let y = "server:\n  listn: 1.2.3.4:5\n  listen: nonsense\nbogus: 1\n";
        let (cfg, errs) = parse(y);
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"server.listn"), "{errs:?}");
        assert!(fields.contains(&"server.listen"), "{errs:?}");
        assert!(fields.contains(&"bogus"), "{errs:?}");
        assert!(cfg.is_some());
    }

    #[test]
    fn clean_config_has_no_errors() {
        let (cfg, errs) = parse("server: {region: eu-west-1}\n");
        assert!(errs.is_empty());
        assert_eq!(cfg.unwrap().server.region, "eu-west-1");
    }
}
