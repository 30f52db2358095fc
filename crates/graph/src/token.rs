//! Access tokens from the Entra ID v2.0 token endpoint (client credentials) for the three auth
//! kinds, cached and refreshed ahead of expiry; client-assertion JWTs signed RS256 with `x5t`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::credentials::{Credentials, SecretString};
use crate::error::GraphError;
use crate::stats::GraphStats;

/// The `client_assertion_type` of JWT client assertions.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of the assertions the client signs.
const ASSERTION_LIFETIME_SECS: u64 = 600;

/// Signing material parsed once from the certificate credential.
struct CertificateSigner {
    key: RsaKeyPair,
    x5t: String,
    x5t_s256: String,
}

/// How assertions or secrets are produced.
enum Method {
    Secret(SecretString),
    Certificate(Box<CertificateSigner>),
    Federated(std::path::PathBuf),
}

/// A cached token.
struct Cached {
    value: SecretString,
    refresh_at: Instant,
}

/// Where and for what a token source asks.
pub(crate) struct TokenSettings {
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_endpoint: String,
    /// The app (client) id.
    pub client_id: String,
    /// `{graph endpoint}/.default`.
    pub scope: String,
    /// Renew this long before expiry (at most half the token's lifetime).
    pub refresh_margin: Duration,
    /// Timeout of one token request.
    pub request_timeout: Duration,
}

/// Obtains and caches tokens for one app in one tenant.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    token_endpoint: String,
    client_id: String,
    scope: String,
    method: Method,
    refresh_margin: Duration,
    request_timeout: Duration,
    cache: Mutex<Option<Cached>>,
    stats: GraphStats,
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        settings: TokenSettings,
        credentials: Credentials,
        stats: GraphStats,
    ) -> Result<Self, GraphError> {
        let TokenSettings { token_endpoint, client_id, scope, refresh_margin, request_timeout } = settings;
        let method = match credentials {
            Credentials::ClientSecret(secret) => Method::Secret(secret),
            Credentials::Certificate { certificate_pem, private_key_pem } => {
                Method::Certificate(Box::new(CertificateSigner::new(&certificate_pem, &private_key_pem)?))
            }
            Credentials::WorkloadIdentity { token_file } => Method::Federated(token_file),
        };
        Ok(TokenSource {
            http,
            token_endpoint,
            client_id,
            scope,
            method,
            refresh_margin,
            request_timeout,
            cache: Mutex::new(None),
            stats,
        })
    }

    /// A valid token: the cached one, or a new one when it is near expiry. Concurrent callers
    /// wait for a single acquisition.
    pub async fn token(&self) -> Result<SecretString, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.value.clone());
        }
        let (value, lifetime) = self.acquire().await?;
        let margin = self.refresh_margin.min(lifetime / 2);
        *cache = Some(Cached { value: value.clone(), refresh_at: Instant::now() + lifetime - margin });
        Ok(value)
    }

    /// Drops the cached token (after Graph refused it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn acquire(&self) -> Result<(SecretString, Duration), GraphError> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        match &self.method {
            Method::Secret(secret) => form.push(("client_secret", secret.expose_secret().to_string())),
            Method::Certificate(signer) => {
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", signer.assertion(&self.client_id, &self.token_endpoint)?));
            }
            Method::Federated(path) => {
                let assertion = tokio::fs::read_to_string(path).await.map_err(|e| GraphError::Authentication {
                    message: format!("cannot read the federated token file {}: {}", path.display(), e.kind()),
                })?;
                let assertion = assertion.trim();
                if assertion.is_empty() {
                    return Err(GraphError::Authentication {
                        message: format!("the federated token file {} is empty", path.display()),
                    });
                }
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion.to_string()));
            }
        }
        let response = self
            .http
            .post(&self.token_endpoint)
            .timeout(self.request_timeout)
            .form(&form)
            .send()
            .await
            .map_err(|e| GraphError::Transport(format!("token endpoint: {}", describe_reqwest(&e))));
        drop(form);
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.stats.request("POST", None);
                return Err(error);
            }
        };
        let status = response.status().as_u16();
        self.stats.request("POST", Some(status));
        let body: Value = response.json().await.map_err(|e| {
            GraphError::Unexpected(format!("token endpoint answered {status} without JSON: {}", describe_reqwest(&e)))
        })?;
        if !(200..300).contains(&status) {
            let description = body.get("error_description").and_then(Value::as_str).unwrap_or("no description");
            let description = description.split(" Trace ID:").next().unwrap_or(description);
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let message = format!("token endpoint refused the {} credentials ({error}): {description}", self.kind());
            return Err(match status {
                429 => GraphError::Throttled { wait: Duration::ZERO, retry_after: None },
                500..=599 => GraphError::Server { status, message, retry_after: None },
                _ => GraphError::Authentication { message },
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::Unexpected("token response without access_token".into()))?;
        let expires_in =
            body.get("expires_in").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(3599);
        self.stats.token_acquired();
        tracing::debug!(client_id = %self.client_id, kind = self.kind(), expires_in, "Graph token acquired");
        Ok((SecretString::new(token), Duration::from_secs(expires_in.max(1))))
    }

    fn kind(&self) -> &'static str {
        match self.method {
            Method::Secret(_) => "clientSecret",
            Method::Certificate(_) => "certificate",
            Method::Federated(_) => "workloadIdentity",
        }
    }
}

impl CertificateSigner {
    fn new(certificate_pem: &str, private_key_pem: &SecretString) -> Result<Self, GraphError> {
        let cert = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| GraphError::Config(format!("the certificate PEM could not be parsed: {e}")))?;
        let key_error =
            || GraphError::Config("the private key PEM could not be parsed as an RSA key (PKCS#8 or PKCS#1)".into());
        let key =
            match PrivateKeyDer::from_pem_slice(private_key_pem.expose_secret().as_bytes()).map_err(|_| key_error())? {
                PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
                PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
                _ => {
                    return Err(GraphError::Config(
                        "the private key is not RSA; Entra client assertions are signed RS256".into(),
                    ));
                }
            }
            .map_err(|_| key_error())?;
        let der = cert.as_ref();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
        Ok(CertificateSigner {
            key,
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        })
    }

    /// A fresh RS256 client assertion for `client_id`, audience the token endpoint.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, GraphError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256});
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| GraphError::Config("signing the client assertion failed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Where Kubernetes mounts a pod's own service-account token: never a federated token source.
const SERVICE_ACCOUNT_DIRS: &[&str] = &["/var/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io"];

/// The token file, if with symbolic links resolved it lies inside `allowed_dir` (resolved too)
/// and outside the pod's service-account folder; otherwise why not. The file must exist. The path
/// is returned as given: the kubelet rotates projected tokens by swapping a link inside the folder.
pub(crate) fn checked_token_file(
    token_file: &std::path::Path,
    allowed_dir: &std::path::Path,
) -> Result<std::path::PathBuf, GraphError> {
    let refuse = |why: &str| {
        GraphError::Config(format!(
            "workloadIdentity.tokenFile {}: {why}; it must lie in {} (the operator's --federated-token-dir)",
            token_file.display(),
            allowed_dir.display()
        ))
    };
    if !token_file.is_absolute() || token_file.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(refuse("must be an absolute path without '..'"));
    }
    let dir = std::fs::canonicalize(allowed_dir).map_err(|_| refuse("the allowed folder does not exist"))?;
    let real = std::fs::canonicalize(token_file).map_err(|e| refuse(&format!("cannot be resolved ({})", e.kind())))?;
    if !real.starts_with(&dir) || SERVICE_ACCOUNT_DIRS.iter().any(|sa| real.starts_with(sa)) {
        return Err(refuse("is outside the allowed folder"));
    }
    Ok(token_file.to_path_buf())
}

/// A reqwest error described without its URL's query or any header.
pub(crate) fn describe_reqwest(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body failed"
    } else if error.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() { kind.to_string() } else { format!("{kind}: {cause}") }
}
