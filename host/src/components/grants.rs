//! The `allowed_outbound_hosts` grant, parsed once when the experiment is
//! planned and only checked afterwards: the `host:port` names each `http`
//! request is checked against, and the addresses they resolve to, which
//! WASI's socket check compares each connect with. Resolving here, not
//! when a store is built, keeps DNS off the per-call path: a store is
//! built on a tokio worker for every plugin call, and a slow resolver
//! there stalled the runtime.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Capabilities granted to one plugin. Everything is denied by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Host directories readable by the plugin, mounted at the same path.
    #[serde(default)]
    pub read_dirs: Vec<String>,
    /// Environment variables copied from the host.
    #[serde(default)]
    pub env: Vec<String>,
    /// `host:port` pairs the plugin may connect to (TCP).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Real wall and monotonic clocks (otherwise they read zero).
    #[serde(default)]
    pub clock: bool,
}

/// A plugin's outbound grant, resolved. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct OutboundHosts {
    /// As granted, lowercased: `host:port`.
    names: Arc<[String]>,
    /// What the names resolved to when the grant was parsed.
    addrs: Arc<[SocketAddr]>,
}

impl OutboundHosts {
    /// Parses the grant, resolving each host once (a blocking lookup). A
    /// name that does not resolve stays granted by name (the `http`
    /// capability resolves per request) and adds no socket address.
    pub fn resolve(granted: &[String]) -> Self {
        let names: Arc<[String]> = granted.iter().map(|h| h.to_ascii_lowercase()).collect();
        let addrs = granted
            .iter()
            .filter_map(|h| h.to_socket_addrs().ok())
            .flatten()
            .collect();
        Self { names, addrs }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The granted `host:port` names (lowercase).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether a connection to `addr` is granted.
    pub fn allows_addr(&self, addr: &SocketAddr) -> bool {
        self.addrs.contains(addr)
    }
}

/// Two grants are the same grant when they name the same hosts (what they
/// resolved to is a fact about the resolver, not about the config).
impl PartialEq for OutboundHosts {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_resolves_once_and_checks_addresses_and_names() {
        let g = OutboundHosts::resolve(&["127.0.0.1:8766".into(), "LocalHost:8765".into()]);
        assert_eq!(g.names(), ["127.0.0.1:8766", "localhost:8765"]);
        assert!(g.allows_addr(&"127.0.0.1:8766".parse().unwrap()));
        assert!(!g.allows_addr(&"127.0.0.1:8767".parse().unwrap()));
        assert!(OutboundHosts::default().is_empty());
    }
}
