//! What an artifact exports, read without compiling it.
//!
//! A deploy is checked against its kind before Cranelift spends a second on
//! it, and the refusal says what the artifact exports and what the kind
//! needs, which is what the person who built it has to change.

use schema::AppKind;
use wasmparser::{ComponentExternalKind, ExternalKind, Parser, Payload};

use crate::engine::{ArtifactError, Form, classify};

const CLI_RUN: &str = "wasi:cli/run@0.2";
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2";

/// The top-level exports of a module or component.
#[derive(Debug, Clone)]
pub struct Exports {
    pub form: Form,
    /// Export names; functions of a module carry no marker, others are
    /// suffixed with their kind, e.g. `memory (memory)`.
    pub names: Vec<String>,
    has_start: bool,
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
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        match payload {
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
    Ok(Exports { form, names, has_start })
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
            (AppKind::Worker | AppKind::Job, Form::Module) if !self.has_start => Err(KindError(format!(
                "a {kind} must be a WASI command, but this module exports {exported} and no `_start`; \
                 build it as a command (e.g. `-mexec-model=command`) or deploy it with the kind it is"
            ))),
            (AppKind::Worker | AppKind::Job, Form::Component) if !self.has(CLI_RUN) => Err(KindError(format!(
                "a {kind} component must export {CLI_RUN}.x (a WASI command), but this component exports {exported}{}",
                if self.has(HTTP_HANDLER) { "; it is an http component: deploy it with --kind http" } else { "" }
            ))),
            (AppKind::Http, Form::Module) => Err(KindError(format!(
                "an http app must be a wasi:http/proxy component exporting {HTTP_HANDLER}.x, \
                 but this is a core {what} exporting {exported}{}",
                if self.has_start { "; it looks like a worker: deploy it with --kind worker" } else { "" }
            ))),
            (AppKind::Http, Form::Component) if !self.has(HTTP_HANDLER) => Err(KindError(format!(
                "an http app must export {HTTP_HANDLER}.x (the wasi:http/proxy world), but this component exports {exported}{}",
                if self.has(CLI_RUN) { "; it looks like a worker: deploy it with --kind worker" } else { "" }
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
        let m = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();
        let e = inspect(&m).unwrap();
        assert_eq!(e.inferred_kind(), Some(AppKind::Worker));
        assert!(e.check(AppKind::Job).is_ok());
        let err = e.check(AppKind::Http).unwrap_err().to_string();
        assert!(err.contains("core module exporting memory (memory), _start"), "{err}");
        assert!(err.contains("--kind worker"), "{err}");

        let lib = wat::parse_str(r#"(module (func (export "hello")))"#).unwrap();
        let e = inspect(&lib).unwrap();
        assert_eq!(e.inferred_kind(), None);
        let err = e.check(AppKind::Worker).unwrap_err().to_string();
        assert!(err.contains("exports hello and no `_start`"), "{err}");
    }

    #[test]
    fn truncated_binaries_are_invalid() {
        let m = wat::parse_str(r#"(module (func (export "_start") nop nop nop))"#).unwrap();
        let err = inspect(&m[..m.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("invalid or truncated"), "{err}");
    }
}
