//! Which hosts an IntuneTenant may name as its Graph endpoint and token authority: the Microsoft
//! public and national clouds, plus hosts the cluster admin adds. Credentials go nowhere else.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::GraphError;

/// Graph hosts of the public cloud and the national clouds (US Government L4 and L5/DoD, China).
pub const MICROSOFT_GRAPH_HOSTS: &[&str] =
    &["graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"];

/// Entra ID token authorities of the same clouds.
pub const MICROSOFT_AUTHORITY_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// The hosts `graph.endpoint` and `graph.authority` may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointAllowlist {
    graph_hosts: Vec<String>,
    authority_hosts: Vec<String>,
    /// Added by the admin; allowed for both fields. `host` matches any port, `host:port` one.
    extra: Vec<String>,
    loopback: bool,
}

impl Default for EndpointAllowlist {
    /// The Microsoft clouds only.
    fn default() -> Self {
        EndpointAllowlist {
            graph_hosts: MICROSOFT_GRAPH_HOSTS.iter().map(|h| h.to_string()).collect(),
            authority_hosts: MICROSOFT_AUTHORITY_HOSTS.iter().map(|h| h.to_string()).collect(),
            extra: Vec::new(),
            loopback: false,
        }
    }
}

impl EndpointAllowlist {
    /// Also allows `host` or `host:port` (e.g. a sovereign-cloud proxy, or a Graph simulator).
    pub fn allowing(mut self, host: impl Into<String>) -> Self {
        self.extra.push(host.into().trim().to_ascii_lowercase());
        self
    }

    /// Also allows every loopback host (`localhost`, 127.0.0.0/8, `::1`): for the local CLI,
    /// whose user holds the credentials and owns the machine, and for tests.
    pub fn allowing_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }

    /// The hosts the admin added.
    pub fn extra_hosts(&self) -> &[String] {
        &self.extra
    }

    /// Fails unless `url`'s host is allowed for `field` (`graph.endpoint` or `graph.authority`).
    pub fn check(&self, field: &str, url: &Url) -> Result<(), GraphError> {
        let host = url.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
        let host_port = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let defaults = if field.ends_with("authority") { &self.authority_hosts } else { &self.graph_hosts };
        let loopback =
            host == "localhost" || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let allowed = (url.port().is_none() && defaults.contains(&host))
            || self.extra.iter().any(|entry| *entry == host || *entry == host_port)
            || (self.loopback && loopback);
        if allowed {
            return Ok(());
        }
        Err(GraphError::Config(format!(
            "{field} host {host_port:?} is not allowed: use a Microsoft cloud ({}) or ask the operator's admin to \
             allow it (--allowed-endpoint-host)",
            defaults.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_default_allows_the_microsoft_clouds_only() {
        let list = EndpointAllowlist::default();
        assert!(list.check("graph.endpoint", &url("https://graph.microsoft.com")).is_ok());
        assert!(list.check("graph.endpoint", &url("https://dod-graph.microsoft.us")).is_ok());
        assert!(list.check("graph.authority", &url("https://login.microsoftonline.com")).is_ok());
        assert!(list.check("graph.authority", &url("https://login.chinacloudapi.cn")).is_ok());
        assert!(list.check("graph.authority", &url("https://evil.example/")).is_err());
        assert!(list.check("graph.authority", &url("https://login.microsoftonline.com:8443")).is_err());
        assert!(list.check("graph.authority", &url("https://graph.microsoft.com")).is_err());
        assert!(list.check("graph.endpoint", &url("http://127.0.0.1:8080")).is_err());
    }

    #[test]
    fn the_admin_can_add_hosts_with_or_without_a_port() {
        let list = EndpointAllowlist::default().allowing("sim.test").allowing("10.0.0.5:9000");
        assert!(list.check("graph.endpoint", &url("https://sim.test:1234")).is_ok());
        assert!(list.check("graph.authority", &url("http://10.0.0.5:9000")).is_ok());
        assert!(list.check("graph.authority", &url("http://10.0.0.5:9001")).is_err());
        let local = EndpointAllowlist::default().allowing_loopback();
        assert!(local.check("graph.endpoint", &url("http://127.0.0.1:8080")).is_ok());
        assert!(local.check("graph.endpoint", &url("http://[::1]:8080")).is_ok());
    }
}
