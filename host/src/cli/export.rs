//! `forge-host export`: an experiment's runs, streamed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::experiment::plan::Paths;
use crate::results::report;
use crate::results::report::ExportFormat;
use crate::results::store::Store;

pub fn export(
    paths: &Paths,
    id: &str,
    format: ExportFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let store = Store::open_to_read(&paths.store())?;
    let e = store.find(id)?;
    let s = store.summary(&e.id)?;
    let mut w: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    report::export(&mut w, format, &e, s.as_ref(), &store)?;
    w.flush()?;
    Ok(())
}
