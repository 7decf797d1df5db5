//! Who may connect: public keys enrolled with a role.
//!
//! `host` keys may open the agent tunnel and nothing else; `operator` keys
//! may run every command; `viewer` keys only the read commands. Keys live in
//! `gateway.db`, so enrolling or removing one needs no restart.

use db::{Row, Sql, SqlError, args};
use russh::keys::{HashAlg, PublicKey};
use serde::Serialize;

pub use schema::Role;

/// An enrolled key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyEntry {
    pub name: String,
    pub role: Role,
    pub fingerprint: String,
    pub public_key: String,
    pub added: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an OpenSSH public key ({0}); pass the .pub file, e.g. ~/.ssh/id_ed25519.pub")]
    Parse(String),
    #[error("invalid key name {0:?}: use letters, digits, '-', '_', '.' and '@'")]
    Name(String),
    #[error("that key is already enrolled as {name} ({role})")]
    Duplicate { name: String, role: Role },
    #[error("a key named {0} is already enrolled; remove it first or pick another --name")]
    NameTaken(String),
    #[error("no key named {0}; `ssh-gateway keys list` shows them")]
    Unknown(String),
    #[error("database error: {0}")]
    Sql(#[from] SqlError),
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses the first key line of an OpenSSH .pub file (or authorized_keys line).
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| KeyError::Parse("the file is empty".into()))?;
    PublicKey::from_openssh(line).map_err(|e| KeyError::Parse(e.to_string()))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

pub fn add(
    c: &dyn Sql,
    role: Role,
    key: &PublicKey,
    name: &str,
    now: i64,
) -> Result<KeyEntry, KeyError> {
    if !valid_name(name) {
        return Err(KeyError::Name(name.to_string()));
    }
    let fp = fingerprint(key);
    if let Some(e) = by_fingerprint(c, &fp)? {
        return Err(KeyError::Duplicate {
            name: e.name,
            role: e.role,
        });
    }
    if c.query_opt("SELECT name FROM keys WHERE name = ?1", args![name])?
        .is_some()
    {
        return Err(KeyError::NameTaken(name.to_string()));
    }
    let line = key
        .to_openssh()
        .map_err(|e| KeyError::Parse(e.to_string()))?;
    c.execute(
        "INSERT INTO keys (name, role, public_key, fingerprint, added) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![name, role.to_string(), &line, &fp, now],
    )?;
    Ok(KeyEntry {
        name: name.to_string(),
        role,
        fingerprint: fp,
        public_key: line,
        added: schema::time::rfc3339(now),
    })
}

fn entry(r: &Row) -> Result<KeyEntry, SqlError> {
    let role: String = r.get(1)?;
    Ok(KeyEntry {
        name: r.get(0)?,
        role: role.parse().unwrap_or(Role::Viewer),
        public_key: r.get(2)?,
        fingerprint: r.get(3)?,
        added: schema::time::rfc3339(r.get(4)?),
    })
}

pub fn by_fingerprint(c: &dyn Sql, fp: &str) -> Result<Option<KeyEntry>, SqlError> {
    c.query_opt(
        "SELECT name, role, public_key, fingerprint, added FROM keys WHERE fingerprint = ?1",
        args![fp],
    )?
    .map(|r| entry(&r))
    .transpose()
}

pub fn list(c: &dyn Sql) -> Result<Vec<KeyEntry>, SqlError> {
    c.query(
        "SELECT name, role, public_key, fingerprint, added FROM keys ORDER BY name",
        &[],
    )?
    .iter()
    .map(entry)
    .collect()
}

/// Changes the role of the key `name`; returns the role it had.
pub fn set_role(c: &dyn Sql, name: &str, role: Role) -> Result<Role, KeyError> {
    let was: String = c
        .query_opt("SELECT role FROM keys WHERE name = ?1", args![name])?
        .ok_or_else(|| KeyError::Unknown(name.to_string()))?
        .get(0)?;
    c.execute(
        "UPDATE keys SET role = ?2 WHERE name = ?1",
        args![name, role.to_string()],
    )?;
    Ok(was.parse().unwrap_or(Role::Viewer))
}

pub fn remove(c: &dyn Sql, name: &str) -> Result<(), KeyError> {
    match c.execute("DELETE FROM keys WHERE name = ?1", args![name])? {
        0 => Err(KeyError::Unknown(name.to_string())),
        _ => Ok(()),
    }
}
