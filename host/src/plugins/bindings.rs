//! Host bindings of the contract, one module per world. The shared
//! interfaces (types, inference, log) are generated once, in `method`, and
//! reused by the other worlds so one host implementation serves all three.
//!
//! Every import is async on the host (generation awaits the engine thread)
//! and trappable (a host bug traps the guest instead of lying to it), with a
//! tracing span per call.

pub mod method {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "method",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
    });
}

pub mod metric {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "metric",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
        with: {
            "forge:plugin/types": super::method::forge::plugin::types,
            "forge:plugin/inference": super::method::forge::plugin::inference,
            "forge:plugin/log": super::method::forge::plugin::log,
        },
    });
}

pub mod tool {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "tool",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
        with: {
            "forge:plugin/types": super::method::forge::plugin::types,
            "forge:plugin/log": super::method::forge::plugin::log,
        },
    });
}

pub use method::forge::plugin::{inference, log, retrieval, tools, types};
