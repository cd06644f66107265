//! The prompt templates of forge's plugins (the judge's, the RAG metrics',
//! the optimizers'): `{identifier}` placeholders (ASCII letters, digits
//! and `_`, not starting with a digit), every other brace literal, filled
//! in one left-to-right pass so text that comes in (a passage or a prompt
//! that happens to contain `{question}`) is never substituted again.
//! Plain Rust, no dependencies; each plugin crate and the host link it.

/// A piece of a template: literal text, or a placeholder's name.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// The template's pieces, left to right.
pub fn pieces(t: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let n = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let ident = &after[..n];
        if !ident.is_empty()
            && !ident.starts_with(|c: char| c.is_ascii_digit())
            && after[n..].starts_with('}')
        {
            out.push(Piece::Text(&rest[..i]));
            out.push(Piece::Placeholder(ident));
            rest = &after[n + 1..];
        } else {
            out.push(Piece::Text(&rest[..=i]));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// The placeholder names a template uses, in order of first use.
pub fn placeholders(t: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in pieces(t) {
        if let Piece::Placeholder(name) = p
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

/// Fills the placeholders named in `values`; any other placeholder stays
/// as written.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder(name) => match values.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_once_and_keeps_other_braces() {
        let t = "Q: {question} {other} {1x} { json } {a";
        assert_eq!(
            fill(t, &[("question", "{question}!"), ("a", "no")]),
            "Q: {question}! {other} {1x} { json } {a"
        );
        assert_eq!(placeholders("{b} {a_1} {b} {2}"), vec!["b", "a_1"]);
        assert_eq!(fill("", &[]), "");
    }
}
