//! The relay's TLS identity: an operator's PEM pair, or a self-signed certificate made on
//! first start and kept in the data directory, and its SHA-256 fingerprint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use uchat_wire::CertFingerprint;

use crate::config::CertPaths;

/// File name of the self-signed certificate in the data directory.
pub const SELF_SIGNED_CERT_FILE: &str = "relay-cert.pem";
/// File name of the self-signed certificate's private key in the data directory.
pub const SELF_SIGNED_KEY_FILE: &str = "relay-key.pem";

/// Why the TLS identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The self-signed certificate or key file being written in the data directory.
        path: PathBuf,
        /// What the operating system said while writing it.
        source: std::io::Error,
    },
    /// A PEM file did not hold what it should.
    #[error("{path} is not a usable PEM {what}: {reason}")]
    Pem {
        /// The certificate or key file read: the operator's, or the self-signed pair.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A certificate chain and its key, ready for rustls.
#[derive(Debug)]
pub struct TlsIdentity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// SHA-256 over the leaf certificate's DER bytes: what peers pin.
    pub fn fingerprint(&self) -> CertFingerprint {
        fingerprint_of(self.chain.first().map(|c| c.as_ref()).unwrap_or_default())
    }
}

/// SHA-256 fingerprint of a DER certificate.
pub fn fingerprint_of(cert_der: &[u8]) -> CertFingerprint {
    CertFingerprint(Sha256::digest(cert_der).into())
}

/// Loads the operator's pair if given, else the self-signed pair from `data_dir`,
/// generating it on first start.
pub fn load_or_generate(
    data_dir: &Path,
    operator: Option<&CertPaths>,
) -> Result<TlsIdentity, TlsError> {
    match operator {
        Some(paths) => load_pem_pair(&paths.cert, &paths.key),
        None => {
            let cert = data_dir.join(SELF_SIGNED_CERT_FILE);
            let key = data_dir.join(SELF_SIGNED_KEY_FILE);
            if !cert.exists() || !key.exists() {
                generate_self_signed(&cert, &key)?;
            }
            load_pem_pair(&cert, &key)
        }
    }
}

fn load_pem_pair(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, TlsError> {
    let pem_error = |path: &Path, what, reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| pem_error(cert_path, "certificate", e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, "certificate", e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(
            cert_path,
            "certificate",
            "no CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| pem_error(key_path, "private key", e.to_string()))?;
    Ok(TlsIdentity { chain, key })
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["uchat-relay".into(), "localhost".into()])?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Io {
        path: cert_path.to_path_buf(),
        source,
    })
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_generate(dir.path(), None).expect("generates");
        let second = load_or_generate(dir.path(), None).expect("loads");
        assert_eq!(first.fingerprint(), second.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SELF_SIGNED_KEY_FILE))
                .expect("key exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key must not be readable by others");
        }
    }

    #[test]
    fn a_missing_operator_certificate_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = CertPaths {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope-key.pem"),
        };
        let err = load_or_generate(dir.path(), Some(&paths)).expect_err("missing");
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
