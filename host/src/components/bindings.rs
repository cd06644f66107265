//! Host bindings of the contract, one module per world, generated from the
//! newest contract this host speaks (`wit/v0.1.6`). The shared interfaces
//! (types, inference, embeddings, nli, retrieval, http, budget, log) are generated once, in `method`,
//! and reused by the other worlds so one host implementation serves all four.
//!
//! Older guests need no bindings of their own: 0.1.1 to 0.1.6 only added
//! interfaces, functions and records, and wasmtime resolves imports and exports semver-compatibly (a guest's
//! `forge:plugin/log@0.1.0` links to the host's `log@0.1.1`, its
//! `solver@0.1.0` export is found as `solver@0.1.1`), then type-checks them
//! structurally. `contract.rs` decides which versions are accepted; the
//! contract tests load 0.1.0 components to keep this true. A breaking change
//! (0.2.0) will need a second set of bindings and an adapter.
//!
//! Every import is async on the host (generation awaits the engine thread)
//! and trappable (a host bug traps the guest instead of lying to it), with a
//! tracing span per call.

pub mod method {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.6",
        world: "method",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
    });
}

pub mod metric {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.6",
        world: "metric",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
        with: {
            "forge:plugin/types": super::method::forge::plugin::types,
            "forge:plugin/inference": super::method::forge::plugin::inference,
            "forge:plugin/embeddings": super::method::forge::plugin::embeddings,
            "forge:plugin/nli": super::method::forge::plugin::nli,
            "forge:plugin/budget": super::method::forge::plugin::budget,
            "forge:plugin/log": super::method::forge::plugin::log,
        },
    });
}

pub mod tool {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.6",
        world: "tool",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
        with: {
            "forge:plugin/types": super::method::forge::plugin::types,
            "forge:plugin/http": super::method::forge::plugin::http,
            "forge:plugin/retrieval": super::method::forge::plugin::retrieval,
            "forge:plugin/budget": super::method::forge::plugin::budget,
            "forge:plugin/log": super::method::forge::plugin::log,
        },
    });
}

pub mod optimizer {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.6",
        world: "optimizer",
        imports: { default: async | trappable | tracing },
        exports: { default: async },
        with: {
            "forge:plugin/types": super::method::forge::plugin::types,
            "forge:plugin/inference": super::method::forge::plugin::inference,
            "forge:plugin/budget": super::method::forge::plugin::budget,
            "forge:plugin/log": super::method::forge::plugin::log,
        },
    });
}

pub use method::forge::plugin::{
    budget, embeddings, http, inference, log, nli, retrieval, tools, types,
};
pub use optimizer::exports::forge::plugin::proposer;
