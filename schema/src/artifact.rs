//! What an uploaded artifact is and what it exports, read without compiling.
//!
//! Both the gateway (which never runs apps) and hostd check a deploy against
//! its kind before anything is stored or compiled, and the refusal says what
//! the artifact exports and what the kind needs, which is what the person
//! who built it has to change.

use wasmparser::{ComponentExternalKind, ExternalKind, Parser, Payload};

use crate::types::AppKind;

/// A core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Module,
    Component,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Module => "module",
            Form::Component => "component",
        }
    }
}

/// Why bytes are not a deployable artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a WebAssembly module or component: it does not start with \\0asm (got {0})")]
    NotWasm(String),
    #[error(
        "this is a precompiled .cwasm file; deploy the .wasm instead, so each host compiles it for its own CPU"
    )]
    Precompiled,
    #[error("the WebAssembly binary is invalid or truncated: {0}")]
    Invalid(String),
}

/// Classifies `bytes` by their header, without compiling.
pub fn classify(bytes: &[u8]) -> Result<Form, ArtifactError> {
    // wasmtime's precompiled code is an ELF object.
    if bytes.starts_with(b"\x7fELF") {
        return Err(ArtifactError::Precompiled);
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(ArtifactError::NotWasm(if head.is_empty() {
            "an empty file".into()
        } else {
            format!("bytes {}", head.join(" "))
        }));
    }
    // Version 1 with layer 0 is a core module; layer 1 is a component.
    match bytes[6..8] {
        [0, 0] => Ok(Form::Module),
        [1, 0] => Ok(Form::Component),
        _ => Err(ArtifactError::Invalid(format!(
            "unknown binary version/layer {:02x}{:02x} {:02x}{:02x}",
            bytes[4], bytes[5], bytes[6], bytes[7]
        ))),
    }
}

/// sha256 of `bytes` as lowercase hex: the content address of an artifact
/// (shown as `sha256:<hex>`), the same on hosts and the gateway.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether `s` is a digest as [`digest`] writes it: 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A checked artifact digest: 64 lowercase hex digits, nothing else. File
/// names of artifacts and compiled code are built from this type only, so a
/// digest a peer sent (`../../etc/passwd`) never reaches a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// A string that is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an artifact digest (64 lowercase hex digits of sha256)")]
pub struct DigestError(pub String);

impl Digest {
    /// Checks `s`; a longer string is cut in the error.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if is_digest(s) {
            Ok(Digest(s.to_string()))
        } else {
            Err(DigestError(s.chars().take(80).collect()))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(digest(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as progress and tables show it.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

const CLI_RUN: &str = "wasi:cli/run@0.2";
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2";
/// Spin's Redis trigger interface (the unversioned package Spin accepts).
pub const MESSAGE_HANDLER: &str = "fermyon:spin/inbound-redis";

/// The top-level exports of a module or component.
#[derive(Debug, Clone)]
pub struct Exports {
    pub form: Form,
    /// Export names; functions of a module carry no marker, others are
    /// suffixed with their kind, e.g. `memory (memory)`.
    pub names: Vec<String>,
    has_start: bool,
    /// The largest minimum size any memory of the artifact (or of a module
    /// inside a component) declares, in bytes: what instantiating it takes
    /// at the least.
    pub min_memory_bytes: u64,
    /// The largest minimum size any table declares, in elements.
    pub min_table_elements: u64,
    /// Functions defined, in all its modules: what compiling it costs.
    pub functions: u64,
    /// Bytes of code, in all its modules.
    pub code_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KindError(pub String);

/// Reads the top-level exports of `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<Exports, ArtifactError> {
    let form = classify(bytes)?;
    let mut names = Vec::new();
    let mut has_start = false;
    let mut depth = 0usize;
    let mut min_memory_bytes = 0u64;
    let (mut functions, mut code_bytes, mut min_table_elements) = (0u64, 0u64, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        match payload {
            Payload::FunctionSection(s) => functions += u64::from(s.count()),
            Payload::TableSection(s) => {
                for t in s {
                    let t = t.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
                    min_table_elements = min_table_elements.max(t.ty.initial);
                }
            }
            Payload::CodeSectionStart { size, .. } => code_bytes += u64::from(size),
            Payload::MemorySection(s) => {
                for m in s {
                    let m = m.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
                    let page = 1u64 << m.page_size_log2.unwrap_or(16);
                    min_memory_bytes = min_memory_bytes.max(m.initial.saturating_mul(page));
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ExportSection(s) if depth == 0 => {
                for e in s {
                    let e = e.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
                    if e.kind == ExternalKind::Func {
                        has_start |= e.name == "_start";
                        names.push(e.name.to_string());
                    } else {
                        names.push(format!("{} ({})", e.name, kind_word(e.kind)));
                    }
                }
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                for e in s {
                    let e = e.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
                    if e.kind == ComponentExternalKind::Instance {
                        names.push(e.name.name.to_string());
                    } else {
                        names.push(format!("{} ({:?})", e.name.name, e.kind).to_lowercase());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Exports {
        form,
        names,
        has_start,
        min_memory_bytes,
        min_table_elements,
        functions,
        code_bytes,
    })
}

fn kind_word(k: ExternalKind) -> &'static str {
    match k {
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
        _ => "func",
    }
}

impl Exports {
    fn has(&self, prefix: &str) -> bool {
        self.names.iter().any(|n| n.starts_with(prefix))
    }

    fn listed(&self) -> String {
        if self.names.is_empty() {
            "nothing".into()
        } else {
            self.names.join(", ")
        }
    }

    /// The kind these exports suggest, for a deploy without `--kind`.
    pub fn inferred_kind(&self) -> Option<AppKind> {
        match self.form {
            Form::Component if self.has(HTTP_HANDLER) => Some(AppKind::Http),
            Form::Component if self.has(MESSAGE_HANDLER) => Some(AppKind::Message),
            Form::Component if self.has(CLI_RUN) => Some(AppKind::Worker),
            Form::Module if self.has_start => Some(AppKind::Worker),
            _ => None,
        }
    }

    /// Checks that a release of `kind` can run this artifact.
    pub fn check(&self, kind: AppKind) -> Result<(), KindError> {
        let what = self.form.as_str();
        let exported = self.listed();
        match (kind, self.form) {
            (AppKind::Worker | AppKind::Job, Form::Module) if !self.has_start => {
                Err(KindError(format!(
                    "a {kind} must be a WASI command, but this module exports {exported} and no `_start`; \
                 build it as a command (e.g. `-mexec-model=command`) or deploy it with the kind it is"
                )))
            }
            (AppKind::Worker | AppKind::Job, Form::Component) if !self.has(CLI_RUN) => {
                Err(KindError(format!(
                    "a {kind} component must export {CLI_RUN}.x (a WASI command), but this component exports {exported}{}",
                    if self.has(HTTP_HANDLER) {
                        "; it is an http component: deploy it with --kind http"
                    } else {
                        ""
                    }
                )))
            }
            (AppKind::Http, Form::Module) => Err(KindError(format!(
                "an http app must be a wasi:http/proxy component exporting {HTTP_HANDLER}.x, \
                 but this is a core {what} exporting {exported}{}",
                if self.has_start {
                    "; it looks like a worker: deploy it with --kind worker"
                } else {
                    ""
                }
            ))),
            (AppKind::Message, Form::Module) => Err(KindError(format!(
                "a message app must be a component exporting {MESSAGE_HANDLER} (Spin's Redis trigger), but this is a core {what} exporting {exported}"
            ))),
            (AppKind::Message, Form::Component) if !self.has(MESSAGE_HANDLER) => {
                Err(KindError(format!(
                    "a message app must export {MESSAGE_HANDLER} (handle-message, as Spin's Redis trigger calls it), but this component exports {exported}{}",
                    if self.has(HTTP_HANDLER) {
                        "; it is an http component: deploy it with --kind http"
                    } else if self.has(CLI_RUN) {
                        "; it looks like a worker: deploy it with --kind worker"
                    } else {
                        ""
                    }
                )))
            }
            (AppKind::Http, Form::Component) if !self.has(HTTP_HANDLER) => Err(KindError(format!(
                "an http app must export {HTTP_HANDLER}.x (the wasi:http/proxy world), but this component exports {exported}{}",
                if self.has(CLI_RUN) {
                    "; it looks like a worker: deploy it with --kind worker"
                } else {
                    ""
                }
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_with_start_are_workers_and_others_are_refused() {
        let m = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .unwrap();
        let e = inspect(&m).unwrap();
        assert_eq!(e.inferred_kind(), Some(AppKind::Worker));
        assert!(e.check(AppKind::Job).is_ok());
        let err = e.check(AppKind::Http).unwrap_err().to_string();
        assert!(
            err.contains("core module exporting memory (memory), _start"),
            "{err}"
        );
        assert!(err.contains("--kind worker"), "{err}");

        let lib = wat::parse_str(r#"(module (func (export "hello")))"#).unwrap();
        let e = inspect(&lib).unwrap();
        assert_eq!(e.inferred_kind(), None);
        let err = e.check(AppKind::Worker).unwrap_err().to_string();
        assert!(err.contains("exports hello and no `_start`"), "{err}");
    }

    #[test]
    fn classify_tells_modules_components_and_garbage_apart() {
        assert_eq!(classify(b"\0asm\x01\0\0\0").unwrap(), Form::Module);
        assert_eq!(classify(b"\0asm\x0d\0\x01\0").unwrap(), Form::Component);
        let e = classify(b"#!/bin/sh\n").unwrap_err().to_string();
        assert!(e.contains("not a WebAssembly"), "{e}");
        assert!(classify(b"").unwrap_err().to_string().contains("empty"));
        assert_eq!(
            classify(b"\x7fELF\x02\x01").unwrap_err(),
            ArtifactError::Precompiled
        );
    }

    #[test]
    fn truncated_binaries_are_invalid() {
        let m = wat::parse_str(r#"(module (func (export "_start") nop nop nop))"#).unwrap();
        let err = inspect(&m[..m.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("invalid or truncated"), "{err}");
    }

    #[test]
    fn only_a_real_digest_becomes_a_digest() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(d.as_str()), Ok(d.clone()));
        assert_eq!(d.short().len(), 12);
        for bad in [
            "",
            "../../etc/passwd",
            &d.as_str().to_uppercase(),
            &d.as_str()[..63],
            &format!("{d}0"),
            &format!("{}/", &d.as_str()[..63]),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_largest_declared_memory_minimum_is_read() {
        let m = wat::parse_str(r#"(module (memory 3) (memory 65536) (func (export "_start")))"#);
        // Two memories need the multi-memory proposal, which the parser reads.
        if let Ok(m) = m {
            assert_eq!(inspect(&m).unwrap().min_memory_bytes, 65536 << 16);
        }
        let one = wat::parse_str(r#"(module (memory 2) (func (export "_start")))"#).unwrap();
        assert_eq!(inspect(&one).unwrap().min_memory_bytes, 2 << 16);
    }
}
