//! TLS to the database: `disable` (plain TCP, for a server on this machine), `require`
//! (encrypted, the server's certificate not checked — libpq's `sslmode=require`) and
//! `verify-full` (encrypted, the certificate checked against a CA file and the host name).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;

pub use crate::config::{TlsMode, TlsSettings};

/// Accepts any server certificate: `require` encrypts but does not authenticate the server,
/// exactly as libpq's `sslmode=require`. Signatures are still checked, so the handshake is
/// sound; only the identity is not.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn load_roots(path: &Path) -> Result<rustls::RootCertStore, PgError> {
    let bad = |detail: String| {
        PgError::Config(format!(
            "read the database CA file {}: {detail}; set [database] tls_ca_file to a PEM file of the CA that signed the server's certificate",
            path.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no certificate".to_string()));
    }
    Ok(roots)
}

/// The connector for `settings`, or `None` for plain TCP.
pub fn connector(settings: &TlsSettings) -> Result<Option<MakeRustlsConnect>, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Config(format!("set up TLS: {e}")))?;
    let config = match settings.mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyFull => {
            let Some(ca) = &settings.ca_file else {
                return Err(PgError::Config(
                    "use tls = \"verify-full\": it needs [database] tls_ca_file, the PEM file of the CA that signed the server's certificate".into(),
                ));
            };
            builder
                .with_root_certificates(load_roots(ca)?)
                .with_no_client_auth()
        }
    };
    Ok(Some(MakeRustlsConnect::new(config)))
}
