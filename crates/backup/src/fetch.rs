//! Streamed, size-capped downloads whose `sha256:` digest is checked before a byte is parsed, with
//! the network hygiene hostile URLs need: HTTPS on every hop, no private addresses, timeouts, slots.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use restore_core::canonical::is_digest;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::BackupError;
use crate::limits::Limits;
use crate::netpolicy::{Cidr, is_public};

/// Which URL schemes a download accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schemes {
    /// `https://` only, on every hop, to public addresses or the admin's allowed CIDRs (the
    /// `url` source, whose URL the namespace user chooses).
    HttpsOnly,
    /// `https://` or `http://` without redirects (Flux's source-controller serves plain HTTP
    /// inside the cluster, at the address it writes into the source's status).
    HttpOrHttps,
}

/// The cluster admin's settings for downloads (flags of `restore-operator run`, chart values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Non-public networks `url` sources may reach anyway (e.g. an in-cluster artifact server).
    /// Default: none (loopback, private, link-local, metadata addresses are refused).
    pub allowed_cidrs: Vec<Cidr>,
    /// Establishing a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// From the request to the response's headers. Default 30 s.
    pub first_byte_timeout: Duration,
    /// Longest pause between two pieces of the body. Default 30 s.
    pub idle_timeout: Duration,
    /// The whole download. Default 120 s.
    pub total_timeout: Duration,
    /// Downloads at once in the process; a run finding none free is requeued instead of waiting
    /// in a reconcile slot. Default 2.
    pub max_concurrent_downloads: usize,
    /// Whether a run may reference a Flux source in another namespace. Default false (Flux's
    /// own `--no-cross-namespace-refs` convention).
    pub allow_cross_namespace_refs: bool,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allowed_cidrs: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_concurrent_downloads: 2,
            allow_cross_namespace_refs: false,
        }
    }
}

/// Downloads backups within [`Limits::max_archive_bytes`] and the admin's [`FetchPolicy`].
/// Clones share the download slots and the cancellation of [`Fetcher::shutdown`].
#[derive(Clone, Debug)]
pub struct Fetcher {
    https: reqwest::Client,
    plain: reqwest::Client,
    limits: Limits,
    policy: Arc<FetchPolicy>,
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
    runs: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

/// Installs the ring crypto provider for rustls, once per process; later calls are no-ops.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves names and keeps only the addresses the policy allows, so a URL whose host resolves
/// to an internal address (or that redirects to one) never connects.
struct FilteringResolver {
    allowed: Vec<Cidr>,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.iter().copied().filter(|a| address_allowed(a.ip(), &allowed)).collect();
            if kept.is_empty() {
                let message = format!(
                    "{host} resolves only to non-public addresses; the operator's admin can allow a CIDR \
                     (--allow-source-cidr)"
                );
                return Err(message.into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn address_allowed(ip: IpAddr, allowed: &[Cidr]) -> bool {
    is_public(ip) || allowed.iter().any(|c| c.contains(ip))
}

/// Why a URL's own host is refused (an IP literal outside the policy), if it is.
fn literal_host_refusal(url: &reqwest::Url, allowed: &[Cidr]) -> Option<String> {
    let host = url.host_str()?;
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    (!address_allowed(ip, allowed)).then(|| {
        format!("address {ip} is not public (loopback, private, link-local or metadata); the operator's admin can allow a CIDR (--allow-source-cidr)")
    })
}

impl Fetcher {
    /// A fetcher with the platform's trust roots plus, if given, extra PEM root certificates
    /// (a private CA), under the default [`FetchPolicy`].
    pub fn with_extra_roots(extra_roots_pem: Option<&[u8]>, limits: Limits) -> Result<Self, BackupError> {
        Self::with_policy(extra_roots_pem, limits, FetchPolicy::default())
    }

    /// A fetcher with the platform's trust roots plus extra PEM roots, under `policy`.
    pub fn with_policy(
        extra_roots_pem: Option<&[u8]>,
        limits: Limits,
        policy: FetchPolicy,
    ) -> Result<Self, BackupError> {
        install_crypto_provider();
        let certs = extra_roots_pem
            .map(|pem| {
                reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| BackupError::InvalidSource { message: format!("extra root certificates: {e}") })
            })
            .transpose()?;
        let allowed = policy.allowed_cidrs.clone();
        let redirect_allowed = allowed.clone();
        let https_redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than 5 redirects");
            }
            if attempt.url().scheme() != "https" {
                return attempt.error("redirect to a non-HTTPS URL refused");
            }
            if let Some(reason) = literal_host_refusal(attempt.url(), &redirect_allowed) {
                return attempt.error(format!("redirect refused: {reason}"));
            }
            attempt.follow()
        });
        let base = |redirects| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(policy.connect_timeout)
                .read_timeout(policy.idle_timeout)
                .timeout(policy.total_timeout)
                .redirect(redirects);
            if let Some(certs) = &certs {
                builder = builder.tls_certs_merge(certs.clone());
            }
            builder
        };
        let build_error =
            |e: reqwest::Error| BackupError::InvalidSource { message: format!("cannot build the HTTP client: {e}") };
        let https = base(https_redirects)
            .https_only(true)
            .dns_resolver(Arc::new(FilteringResolver { allowed }))
            .build()
            .map_err(build_error)?;
        let plain = base(reqwest::redirect::Policy::none()).build().map_err(build_error)?;
        let slots = Arc::new(Semaphore::new(policy.max_concurrent_downloads.max(1)));
        Ok(Fetcher {
            https,
            plain,
            limits,
            policy: Arc::new(policy),
            slots,
            cancel: CancellationToken::new(),
            runs: Arc::default(),
        })
    }

    /// The limits downloads and unpacking run within.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The admin's download policy.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Downloads running now (download slots taken).
    pub fn downloads_in_progress(&self) -> usize {
        self.policy.max_concurrent_downloads.max(1) - self.slots.available_permits()
    }

    /// A fetcher for one run (`key`, e.g. its UID): its downloads stop when
    /// [`Fetcher::cancel_run`] is called with the same key, or at [`Fetcher::shutdown`].
    pub fn for_run(&self, key: &str) -> Fetcher {
        let mut runs = self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let token = runs.entry(key.to_string()).or_insert_with(|| self.cancel.child_token()).clone();
        Fetcher { cancel: token, ..self.clone() }
    }

    /// Cancels the downloads of the run `key` (it was deleted).
    pub fn cancel_run(&self, key: &str) {
        let token = self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Cancels every download, now and later (the operator is shutting down).
    pub fn shutdown(&self) {
        self.cancel.cancel();
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
        if schemes == Schemes::HttpsOnly
            && let Some(reason) = literal_host_refusal(&parsed, &self.policy.allowed_cidrs)
        {
            return Err(BackupError::UrlRefused { url: shown, reason });
        }
        if !is_digest(expected) {
            return Err(BackupError::InvalidSource {
                message: format!("digest {expected:?} is not sha256: + 64 lower-case hex digits"),
            });
        }
        if self.cancel.is_cancelled() {
            return Err(BackupError::Cancelled { url: shown });
        }
        let _slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| BackupError::DownloadSlotsBusy { slots: self.policy.max_concurrent_downloads })?;
        let client = if schemes == Schemes::HttpsOnly { &self.https } else { &self.plain };
        let download = self.download(client, parsed, &shown);
        let bytes = tokio::select! {
            () = self.cancel.cancelled() => return Err(BackupError::Cancelled { url: shown }),
            result = tokio::time::timeout(self.policy.total_timeout, download) => result.map_err(|_| {
                BackupError::Download { url: shown.clone(), message: "timed out (total download timeout)".into() }
            })??,
        };
        let actual = hash_off_runtime(bytes).await?;
        if actual.0 != expected {
            return Err(BackupError::DigestMismatch { subject: shown, expected: expected.to_string() });
        }
        tracing::info!(url = %shown, bytes = actual.1.len(), "backup downloaded and verified");
        Ok(actual.1)
    }

    async fn download(&self, client: &reqwest::Client, url: reqwest::Url, shown: &str) -> Result<Vec<u8>, BackupError> {
        let limit = self.limits.max_archive_bytes;
        let transport = |e: reqwest::Error| transport_error(shown, &e);
        let first_byte = tokio::time::timeout(self.policy.first_byte_timeout, client.get(url).send());
        let mut response = first_byte
            .await
            .map_err(|_| BackupError::Download {
                url: shown.to_string(),
                message: "no answer (first-byte timeout)".into(),
            })?
            .map_err(transport)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(BackupError::UrlRefused { url: shown.to_string(), reason: "redirect refused".into() });
        }
        if !status.is_success() {
            return Err(BackupError::HttpStatus { url: shown.to_string(), status: status.as_u16() });
        }
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(BackupError::ArchiveTooLarge { size: length, limit });
        }
        let mut bytes = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.policy.idle_timeout, response.chunk()).await.map_err(|_| {
                BackupError::Download { url: shown.to_string(), message: "stalled (idle timeout)".into() }
            })?;
            let Some(chunk) = chunk.map_err(transport)? else { break };
            let size = (bytes.len() + chunk.len()) as u64;
            if size > limit {
                return Err(BackupError::ArchiveTooLarge { size, limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// The `sha256:` digest of `bytes`, computed on a blocking thread; the bytes are handed back.
async fn hash_off_runtime(bytes: Vec<u8>) -> Result<(String, Vec<u8>), BackupError> {
    tokio::task::spawn_blocking(move || {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        (digest, bytes)
    })
    .await
    .map_err(|e| BackupError::LoadFailed { message: format!("hashing stopped: {e}") })
}

/// A transport failure as a typed error: an untrusted certificate is permanent, the rest transient.
fn transport_error(shown: &str, err: &reqwest::Error) -> BackupError {
    if let Some(message) = certificate_problem(err) {
        return BackupError::UntrustedCertificate { url: shown.to_string(), message };
    }
    BackupError::Download { url: shown.to_string(), message: describe(err) }
}

/// The TLS library's complaint about the server's certificate, if that is why the request failed.
fn certificate_problem(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        let inner =
            cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn std::error::Error);
        for candidate in [Some(cause), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>()
                && matches!(tls, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
            {
                return Some(tls.to_string());
            }
        }
        source = cause.source();
    }
    let text = describe(err);
    text.contains("invalid peer certificate").then_some(text)
}

/// The error and its causes in one line, without the URL reqwest adds (it is shown redacted).
fn describe(err: &reqwest::Error) -> String {
    let mut text = match () {
        _ if err.is_timeout() => "timed out",
        _ if err.is_connect() => "cannot connect",
        _ if err.is_redirect() => "redirect refused",
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

    #[test]
    fn the_default_policy_refuses_internal_literals_and_an_allowed_cidr_admits_them() {
        let url = reqwest::Url::parse("https://169.254.169.254/latest").unwrap();
        assert!(literal_host_refusal(&url, &[]).is_some());
        let loopback = reqwest::Url::parse("https://127.0.0.1:8443/x").unwrap();
        assert!(literal_host_refusal(&loopback, &[]).is_some());
        assert!(literal_host_refusal(&loopback, &["127.0.0.0/8".parse().unwrap()]).is_none());
        let public = reqwest::Url::parse("https://20.1.2.3/x").unwrap();
        assert!(literal_host_refusal(&public, &[]).is_none());
    }

    #[test]
    fn download_defaults_are_the_documented_ones() {
        let policy = FetchPolicy::default();
        assert!(policy.allowed_cidrs.is_empty());
        assert_eq!(policy.connect_timeout, Duration::from_secs(10));
        assert_eq!(policy.first_byte_timeout, Duration::from_secs(30));
        assert_eq!(policy.idle_timeout, Duration::from_secs(30));
        assert_eq!(policy.total_timeout, Duration::from_secs(120));
        assert_eq!(policy.max_concurrent_downloads, 2);
        assert!(!policy.allow_cross_namespace_refs);
    }
}
