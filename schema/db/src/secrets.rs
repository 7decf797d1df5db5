//! Config secrets sealed at rest. A secret's value is stored as
//! `sealed:v1:<base64 of nonce ‖ ciphertext>` (XChaCha20-Poly1305, the
//! app and key name bound in as associated data), under a 32-byte key kept
//! in a file apart from the database: a copied database or backup holds no
//! secret in the clear. Every gateway of a fleet is given the same key
//! file; each host keeps its own (a secret reaches a host only inside the
//! SSH tunnel, and the host seals it again).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// What a sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "secrets key {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "secrets key {path} is {len} bytes, not {KEY_LEN}: it is not a cranefleet secrets key (or it was damaged); restore it from where it was kept"
    )]
    Length { path: PathBuf, len: usize },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error(
        "a sealed secret could not be opened: it was sealed with another secrets key, or it was altered; give this daemon the key file it was sealed with (--secrets-key)"
    )]
    Open,
    #[error("a sealed secret is malformed: {0}")]
    Malformed(&'static str),
}

/// The key that seals and opens secrets. Its bytes are never printed.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Reads the key at `path`, or creates one there (mode 0600 from the
    /// first byte) when the file does not exist. A key readable by other
    /// users is refused, as OpenSSH refuses such a private key.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretsError::Mode {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                let bytes = std::fs::read(path).map_err(io)?;
                SecretKey::from_bytes(&bytes).ok_or(SecretsError::Length {
                    path: path.to_path_buf(),
                    len: bytes.len(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| SecretsError::Random(e.to_string()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                f.write_all(&key).map_err(io)?;
                f.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "created a secrets key: keep a copy apart from the database");
                SecretKey::from_bytes(&key).ok_or(SecretsError::Length {
                    path: path.to_path_buf(),
                    len: KEY_LEN,
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Option<SecretKey> {
        (bytes.len() == KEY_LEN).then(|| SecretKey {
            cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(bytes)),
        })
    }

    /// Seals `value`, bound to `context` (e.g. `app/KEY`): a sealed value
    /// moved to another app or key does not open.
    pub fn seal(&self, value: &str, context: &str) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SecretsError::Random(e.to_string()))?;
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Open)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{SEALED_PREFIX}{}", B64.encode(out)))
    }

    /// Opens what [`seal`](Self::seal) made with the same key and context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretsError> {
        let b64 = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretsError::Malformed("it lacks the sealed:v1: prefix"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| SecretsError::Malformed("it is not base64"))?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SecretsError::Malformed("it is too short"));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Open)?;
        String::from_utf8(pt).map_err(|_| SecretsError::Malformed("it is not UTF-8"))
    }
}

/// What a secret is sealed to: its app and key, so a sealed value moved
/// to another app or key does not open.
pub fn context(app: &str, key: &str) -> String {
    format!("{app}/{key}")
}

/// Seals every secret of `manifest` not sealed yet (one from `config set
/// --secret`, or one that arrived inside the tunnel).
pub fn seal_manifest(key: &SecretKey, manifest: &mut schema::Manifest) -> Result<(), SecretsError> {
    let app = manifest.name.clone();
    for (k, v) in manifest.config.iter_mut() {
        if v.secret && !v.value.starts_with(SEALED_PREFIX) {
            v.value = key.seal(&v.value, &context(&app, k))?;
        }
    }
    Ok(())
}

/// `manifest` with its secrets opened: what goes to a host inside the
/// tunnel, or into an app's `wasi:config`.
pub fn open_manifest(
    key: &SecretKey,
    manifest: &schema::Manifest,
) -> Result<schema::Manifest, SecretsError> {
    let mut m = manifest.clone();
    for (k, v) in m.config.iter_mut() {
        if v.secret && v.value.starts_with(SEALED_PREFIX) {
            v.value = key.open(&v.value, &context(&manifest.name, k))?;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context_and_never_shows_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let key = SecretKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = key.seal("hunter2-password", "api/DB_PASSWORD").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        // Two seals of one value differ (random nonce).
        assert_ne!(
            sealed,
            key.seal("hunter2-password", "api/DB_PASSWORD").unwrap()
        );
        // The same file again opens it.
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(
            again.open(&sealed, "api/DB_PASSWORD").unwrap(),
            "hunter2-password"
        );
        // Another app's or key's context does not.
        assert!(matches!(
            again.open(&sealed, "web/DB_PASSWORD"),
            Err(SecretsError::Open)
        ));
        // Another key does not.
        let other = SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
        let e = other.open(&sealed, "api/DB_PASSWORD").unwrap_err();
        assert!(e.to_string().contains("--secrets-key"), "{e}");
        // A flipped byte does not.
        let mut raw = B64.decode(&sealed[SEALED_PREFIX.len()..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{SEALED_PREFIX}{}", B64.encode(raw));
        assert!(matches!(
            key.open(&tampered, "api/DB_PASSWORD"),
            Err(SecretsError::Open)
        ));
        assert!(matches!(
            key.open("plain", "x"),
            Err(SecretsError::Malformed(_))
        ));
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }

    #[test]
    fn a_key_file_others_can_read_or_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        SecretKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SecretKey::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::write(&path, b"short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = SecretKey::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("is 5 bytes"), "{e}");
    }
}
