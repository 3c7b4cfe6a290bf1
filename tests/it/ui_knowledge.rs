//! The knowledge base (issue 20 item 4) edited by an engineer, through the binary: over REST an
//! operator is refused (403) and a malformed problem is refused with `invalid_knowledge` (422),
//! both audited; in a real headless Chromium at 390×844 in Chinese, a rule author opens a
//! problem from the work orders, adds a remedy in both languages and saves; the remedy is then
//! in the problem, among an order's suggestions, and still there after a restart.

use crate::browser::Browser;
use crate::support::{call_as, get, post, token_for, Cistern, IT_ADMIN_PASSWORD};
use serde_json::json;
use std::time::Duration;

#[test]
fn an_engineer_adds_a_remedy_on_a_phone_and_it_is_suggested_and_kept() {
    let mut demo = Cistern::demo("ui-knowledge")
        .rooms(4)
        .modbus_rooms(0)
        .start();
    let base = demo.http().to_owned();
    for (name, role) in [("gong", "rule-author"), ("otto", "operator")] {
        let (status, v) = post(
            &format!("{base}/api/v1/users"),
            &json!({ "name": name, "role": role, "password": IT_ADMIN_PASSWORD }).to_string(),
        );
        assert_eq!(status, 201, "{v}");
    }
    let (_, kb) = get(&format!("{base}/api/v1/knowledge?problem=pump_fault"));
    let problem = kb["problems"][0].clone();
    let put = |user: &str, body: &serde_json::Value| {
        let token = token_for(&base, user, IT_ADMIN_PASSWORD);
        call_as(
            Some(&token),
            "PUT",
            &format!("{base}/api/v1/knowledge/pump_fault"),
            Some(&body.to_string()),
        )
    };
    let (status, v) = put("otto", &problem);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let mut bad = problem.clone();
    bad["cause"][0]["remedies"][0]["text_zh"] = json!("");
    let (status, v) = put("gong", &bad);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_knowledge")),
        "{v}"
    );
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=knowledge_edit"));
    assert_eq!(
        audit["entries"].as_array().unwrap().len(),
        1,
        "the refusal: {audit}"
    );

    // The phone, in Chinese, as the rule author.
    let phone = Browser::start_sized("ui-knowledge-phone", 390, 844);
    phone.goto(&format!("{base}/?lang=zh-CN"));
    phone.submit_sign_in("gong", IT_ADMIN_PASSWORD);
    phone.until(
        "the console",
        Duration::from_secs(30),
        "return !document.getElementById('shell').hidden || null;",
    );
    phone.click(&phone.element("nav a[data-view=orders]", Duration::from_secs(10)));
    phone.click(&phone.element("#o-kb", Duration::from_secs(10)));
    phone.click(&phone.element(
        "a.kb-problem[data-problem=pump_fault]",
        Duration::from_secs(10),
    ));
    phone.click(&phone.element("#kb-edit", Duration::from_secs(10)));
    phone.click(&phone.element("button[data-add-remedy=\"0\"]", Duration::from_secs(10)));
    let remedies = problem["cause"][0]["remedies"].as_array().unwrap().len();
    let field = |name: &str| format!("input[name=\"c0r{remedies}.{name}\"]");
    phone.type_into(
        &phone.element(&field("id"), Duration::from_secs(5)),
        "swap_drive",
    );
    phone.type_into(
        &phone.element(&field("text"), Duration::from_secs(5)),
        "Swap in the spare drive",
    );
    phone.type_into(
        &phone.element(&field("text_zh"), Duration::from_secs(5)),
        "换上备用变频器",
    );
    assert_eq!(phone.missing_keys(), Vec::<String>::new(), "the editor");
    assert_eq!(phone.overflowing(), Vec::<String>::new(), "the editor");
    assert_eq!(phone.latin_words(), Vec::<String>::new(), "the editor");
    phone.click(&phone.element("#kb-save", Duration::from_secs(5)));
    let saved = phone.until(
        "the saved problem with its new remedy, or the refusal",
        Duration::from_secs(15),
        "const e = document.getElementById('kb-error'); \
         if (e && !e.hidden) return 'refused: ' + e.textContent; \
         return document.querySelector('li[data-remedy=swap_drive]') ? 'saved' : null;",
    );
    assert_eq!(saved, "saved");
    assert_eq!(phone.latin_words(), Vec::<String>::new(), "the problem");

    let check = |base: &str| {
        let (_, kb) = get(&format!("{base}/api/v1/knowledge?problem=pump_fault"));
        let suggestions = kb["suggestions"].as_array().unwrap();
        assert!(
            suggestions
                .iter()
                .any(|s| s["remedy"] == "swap_drive" && s["remedy_zh"] == "换上备用变频器"),
            "{kb}"
        );
    };
    check(&base);
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=knowledge_edit"));
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["user"] == "gong" && e["ok"] == true),
        "{audit}"
    );
    demo.kill9();
    demo.restart();
    check(demo.http());
}
