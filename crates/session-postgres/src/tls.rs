//! TLS: libpq's `sslmode` and `sslrootcert`, over rustls (the `ring`
//! provider) through `tokio-postgres-rustls`.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require` only,
//! and no `sslrootcert`: [`crate::connector`] takes both out of the URL
//! before tokio-postgres reads it, [`TlsOptions::resolve`] decides what
//! they mean (libpq's rules, see the crate docs and `docs/postgres.md`),
//! and [`TlsOptions::connector`] builds the rustls configuration that
//! checks what the mode asks for: nothing, the chain, or the chain and the
//! host name. [`PgConnect`] makes the pool's connections with it, and
//! gives `prefer` libpq's second try without TLS when the handshake fails.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Connect;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use session_core::{Error, Result};
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode as DriverSslMode};
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The value of `sslrootcert` that names the system's trusted roots.
const SYSTEM: &str = "system";

/// The modes, as libpq spells them, for error messages.
const MODES: &str = "disable, prefer, require, verify-ca or verify-full";

/// libpq's `sslmode` (all but `allow`, which tokio-postgres cannot do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS if the server offers it, else plain text (libpq's default).
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS, the server's certificate chain checked against the roots.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// Reads libpq's spelling of a mode; the error names the bad value.
    pub(crate) fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(Error::invalid_config(
                    "url",
                    format!(
                        "invalid value for option `sslmode`: `allow` (plain text first, then \
                         TLS) is not supported; expected {MODES}"
                    ),
                ));
            }
            other => {
                return Err(Error::invalid_config(
                    "url",
                    format!("invalid value for option `sslmode`: `{other}`; expected {MODES}"),
                ));
            }
        })
    }

    /// libpq's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The nearest mode tokio-postgres knows: whether it asks the server
    /// for TLS, and whether a server without TLS is refused.
    fn driver_mode(self) -> DriverSslMode {
        match self {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// A PEM file, and the option that named it (`sslrootcert` in the URL,
    /// or the config's `ssl_root_cert`), for error messages.
    File { path: PathBuf, option: &'static str },
    /// The system's trusted roots (`sslrootcert=system`, or `verify-full`
    /// without a root certificate).
    System,
}

/// What the server's certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Nothing: the connection is encrypted, the server unauthenticated.
    None,
    /// The chain up to a trusted root, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// The TLS settings of one connection URL, resolved by libpq's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// The mode asked for (or libpq's default).
    pub(crate) mode: SslMode,
    /// The roots the certificate is checked against, if it is checked.
    pub(crate) root: Option<RootCert>,
    /// True when every host is a Unix-domain socket: no TLS is tried, as
    /// libpq ignores `sslmode` there (PostgreSQL has no TLS on them).
    pub(crate) unix_only: bool,
}

impl TlsOptions {
    /// Decides the mode and the roots from the URL's `sslmode` and
    /// `sslrootcert` (each already taken out of it) and the config's
    /// `ssl_root_cert` (the URL's wins), by libpq's rules:
    ///
    /// * no `sslmode` is `prefer`, or `verify-full` with
    ///   `sslrootcert=system`;
    /// * `sslrootcert=system` with a weaker mode is refused;
    /// * `verify-ca` without a root certificate is refused (checking the
    ///   chain against the system's roots proves nothing about the host);
    ///   `verify-full` without one uses the system's roots.
    ///
    /// No file is read here.
    pub(crate) fn resolve(
        url_mode: Option<&str>,
        url_root: Option<&str>,
        config_root: Option<&Path>,
        hosts: &[Host],
    ) -> Result<Self> {
        let mode = url_mode.map(SslMode::parse).transpose()?;
        let root = match (url_root.filter(|r| !r.is_empty()), config_root) {
            (Some(SYSTEM), _) => Some(RootCert::System),
            (Some(path), _) => Some(RootCert::File {
                path: PathBuf::from(path),
                option: "sslrootcert",
            }),
            (None, Some(path)) if path == Path::new(SYSTEM) => Some(RootCert::System),
            (None, Some(path)) if !path.as_os_str().is_empty() => Some(RootCert::File {
                path: path.to_owned(),
                option: "ssl_root_cert",
            }),
            (None, _) => None,
        };
        let mode = match (mode, &root) {
            (Some(mode), _) => mode,
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        if root == Some(RootCert::System) && mode != SslMode::VerifyFull {
            return Err(Error::invalid_config(
                "url",
                format!(
                    "weak sslmode `{mode}` may not be used with sslrootcert=system (use \
                     `verify-full`): any host can get a certificate the system trusts"
                ),
            ));
        }
        let root = match (mode, root) {
            (SslMode::Disable, _) => None,
            (SslMode::VerifyCa, None) => {
                return Err(Error::invalid_config(
                    "url",
                    "sslmode `verify-ca` needs a root certificate: sslrootcert=/path/to/root.crt \
                     in the URL, or the config's ssl_root_cert (against the system's roots, use \
                     `verify-full`)",
                ));
            }
            (SslMode::VerifyFull, None) => Some(RootCert::System),
            (_, root) => root,
        };
        let unix_only = !hosts.is_empty() && hosts.iter().all(|h| !matches!(h, Host::Tcp(_)));
        Ok(TlsOptions {
            mode,
            root,
            unix_only,
        })
    }

    /// What the server's certificate is checked for: nothing in `prefer`
    /// and `require` without a root certificate, the chain in `verify-ca`
    /// and (as libpq) in `prefer` and `require` with one, the chain and
    /// the host name in `verify-full`.
    pub(crate) fn verification(&self) -> Verification {
        match (self.mode, &self.root) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (SslMode::VerifyCa, _) => Verification::Chain,
            (SslMode::Prefer | SslMode::Require, Some(_)) => Verification::Chain,
            (_, _) => Verification::None,
        }
    }

    /// The mode tokio-postgres is given: `disable` for Unix sockets only.
    pub(crate) fn driver_mode(&self) -> DriverSslMode {
        if self.unix_only {
            DriverSslMode::Disable
        } else {
            self.mode.driver_mode()
        }
    }

    /// How the pool connects: without TLS for `disable`, else with a
    /// rustls configuration checking what [`verification`](Self::verification)
    /// says, against the roots read now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the option and the path when the
    /// root certificate file cannot be read or holds no usable
    /// certificate, or when no system root certificate can be loaded.
    pub(crate) fn connector(&self) -> Result<PgConnect> {
        if self.driver_mode() == DriverSslMode::Disable {
            return Ok(PgConnect {
                tls: None,
                mode: self.mode,
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = self.root.as_ref().map(load_roots).transpose()?;
        let verification = self.verification();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_config("url", format!("TLS setup failed: {e}")))?;
        let mut config = match (verification, roots) {
            (Verification::Full, Some(roots)) => {
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::invalid_config("url", format!("TLS setup failed: {e}"))
                        })?;
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
            // `Chain` checks the chain against the roots; `verification`
            // is `None` exactly when there are no roots.
            (_, chain) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed { chain, provider }))
                .with_no_client_auth(),
        };
        // PostgreSQL 17 and later check it (required for
        // `sslnegotiation=direct`); older servers ignore it. libpq 17
        // always sends it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        tracing::debug!(
            sslmode = self.mode.as_str(),
            verification = ?verification,
            root = ?self.root,
            "PostgreSQL TLS set up"
        );
        Ok(PgConnect {
            tls: Some(MakeRustlsConnect::new(config)),
            mode: self.mode,
        })
    }
}

/// The trusted roots `root` names, read now.
fn load_roots(root: &RootCert) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File { path, option } => {
            let shown = path.display();
            let invalid = |reason: String| Error::invalid_config(*option, reason);
            let pem = std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "cannot read the root certificate file {shown}: {e}"
                ))
            })?;
            let mut found = 0usize;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    invalid(format!(
                        "the root certificate file {shown} is not valid PEM: {e}"
                    ))
                })?;
                store.add(cert).map_err(|e| {
                    invalid(format!(
                        "the root certificate file {shown} holds a certificate that cannot be \
                         used: {e}"
                    ))
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(invalid(format!(
                    "the root certificate file {shown} holds no PEM certificate \
                     (`-----BEGIN CERTIFICATE-----`)"
                )));
            }
        }
        RootCert::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
                return Err(Error::invalid_config(
                    "sslrootcert",
                    format!(
                        "no system root certificate could be loaded (needed for sslmode \
                         `verify-full` without a root certificate file){}",
                        if errors.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", errors.join("; "))
                        }
                    ),
                ));
            }
        }
    }
    Ok(store)
}

/// The two checks weaker than `verify-full`, built through rustls's
/// `dangerous` API because each leaves out what rustls otherwise always
/// checks:
///
/// * `chain: Some(roots)`: `verify-ca` (and `prefer`/`require` with a root
///   certificate, as libpq). The server's certificate must chain up to one
///   of `roots`, be in its validity period and be meant for a server
///   (extended key usage), but may name any host: the host name check is
///   exactly what `verify-ca` leaves out. The chain is checked by rustls's
///   own `verify_server_cert_signed_by_trust_anchor` (the first half of its
///   standard verifier).
/// * `chain: None`: `prefer` and `require` without a root certificate, as
///   libpq: the connection is encrypted but the server's certificate is
///   not checked at all, so an active man in the middle is not detected;
///   `verify-ca` or `verify-full` are the modes that authenticate the
///   server.
///
/// In both, the handshake signatures are checked against the presented
/// certificate, so the server proves it holds the certificate's key.
#[derive(Debug)]
struct Relaxed {
    chain: Option<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.chain {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How the pool opens a connection: with rustls (or without TLS for
/// `disable`), driving each connection on a task of its own; in `prefer`,
/// a failed TLS handshake is followed by a second try without TLS, as
/// libpq does.
pub(crate) struct PgConnect {
    tls: Option<MakeRustlsConnect>,
    mode: SslMode,
}

type ConnectFuture<'a> = Pin<
    Box<
        dyn Future<Output = std::result::Result<(Client, JoinHandle<()>), tokio_postgres::Error>>
            + Send
            + 'a,
    >,
>;

impl Connect for PgConnect {
    fn connect(&self, pg_config: &tokio_postgres::Config) -> ConnectFuture<'_> {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let Some(tls) = &self.tls else {
                return connect_plain(&pg_config).await;
            };
            match pg_config.connect(tls.clone()).await {
                Ok((client, connection)) => Ok((client, drive(connection))),
                Err(err) if self.mode == SslMode::Prefer => match tls_cause(&err) {
                    Some(cause) => {
                        tracing::warn!(
                            cause,
                            "sslmode=prefer: the TLS handshake failed; connecting again without \
                             TLS, as libpq does"
                        );
                        let mut plain = pg_config;
                        plain.ssl_mode(DriverSslMode::Disable);
                        connect_plain(&plain).await
                    }
                    None => Err(err),
                },
                Err(err) => Err(err),
            }
        })
    }
}

async fn connect_plain(
    pg_config: &tokio_postgres::Config,
) -> std::result::Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    let (client, connection) = pg_config.connect(NoTls).await?;
    Ok((client, drive(connection)))
}

/// Drives a connection on a task of its own until it ends.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>) -> JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection error");
        }
    })
}

/// tokio-postgres's words for a failed TLS negotiation (its `Kind::Tls`):
/// a refused handshake, a certificate rustls would not accept, or a
/// server without TLS under a mode that requires it.
const TLS_FAILURE: &str = "error performing TLS handshake";

/// What went wrong with TLS, if that is why `err` failed: rustls's reason
/// (e.g. `invalid peer certificate: UnknownIssuer`, or that the
/// certificate is not valid for the name connected to), or
/// `server does not support TLS`.
pub(crate) fn tls_cause(err: &tokio_postgres::Error) -> Option<String> {
    if !err.to_string().starts_with(TLS_FAILURE) {
        return None;
    }
    Some(std::error::Error::source(err).map_or_else(
        || "the TLS handshake failed".to_owned(),
        ToString::to_string,
    ))
}

impl std::fmt::Debug for PgConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnect")
            .field("tls", &self.tls.is_some())
            .field("mode", &self.mode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> Vec<Host> {
        vec![Host::Tcp("db".into())]
    }

    fn resolve(mode: Option<&str>, root: Option<&str>) -> Result<TlsOptions> {
        TlsOptions::resolve(mode, root, None, &tcp())
    }

    #[test]
    fn the_modes_follow_libpq() {
        let cases = [
            (None, None, SslMode::Prefer, Verification::None),
            (Some("disable"), None, SslMode::Disable, Verification::None),
            (Some("prefer"), None, SslMode::Prefer, Verification::None),
            (Some("require"), None, SslMode::Require, Verification::None),
            (
                Some("require"),
                Some("/ca.crt"),
                SslMode::Require,
                Verification::Chain,
            ),
            (
                Some("prefer"),
                Some("/ca.crt"),
                SslMode::Prefer,
                Verification::Chain,
            ),
            (
                Some("verify-ca"),
                Some("/ca.crt"),
                SslMode::VerifyCa,
                Verification::Chain,
            ),
            (
                Some("verify-full"),
                Some("/ca.crt"),
                SslMode::VerifyFull,
                Verification::Full,
            ),
            (
                Some("verify-full"),
                None,
                SslMode::VerifyFull,
                Verification::Full,
            ),
            (
                None,
                Some("system"),
                SslMode::VerifyFull,
                Verification::Full,
            ),
        ];
        for (mode, root, expected_mode, expected_check) in cases {
            let options = resolve(mode, root).unwrap();
            assert_eq!(
                (options.mode, options.verification()),
                (expected_mode, expected_check),
                "{mode:?} {root:?}"
            );
        }
        assert_eq!(
            resolve(Some("verify-full"), None).unwrap().root,
            Some(RootCert::System)
        );
        // `disable` ignores a root certificate (and never reads it).
        assert_eq!(
            resolve(Some("disable"), Some("/ca.crt")).unwrap().root,
            None
        );
    }

    #[test]
    fn bad_combinations_are_refused_with_the_reason() {
        let err = resolve(Some("sometimes"), None).unwrap_err().to_string();
        assert!(
            err.contains("invalid value for option `sslmode`: `sometimes`"),
            "{err}"
        );
        assert!(err.contains("verify-full"), "{err}");
        let err = resolve(Some("allow"), None).unwrap_err().to_string();
        assert!(
            err.contains("`allow`") && err.contains("not supported"),
            "{err}"
        );
        let err = resolve(Some("require"), Some("system"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("weak sslmode `require`"), "{err}");
        let err = resolve(Some("verify-ca"), None).unwrap_err().to_string();
        assert!(
            err.contains("`verify-ca` needs a root certificate"),
            "{err}"
        );
    }

    #[test]
    fn the_url_root_wins_over_the_config_field() {
        let config = Path::new("/from/config.crt");
        let options = TlsOptions::resolve(
            Some("verify-ca"),
            Some("/from/url.crt"),
            Some(config),
            &tcp(),
        )
        .unwrap();
        assert_eq!(
            options.root,
            Some(RootCert::File {
                path: "/from/url.crt".into(),
                option: "sslrootcert"
            })
        );
        let options = TlsOptions::resolve(Some("verify-ca"), None, Some(config), &tcp()).unwrap();
        assert_eq!(
            options.root,
            Some(RootCert::File {
                path: config.into(),
                option: "ssl_root_cert"
            })
        );
    }

    #[test]
    fn unix_sockets_never_use_tls() {
        let unix = vec![Host::Unix("/var/run/postgresql".into())];
        let options = TlsOptions::resolve(Some("require"), None, None, &unix).unwrap();
        assert_eq!(options.driver_mode(), DriverSslMode::Disable);
        let mixed = vec![Host::Unix("/run".into()), Host::Tcp("db".into())];
        let options = TlsOptions::resolve(Some("require"), None, None, &mixed).unwrap();
        assert_eq!(options.driver_mode(), DriverSslMode::Require);
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let missing = std::env::temp_dir().join("session-postgres-no-such-root.crt");
        let options = TlsOptions::resolve(
            Some("verify-ca"),
            Some(missing.to_str().unwrap()),
            None,
            &tcp(),
        )
        .unwrap();
        match options.connector() {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, "sslrootcert");
                assert!(reason.contains(&missing.display().to_string()), "{reason}");
                assert!(reason.contains("cannot read"), "{reason}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        let empty = std::env::temp_dir().join(format!(
            "session-postgres-empty-root-{}.crt",
            std::process::id()
        ));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let options = TlsOptions::resolve(Some("require"), None, Some(&empty), &tcp()).unwrap();
        let err = options.connector().unwrap_err();
        let _ = std::fs::remove_file(&empty);
        match err {
            Error::InvalidConfig { field, reason } => {
                assert_eq!(field, "ssl_root_cert");
                assert!(reason.contains("holds no PEM certificate"), "{reason}");
                assert!(reason.contains(&empty.display().to_string()), "{reason}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}
