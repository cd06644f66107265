//! The trace note a RAG method writes so metrics can see what it retrieved:
//! `retrieved: [{"id":"p1#0","score":7.25,"title":"Paris"}, ...]`, best
//! first, every passage the search returned (also those not put in the
//! prompt, so recall@10 can be measured while the prompt holds 3).

use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "retrieved: ";

/// One retrieved passage as the note records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retrieved {
    pub id: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The note's text for `hits` (best first).
pub fn format(hits: &[Retrieved]) -> String {
    format!(
        "{PREFIX}{}",
        serde_json::to_string(hits).expect("plain records serialise")
    )
}

/// The retrieved passages of the last `retrieved:` note among `notes`
/// (the contents of a trace's note steps); `Ok(None)` when there is none,
/// an error naming the note when it is not the JSON the method writes.
pub fn parse<'a>(
    notes: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Vec<Retrieved>>, String> {
    let Some(body) = notes
        .into_iter()
        .filter_map(|n| n.strip_prefix(PREFIX))
        .last()
    else {
        return Ok(None);
    };
    serde_json::from_str(body)
        .map(Some)
        .map_err(|e| format!("trace note `{PREFIX}...` is not a JSON list of {{id, score}}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_round_trips_and_the_last_one_wins() {
        let hits = vec![
            Retrieved {
                id: "d1#0".into(),
                score: 7.25,
                title: Some("Paris".into()),
            },
            Retrieved {
                id: "d2".into(),
                score: 1.0,
                title: None,
            },
        ];
        let n = format(&hits);
        assert_eq!(
            n,
            r#"retrieved: [{"id":"d1#0","score":7.25,"title":"Paris"},{"id":"d2","score":1.0}]"#
        );
        assert_eq!(parse(["query: x", n.as_str()]).unwrap(), Some(hits));
        assert_eq!(parse(["query: x"]).unwrap(), None);
        assert_eq!(
            parse(["retrieved: []", "retrieved: [{\"id\":\"a\",\"score\":2}]"])
                .unwrap()
                .unwrap()[0]
                .id,
            "a"
        );
        let e = parse(["retrieved: {oops"]).unwrap_err();
        assert!(e.contains("not a JSON list"), "{e}");
    }
}
