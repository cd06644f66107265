//! Which retrieved passages are gold. A passage is relevant when its source
//! document id (the id before a chunk suffix `#<n>`) is one of the example's
//! gold ids (metadata field, `para_id` for SQuAD); when no ids are available
//! (no gold id in the metadata, or passages without ids) it is relevant when
//! its text and the example's gold context contain one another (chunks are
//! exact substrings of their document; whitespace is collapsed first).

/// A retrieved passage, in rank order.
#[derive(Clone, Copy, Debug)]
pub struct Passage<'a> {
    pub id: Option<&'a str>,
    pub text: Option<&'a str>,
}

/// How relevance was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Id,
    Text,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Relevance {
    /// Per passage: relevant (every chunk of a gold document is).
    pub relevant: Vec<bool>,
    /// Per passage: relevant and the first passage of its gold document, so
    /// a document counts once in recall, MRR and nDCG.
    pub first_of_doc: Vec<bool>,
    /// Number of gold documents (1 when judged by text).
    pub gold: usize,
    pub by: By,
}

/// The document a passage id belongs to: `doc#3` → `doc` (a suffix of
/// digits after the last `#` is a chunk number); other ids are their own.
pub fn doc_id(id: &str) -> &str {
    match id.rsplit_once('#') {
        Some((doc, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => doc,
        _ => id,
    }
}

/// The gold ids in the example's metadata JSON under `field`: a string or a
/// list of strings; none when the field is absent or null.
pub fn gold_ids(metadata: &str, field: &str) -> Result<Vec<String>, String> {
    if metadata.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| format!("example metadata: {e}"))?;
    match v.get(field) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("metadata.{field} must hold strings, found {x}"))
            })
            .collect(),
        Some(other) => Err(format!(
            "metadata.{field} must be a string or a list of strings, found {other}"
        )),
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Judges `passages` against the gold ids, else the gold context. An error
/// when neither is available (nothing to measure against).
pub fn judge(
    gold_ids: &[String],
    context: Option<&str>,
    passages: &[Passage],
) -> Result<Relevance, String> {
    let by_id = !gold_ids.is_empty() && passages.iter().all(|p| p.id.is_some());
    let n = passages.len();
    let mut out = Relevance {
        relevant: vec![false; n],
        first_of_doc: vec![false; n],
        gold: 1,
        by: if by_id { By::Id } else { By::Text },
    };
    if by_id {
        let mut gold: Vec<&str> = gold_ids.iter().map(|g| doc_id(g)).collect();
        gold.sort_unstable();
        gold.dedup();
        out.gold = gold.len();
        let mut seen: Vec<&str> = Vec::new();
        for (i, p) in passages.iter().enumerate() {
            let d = doc_id(p.id.unwrap_or_default());
            if gold.contains(&d) {
                out.relevant[i] = true;
                if !seen.contains(&d) {
                    seen.push(d);
                    out.first_of_doc[i] = true;
                }
            }
        }
        return Ok(out);
    }
    let ctx = match context.map(collapse) {
        Some(c) if !c.is_empty() => c,
        _ => {
            return Err(
                "no gold to judge retrieval against: the example has neither a gold id in its \
                 metadata (param gold_id_field) nor a context"
                    .into(),
            );
        }
    };
    let mut seen = false;
    for (i, p) in passages.iter().enumerate() {
        let t = collapse(p.text.unwrap_or_default());
        if !t.is_empty() && (ctx.contains(&t) || t.contains(&ctx)) {
            out.relevant[i] = true;
            if !seen {
                seen = true;
                out.first_of_doc[i] = true;
            }
        }
    }
    Ok(out)
}

/// The passages to judge: with a `retrieved:` note, its entries (ids, and
/// the texts of those that are also in `contexts`, which holds the first
/// ones in rank order); without one, the contexts' texts. `used_only`
/// keeps only the passages that were put in the prompt (`contexts`).
pub fn passages<'a>(
    retrieved: Option<&'a [crate::note::Retrieved]>,
    contexts: &'a [String],
    used_only: bool,
) -> Vec<Passage<'a>> {
    match retrieved {
        Some(r) => {
            let n = if used_only {
                r.len().min(contexts.len())
            } else {
                r.len()
            };
            r[..n]
                .iter()
                .enumerate()
                .map(|(i, h)| Passage {
                    id: Some(&h.id),
                    text: contexts.get(i).map(String::as_str),
                })
                .collect()
        }
        None => contexts
            .iter()
            .map(|c| Passage {
                id: None,
                text: Some(c),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(v: &[&'a str]) -> Vec<Passage<'a>> {
        v.iter()
            .map(|i| Passage {
                id: Some(i),
                text: None,
            })
            .collect()
    }

    #[test]
    fn chunk_ids_belong_to_their_document() {
        assert_eq!(doc_id("squad_dev_a00_p000#3"), "squad_dev_a00_p000");
        assert_eq!(doc_id("squad_dev_a00_p000"), "squad_dev_a00_p000");
        assert_eq!(doc_id("C#"), "C#");
        assert_eq!(doc_id("a#b"), "a#b");
        assert_eq!(doc_id("x#1#12"), "x#1");
    }

    #[test]
    fn gold_ids_come_from_the_named_field() {
        assert_eq!(gold_ids(r#"{"para_id":"p1"}"#, "para_id").unwrap(), ["p1"]);
        assert_eq!(
            gold_ids(r#"{"gold":["a","b"]}"#, "gold").unwrap(),
            ["a", "b"]
        );
        assert!(gold_ids(r#"{"x":1}"#, "para_id").unwrap().is_empty());
        assert!(gold_ids("", "para_id").unwrap().is_empty());
        assert!(gold_ids(r#"{"para_id":3}"#, "para_id").is_err());
    }

    #[test]
    fn a_gold_document_counts_once() {
        let gold = vec!["d2".to_string()];
        let r = judge(&gold, None, &ids(&["d1#0", "d2#4", "d2#1", "d3"])).unwrap();
        assert_eq!(r.by, By::Id);
        assert_eq!(r.relevant, [false, true, true, false]);
        assert_eq!(r.first_of_doc, [false, true, false, false]);
        assert_eq!(r.gold, 1);
        // Gold ids given as chunk ids still name documents.
        let gold = vec!["d2#0".to_string(), "d2".to_string(), "d9".to_string()];
        assert_eq!(judge(&gold, None, &ids(&["d2"])).unwrap().gold, 2);
    }

    #[test]
    fn without_ids_text_containment_decides() {
        let ctx = "Paris is the capital.  It is  in France.";
        let ps = [
            Passage {
                id: None,
                text: Some("Lyon is a city."),
            },
            Passage {
                id: None,
                text: Some("It is in\nFrance."),
            },
            Passage {
                id: None,
                text: Some("Paris is the capital. It is in France. More text."),
            },
        ];
        let gold = vec!["p".to_string()];
        let r = judge(&gold, Some(ctx), &ps).unwrap();
        assert_eq!(r.by, By::Text);
        assert_eq!(r.relevant, [false, true, true]);
        assert_eq!(r.first_of_doc, [false, true, false]);
        let e = judge(&[], None, &ps).unwrap_err();
        assert!(e.contains("no gold"), "{e}");
    }
}
