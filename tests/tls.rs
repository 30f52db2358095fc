//! HTTPS works with the one process-wide provider (ring): reqwest and kube both complete a
//! TLS handshake with a local server whose certificate chains to a test CA.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves every connection with a fixed JSON body over TLS; returns the port and the CA PEM.
async fn tls_server(body: &'static str) -> (u16, String) {
    restore_operator::tls::install_crypto_provider();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 8192];
                let _ = tls.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert_pem)
}

#[tokio::test]
async fn reqwest_completes_an_https_request_with_the_ring_provider() {
    let (port, ca) = tls_server(r#"{"ok":true}"#).await;
    let client = restore_operator::tls::http_client(&[ca.as_bytes()]).unwrap();
    let resp = client.get(format!("https://localhost:{port}/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"ok":true}"#);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let (port, _ca) = tls_server("{}").await;
    let client = restore_operator::tls::http_client(&[]).unwrap();
    assert!(client.get(format!("https://localhost:{port}/")).send().await.is_err());
}

#[tokio::test]
async fn kube_client_completes_an_https_request_with_the_same_provider() {
    let (port, ca) = tls_server(
        r#"{"major":"1","minor":"32","gitVersion":"v1.32.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#,
    )
    .await;
    let mut config = kube::Config::new(format!("https://localhost:{port}").parse().unwrap());
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        .unwrap();
    config.root_cert = Some(vec![der]);
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.minor, "32");
}
