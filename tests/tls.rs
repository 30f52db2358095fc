//! HTTPS works with the one process-wide provider (ring): reqwest and kube both complete a
//! TLS handshake with a local server whose certificate chains to a test CA.

mod sim_support;

use sim_support::serve_over_https;

#[tokio::test]
async fn reqwest_completes_an_https_request_with_the_ring_provider() {
    let (url, ca) = serve_over_https("/", br#"{"ok":true}"#.to_vec()).await;
    let client = restore_operator::tls::http_client(&[ca.as_bytes()]).unwrap();
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"ok":true}"#);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let (url, _ca) = serve_over_https("/", b"{}".to_vec()).await;
    let client = restore_operator::tls::http_client(&[]).unwrap();
    assert!(client.get(url).send().await.is_err());
}

#[tokio::test]
async fn kube_client_completes_an_https_request_with_the_same_provider() {
    let version = br#"{"major":"1","minor":"32","gitVersion":"v1.32.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#;
    let (url, ca) = serve_over_https("/version", version.to_vec()).await;
    let base = url.trim_end_matches("/version");
    let mut config = kube::Config::new(base.parse().unwrap());
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        .unwrap();
    config.root_cert = Some(vec![der]);
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.minor, "32");
}
