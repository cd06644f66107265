//! The `passage_search` tool component, granted to an agent as `retrieval`
//! (`[[tools]] name`): the k best passages of a host index (the offline
//! Wikipedia summaries, BM25) in a real run, the agent's own `k`, and the
//! errors a bad call or a clashing name get.

mod common;
use common::*;

#[test]
fn an_agent_searches_a_host_index_through_the_retrieval_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // The test method (`hostile`, mode "question") calls the first granted
    // tool, by the name it is granted under, with what follows "tool:".
    let data = write(
        tmp.path(),
        "q.jsonl",
        r#"{"id":"e1","question":"tool:Marie Curie","answers":["x"]}
{"id":"e2","question":"tool:{\"query\": \"Amazon River\", \"k\": 1}","answers":["x"]}
{"id":"e3","question":"tool:   ","answers":["x"]}
"#,
    );
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(
            &data,
            "params = { mode = \"question\" }",
            "[[tools]]\nplugin = \"passage_search\"\nname = \"retrieval\"\n\
             params = { index = \"wiki\", k = 2, max_chars = 200 }\n\
             [[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"",
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let answer = |id: &str| {
        ev.iter().find(|e| e["id"] == id).unwrap()["answer"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // k = 2 from the params: two numbered passages, the best first.
    let a = answer("e1");
    let blocks: Vec<&str> = a.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{a}");
    assert!(blocks[0].starts_with("[1] Marie Curie"), "{a}");
    assert!(blocks[1].starts_with("[2] "), "{a}");
    assert!(blocks.iter().all(|b| b.chars().count() <= 200 + 40), "{a}");
    // The agent's own k.
    let a = answer("e2");
    assert!(
        a.starts_with("[1] Amazon River") && !a.contains("[2]"),
        "{a}"
    );
    // An empty query is the tool's error, which the method saw.
    let a = answer("e3");
    assert!(a.contains("TOOL ERROR") && a.contains("empty query"), "{a}");

    // The trace names the tool as the agent called it and what the host's
    // index returned.
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let call = first_tool_call(&trace_of(&home, &id, "e1"));
    assert_eq!(call["tool"], "retrieval", "{call}");
    assert_eq!(call["retrievals"][0]["index"], "wiki", "{call}");
    assert_eq!(call["retrievals"][0]["hits"][0], "Marie Curie", "{call}");
}

#[test]
fn tool_names_are_checked_at_their_config_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = write(
        tmp.path(),
        "q.jsonl",
        "{\"id\":\"e1\",\"question\":\"tool:2+2\",\"answers\":[\"4\"]}\n",
    );
    let refused = |name: &str, method: &str, tail: &str| {
        let cfg = write(tmp.path(), name, &hostile_config(&data, method, tail));
        let out = forge(&home).arg("run").arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // Two tools the agent could not tell apart.
    let e = refused(
        "twice.toml",
        "params = { mode = \"question\" }",
        "[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"\n[[tools]]\nplugin = \"calculator\"\n[[tools]]\nplugin = \"passage_search\"\nname = \"calculator\"\nparams = { index = \"wiki\" }",
    );
    assert!(
        e.contains("twice.toml:")
            && e.contains("tools[1].name")
            && e.contains("a second tool named \"calculator\""),
        "{e}"
    );
    // A retrieval tool pointed at an index the experiment does not define.
    let e = refused(
        "noindex.toml",
        "params = { mode = \"question\" }",
        "[[tools]]\nplugin = \"passage_search\"\nname = \"retrieval\"\nparams = { index = \"nosuch\" }",
    );
    assert!(
        e.contains("noindex.toml:")
            && e.contains("tools[0].params.index")
            && e.contains("passage_search searches index \"nosuch\"")
            && e.contains("it defines none"),
        "{e}"
    );
    // A name on a method means nothing.
    let e = refused("method.toml", "name = \"agent\"", "");
    assert!(
        e.contains("method.toml:")
            && e.contains("method.name")
            && e.contains("only a [[tools]] entry"),
        "{e}"
    );
    // A name an agent could not write.
    let e = refused(
        "spaces.toml",
        "params = { mode = \"question\" }",
        "[[tools]]\nplugin = \"calculator\"\nname = \"my calc\"",
    );
    assert!(
        e.contains("tools[0].name") && e.contains("letters, digits"),
        "{e}"
    );
}
