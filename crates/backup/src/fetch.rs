//! Streamed, size-capped downloads whose `sha256:` digest is checked before a byte is parsed.
//! Used by the URL source (HTTPS only) and the Flux artifact source (plain HTTP allowed in-cluster).

use std::time::Duration;

use restore_core::canonical::is_digest;
use sha2::{Digest, Sha256};

use crate::error::BackupError;
use crate::limits::Limits;

/// Which URL schemes a download accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schemes {
    /// `https://` only (the `url` source).
    HttpsOnly,
    /// `https://` or `http://` (Flux's source-controller serves plain HTTP inside the cluster).
    HttpOrHttps,
}

/// Downloads backups within [`Limits::max_archive_bytes`].
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: Limits,
}

/// Installs the ring crypto provider for rustls, once per process; later calls are no-ops.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Fetcher {
    /// A fetcher over a client the caller built (its TLS roots, proxy and timeouts).
    pub fn new(client: reqwest::Client, limits: Limits) -> Self {
        Fetcher { client, limits }
    }

    /// A fetcher with the platform's trust roots plus, if given, extra PEM root certificates
    /// (a private CA), a 10 s connect timeout, a 5 min overall timeout and at most 5 redirects.
    pub fn with_extra_roots(extra_roots_pem: Option<&[u8]>, limits: Limits) -> Result<Self, BackupError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::limited(5));
        if let Some(pem) = extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| BackupError::InvalidSource { message: format!("extra root certificates: {e}") })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| BackupError::InvalidSource { message: format!("cannot build the HTTP client: {e}") })?;
        Ok(Fetcher { client, limits })
    }

    /// The limits downloads and unpacking run within.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Downloads `url`, refusing more than `max_archive_bytes`, and returns the bytes only if
    /// their SHA-256 equals `expected` (`sha256:` + 64 lower-case hex digits).
    pub async fn fetch(&self, url: &str, expected: &str, schemes: Schemes) -> Result<Vec<u8>, BackupError> {
        let shown = redact_url(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| BackupError::UrlRefused { url: shown.clone(), reason: format!("not a URL: {e}") })?;
        match (parsed.scheme(), schemes) {
            ("https", _) | ("http", Schemes::HttpOrHttps) => {}
            (scheme, _) => {
                return Err(BackupError::UrlRefused { url: shown, reason: format!("scheme {scheme:?} not allowed") });
            }
        }
        if !is_digest(expected) {
            return Err(BackupError::InvalidSource {
                message: format!("digest {expected:?} is not sha256: + 64 lower-case hex digits"),
            });
        }
        let limit = self.limits.max_archive_bytes;
        let transport = |e: reqwest::Error| BackupError::Download { url: shown.clone(), message: describe(&e) };
        let mut response = self.client.get(parsed).send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(BackupError::HttpStatus { url: shown, status: status.as_u16() });
        }
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(BackupError::ArchiveTooLarge { size: length, limit });
        }
        let mut bytes = Vec::new();
        let mut hasher = Sha256::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let size = (bytes.len() + chunk.len()) as u64;
            if size > limit {
                return Err(BackupError::ArchiveTooLarge { size, limit });
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != expected {
            return Err(BackupError::DigestMismatch { subject: shown, expected: expected.to_string(), actual });
        }
        tracing::info!(url = %shown, bytes = bytes.len(), "backup downloaded and verified");
        Ok(bytes)
    }
}

/// The error and its causes in one line, without the URL reqwest adds (it is shown redacted).
fn describe(err: &reqwest::Error) -> String {
    let mut text = match () {
        _ if err.is_timeout() => "timed out",
        _ if err.is_connect() => "cannot connect",
        _ if err.is_redirect() => "too many redirects",
        _ if err.is_body() || err.is_decode() => "reading the body failed",
        _ => "request failed",
    }
    .to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A URL as it may be shown: scheme, host, port and path; user info, query and fragment (which
/// can carry credentials, e.g. a pre-signed bucket URL) are dropped.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let had_query = parsed.query().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            let mut shown = parsed.to_string();
            if had_query {
                shown.push_str("?…");
            }
            shown
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:pw@example.invalid:8443/b/x.tar.gz?X-Amz-Signature=abc#f"),
            "https://example.invalid:8443/b/x.tar.gz?…"
        );
        assert_eq!(redact_url("not a url"), "<invalid URL>");
    }
}
