//! TLS to PostgreSQL with rustls (`sslmode=require` or `prefer` in the
//! URL): the server's certificate is always verified, against the system's
//! roots or the CA file the URL names (`sslrootcert=FILE`; `system` for
//! the system's roots), and the name or address in the URL.
//!
//! Channel binding (SCRAM-SHA-256-PLUS) is not offered: the server's
//! certificate hash would have to match its signature algorithm exactly,
//! and a wrong one fails the login; plain SCRAM over the verified TLS
//! connection is what libpq does with `channel_binding=prefer` too when it
//! cannot bind.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::sql::SqlError;

/// Splits `sslrootcert=…` out of a URL's query (tokio-postgres does not
/// know it): the URL without it, and its value.
pub fn take_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(v) => {
                root = Some(v.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

/// The trust for a connection: the CA certificates of `root` (a PEM file),
/// or the system's roots when it is `None` or `system`.
pub fn connector(root: Option<&str>) -> Result<Rustls, SqlError> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| SqlError::Invalid(format!("cannot read sslrootcert {path}: {e}")))?;
            let mut n = 0;
            for cert in rustls_pemfile_certs(&pem) {
                roots
                    .add(cert)
                    .map_err(|e| SqlError::Invalid(format!("sslrootcert {path}: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(SqlError::Invalid(format!(
                    "sslrootcert {path} holds no PEM certificate"
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SqlError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Rustls(Arc::new(config)))
}

/// The certificates of a PEM file (`-----BEGIN CERTIFICATE-----` blocks).
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Makes a verified TLS connection per server.
#[derive(Clone)]
pub struct Rustls(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, io::Error> {
        let name = match domain.parse::<std::net::IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(domain.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        };
        Ok(Connect {
            config: self.0.clone(),
            name,
        })
    }
}

/// One connection's TLS handshake.
pub struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(Stream(s))
        })
    }
}

/// A TLS connection to the server.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_the_url() {
        assert_eq!(
            take_root_cert(
                "postgres://a@h/db?sslmode=require&sslrootcert=/etc/ca.pem&connect_timeout=3"
            ),
            (
                "postgres://a@h/db?sslmode=require&connect_timeout=3".to_string(),
                Some("/etc/ca.pem".to_string())
            )
        );
        assert_eq!(
            take_root_cert("postgres://a@h/db?sslrootcert=system"),
            ("postgres://a@h/db".to_string(), Some("system".to_string()))
        );
        assert_eq!(
            take_root_cert("postgres://a@h/db"),
            ("postgres://a@h/db".to_string(), None)
        );
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = connector(Some(p.to_str().unwrap()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let e = connector(Some("/nonexistent/ca.pem"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{e}"
        );
    }
}
