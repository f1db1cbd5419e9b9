//! Test certificates made on the spot with rcgen: a CA, and a server certificate it signs for
//! `localhost` and 127.0.0.1, written to a temporary directory as PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A CA and one server certificate it signed, as files.
pub struct TestCerts {
    pub dir: PathBuf,
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TestCerts {
    /// Make a fresh CA and server certificate under a new temporary directory named after `name`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("herald-certs-{name}-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        let certs = Self { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem"), dir };
        certs.write_pair(name);
        certs
    }

    /// Replace the files with a new CA and server certificate (a renewal from another CA).
    pub fn renew(&self, name: &str) {
        self.write_pair(name);
    }

    fn write_pair(&self, name: &str) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("Herald test CA {name}"));
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_pem = ca_params.self_signed(&ca_key).expect("CA certificate").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        let certificate = params.signed_by(&key, &issuer).expect("server certificate");
        std::fs::write(&self.ca, ca_pem).expect("write the CA");
        std::fs::write(&self.cert, certificate.pem()).expect("write the certificate");
        std::fs::write(&self.key, key.serialize_pem()).expect("write the key");
    }

    pub fn files(&self) -> herald::TlsFiles {
        herald::TlsFiles { cert: self.cert.clone(), key: self.key.clone() }
    }

    /// A TLS client that trusts this CA only.
    pub fn connector(&self) -> TlsConnector {
        connector_trusting(&self.ca)
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS client that trusts the CA in `ca` only.
pub fn connector_trusting(ca: &Path) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).expect("read the CA") {
        roots.add(certificate.expect("a CA certificate")).expect("a usable CA");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

fn nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}
