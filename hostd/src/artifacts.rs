//! Uploaded code and its compiled form, content-addressed on disk.
//!
//! ```text
//! DIR/artifacts/<sha256>.wasm          what was deployed, byte for byte
//! DIR/cache/<sha256>-<engine>.cwasm    Cranelift output for this engine
//! ```
//!
//! A `.cwasm` is machine code that wasmtime maps and runs without checking
//! it, so one is loaded only if `hostd.db` records its sha256 and the file
//! still has it (a truncated, swapped or foreign file is recompiled from the
//! artifact instead), and only if its key names this engine's compatibility
//! hash (a hostd upgrade or another CPU makes a new key).

use schema::artifact::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use crate::engine::{self, ArtifactError, Form};
use crate::runtime::Loaded;
use crate::store;
use db::{Db, DbError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the stored artifact sha256:{0} is missing or corrupt on this host (its bytes no longer match its digest); deploy it again"
    )]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("compilation was cancelled: {0}")]
    Join(String),
}

/// Code ready to run, and what it took to get it.
pub struct Compiled {
    pub digest: String,
    pub form: Form,
    pub loaded: Loaded,
    /// 0 when the cache had it.
    pub compile_ms: u64,
}

#[derive(Clone)]
pub struct Artifacts {
    inner: Arc<Inner>,
}

struct Inner {
    artifacts: PathBuf,
    cache: PathBuf,
    engine: Engine,
    compat: String,
    db: Db,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl Artifacts {
    pub fn open(dir: &Path, engine: Engine, db: Db) -> Result<Artifacts, StoreError> {
        let artifacts = dir.join("artifacts");
        let cache = dir.join("cache");
        for d in [&artifacts, &cache] {
            std::fs::create_dir_all(d).map_err(io("cannot create", d))?;
        }
        let compat = engine::compat_hash(&engine);
        Ok(Artifacts {
            inner: Arc::new(Inner {
                artifacts,
                cache,
                engine,
                compat,
                db,
            }),
        })
    }

    pub fn compat(&self) -> &str {
        &self.inner.compat
    }

    /// Where the artifact `digest` is kept. A string that is not a digest
    /// (a damaged store row) names no file: it is refused as corrupt.
    fn artifact_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let d = Digest::parse(digest).map_err(|_| StoreError::Corrupt(digest.to_string()))?;
        Ok(self.inner.artifacts.join(format!("{d}.wasm")))
    }

    fn cwasm_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let d = Digest::parse(digest).map_err(|_| StoreError::Corrupt(digest.to_string()))?;
        Ok(self
            .inner
            .cache
            .join(format!("{d}-{}.cwasm", self.inner.compat)))
    }

    /// Stores `bytes`, compiles them (unless this engine's code for them is
    /// cached) and loads the result.
    pub async fn put(&self, bytes: Vec<u8>) -> Result<Compiled, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.put_blocking(bytes))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    fn put_blocking(&self, bytes: Vec<u8>) -> Result<Compiled, StoreError> {
        let form = engine::classify(&bytes)?;
        let digest = engine::digest(&bytes);
        if let Some((loaded, _)) = self.load_cached(&digest)? {
            // Already have it compiled; make sure the source is kept too.
            self.write_artifact(&digest, &bytes, form)?;
            return Ok(Compiled {
                digest,
                form,
                loaded,
                compile_ms: 0,
            });
        }
        let (loaded, compile_ms) = self.compile_and_cache(&digest, &bytes)?;
        // Only code that compiled is kept: a bad upload leaves nothing behind.
        self.write_artifact(&digest, &bytes, form)?;
        Ok(Compiled {
            digest,
            form,
            loaded,
            compile_ms,
        })
    }

    /// Loads the code of a stored artifact: from the cache when it is valid
    /// for this engine, else compiled again from the stored artifact.
    pub async fn load(&self, digest: &str) -> Result<Compiled, StoreError> {
        let this = self.clone();
        let digest = digest.to_string();
        tokio::task::spawn_blocking(move || {
            if let Some((loaded, form)) = this.load_cached(&digest)? {
                return Ok(Compiled {
                    digest,
                    form,
                    loaded,
                    compile_ms: 0,
                });
            }
            let path = this.artifact_path(&digest)?;
            let bytes = std::fs::read(&path).map_err(|_| StoreError::Corrupt(digest.clone()))?;
            if engine::digest(&bytes) != digest {
                return Err(StoreError::Corrupt(digest));
            }
            tracing::info!(digest = %digest, "no valid compiled code for this engine; compiling again");
            let form = engine::classify(&bytes)?;
            let (loaded, compile_ms) = this.compile_and_cache(&digest, &bytes)?;
            Ok(Compiled {
                digest,
                form,
                loaded,
                compile_ms,
            })
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    fn write_artifact(&self, digest: &str, bytes: &[u8], form: Form) -> Result<(), StoreError> {
        let path = self.artifact_path(digest)?;
        let intact = std::fs::read(&path).is_ok_and(|b| engine::digest(&b) == digest);
        if !intact {
            write_atomically(&path, bytes)?;
        }
        let (d, f, n) = (digest.to_string(), form.as_str(), bytes.len() as u64);
        let now = schema::time::now_millis();
        self.inner
            .db
            .call_blocking(move |c| store::record_artifact(c, &d, n, f, now))?;
        Ok(())
    }

    fn compile_and_cache(&self, digest: &str, bytes: &[u8]) -> Result<(Loaded, u64), StoreError> {
        let pre = engine::precompile(&self.inner.engine, bytes);
        engine::give_back_memory();
        let pre = pre?;
        let compile_ms = pre.compile_ms;
        let path = self.cwasm_path(digest)?;
        write_atomically(&path, &pre.cwasm)?;
        let sha = engine::digest(&pre.cwasm);
        let loaded = self.deserialize(&pre.cwasm)?;
        let (d, e, size) = (
            digest.to_string(),
            self.inner.compat.clone(),
            pre.cwasm.len() as u64,
        );
        let now = schema::time::now_millis();
        self.inner.db.call_blocking(move |c| {
            store::record_compiled(c, &d, &e, &sha, size, compile_ms, now)
        })?;
        tracing::info!(digest, compile_ms, bytes = size, "compiled with Cranelift");
        Ok((loaded, compile_ms))
    }

    /// The cached code of `digest`, if the cache has a verified file for this engine.
    fn load_cached(&self, digest: &str) -> Result<Option<(Loaded, Form)>, StoreError> {
        let (d, e) = (digest.to_string(), self.inner.compat.clone());
        let Some(sha) = self
            .inner
            .db
            .call_blocking(move |c| store::compiled_sha(c, &d, &e))?
        else {
            return Ok(None);
        };
        let path = self.cwasm_path(digest)?;
        let Ok(bytes) = std::fs::read(&path) else {
            tracing::warn!(path = %path.display(), "compiled code is recorded but missing; compiling again");
            return Ok(None);
        };
        if engine::digest(&bytes) != sha {
            tracing::warn!(path = %path.display(), "compiled code does not match its recorded sha256; compiling again");
            return Ok(None);
        }
        match self.deserialize(&bytes) {
            Ok(loaded) => {
                let form = match loaded {
                    Loaded::Module(_) => Form::Module,
                    Loaded::Component(_) => Form::Component,
                };
                Ok(Some((loaded, form)))
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached code refused by this engine; compiling again");
                Ok(None)
            }
        }
    }

    fn deserialize(&self, cwasm: &[u8]) -> Result<Loaded, StoreError> {
        let invalid =
            |e: wasmtime::Error| StoreError::Artifact(ArtifactError::Invalid(format!("{e:#}")));
        // Safety: `cwasm` is either output of `Engine::precompile_*` on this
        // engine in this process, or a cache file whose sha256 matches the
        // one recorded in hostd.db when this hostd wrote it. Either way it is
        // code wasmtime produced, not bytes from outside; wasmtime still
        // checks its target and settings against the engine and refuses
        // foreign code with an error.
        match Engine::detect_precompiled(cwasm) {
            Some(Precompiled::Module) => Ok(Loaded::Module(
                // SAFETY: wasmtime's own output, checked as said above.
                unsafe { Module::deserialize(&self.inner.engine, cwasm) }.map_err(invalid)?,
            )),
            Some(Precompiled::Component) => Ok(Loaded::Component(
                // SAFETY: wasmtime's own output, checked as said above.
                unsafe { Component::deserialize(&self.inner.engine, cwasm) }.map_err(invalid)?,
            )),
            None => Err(StoreError::Artifact(ArtifactError::Invalid(
                "compiled code has no wasmtime header".into(),
            ))),
        }
    }

    /// Deletes stored and compiled files whose digest is not in `keep`.
    pub async fn retain(&self, keep: Vec<String>) -> Result<(), StoreError> {
        let gone = self
            .inner
            .db
            .call(move |c| store::forget_artifacts_except(c, &keep))
            .await?;
        for d in gone {
            let Ok(path) = self.artifact_path(&d) else {
                continue;
            };
            let _ = std::fs::remove_file(path);
            if let Ok(entries) = std::fs::read_dir(&self.inner.cache) {
                for e in entries.flatten() {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{d}-"))
                    {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            tracing::debug!(digest = %d, "deleted code no kept release uses");
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new
/// one, never half of one: a temporary file, fsync, rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io("cannot create", &tmp))?;
    f.write_all(bytes).map_err(io("cannot write", &tmp))?;
    f.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("cannot rename into place", path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
