//! The loopback MediaWiki API the tests use, as a program: serves the
//! offline Wikipedia summaries (scripts/fetch-data.sh) on 127.0.0.1 so an
//! agent experiment can call `wikipedia_search` in online mode without
//! network access.
//!
//!   cargo run -p forge-host --example mediawiki_fixture -- 8765
//!   # then: [[tools]] plugin = "wikipedia_search"
//!   #       params = { mode = "online", api = "http://127.0.0.1:8765/w/api.php" }
//!   #       grants = { allowed_outbound_hosts = ["127.0.0.1:8765"] }

#[allow(dead_code)]
#[path = "../tests/common/mediawiki.rs"]
mod mediawiki;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .map_or(8765, |p| p.parse().expect("a port number"));
    let corpus = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/wiki-offline/summaries_en-us.json"
        )
        .into()
    });
    let corpus = std::path::PathBuf::from(corpus);
    assert!(
        corpus.is_file(),
        "{} missing: run scripts/fetch-data.sh",
        corpus.display()
    );
    let wiki = mediawiki::MediaWiki::start_on(&corpus, &format!("127.0.0.1:{port}"));
    println!(
        "MediaWiki fixture on {} (from {})",
        wiki.api(),
        corpus.display()
    );
    loop {
        std::thread::park();
    }
}
