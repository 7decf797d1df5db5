//! The gateway's artifact store: content-addressed files under
//! `artifacts/`, named by their checked [`Digest`], written and deleted on
//! blocking threads (an artifact may be 256 MiB: writing and fsyncing it on
//! an async thread would stall every session on that thread).
//!
//! With PostgreSQL the bytes are kept in the database too
//! (`artifact_blobs`), and the files are this gateway's copy: a standby
//! that takes over fetches the ones it lacks when it becomes active
//! ([`ArtifactStore::fetch_missing`]), so no shared filesystem is needed
//! and one backup of the database holds the whole fleet.
//!
//! [`ArtifactStore::hold`] is held while an artifact is stored and its
//! release recorded, and while unused artifacts are deleted: a deploy never
//! loses its artifact to a prune running beside it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use schema::artifact::Digest;

use super::FleetError;

pub struct ArtifactStore {
    dir: PathBuf,
    guard: tokio::sync::Mutex<()>,
    /// The store that keeps the bytes too (PostgreSQL), if any.
    shared: Option<db::SqlDb>,
}

impl ArtifactStore {
    /// The store under `data/artifacts`, created if missing.
    pub fn open(data: &Path, shared: Option<db::SqlDb>) -> Result<ArtifactStore, FleetError> {
        let dir = data.join("artifacts");
        std::fs::create_dir_all(&dir)
            .map_err(|e| FleetError::Io(format!("cannot create {}: {e}", dir.display())))?;
        Ok(ArtifactStore {
            dir,
            guard: tokio::sync::Mutex::new(()),
            shared,
        })
    }

    /// Where the artifact `d` is (or would be) kept.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("{d}.wasm"))
    }

    /// Keeps prunes away while held.
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.guard.lock().await
    }

    /// Stores `bytes` as `d` (unless a file with those bytes is there
    /// already): a temporary file, fsynced, renamed into place.
    pub async fn write(&self, d: &Digest, bytes: Vec<u8>) -> Result<(), FleetError> {
        if let Some(db) = &self.shared {
            let (digest, b) = (d.to_string(), bytes.clone());
            db.call(move |c| crate::store::put_artifact_bytes(c, &digest, b))
                .await?;
        }
        self.write_file(d, bytes).await
    }

    /// Copies from the shared store the artifacts of `digests` this gateway
    /// has no file of (it became active after another gateway stored them).
    /// A copy whose bytes do not match its digest is skipped and said.
    pub async fn fetch_missing(&self, digests: Vec<String>) -> Result<usize, FleetError> {
        let Some(db) = &self.shared else {
            return Ok(0);
        };
        let mut fetched = 0;
        for d in digests.iter().filter_map(|d| Digest::parse(d).ok()) {
            if self.exists(&d).await {
                continue;
            }
            let name = d.to_string();
            let Some(bytes) = db
                .call(move |c| crate::store::artifact_bytes(c, &name))
                .await?
            else {
                continue;
            };
            if Digest::of(&bytes) != d {
                tracing::error!(digest = %d, "the database's copy of an artifact does not match its digest; not used");
                continue;
            }
            self.write_file(&d, bytes).await?;
            fetched += 1;
        }
        Ok(fetched)
    }

    async fn write_file(&self, d: &Digest, bytes: Vec<u8>) -> Result<(), FleetError> {
        let (path, d) = (self.path(d), d.clone());
        tokio::task::spawn_blocking(move || {
            let same = std::fs::read(&path).is_ok_and(|b| Digest::of(&b) == d);
            if same {
                return Ok(());
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| {
                    FleetError::Io(format!(
                        "cannot store the artifact in {}: {e}",
                        path.display()
                    ))
                })
        })
        .await
        .map_err(|e| FleetError::Io(format!("the artifact writer stopped: {e}")))?
    }

    /// The size of a stored artifact (0 when it is gone).
    pub async fn size(&self, d: &Digest) -> u64 {
        tokio::fs::metadata(self.path(d))
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub async fn exists(&self, d: &Digest) -> bool {
        tokio::fs::try_exists(self.path(d)).await.unwrap_or(false)
    }

    /// Deletes the artifacts `gone` (digests that do not parse are skipped:
    /// no path is built from them). Failing to is logged: it costs disk,
    /// not correctness. The caller holds [`ArtifactStore::hold`].
    pub async fn remove(&self, gone: Vec<String>) {
        let paths: Vec<(String, PathBuf)> = gone
            .into_iter()
            .filter_map(|d| Digest::parse(&d).ok())
            .map(|d| (d.to_string(), self.path(&d)))
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for (d, path) in paths {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(digest = %d, "deleted an artifact no kept release uses"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "could not delete an unused artifact")
                    }
                }
            }
        })
        .await;
    }

    /// Deletes the files no release records (left by a crash between
    /// writing a file and recording it). The caller holds
    /// [`ArtifactStore::hold`].
    pub async fn remove_strays(&self, known: HashSet<String>) {
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stray = match name.strip_suffix(".wasm") {
                    Some(d) => !known.contains(d),
                    None => name.ends_with(".tmp"),
                };
                if stray && std::fs::remove_file(e.path()).is_ok() {
                    tracing::info!(file = %name, "deleted an artifact file no release records");
                }
            }
        })
        .await;
    }
}
