//! A loaded plugin, and a plugin configured for an experiment as a handle
//! of its world: a method handle only solves, a metric handle only scores,
//! a tool handle only answers tool calls, an optimizer handle only proposes. The world is checked once, when
//! the handle is made; no call can meet a component of another world.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use super::bindings::{
    method::MethodPre, metric::MetricPre, optimizer::OptimizerPre, tool::ToolPre,
};
use super::contract::{Contract, ContractError, World};
use super::{LoadError, Sandbox, State};

/// A loaded plugin, ready to instantiate cheaply many times.
pub struct Plugin {
    /// File stem, e.g. `naive`.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub contract: Contract,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    pub load_ms: f64,
    pub(super) pre: Pre,
}

/// The component prepared for instantiation, by world.
pub(super) enum Pre {
    Method(MethodPre<State>),
    Metric(MetricPre<State>),
    Tool(ToolPre<State>),
    Optimizer(OptimizerPre<State>),
}

/// A world as a type: which prepared instance a configured plugin of it holds.
pub trait WorldKind: sealed::Sealed + Send + Sync + 'static {
    type Pre: Clone + Send + Sync + 'static;
    const WORLD: World;
    #[doc(hidden)]
    fn pre(plugin: &Plugin) -> Option<Self::Pre>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::MethodWorld {}
    impl Sealed for super::MetricWorld {}
    impl Sealed for super::ToolWorld {}
    impl Sealed for super::OptimizerWorld {}
}

pub enum MethodWorld {}
pub enum MetricWorld {}
pub enum ToolWorld {}
pub enum OptimizerWorld {}

/// Each world's kind: its prepared-instance type and the `Pre` variant
/// that holds one.
macro_rules! world_kind {
    ($kind:ident, $pre:ident, $variant:ident, $world:expr) => {
        impl WorldKind for $kind {
            type Pre = $pre<State>;
            const WORLD: World = $world;
            fn pre(plugin: &Plugin) -> Option<Self::Pre> {
                match &plugin.pre {
                    Pre::$variant(p) => Some(p.clone()),
                    _ => None,
                }
            }
        }
    };
}

world_kind!(MethodWorld, MethodPre, Method, World::Method);
world_kind!(MetricWorld, MetricPre, Metric, World::Metric);
world_kind!(ToolWorld, ToolPre, Tool, World::Tool);
world_kind!(OptimizerWorld, OptimizerPre, Optimizer, World::Optimizer);

/// A loaded plugin with the sandbox and params an experiment gives it.
pub struct Configured<K: WorldKind> {
    pub plugin: Arc<Plugin>,
    pub(super) pre: K::Pre,
    pub sandbox: Sandbox,
    /// JSON object passed to every call.
    pub params: String,
    /// Where the config names it (`method`, `metrics[1]`, ...).
    pub field: String,
    world: PhantomData<K>,
}

pub type ConfiguredMethod = Configured<MethodWorld>;
pub type ConfiguredMetric = Configured<MetricWorld>;
pub type ConfiguredTool = Configured<ToolWorld>;
pub type ConfiguredOptimizer = Configured<OptimizerWorld>;

impl<K: WorldKind> Configured<K> {
    /// A handle of world `K`; a plugin of another world is the contract
    /// error `load_as` gives.
    pub fn new(
        plugin: Arc<Plugin>,
        sandbox: Sandbox,
        params: impl Into<String>,
        field: impl Into<String>,
    ) -> Result<Self, LoadError> {
        let Some(pre) = K::pre(&plugin) else {
            return Err(LoadError::Contract {
                path: plugin.path.clone(),
                error: ContractError::WrongWorld {
                    expected: K::WORLD,
                    found: plugin.contract.world,
                    export: plugin.contract.exports.join(", "),
                },
            });
        };
        Ok(Self {
            plugin,
            pre,
            sandbox,
            params: params.into(),
            field: field.into(),
            world: PhantomData,
        })
    }

    /// The same configuration over a reloaded plugin (hot reload).
    pub fn with_plugin(&self, plugin: Arc<Plugin>) -> Result<Self, LoadError> {
        Self::new(
            plugin,
            self.sandbox.clone(),
            self.params.clone(),
            self.field.clone(),
        )
    }
}
