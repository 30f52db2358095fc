//! One rustls crypto provider (ring) for every TLS client in the process: kube and reqwest.
//! Installed once at start-up, before any client is built.

/// Installs ring as the process-wide rustls provider. Safe to call more than once.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for downloads and Graph calls, using the process provider and the platform's
/// trusted roots plus any extra PEM roots given.
pub fn http_client(extra_roots_pem: &[&[u8]]) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder().https_only(false).use_rustls_tls();
    for pem in extra_roots_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
    }
    builder.build()
}
