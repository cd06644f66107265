//! `forge-host view` (the dashboard) and `view export` (its pages as files).

use std::net::SocketAddr;
use std::path::Path;

use crate::experiment::plan::Paths;

pub async fn serve(paths: &Paths, addr: SocketAddr, token: Option<String>) -> anyhow::Result<()> {
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::view::serve(
        crate::view::ViewArgs {
            store: paths.store(),
            addr,
            token,
        },
        shutdown,
    )
    .await
}

pub fn export(paths: &Paths, ids: &[String], out: &Path, json: bool) -> anyhow::Result<()> {
    let done = crate::view::export(&paths.store(), ids, out)?;
    let index = done.dir.join("index.html");
    if json {
        println!(
            "{}",
            serde_json::json!({"dir": done.dir, "pages": done.pages, "index": index})
        );
    } else {
        println!(
            "wrote {} pages to {} (open {})",
            done.pages,
            done.dir.display(),
            index.display()
        );
    }
    Ok(())
}
