//! A certificate authority made for one test (rcgen), and certificates it signs for loopback:
//! for the SMTP server, the HTTPS server and the TLS database connections the tests make.
use std::path::{Path, PathBuf};

/// A CA whose key lives only in the test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A certificate and its key, as PEM, written to files.
pub struct Issued {
    /// The certificate's file.
    pub cert: PathBuf,
    /// The private key's file (PKCS#8).
    pub key: PathBuf,
}

fn fail(e: rcgen::Error) -> ! {
    panic!("rcgen: {e}")
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
        let cert = params.self_signed(&key).unwrap_or_else(|e| fail(e));
        Self { cert, key }
    }

    /// The CA's certificate, PEM (what a client is told to trust).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA's certificate to `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        write(path, &self.pem());
        path.to_path_buf()
    }

    /// A certificate for 127.0.0.1 and localhost with a fresh key, as PEM: (certificate, key).
    pub fn issue_pem(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
                .unwrap_or_else(|e| fail(e));
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .unwrap_or_else(|e| fail(e));
        (cert.pem(), key.serialize_pem())
    }

    /// [`TestCa::issue_pem`], written to `cert.pem` and `key.pem` in `dir` (replacing them).
    pub fn issue(&self, dir: &Path) -> Issued {
        let (cert_pem, key_pem) = self.issue_pem();
        let issued = Issued {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        write(&issued.cert, &cert_pem);
        write(&issued.key, &key_pem);
        issued
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
