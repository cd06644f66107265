//! Which contract a component speaks, read from its type before it is
//! instantiated, and whether this host accepts it (policy in wit/README.md).

use std::fmt;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

pub const PACKAGE: &str = "forge:plugin";

/// The contract version this host implements.
pub const HOST_VERSION: Version = Version {
    major: 0,
    minor: 1,
    patch: 6,
};

/// Every released contract, oldest first, as the `.wit` text a plugin is
/// built against (`forge-host plugins wit [--version V]`). The last is
/// [`HOST_VERSION`]; all are accepted.
pub const RELEASED: [(&str, &str); 7] = [
    ("0.1.0", include_str!("../../../wit/v0.1.0/forge.wit")),
    ("0.1.1", include_str!("../../../wit/v0.1.1/forge.wit")),
    ("0.1.2", include_str!("../../../wit/v0.1.2/forge.wit")),
    ("0.1.3", include_str!("../../../wit/v0.1.3/forge.wit")),
    ("0.1.4", include_str!("../../../wit/v0.1.4/forge.wit")),
    ("0.1.5", include_str!("../../../wit/v0.1.5/forge.wit")),
    ("0.1.6", include_str!("../../../wit/v0.1.6/forge.wit")),
];

/// The host interfaces a plugin may import, with the contract version that
/// introduced each (a plugin cannot import `http` at 0.1.0: it did not exist).
pub const INTERFACES: [(&str, Version); 9] = [
    ("types", V0_1_0),
    ("inference", V0_1_0),
    ("retrieval", V0_1_0),
    ("tools", V0_1_0),
    ("log", V0_1_0),
    ("http", V0_1_1),
    ("embeddings", V0_1_2),
    ("nli", V0_1_3),
    ("budget", V0_1_4),
];

const V0_1_0: Version = Version {
    major: 0,
    minor: 1,
    patch: 0,
};
const V0_1_1: Version = Version {
    major: 0,
    minor: 1,
    patch: 1,
};
const V0_1_2: Version = Version {
    major: 0,
    minor: 1,
    patch: 2,
};
const V0_1_3: Version = Version {
    major: 0,
    minor: 1,
    patch: 3,
};
const V0_1_4: Version = Version {
    major: 0,
    minor: 1,
    patch: 4,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('.').map(|p| p.parse::<u64>().ok());
        let v = Self {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }

    /// Semver for WIT packages: same major (and same minor while major is 0),
    /// and not newer than the host (a newer guest may import what we lack).
    pub fn accepted_by(self, host: Version) -> bool {
        self.major == host.major && (host.major != 0 || self.minor == host.minor) && self <= host
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Method,
    Metric,
    Tool,
    /// Since 0.1.6: proposes prompts for `forge-host optimize`.
    Optimizer,
}

impl World {
    pub const ALL: [World; 4] = [World::Method, World::Metric, World::Tool, World::Optimizer];

    /// The interface a component of this world exports.
    pub fn export(self) -> &'static str {
        match self {
            World::Method => "solver",
            World::Metric => "scorer",
            World::Tool => "tool-provider",
            World::Optimizer => "proposer",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Method => "method",
            World::Metric => "metric",
            World::Tool => "tool",
            World::Optimizer => "optimizer",
        })
    }
}

/// What a component declares about itself.
#[derive(Clone, Debug, Serialize)]
pub struct Contract {
    pub world: World,
    pub version: Version,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "not a forge plugin: it exports none of {PACKAGE}/{{solver,scorer,tool-provider,proposer}} (its exports: {})",
        list(.exports)
    )]
    NotAPlugin { exports: Vec<String> },
    #[error(
        "plugin targets contract {PACKAGE}@{plugin}, but this host speaks {PACKAGE}@{host}; {}",
        if plugin > host { "upgrade forge-host or rebuild the plugin against the older contract" } else { "rebuild the plugin against the current contract" }
    )]
    Incompatible { plugin: Version, host: Version },
    #[error("plugin imports {import}, which this host does not provide")]
    UnknownImport { import: String },
    #[error("plugin imports {import}, but {interface} only exists since {PACKAGE}@{since}")]
    ImportTooOld {
        import: String,
        interface: String,
        since: Version,
    },
    #[error("expected a {expected} plugin, but this component is a {found} (exports {export})")]
    WrongWorld {
        expected: World,
        found: World,
        export: String,
    },
}

fn list(xs: &[String]) -> String {
    if xs.is_empty() {
        "nothing".into()
    } else {
        xs.join(", ")
    }
}

/// Reads world and version from the component's exports and checks its
/// imports, without instantiating anything.
pub fn read(engine: &Engine, component: &Component) -> Result<Contract, ContractError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut found = None;
    for name in &exports {
        if let Some((world, version)) = parse_forge_name(name).and_then(|(iface, v)| {
            World::ALL
                .into_iter()
                .find(|w| w.export() == iface)
                .map(|w| (w, v))
        }) {
            found = Some((world, version));
        }
    }
    let (world, version) = found.ok_or_else(|| ContractError::NotAPlugin {
        exports: exports.clone(),
    })?;
    if !version.accepted_by(HOST_VERSION) {
        return Err(ContractError::Incompatible {
            plugin: version,
            host: HOST_VERSION,
        });
    }
    for import in &imports {
        if let Some((iface, v)) = parse_forge_name(import) {
            if !v.accepted_by(HOST_VERSION) {
                return Err(ContractError::Incompatible {
                    plugin: v,
                    host: HOST_VERSION,
                });
            }
            let Some((_, since)) = INTERFACES.iter().find(|(name, _)| *name == iface) else {
                return Err(ContractError::UnknownImport {
                    import: import.clone(),
                });
            };
            if v < *since {
                return Err(ContractError::ImportTooOld {
                    import: import.clone(),
                    interface: iface.into(),
                    since: *since,
                });
            }
        }
    }
    Ok(Contract {
        world,
        version,
        exports,
        imports,
    })
}

/// `forge:plugin/solver@0.1.0` → (`solver`, 0.1.0).
fn parse_forge_name(name: &str) -> Option<(&str, Version)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let (iface, version) = rest.split_once('@')?;
    Some((iface, Version::parse(version)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_policy() {
        let host = Version {
            major: 0,
            minor: 1,
            patch: 2,
        };
        let v = |s| Version::parse(s).unwrap();
        assert!(v("0.1.0").accepted_by(host));
        assert!(v("0.1.2").accepted_by(host));
        assert!(
            !v("0.1.3").accepted_by(host),
            "newer patch may import what the host lacks"
        );
        assert!(!v("0.2.0").accepted_by(host));
        assert!(!v("1.1.0").accepted_by(host));
        let host1 = Version {
            major: 1,
            minor: 3,
            patch: 0,
        };
        assert!(v("1.0.4").accepted_by(host1));
        assert!(!v("2.0.0").accepted_by(host1));
        assert!(Version::parse("0.1").is_none() && Version::parse("0.1.0.0").is_none());
    }

    #[test]
    fn parses_interface_names() {
        assert_eq!(
            parse_forge_name("forge:plugin/solver@0.1.0"),
            Some(("solver", Version::parse("0.1.0").unwrap()))
        );
        assert_eq!(parse_forge_name("wasi:cli/environment@0.2.0"), None);
        assert_eq!(parse_forge_name("forge:plugin/solver"), None);
    }

    #[test]
    fn incompatible_message_names_both_versions() {
        let e = ContractError::Incompatible {
            plugin: Version::parse("0.2.0").unwrap(),
            host: HOST_VERSION,
        };
        let s = e.to_string();
        assert!(
            s.contains("forge:plugin@0.2.0") && s.contains("forge:plugin@0.1.6"),
            "{s}"
        );
    }

    #[test]
    fn the_host_speaks_0_1_6_and_accepts_0_1_0_to_0_1_5() {
        // 0.1.5 added functions to `inference` (score-ext, score-chat-ext);
        // 0.1.6 a world (optimizer) whose export is new: no import was
        // added, so INTERFACES is unchanged.
        assert_eq!(HOST_VERSION.to_string(), "0.1.6");
        // The texts `plugins wit` prints: each names its own version, the
        // newest is the host's, every one is accepted.
        for (v, text) in RELEASED {
            assert!(text.contains(&format!("package {PACKAGE}@{v};")), "{v}");
            assert!(Version::parse(v).unwrap().accepted_by(HOST_VERSION), "{v}");
        }
        assert_eq!(RELEASED.last().unwrap().0, HOST_VERSION.to_string());
        for older in ["0.1.0", "0.1.1", "0.1.2", "0.1.3", "0.1.4", "0.1.5"] {
            assert!(Version::parse(older).unwrap().accepted_by(HOST_VERSION));
        }
        assert!(!Version::parse("0.1.7").unwrap().accepted_by(HOST_VERSION));
        // wit/README.md's compatibility table ends with this host's row.
        let readme = include_str!("../../../wit/README.md");
        let row = format!(
            "| {HOST_VERSION} (this host) | {} – {HOST_VERSION} |",
            RELEASED[0].0
        );
        assert!(readme.contains(&row), "wit/README.md lacks the row {row}");
        let since = |i: &str| INTERFACES.iter().find(|(n, _)| *n == i).unwrap().1;
        assert_eq!(since("log"), V0_1_0);
        assert_eq!(since("http"), V0_1_1);
        assert_eq!(since("embeddings"), V0_1_2);
        assert_eq!(since("nli"), V0_1_3);
        assert_eq!(since("budget"), V0_1_4);
        let e = ContractError::ImportTooOld {
            import: "forge:plugin/http@0.1.0".into(),
            interface: "http".into(),
            since: V0_1_1,
        };
        assert_eq!(
            e.to_string(),
            "plugin imports forge:plugin/http@0.1.0, but http only exists since forge:plugin@0.1.1"
        );
    }
}
