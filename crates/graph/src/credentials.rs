//! The credential material the operator hands the Graph client (read from Kubernetes Secrets or
//! a projected token file), wrapped so that no Debug print or log line can show a secret.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroize;

/// A secret string: redacted in `Debug`, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret itself; call only where it is sent or parsed.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        SecretString(secret.to_string())
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// How the client authenticates to Entra ID (one of the IntuneTenant's three auth kinds).
#[derive(Clone)]
pub enum Credentials {
    /// A client secret (`auth.clientSecretRef`).
    ClientSecret(SecretString),
    /// A certificate and its private key, both PEM (`auth.certificateRef`): the client signs an
    /// RS256 client-assertion JWT with the certificate thumbprint in its header.
    Certificate {
        /// The PEM certificate registered on the app.
        certificate_pem: String,
        /// The PEM private key (PKCS#8 or PKCS#1 RSA).
        private_key_pem: SecretString,
    },
    /// Workload identity federation (`auth.workloadIdentity`): the projected service-account
    /// token in `token_file` is the client assertion, read again at every token acquisition.
    WorkloadIdentity {
        /// Path of the projected token file.
        token_file: PathBuf,
    },
}

impl Credentials {
    /// The auth kind, for logs and conditions.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::ClientSecret(_) => "clientSecret",
            Credentials::Certificate { .. } => "certificate",
            Credentials::WorkloadIdentity { .. } => "workloadIdentity",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ClientSecret(_) => f.write_str("ClientSecret([redacted])"),
            Credentials::Certificate { .. } => f.write_str("Certificate { private_key_pem: [redacted], .. }"),
            Credentials::WorkloadIdentity { token_file } => {
                f.debug_struct("WorkloadIdentity").field("token_file", token_file).finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretString::new("hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let creds = Credentials::ClientSecret(secret.clone());
        assert!(!format!("{creds:?}").contains("hunter2"));
        let cert = Credentials::Certificate {
            certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
            private_key_pem: SecretString::new("-----BEGIN PRIVATE KEY-----hunter2"),
        };
        assert!(!format!("{cert:?}").contains("hunter2"));
        assert_eq!(secret.expose_secret(), "hunter2-very-secret");
    }
}
