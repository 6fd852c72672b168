//! Certificates for the TLS tests: a test authority and a server
//! certificate it signed, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test certificate authority and a server certificate it signed for
/// `127.0.0.1` and `localhost`, made with the `openssl` command, valid
/// for a day. Every call makes a new authority: the certificates of one
/// call are not trusted by the authority of another (a "wrong root").
///
/// ```no_run
/// use session_test_support::tls::TestCertificates;
///
/// let dir = session_test_support::scratch_dir("my-tls-test").join("certs");
/// let certificates = TestCertificates::make(&dir).expect("openssl installed");
/// assert!(certificates.ca.is_file() && certificates.server_key.is_file());
/// ```
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The authority's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM, unencrypted).
    pub server_key: PathBuf,
}

impl TestCertificates {
    /// Makes them in `dir` (created if missing); the server certificate's
    /// subject alternative names are the loopback address and `localhost`.
    ///
    /// # Errors
    ///
    /// Why `openssl` could not (it is missing, or failed: its output), or
    /// `dir` cannot be written.
    pub fn make(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = |name: &str| dir.join(name).display().to_string();
        let ext = dir.join("san.ext");
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
            .map_err(|e| format!("cannot write {}: {e}", ext.display()))?;
        let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // A subject of its own: another call's authority is a stranger,
        // not a namesake.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let subject = format!("/CN=session-store test CA {}-{nanos}", std::process::id());
        let steps: [Vec<String>; 3] = [
            [
                owned(&[
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                ]),
                vec![
                    subject,
                    "-keyout".to_owned(),
                    path("ca.key"),
                    "-out".to_owned(),
                    path("ca.crt"),
                ],
            ]
            .concat(),
            [
                owned(&[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                ]),
                vec![path("server.key"), "-out".to_owned(), path("server.csr")],
            ]
            .concat(),
            [
                owned(&["x509", "-req", "-days", "1", "-CAcreateserial", "-in"]),
                vec![
                    path("server.csr"),
                    "-CA".to_owned(),
                    path("ca.crt"),
                    "-CAkey".to_owned(),
                    path("ca.key"),
                    "-out".to_owned(),
                    path("server.crt"),
                    "-extfile".to_owned(),
                    ext.display().to_string(),
                ],
            ]
            .concat(),
        ];
        for args in steps {
            let output = Command::new("openssl")
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run openssl: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "openssl {} failed: {}",
                    args[0],
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
        Ok(TestCertificates {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        })
    }
}
