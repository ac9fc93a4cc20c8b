//! The database URL, parsed once: which backend, and what its driver is given.

use std::fmt;
use std::str::FromStr;

use super::SetupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL/MariaDB",
        }
    }

    /// Whether this build can talk to the backend (cargo features).
    pub fn compiled_in(self) -> bool {
        match self {
            Self::Sqlite => true,
            Self::Postgres => cfg!(feature = "postgres"),
            Self::Mysql => cfg!(feature = "mysql"),
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }
}

/// A database URL for a backend this build has. It may hold a password, so
/// `Debug` and `Display` show it with the password hidden; only `as_str`
/// and the driver see it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// As given.
    url: String,
    /// What the driver opens: the URL, or for SQLite the file's path.
    target: String,
}

impl DatabaseUrl {
    /// `postgres://` or `postgresql://`, `mysql://`, and `sqlite://path`,
    /// `sqlite:path` or a bare path. `:memory:` is refused: every pooled
    /// connection would see a different database.
    pub fn parse(url: &str) -> Result<Self, SetupError> {
        let (backend, target) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url)
        } else if url.starts_with("mysql://") {
            (Backend::Mysql, url)
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            if path.is_empty() || path.contains("://") || path == ":memory:" {
                return Err(SetupError::UnsupportedUrl(redact(url)));
            }
            (Backend::Sqlite, path)
        };
        if !backend.compiled_in() {
            return Err(SetupError::NotCompiledIn(backend.label(), backend.feature()));
        }
        Ok(Self { backend, url: url.to_string(), target: target.to_string() })
    }

    /// The URL as given, password and all: for handing to another program.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }
}

impl FromStr for DatabaseUrl {
    type Err = SetupError;

    fn from_str(url: &str) -> Result<Self, SetupError> {
        Self::parse(url)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.target))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        let sqlite = |u: &str| DatabaseUrl::parse(u).map(|d| (d.backend, d.target));
        assert_eq!(sqlite("sqlite://parlor.db").unwrap(), (Backend::Sqlite, "parlor.db".into()));
        assert_eq!(sqlite("sqlite:///var/lib/p.db").unwrap(), (Backend::Sqlite, "/var/lib/p.db".into()));
        assert_eq!(sqlite("data/p.db").unwrap(), (Backend::Sqlite, "data/p.db".into()));
        assert!(matches!(DatabaseUrl::parse("redis://localhost"), Err(SetupError::UnsupportedUrl(_))));
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
        for (url, backend) in [("postgres://h/db", Backend::Postgres), ("mysql://h/db", Backend::Mysql)] {
            match DatabaseUrl::parse(url) {
                Ok(parsed) => assert_eq!(parsed.backend, backend),
                Err(e) => assert!(!backend.compiled_in() && matches!(e, SetupError::NotCompiledIn(..))),
            }
        }
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:hunter2@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("parlor.db"), "parlor.db");
        if Backend::Postgres.compiled_in() {
            let url = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
            assert!(!format!("{url} {url:?}").contains("hunter2"));
            assert!(url.as_str().contains("hunter2"));
        }
    }
}
