//! The `database:` section: which metadata store a control plane opens.
//!
//! ```yaml
//! database:
//!   url: postgres://strata:${PG_PASSWORD}@db:5432/strata   # or sqlite://PATH
//! # or, equivalently, the fields (which imply PostgreSQL):
//! database:
//!   host: db
//!   port: 5432
//!   user: strata
//!   password: ${PG_PASSWORD}
//!   dbname: strata
//!   max_connections: 16
//! ```
//!
//! The driver is inferred: the fields or a `postgres://` / `postgresql://` URL
//! mean PostgreSQL; a `sqlite://` URL or no section at all mean SQLite (by
//! default `DATA_DIR/meta.db`).

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// Pool size for PostgreSQL when `max_connections` is not set.
pub const DEFAULT_PG_MAX_CONNECTIONS: u32 = 16;
/// PostgreSQL port when `port` is not set.
pub const DEFAULT_PG_PORT: u16 = 5432;

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL of the metadata store: `sqlite://PATH` or
    /// `postgres://USER:PASSWORD@HOST:PORT/DBNAME` (also `postgresql://`).
    /// Give either this or the fields below, not both.
    /// Default `sqlite://DATA_DIR/meta.db`.
    #[serde(default)]
    pub url: Option<String>,
    /// PostgreSQL server host name or address (or a Unix socket directory,
    /// starting with `/`). Setting any of the fields selects PostgreSQL; `host`
    /// is then required.
    #[serde(default)]
    pub host: Option<String>,
    /// PostgreSQL server port. Default 5432.
    #[serde(default)]
    pub port: Option<u16>,
    /// PostgreSQL user name. Default: the server's default (the OS user).
    #[serde(default)]
    pub user: Option<String>,
    /// PostgreSQL password; prefer `${PG_PASSWORD}` over a literal. Never logged.
    #[serde(default)]
    pub password: Option<Secret>,
    /// PostgreSQL database name. Default: the user name.
    #[serde(default)]
    pub dbname: Option<String>,
    /// Largest number of pooled PostgreSQL connections per process. Default 16.
    /// Not for SQLite, which keeps its own fixed pool.
    #[serde(default)]
    pub max_connections: Option<u32>,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("dbname", &self.dbname)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The metadata store a process opens, with the driver resolved.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// An sqlx SQLite URL.
    Sqlite { url: String },
    /// An sqlx PostgreSQL URL (it may carry the password) and the pool size.
    Postgres { url: String, max_connections: u32 },
}

impl DatabaseTarget {
    /// The URL to connect with. It may contain the password: never log it;
    /// use `Display` (redacted) instead.
    pub fn url(&self) -> &str {
        match self {
            DatabaseTarget::Sqlite { url } | DatabaseTarget::Postgres { url, .. } => url,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn driver(&self) -> &'static str {
        match self {
            DatabaseTarget::Sqlite { .. } => "sqlite",
            DatabaseTarget::Postgres { .. } => "postgres",
        }
    }
}

/// Redacted: the password is never shown.
impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Sqlite { url } => write!(f, "SQLite {url}"),
            DatabaseTarget::Postgres { url, max_connections } => {
                write!(f, "PostgreSQL {} (pool of {max_connections})", redact_url(url))
            }
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn is_postgres_url(u: &str) -> bool {
    u.starts_with("postgres://") || u.starts_with("postgresql://")
}

impl DatabaseConfig {
    /// Whether any of the PostgreSQL fields (`host`, `port`, `user`, `password`, `dbname`) is set.
    pub fn has_fields(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.user.is_some()
            || self.password.is_some()
            || self.dbname.is_some()
    }

    /// The store to open. Assumes a validated section; when both a URL and
    /// fields are given, the URL wins.
    pub fn target(&self, data_dir: &Path) -> DatabaseTarget {
        let max_connections = self.max_connections.unwrap_or(DEFAULT_PG_MAX_CONNECTIONS);
        match &self.url {
            Some(u) if is_postgres_url(u) => DatabaseTarget::Postgres {
                url: u.clone(),
                max_connections,
            },
            Some(u) => DatabaseTarget::Sqlite { url: u.clone() },
            None if self.has_fields() => DatabaseTarget::Postgres {
                url: self.fields_url(),
                max_connections,
            },
            None => DatabaseTarget::Sqlite {
                url: format!("sqlite://{}?mode=rwc", data_dir.join("meta.db").display()),
            },
        }
    }

    /// `postgres://USER:PASSWORD@HOST:PORT/DBNAME` from the fields, percent-encoded.
    fn fields_url(&self) -> String {
        let mut url = String::from("postgres://");
        if let Some(u) = &self.user {
            url.push_str(&encode(u));
            if let Some(p) = &self.password {
                url.push(':');
                url.push_str(&encode(p.expose()));
            }
            url.push('@');
        }
        let host = self.host.as_deref().unwrap_or("localhost");
        let socket = host.starts_with('/');
        if socket {
            url.push_str("localhost");
        } else if host.contains(':') {
            url.push_str(&format!("[{host}]"));
        } else {
            url.push_str(&encode(host));
        }
        url.push_str(&format!(":{}", self.port.unwrap_or(DEFAULT_PG_PORT)));
        if let Some(d) = &self.dbname {
            url.push('/');
            url.push_str(&encode(d));
        }
        let mut query = Vec::new();
        if socket {
            query.push(format!("host={}", encode(host)));
        }
        if let (None, Some(p)) = (&self.user, &self.password) {
            query.push(format!("password={}", encode(p.expose())));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// Every problem in the section, with the field and how to fix it.
    pub(super) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if let Some(url) = &self.url {
            let shown = redact_url(url);
            if self.has_fields() {
                let fields: Vec<&str> = [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("user", self.user.is_some()),
                    ("password", self.password.is_some()),
                    ("dbname", self.dbname.is_some()),
                ]
                .into_iter()
                .filter_map(|(n, set)| set.then_some(n))
                .collect();
                err(
                    "database",
                    format!(
                        "both `url` and `{}` are set; give either `database.url` or the fields \
                         host/port/user/password/dbname, not both",
                        fields.join("`, `")
                    ),
                );
            }
            if is_postgres_url(url) {
                let rest = url.split_once("://").map_or("", |(_, r)| r);
                if rest.is_empty() || rest.starts_with('/') && !rest.contains("host=") {
                    err(
                        "database.url",
                        format!("`{shown}` names no server; use e.g. `postgres://USER:PASSWORD@HOST:5432/DBNAME`"),
                    );
                }
            } else if url.starts_with("sqlite:") {
                if self.max_connections.is_some() {
                    err(
                        "database.max_connections",
                        "applies only to PostgreSQL; SQLite keeps its own fixed pool: remove it".into(),
                    );
                }
            } else {
                err(
                    "database.url",
                    format!(
                        "`{shown}` has an unknown scheme; use `sqlite://PATH` or \
                         `postgres://USER:PASSWORD@HOST:PORT/DBNAME` (or `postgresql://`)"
                    ),
                );
            }
        } else if self.has_fields() {
            match self.host.as_deref() {
                None => err(
                    "database.host",
                    "is required when port, user, password or dbname is set; e.g. `host: 127.0.0.1`".into(),
                ),
                Some(h) if h.trim().is_empty() => err(
                    "database.host",
                    "must not be empty; give the PostgreSQL server's name or address".into(),
                ),
                _ => {}
            }
        } else if self.max_connections.is_some() {
            err(
                "database.max_connections",
                "applies only to PostgreSQL, and no PostgreSQL server is configured; set `database.url: \
                 postgres://...` or `database.host`, or remove it"
                    .into(),
            );
        }
        if self.port == Some(0) {
            err(
                "database.port",
                "must be between 1 and 65535; PostgreSQL's default is 5432".into(),
            );
        }
        if self.user.as_deref().is_some_and(str::is_empty) {
            err(
                "database.user",
                "must not be empty; remove it to use the default".into(),
            );
        }
        if self.dbname.as_deref().is_some_and(str::is_empty) {
            err(
                "database.dbname",
                "must not be empty; remove it to use the default".into(),
            );
        }
        if self.max_connections == Some(0) {
            err(
                "database.max_connections",
                format!("must be at least 1; the default is {DEFAULT_PG_MAX_CONNECTIONS}"),
            );
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL with the password (in the user info or a `password=` query
/// parameter) replaced by `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>{host}"),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=<redacted>"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Removes every occurrence of the configured password (raw and
/// percent-encoded) from a message, e.g. a driver's connect error.
pub fn scrub(message: &str, db: &DatabaseConfig) -> String {
    let mut out = message.to_owned();
    let mut secrets: Vec<String> = Vec::new();
    if let Some(p) = &db.password {
        secrets.push(p.expose().to_owned());
        secrets.push(encode(p.expose()));
    }
    if let Some(u) = &db.url
        && let Some((_, rest)) = u.split_once("://")
    {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@')
            && let Some((_, pw)) = authority[..at].split_once(':')
        {
            secrets.push(pw.to_owned());
        }
    }
    for s in secrets.into_iter().filter(|s| !s.is_empty()) {
        out = out.replace(&s, "<redacted>");
    }
    out
}

impl ConfigError {
    /// Helper for tests: does any error name `field` and mention `text`?
    #[cfg(test)]
    pub(crate) fn any(errs: &[ConfigError], field: &str, text: &str) -> bool {
        errs.iter().any(|e| e.field == field && e.message.contains(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};

    fn cfg(yaml: &str) -> Config {
        Config::from_yaml(yaml).unwrap()
    }

    fn errors(yaml: &str) -> Vec<ConfigError> {
        cfg(yaml).validate(Role::All).err().unwrap_or_default()
    }

    #[test]
    fn no_section_is_sqlite_under_data_dir() {
        let c = cfg("data_dir: /srv/strata\n");
        assert_eq!(
            c.database_target(),
            DatabaseTarget::Sqlite {
                url: "sqlite:///srv/strata/meta.db?mode=rwc".into()
            }
        );
        assert!(errors("data_dir: /srv/strata\n").is_empty());
    }

    #[test]
    fn sqlite_url_is_sqlite() {
        let c = cfg("database: {url: 'sqlite:///tmp/m.db'}\n");
        assert_eq!(
            c.database_target(),
            DatabaseTarget::Sqlite {
                url: "sqlite:///tmp/m.db".into()
            }
        );
        assert!(errors("database: {url: 'sqlite:///tmp/m.db'}\n").is_empty());
    }

    #[test]
    fn postgres_urls_are_postgres_with_default_pool() {
        for scheme in ["postgres", "postgresql"] {
            let y = format!("database: {{url: '{scheme}://u:pw@db:5432/strata'}}\n");
            let t = cfg(&y).database_target();
            assert_eq!(
                t,
                DatabaseTarget::Postgres {
                    url: format!("{scheme}://u:pw@db:5432/strata"),
                    max_connections: 16
                }
            );
            assert!(errors(&y).is_empty(), "{:?}", errors(&y));
        }
        let t = cfg("database: {url: 'postgres://db/x', max_connections: 4}\n").database_target();
        assert!(matches!(t, DatabaseTarget::Postgres { max_connections: 4, .. }));
    }

    #[test]
    fn fields_imply_postgres() {
        let t = cfg("database: {host: 127.0.0.1, user: postgres, dbname: d1}\n").database_target();
        assert_eq!(
            t,
            DatabaseTarget::Postgres {
                url: "postgres://postgres@127.0.0.1:5432/d1".into(),
                max_connections: 16
            }
        );
        let t = cfg(
            "database: {host: db, port: 6543, user: 'a b', password: 'p@ss:w/rd', dbname: x, max_connections: 3}\n",
        )
        .database_target();
        assert_eq!(
            t,
            DatabaseTarget::Postgres {
                url: "postgres://a%20b:p%40ss%3Aw%2Frd@db:6543/x".into(),
                max_connections: 3
            }
        );
        let t = cfg("database: {host: /var/run/postgresql, dbname: x}\n").database_target();
        assert_eq!(t.url(), "postgres://localhost:5432/x?host=%2Fvar%2Frun%2Fpostgresql");
        let t = cfg("database: {host: '::1'}\n").database_target();
        assert_eq!(t.url(), "postgres://[::1]:5432");
    }

    #[test]
    fn password_is_env_expanded_and_never_shown() {
        // Unset in the environment, so the `:-` default applies.
        let c = cfg("database:\n  host: db\n  user: u\n  password: ${STRATA_TEST_PG_PASSWORD_XYZ:-hunter2secret}\n");
        let t = c.database_target();
        assert!(t.url().contains("hunter2secret"));
        for shown in [
            format!("{t}"),
            format!("{t:?}"),
            format!("{:?}", c.database),
            format!("{c:?}"),
        ] {
            assert!(!shown.contains("hunter2secret"), "{shown}");
        }
        assert!(format!("{t}").contains("postgres://u:<redacted>@db:5432"), "{t}");
        let c = cfg("database: {url: 'postgres://u:hunter2secret@db/x?password=hunter2secret'}\n");
        for shown in [format!("{}", c.database_target()), format!("{:?}", c.database)] {
            assert!(!shown.contains("hunter2secret"), "{shown}");
        }
        let msg = scrub("auth failed for hunter2secret", &c.database);
        assert_eq!(msg, "auth failed for <redacted>");
    }

    #[test]
    fn url_and_fields_together_are_rejected() {
        let e = errors("database: {url: 'postgres://db/x', host: db}\n");
        assert!(ConfigError::any(&e, "database", "both `url` and `host`"), "{e:?}");
        let e = errors("database: {url: 'sqlite:///x.db', port: 5432, dbname: x}\n");
        assert!(ConfigError::any(&e, "database", "`port`, `dbname`"), "{e:?}");
    }

    #[test]
    fn unknown_scheme_is_rejected_and_redacted() {
        let e = errors("database: {url: 'mysql://u:secretpw@db/x'}\n");
        assert!(ConfigError::any(&e, "database.url", "unknown scheme"), "{e:?}");
        assert!(!format!("{e:?}").contains("secretpw"), "{e:?}");
        let e = errors("database: {url: 'meta.db'}\n");
        assert!(ConfigError::any(&e, "database.url", "sqlite://PATH"), "{e:?}");
    }

    #[test]
    fn postgres_url_without_server_is_rejected() {
        let e = errors("database: {url: 'postgres://'}\n");
        assert!(ConfigError::any(&e, "database.url", "names no server"), "{e:?}");
    }

    #[test]
    fn port_zero_and_pool_zero_are_rejected() {
        let e = errors("database: {host: db, port: 0}\n");
        assert!(ConfigError::any(&e, "database.port", "between 1 and 65535"), "{e:?}");
        let e = errors("database: {host: db, max_connections: 0}\n");
        assert!(ConfigError::any(&e, "database.max_connections", "at least 1"), "{e:?}");
        let e = Config::from_yaml("database: {host: db, port: 70000}\n").unwrap_err();
        assert!(e.iter().any(|e| e.field == "database.port"), "{e:?}");
    }

    #[test]
    fn fields_need_a_host_and_non_empty_values() {
        let e = errors("database: {user: u, dbname: d}\n");
        assert!(ConfigError::any(&e, "database.host", "is required"), "{e:?}");
        let e = errors("database: {host: '', user: '', dbname: ''}\n");
        assert!(ConfigError::any(&e, "database.host", "must not be empty"), "{e:?}");
        assert!(ConfigError::any(&e, "database.user", "must not be empty"), "{e:?}");
        assert!(ConfigError::any(&e, "database.dbname", "must not be empty"), "{e:?}");
    }

    #[test]
    fn pool_size_is_for_postgres_only() {
        let e = errors("database: {max_connections: 4}\n");
        assert!(
            ConfigError::any(&e, "database.max_connections", "only to PostgreSQL"),
            "{e:?}"
        );
        let e = errors("database: {url: 'sqlite:///x.db', max_connections: 4}\n");
        assert!(ConfigError::any(&e, "database.max_connections", "SQLite"), "{e:?}");
    }

    #[test]
    fn unknown_database_keys_are_rejected() {
        let e = Config::from_yaml("database: {host: db, driver: postgres}\n").unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.field.starts_with("database") && e.message.contains("driver")),
            "{e:?}"
        );
    }

    #[test]
    fn redact_url_cases() {
        assert_eq!(redact_url("postgres://u:p@h:1/d"), "postgres://u:<redacted>@h:1/d");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact_url("postgres://h/d?password=x&sslmode=disable"),
            "postgres://h/d?password=<redacted>&sslmode=disable"
        );
        assert_eq!(redact_url("sqlite:///a/b.db?mode=rwc"), "sqlite:///a/b.db?mode=rwc");
    }
}
