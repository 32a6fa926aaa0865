//! TLS: the configured certificate, or a self-signed one made on first start and kept in
//! `<data_dir>/tls/`. Agents pin its SHA-256 fingerprint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use asgard_core::Lang;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// Certificate chain (leaf first) and key, loaded.
pub(crate) struct TlsMaterial {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// SHA-256 of the leaf certificate, as `AB:CD:...` (like `openssl x509 -fingerprint -sha256`).
    pub(crate) fn fingerprint(&self) -> String {
        fingerprint(&self.certs[0])
    }

    /// A rustls server config (ring provider, ALPN h2 and http/1.1).
    pub(crate) fn server_config(self) -> anyhow::Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.certs, self.key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

pub(crate) fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The configured certificate, else the self-signed one (created when missing).
pub(crate) fn load_or_create(config: &Config, lang: Lang) -> anyhow::Result<TlsMaterial> {
    let (cert, key) = match &config.tls {
        Some(t) => (t.cert.clone(), t.key.clone()),
        None => {
            let dir = config.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                create_self_signed(&dir, &cert, &key).with_context(|| {
                    format!(
                        "{} {}",
                        lang.pick(
                            "Selbstsigniertes Zertifikat kann nicht erzeugt werden in",
                            "Cannot create self-signed certificate in"
                        ),
                        dir.display()
                    )
                })?;
            }
            (cert, key)
        }
    };
    load(&cert, &key, lang)
}

fn load(cert: &Path, key: &Path, lang: Lang) -> anyhow::Result<TlsMaterial> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "Zertifikat kann nicht gelesen werden:",
                    "Cannot read certificate"
                ),
                cert.display()
            )
        })?;
    if certs.is_empty() {
        return Err(anyhow!(
            "{} {}",
            lang.pick("Kein Zertifikat in", "No certificate in"),
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "Privater Schlüssel kann nicht gelesen werden:",
                    "Cannot read private key"
                ),
                key.display()
            )
        })?;
    Ok(TlsMaterial { certs, key })
}

/// Names for the certificate: localhost, the loopback addresses and the host name if known.
fn subject_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        });
    if let Some(h) = host
        && !names.contains(&h)
    {
        names.push(h);
    }
    names
}

fn create_self_signed(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let generated = rcgen::generate_simple_self_signed(subject_names())?;
    // Key first and private (0600); the certificate last, so that both exist only when complete.
    write_file(key, generated.signing_key.serialize_pem().as_bytes(), true)?;
    write_file(cert, generated.cert.pem().as_bytes(), false)?;
    tracing::info!(cert = %cert.display(), "created self-signed certificate");
    Ok(())
}

fn write_file(path: &Path, data: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).with_context(|| tmp.display().to_string())?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_and_fingerprint_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let a = load_or_create(&config, Lang::De).unwrap();
        let fp = a.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(
            fp.bytes()
                .all(|b| b == b':' || b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        let b = load_or_create(&config, Lang::De).unwrap();
        assert_eq!(b.fingerprint(), fp);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        b.server_config().unwrap();
    }

    #[test]
    fn fingerprint_format() {
        let der = CertificateDer::from(vec![1u8, 2, 3]);
        let fp = fingerprint(&der);
        assert!(fp.starts_with("03:90:58:C6:F2:C0:CB:49"), "{fp}");
    }
}
