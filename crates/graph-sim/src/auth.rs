//! The simulated Entra ID v2.0 token endpoint: app registrations with secrets, certificates or
//! federated credentials, client-assertion JWT checks (signature, thumbprint, audience, issuer, time).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::reply::{Reply, aad_error};

/// The `client_assertion_type` for JWT client assertions.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience Entra requires of federated (workload identity) tokens.
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Clock skew tolerated on assertion times.
const SKEW_SECS: i64 = 300;

/// A credential registered on an app.
#[derive(Clone)]
pub enum AppCredential {
    /// A client secret.
    Secret(String),
    /// A certificate (PEM); assertions signed by its key are accepted.
    Certificate(String),
    /// A federated identity credential: tokens from `issuer` for `subject`, signed by the key of
    /// `signing_certificate_pem` (the simulator's stand-in for the issuer's JWKS).
    Federated(FederatedCredential),
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppCredential::Secret(_) => f.write_str("Secret([redacted])"),
            AppCredential::Certificate(_) => f.write_str("Certificate(..)"),
            AppCredential::Federated(fic) => f.debug_tuple("Federated").field(fic).finish(),
        }
    }
}

/// A federated identity credential of an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedCredential {
    /// Expected `iss` of the presented token.
    pub issuer: String,
    /// Expected `sub`.
    pub subject: String,
    /// PEM certificate whose key signs the issuer's tokens.
    pub signing_certificate_pem: String,
}

/// Why a credential could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// The PEM held no parsable certificate.
    #[error("the certificate PEM could not be parsed: {0}")]
    BadCertificate(String),
}

#[derive(Clone, Debug)]
struct RegisteredCert {
    der: Vec<u8>,
    x5t: String,
    x5t_s256: String,
}

impl RegisteredCert {
    fn from_pem(pem: &str) -> Result<Self, CredentialError> {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CredentialError::BadCertificate(e.to_string()))?;
        webpki::EndEntityCert::try_from(&cert).map_err(|e| CredentialError::BadCertificate(e.to_string()))?;
        let der = cert.as_ref().to_vec();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        Ok(RegisteredCert {
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
            der,
        })
    }

    fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let cert = CertificateDer::from(self.der.as_slice());
        webpki::EndEntityCert::try_from(&cert).is_ok_and(|ee| {
            ee.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, signing_input, signature).is_ok()
        })
    }
}

/// An app registration in one tenant.
#[derive(Clone, Debug, Default)]
pub(crate) struct AppRegistration {
    secrets: Vec<String>,
    certificates: Vec<RegisteredCert>,
    federated: Vec<(FederatedCredential, RegisteredCert)>,
}

impl AppRegistration {
    /// Adds a credential.
    pub fn add(&mut self, credential: AppCredential) -> Result<(), CredentialError> {
        match credential {
            AppCredential::Secret(secret) => self.secrets.push(secret),
            AppCredential::Certificate(pem) => self.certificates.push(RegisteredCert::from_pem(&pem)?),
            AppCredential::Federated(fic) => {
                let cert = RegisteredCert::from_pem(&fic.signing_certificate_pem)?;
                self.federated.push((fic, cert));
            }
        }
        Ok(())
    }
}

/// A token the simulator issued.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub tenant: String,
    pub client_id: String,
    pub expires_at: SystemTime,
}

/// Issued tokens.
#[derive(Default)]
pub(crate) struct TokenStore {
    grants: HashMap<String, Grant>,
}

impl TokenStore {
    /// Issues a new opaque bearer token.
    pub fn issue(&mut self, tenant: &str, client_id: &str, lifetime: Duration) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = format!("simtok.{}", URL_SAFE_NO_PAD.encode(bytes));
        let now = SystemTime::now();
        self.grants.retain(|_, g| g.expires_at > now);
        self.grants.insert(
            token.clone(),
            Grant { tenant: tenant.to_string(), client_id: client_id.to_string(), expires_at: now + lifetime },
        );
        token
    }

    /// The grant behind an `Authorization` header value, or Graph's 401 reply.
    pub fn check(&self, authorization: Option<&str>) -> Result<Grant, Reply> {
        let unauthorized = |message: &str| crate::reply::graph_error(401, "InvalidAuthenticationToken", message);
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Access token is empty."))?;
        let grant = self
            .grants
            .get(token)
            .ok_or_else(|| unauthorized("Access token validation failure. Invalid audience or signature."))?;
        if grant.expires_at <= SystemTime::now() {
            return Err(unauthorized("Lifetime validation failed, the token is expired."));
        }
        Ok(grant.clone())
    }

    /// Forgets every issued token (clients must acquire new ones).
    pub fn revoke_all(&mut self) {
        self.grants.clear();
    }
}

/// The parsed form of a token request.
pub(crate) struct TokenRequest {
    pairs: HashMap<String, String>,
}

impl TokenRequest {
    pub fn parse(body: &[u8]) -> Self {
        TokenRequest { pairs: form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Everything the token endpoint needs to decide.
pub(crate) struct TokenContext<'a> {
    /// The tenant in the request path.
    pub tenant: &'a str,
    /// The tenant's apps, `None` when the tenant does not exist.
    pub apps: Option<&'a HashMap<String, AppRegistration>>,
    /// This endpoint's own URL (`{authority}/{tenant}/oauth2/v2.0/token`), the required `aud`.
    pub token_endpoint: &'a str,
    /// The tenant's v2.0 issuer (`{authority}/{tenant}/v2.0`), also accepted as `aud`.
    pub issuer: &'a str,
}

/// Decides a client-credentials token request: `Ok(client_id)` or an `AADSTS` error reply.
pub(crate) fn authenticate(ctx: &TokenContext<'_>, request: &TokenRequest) -> Result<String, Reply> {
    let apps = ctx
        .apps
        .ok_or_else(|| aad_error(400, "invalid_request", 90002, &format!("Tenant '{}' not found.", ctx.tenant)))?;
    match request.get("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(aad_error(
                400,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
        None => {
            return Err(aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            ));
        }
    }
    let client_id = request.get("client_id").ok_or_else(|| {
        aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
    })?;
    if !request.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return Err(aad_error(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        ));
    }
    let app = apps.get(client_id).ok_or_else(|| {
        aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{}'.", ctx.tenant),
        )
    })?;
    if let Some(secret) = request.get("client_secret") {
        // Comparing digests keeps the comparison's timing independent of where the secrets differ.
        let presented = Sha256::digest(secret.as_bytes());
        let matches = app.secrets.iter().any(|s| Sha256::digest(s.as_bytes()) == presented);
        return if matches {
            Ok(client_id.to_string())
        } else {
            Err(aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ))
        };
    }
    let Some(assertion) = request.get("client_assertion") else {
        return Err(aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if request.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(aad_error(
            400,
            "invalid_request",
            50027,
            "Invalid client_assertion_type; expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let jwt = Jwt::decode(assertion).map_err(|why| {
        aad_error(401, "invalid_client", 50027, &format!("JWT token is invalid or malformed: {why}."))
    })?;
    if jwt.claim("iss") == Some(client_id) {
        verify_certificate_assertion(ctx, app, client_id, &jwt)
    } else {
        verify_federated_assertion(app, &jwt)
    }
    .map(|()| client_id.to_string())
}

fn verify_certificate_assertion(
    ctx: &TokenContext<'_>,
    app: &AppRegistration,
    client_id: &str,
    jwt: &Jwt,
) -> Result<(), Reply> {
    let invalid = |code: u32, message: &str| aad_error(401, "invalid_client", code, message);
    if jwt.claim("sub") != Some(client_id) {
        return Err(invalid(700021, "Client assertion application identifier doesn't match 'client_id' parameter."));
    }
    let audience_ok = jwt.audiences().iter().any(|a| a == ctx.token_endpoint || a == ctx.issuer);
    if !audience_ok {
        return Err(invalid(
            700212,
            &format!(
                "No matching federated identity record found for presented assertion audience; the audience must be '{}'.",
                ctx.token_endpoint
            ),
        ));
    }
    jwt.check_times().map_err(|m| invalid(700024, m))?;
    let thumbprint_s256 = jwt.header.get("x5t#S256").and_then(Value::as_str);
    let thumbprint = jwt.header.get("x5t").and_then(Value::as_str);
    let cert = app
        .certificates
        .iter()
        .find(|c| thumbprint_s256 == Some(c.x5t_s256.as_str()) || thumbprint == Some(c.x5t.as_str()))
        .ok_or_else(|| invalid(700027, "Client assertion contains an invalid signature. The key was not found (no registered certificate has this thumbprint)."))?;
    if jwt.alg() != Some("RS256") || !cert.verifies(jwt.signing_input.as_bytes(), &jwt.signature) {
        return Err(invalid(700027, "Client assertion failed signature validation."));
    }
    Ok(())
}

fn verify_federated_assertion(app: &AppRegistration, jwt: &Jwt) -> Result<(), Reply> {
    let no_match = || {
        aad_error(400, "invalid_client", 70021, "No matching federated identity record found for presented assertion.")
    };
    let (_, cert) = app
        .federated
        .iter()
        .find(|(fic, _)| {
            jwt.claim("iss") == Some(fic.issuer.as_str()) && jwt.claim("sub") == Some(fic.subject.as_str())
        })
        .ok_or_else(no_match)?;
    if !jwt.audiences().iter().any(|a| a == FEDERATION_AUDIENCE) {
        return Err(aad_error(
            400,
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchange'.",
        ));
    }
    jwt.check_times().map_err(|m| aad_error(400, "invalid_client", 700024, m))?;
    if jwt.alg() != Some("RS256") || !cert.verifies(jwt.signing_input.as_bytes(), &jwt.signature) {
        return Err(aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation."));
    }
    Ok(())
}

/// The token endpoint's success body.
pub(crate) fn token_response(access_token: &str, lifetime: Duration) -> Value {
    let secs = lifetime.as_secs();
    json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": access_token})
}

/// A decoded (not yet verified) compact JWS.
struct Jwt {
    header: Value,
    claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    fn decode(token: &str) -> Result<Jwt, &'static str> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("expected three dot-separated parts");
        };
        let part =
            |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| "a part is not base64url");
        let header: Value = serde_json::from_slice(&part(h)?).map_err(|_| "the header is not JSON")?;
        let claims: Value = serde_json::from_slice(&part(c)?).map_err(|_| "the claims are not JSON")?;
        Ok(Jwt { header, claims, signing_input: format!("{h}.{c}"), signature: part(s)? })
    }

    fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    fn check_times(&self) -> Result<(), &'static str> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
        let exp = self.claims.get("exp").and_then(Value::as_i64).ok_or("Client assertion has no 'exp' claim.")?;
        if exp + SKEW_SECS < now {
            return Err("Client assertion is not within its valid time range: it has expired.");
        }
        if let Some(nbf) = self.claims.get("nbf").and_then(Value::as_i64)
            && nbf - SKEW_SECS > now
        {
            return Err("Client assertion is not within its valid time range: it is not yet valid.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(apps: &'a HashMap<String, AppRegistration>) -> TokenContext<'a> {
        TokenContext {
            tenant: "t1",
            apps: Some(apps),
            token_endpoint: "http://sim/t1/oauth2/v2.0/token",
            issuer: "http://sim/t1/v2.0",
        }
    }

    fn form(pairs: &[(&str, &str)]) -> TokenRequest {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        TokenRequest::parse(body.as_bytes())
    }

    fn apps_with_secret() -> HashMap<String, AppRegistration> {
        let mut app = AppRegistration::default();
        app.add(AppCredential::Secret("s3cret".into())).unwrap();
        HashMap::from([("app".to_string(), app)])
    }

    #[test]
    fn a_right_secret_is_accepted_and_a_wrong_one_refused_with_aadsts7000215() {
        let apps = apps_with_secret();
        let base = [("grant_type", "client_credentials"), ("client_id", "app"), ("scope", "https://graph/.default")];
        let mut ok = base.to_vec();
        ok.push(("client_secret", "s3cret"));
        assert_eq!(authenticate(&ctx(&apps), &form(&ok)), Ok("app".to_string()));
        let mut bad = base.to_vec();
        bad.push(("client_secret", "guess"));
        let reply = authenticate(&ctx(&apps), &form(&bad)).unwrap_err();
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body.as_ref().unwrap()["error_codes"][0], 7000215);
        assert!(!reply.body.unwrap().to_string().contains("guess"), "the presented secret is never echoed");
    }

    #[test]
    fn unknown_tenant_app_and_scope_are_refused() {
        let apps = apps_with_secret();
        let no_tenant = TokenContext { apps: None, ..ctx(&apps) };
        let request = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("scope", "x/.default"),
            ("client_secret", "s3cret"),
        ]);
        assert_eq!(authenticate(&no_tenant, &request).unwrap_err().body.unwrap()["error_codes"][0], 90002);
        let other_app = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("scope", "x/.default"),
            ("client_secret", "s3cret"),
        ]);
        assert_eq!(authenticate(&ctx(&apps), &other_app).unwrap_err().body.unwrap()["error_codes"][0], 700016);
        let bad_scope = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("scope", "User.Read"),
            ("client_secret", "s3cret"),
        ]);
        assert_eq!(authenticate(&ctx(&apps), &bad_scope).unwrap_err().body.unwrap()["error"], "invalid_scope");
    }

    #[test]
    fn a_malformed_assertion_is_refused() {
        let apps = apps_with_secret();
        let request = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("scope", "x/.default"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", "not-a-jwt"),
        ]);
        assert_eq!(authenticate(&ctx(&apps), &request).unwrap_err().status, 401);
    }

    #[test]
    fn tokens_are_checked_and_revocable() {
        let mut store = TokenStore::default();
        let token = store.issue("t1", "app", Duration::from_secs(60));
        let grant = store.check(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!((grant.tenant.as_str(), grant.client_id.as_str()), ("t1", "app"));
        assert_eq!(store.check(None).unwrap_err().status, 401);
        assert_eq!(store.check(Some("Bearer other")).unwrap_err().status, 401);
        store.revoke_all();
        assert_eq!(store.check(Some(&format!("Bearer {token}"))).unwrap_err().status, 401);
    }
}
