//! `POST /api/v1/rules/{id}/backtest` through the binary: a draft that does not compile is
//! refused with its diagnostics, a period beyond the cap is refused by code, and a draft of
//! `tank_high` with a far lower threshold raises more alarms than the rule in force over the
//! history the demo just stored. `POST /api/v1/rules/{id}/cases` on the same node: the rule in
//! force passes its golden cases, the low-threshold draft fails `tank_high` with the first
//! transition that differs, a draft that does not compile and an unknown rule are refused by
//! code.

use crate::support::{call_as, post, token_for, wait_for, Cistern, IT_ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

/// The shipped `tank_high` with its limit at `high_pct` and a 1 s on-delay.
pub fn tank_high_at(high_pct: f64) -> String {
    include_str!("../../rules/library/tank_high.rhai")
        .replace("high_pct = 95.0", &format!("high_pct = {high_pct:.1}"))
        .replace("on_delay = \"60s\"", "on_delay = \"1s\"")
}

fn backtest(base: &str, rule: &str, body: &Value) -> (u16, Value) {
    post(
        &format!("{base}/api/v1/rules/{rule}/backtest"),
        &body.to_string(),
    )
}

fn cases(base: &str, rule: &str, body: &Value) -> (u16, Value) {
    post(
        &format!("{base}/api/v1/rules/{rule}/cases"),
        &body.to_string(),
    )
}

/// The golden cases of a rule against a draft (on the backtest's node: they need no history).
fn golden_cases_run_against_a_draft(base: &str) {
    // The rule in force passes every case that exercises it.
    let running = include_str!("../../rules/library/tank_high.rhai");
    let (status, v) = cases(base, "tank_high", &json!({ "source": running }));
    assert_eq!(status, 200, "{v}");
    assert!(v["total"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["passed"], v["total"], "{v}");
    assert!(
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "tank_high" && c["passed"] == true),
        "{v}"
    );
    // A 5 % limit raises at once in both tanks: the case that expects T2 after 60 s fails,
    // and says what it expected and what it got.
    let (status, v) = cases(base, "tank_high", &json!({ "source": tank_high_at(5.0) }));
    assert_eq!(status, 200, "{v}");
    assert!(v["failed"].as_u64().unwrap() >= 1, "{v}");
    let case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tank_high")
        .unwrap_or_else(|| panic!("no tank_high case in {v}"));
    assert_eq!(case["passed"], false, "{v}");
    let difference = &case["difference"];
    assert_eq!(difference["transition"], 1, "{v}");
    let expected = difference["expected"].as_str().unwrap();
    let got = difference["got"].as_str().unwrap();
    assert!(expected.starts_with("1m tank_high@T2 raised"), "{v}");
    assert!(got.starts_with("1s tank_high@T1 raised"), "{v}");
    // Refusals: a draft that does not compile, an unknown rule, no source.
    let (status, v) = cases(base, "tank_high", &json!({ "source": "let = ;" }));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("rule_rejected")),
        "{v}"
    );
    assert_eq!(v["diagnostics"][0]["level"], "error", "{v}");
    let (status, v) = cases(base, "no_such_rule", &json!({ "source": running }));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown_rule")),
        "{v}"
    );
    let (status, v) = cases(base, "tank_high", &json!({ "sauce": "x" }));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
}

#[test]
fn a_backtest_compares_a_draft_with_the_rules_in_force_over_stored_history() {
    let demo = Cistern::demo("admin-backtest").rooms(3).start();
    let base = demo.http().to_owned();

    golden_cases_run_against_a_draft(&base);

    // Refusals first: they need no history.
    let (status, v) = backtest(
        &base,
        "tank_high",
        &json!({ "source": "let = ;", "last": "1h" }),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "rule_rejected", "{v}");
    let diag = &v["diagnostics"][0];
    assert!(diag["line"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(diag["level"], "error", "{v}");
    let (status, v) = backtest(
        &base,
        "tank_high",
        &json!({ "source": tank_high_at(5.0), "last": "30d" }),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_period")),
        "{v}"
    );
    let (status, v) = backtest(&base, "tank_high", &json!({ "sauce": "x" }));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    // A rule author may; an operator may not.
    for (name, role) in [("ann", "rule-author"), ("otto", "operator")] {
        let (status, v) = post(
            &format!("{base}/api/v1/users"),
            &json!({ "name": name, "role": role, "password": IT_ADMIN_PASSWORD }).to_string(),
        );
        assert_eq!(status, 201, "{v}");
    }
    let as_user = |user: &str, what: &str| {
        let token = token_for(&base, user, IT_ADMIN_PASSWORD);
        call_as(
            Some(&token),
            "POST",
            &format!("{base}/api/v1/rules/tank_high/{what}"),
            Some(&json!({ "source": "let = ;" }).to_string()),
        )
        .0
    };
    for what in ["backtest", "cases"] {
        assert_eq!(as_user("otto", what), 403, "{what}");
        assert_eq!(as_user("ann", what), 422, "{what}");
    }

    // Over what the demo stored: tanks sit far above 5 %, so the draft raises tank_high in
    // rooms where the running rule (95 %) raises nothing.
    let draft = json!({ "source": tank_high_at(5.0), "last": "1h" });
    let result = wait_for(
        "a backtest over a minute of stored history",
        Duration::from_secs(90),
        || {
            let (status, v) = backtest(&base, "tank_high", &draft);
            assert!(
                status == 200 || v["error"]["code"] == "empty_history",
                "{status} {v}"
            );
            (status == 200 && v["to"].as_i64()? - v["from"].as_i64()? >= 20_000).then_some(v)
        },
    );
    let per_rule = |side: &str| {
        result[side]["result"]["kpis"]["per_rule"]["tank_high"]
            .as_u64()
            .unwrap_or(0)
    };
    let annunciated = |side: &str| {
        result[side]["result"]["kpis"]["annunciated"]
            .as_u64()
            .unwrap()
    };
    assert!(per_rule("draft") > per_rule("running"), "{result}");
    assert!(annunciated("draft") > annunciated("running"), "{result}");
    assert_eq!(result["rooms"], 3, "{result}");
    assert!(result["readings"].as_u64().unwrap() > 0, "{result}");
    assert!(result["running"]["version"].is_string(), "{result}");
    // Nothing changed: the rule in force is still the shipped one.
    let (_, rule) = crate::support::get(&format!("{base}/api/v1/rules/tank_high"));
    assert!(
        rule["source"].as_str().unwrap().contains("high_pct = 95.0"),
        "{rule}"
    );
}
