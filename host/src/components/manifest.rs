//! A plugin's manifest: `plugin.toml` in its source folder, copied beside
//! the component as `<name>.plugin.toml` when it is built. It says what the
//! component is (name, world, contract, language) and what it needs from
//! the host (`[needs]`: directories, environment, hosts, clock, memory,
//! guest time). The host grants a plugin with a manifest only what it
//! declares *and* the experiment grants, and refuses to start when a
//! declared need is not granted, naming the config field that would grant
//! it. A component without a manifest (every Rust plugin shipped today)
//! gets the config's grants as written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::grants::Grants;

/// The file beside `x.wasm`.
pub const SUFFIX: &str = ".plugin.toml";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    /// method, metric, tool or optimizer.
    pub world: String,
    /// The contract version it is built against, e.g. `0.1.6`.
    pub contract: String,
    /// rust, python or js (what `plugins build` runs); absent: guessed
    /// from the folder's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default)]
    pub needs: Needs,
}

/// What a component asks of the host. Everything absent is not needed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    /// Host directories it reads (mounted read-only under the same name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_dirs: Vec<String>,
    /// Environment variables it reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `host:port` pairs it connects to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Real clocks (otherwise they read zero).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock: bool,
    /// Linear memory it needs, MiB: the sandbox's `memory_mb` must allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Guest compute per call it needs, ms: `timeout_ms` must allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// One need the experiment does not grant.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// The config field under the plugin's table that grants it
    /// (`grants.clock`, `limits.memory_mb`).
    pub field: &'static str,
    /// What to write there.
    pub fix: String,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ManifestError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// The manifest beside a component (`x.wasm` → `x.plugin.toml`), if any.
    pub fn beside(component: &Path) -> Result<Option<(PathBuf, Self)>, ManifestError> {
        let path = manifest_path(component);
        if !path.is_file() {
            return Ok(None);
        }
        Self::read(&path).map(|m| Some((path, m)))
    }
}

pub fn manifest_path(component: &Path) -> PathBuf {
    let stem = component
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    component.with_file_name(format!("{stem}{SUFFIX}"))
}

impl Needs {
    /// The grants a plugin gets: what it declares ∩ what the config grants,
    /// or every declared need the config leaves out. `memory_mb` and
    /// `timeout_ms` are the sandbox's effective limits for this plugin.
    pub fn grant(
        &self,
        granted: &Grants,
        memory_mb: u64,
        timeout_ms: u64,
    ) -> Result<Grants, Vec<Missing>> {
        let mut missing = Vec::new();
        let mut list = |field: &'static str, need: &[String], have: &[String]| {
            let lacking: Vec<&String> = need.iter().filter(|n| !have.contains(n)).collect();
            if !lacking.is_empty() {
                missing.push(Missing {
                    field,
                    fix: format!("{field} = {:?}", need),
                });
            }
            need.iter().filter(|n| have.contains(n)).cloned().collect()
        };
        let out = Grants {
            read_dirs: list("grants.read_dirs", &self.read_dirs, &granted.read_dirs),
            env: list("grants.env", &self.env, &granted.env),
            allowed_outbound_hosts: list(
                "grants.allowed_outbound_hosts",
                &self.allowed_outbound_hosts,
                &granted.allowed_outbound_hosts,
            ),
            clock: self.clock && granted.clock,
        };
        if self.clock && !granted.clock {
            missing.push(Missing {
                field: "grants.clock",
                fix: "grants.clock = true".into(),
            });
        }
        if let Some(need) = self.memory_mb.filter(|&n| n > memory_mb) {
            missing.push(Missing {
                field: "limits.memory_mb",
                fix: format!("limits.memory_mb = {need} (now {memory_mb})"),
            });
        }
        if let Some(need) = self.timeout_ms.filter(|&n| n > timeout_ms) {
            missing.push(Missing {
                field: "limits.timeout_ms",
                fix: format!("limits.timeout_ms = {need} (now {timeout_ms})"),
            });
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(missing)
        }
    }

    /// One line per need, for `plugins inspect` (empty: needs nothing).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let join = |v: &[String]| v.join(", ");
        if !self.read_dirs.is_empty() {
            out.push(format!("read_dirs {}", join(&self.read_dirs)));
        }
        if !self.env.is_empty() {
            out.push(format!("env {}", join(&self.env)));
        }
        if !self.allowed_outbound_hosts.is_empty() {
            out.push(format!(
                "allowed_outbound_hosts {}",
                join(&self.allowed_outbound_hosts)
            ));
        }
        if self.clock {
            out.push("clock".into());
        }
        if let Some(m) = self.memory_mb {
            out.push(format!("memory_mb {m}"));
        }
        if let Some(t) = self.timeout_ms {
            out.push(format!("timeout_ms {t}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs {
            read_dirs: vec!["data".into()],
            env: vec!["API_KEY".into()],
            clock: true,
            memory_mb: Some(512),
            ..Needs::default()
        }
    }

    #[test]
    fn a_plugin_gets_only_what_it_declares_and_the_config_grants() {
        let granted = Grants {
            read_dirs: vec!["data".into(), "secrets".into()],
            env: vec!["API_KEY".into(), "HOME".into()],
            allowed_outbound_hosts: vec!["example.org:443".into()],
            clock: true,
        };
        let got = needs().grant(&granted, 1024, 1000).unwrap();
        assert_eq!(got.read_dirs, ["data"]);
        assert_eq!(got.env, ["API_KEY"]);
        assert!(got.allowed_outbound_hosts.is_empty());
        assert!(got.clock);
        // Declaring nothing gets nothing, whatever the config grants.
        assert_eq!(
            Needs::default().grant(&granted, 256, 1000).unwrap(),
            Grants::default()
        );
    }

    #[test]
    fn every_need_left_out_is_named_with_its_fix() {
        let missing = needs().grant(&Grants::default(), 256, 1000).unwrap_err();
        let fields: Vec<&str> = missing.iter().map(|m| m.field).collect();
        assert_eq!(
            fields,
            [
                "grants.read_dirs",
                "grants.env",
                "grants.clock",
                "limits.memory_mb"
            ]
        );
        assert_eq!(missing[3].fix, "limits.memory_mb = 512 (now 256)");
    }

    #[test]
    fn the_manifest_beside_a_component_is_found_by_its_stem() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("unit_convert.wasm");
        assert!(Manifest::beside(&wasm).unwrap().is_none());
        std::fs::write(
            dir.path().join("unit_convert.plugin.toml"),
            "name = \"unit_convert\"\nworld = \"tool\"\ncontract = \"0.1.6\"\n[needs]\nclock = true\n",
        )
        .unwrap();
        let (_, m) = Manifest::beside(&wasm).unwrap().unwrap();
        assert_eq!(m.world, "tool");
        assert!(m.needs.clock);
        std::fs::write(
            dir.path().join("unit_convert.plugin.toml"),
            "name = \"x\"\nworld = \"tool\"\ncontract = \"0.1.6\"\nneeds = { gpu = true }\n",
        )
        .unwrap();
        let err = Manifest::beside(&wasm).unwrap_err().to_string();
        assert!(
            err.contains("unit_convert.plugin.toml") && err.contains("gpu"),
            "{err}"
        );
    }
}
