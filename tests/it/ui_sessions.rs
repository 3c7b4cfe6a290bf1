//! Sessions and login throttling in the console, in Chinese on a phone (390×844), in a real
//! headless Chromium against `cistern run` with a 20-second idle timeout (issue 24, item 3):
//!
//! - the admin's sessions tab lists another user's session with its address and browser and
//!   ends it (that token is refused at once); it shows a waiting login-throttling key and
//!   unlocks it; the tokens tab issues a token with a scope and a lifetime and lists both;
//! - a user's sign-in that is throttled says so, with the seconds to wait, and the button waits
//!   too;
//! - the user's own account page lists their sessions (this one marked) and ends another, and
//!   changes their password (a mismatch and a wrong current password said clearly);
//! - left alone past the idle timeout, the console returns to sign-in and says why.
//!
//! On every screen: no English word outside data, no missing catalogue key, nothing past the
//! phone's edge.

use crate::browser::Browser;
use crate::support::{call_as, call_from, get, post, storage_site, token_for, Cistern};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn assert_clean(browser: &Browser, at: &str) {
    browser.assert_chinese_only(at);
    assert_eq!(
        browser.overflowing(),
        Vec::<String>::new(),
        "past the phone's edge at {at}"
    );
}

fn show(browser: &Browser, hash: &str) {
    browser.js("location.hash = arguments[0];", json!([hash]));
}

fn confirm(browser: &Browser, dialog: &str) {
    browser.until(
        "the confirmation dialog",
        WAIT,
        &format!("return document.querySelector('{dialog}').open || null;"),
    );
    browser.click(&browser.element(&format!("{dialog} .ask-ok"), WAIT));
}

fn toast(browser: &Browser, starts: &str) -> String {
    let text = browser.until(
        "the toast",
        WAIT,
        &format!(
            "const t = document.getElementById('toast'); \
             const s = !t.hidden && t.querySelector('span').textContent; \
             return s && s.startsWith({starts:?}) && s || null;"
        ),
    );
    browser.js("document.getElementById('toast').hidden = true;", json!([]));
    text.as_str().unwrap().to_owned()
}

#[test]
fn the_console_shows_and_ends_sessions_unlocks_logins_and_says_why_a_session_ended() {
    let config = storage_site(
        "ui-sessions",
        "[ws]\nheartbeat = \"1s\"\n\
         [auth]\nidle_timeout = \"20s\"\nlogin_delay = \"30s\"\nlogin_max_delay = \"1m\"",
    );
    let node = Cistern::run("ui-sessions", &config).start();
    let base = node.http().to_owned();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (status, v) = post(
        &format!("{base}/api/v1/users"),
        r#"{"name":"op1","role":"operator","password":"op1-password-1"}"#,
    );
    assert_eq!(status, 201, "{v}");
    // op1 signs in from a field tablet at 127.0.0.2.
    let tablet = call_from(
        "127.0.0.2",
        "POST",
        &format!("{base}/api/v1/auth/login"),
        &[("user-agent", "CisternTablet/2.1 (field)")],
        Some(r#"{"user":"op1","password":"op1-password-1"}"#),
    );
    assert_eq!(tablet.status, 200, "{}", tablet.body);
    let tablet = tablet.body["token"].as_str().unwrap().to_owned();

    let browser = Browser::start_sized("ui-sessions-browser", 390, 844);
    browser.sign_in(&base, "zh-CN");

    // The sessions tab: op1's session with its address and browser.
    show(&browser, "#/admin/sessions");
    let row = browser.until(
        "op1's session listed",
        WAIT,
        "const r = document.querySelector('table.admin-sessions tr[data-user=op1]'); \
         return r && r.textContent || null;",
    );
    let row = row.as_str().unwrap();
    assert!(
        row.contains("127.0.0.2") && row.contains("CisternTablet/2.1"),
        "{row}"
    );
    browser.element("table.admin-sessions tr.current .badge", WAIT);
    assert_clean(&browser, "the sessions tab");
    browser.screenshot(&shots.join("ui-sessions-admin.png"));

    // Guessing op1's password from 127.0.0.3: the key waits, listed; the admin unlocks it.
    for _ in 0..3 {
        let a = call_from(
            "127.0.0.3",
            "POST",
            &format!("{base}/api/v1/auth/login"),
            &[],
            Some(r#"{"user":"op1","password":"guess-guess-guess"}"#),
        );
        assert_eq!(a.status, 401);
    }
    show(&browser, "#/admin/users");
    show(&browser, "#/admin/sessions");
    let waiting = "table.admin-throttles tr.waiting[data-key=pair][data-address='127.0.0.3']";
    let text = browser.until(
        "the waiting key",
        WAIT,
        &format!(
            "const r = document.querySelector(\"{waiting}\"); return r && r.textContent || null;"
        ),
    );
    assert!(text.as_str().unwrap().contains("秒"), "{text}");
    assert_clean(&browser, "the throttling table");
    browser.click(&browser.element(&format!("{waiting} button[data-unlock]"), WAIT));
    let said = toast(&browser, "已清除");
    assert_eq!(said, "已清除 1 项限速记录");
    browser.until(
        "the key gone",
        WAIT,
        &format!("return !document.querySelector(\"{waiting}\") || null;"),
    );
    let (_, v) = get(&format!("{base}/api/v1/auth/throttles"));
    assert!(
        !v["throttles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key"] == "pair" && k["address"] == "127.0.0.3"),
        "{v}"
    );

    // The admin ends op1's tablet session: refused at once.
    browser.click(&browser.element(
        "table.admin-sessions tr[data-user=op1] button[data-session]",
        WAIT,
    ));
    confirm(&browser, ".admin-ask");
    assert_eq!(toast(&browser, "已结束"), "已结束 op1 的会话");
    let (status, _) = call_as(Some(&tablet), "GET", &format!("{base}/api/v1/rooms"), None);
    assert_eq!(status, 401, "the ended session is refused");

    // The tokens tab: a token that operates, for 30 days.
    browser.click(&browser.element(".admin-tabs a[href='#/admin/tokens']", WAIT));
    browser.type_into(
        &browser.element("#token-form input[name=name]", WAIT),
        "bridge1",
    );
    browser.set_value("#token-form select[name=role]", "operator");
    browser.set_value("#token-form select[name=scope]", "operate");
    browser.set_value("#token-form select[name=days]", "30");
    browser.click(&browser.element("#token-form button[type=submit]", WAIT));
    let listed = browser.until(
        "the token with its scope and expiry",
        WAIT,
        "const r = document.querySelector('table.admin-tokens tr[data-scope=operate]'); \
         return r && r.textContent || null;",
    );
    assert!(listed.as_str().unwrap().contains("操作"), "{listed}");
    assert_clean(&browser, "the tokens tab");
    let (_, v) = get(&format!("{base}/api/v1/tokens"));
    let token = &v["tokens"][0];
    assert_eq!(
        (token["name"].as_str(), token["scope"].as_str()),
        (Some("bridge1"), Some("operate"))
    );
    let days = (token["expires_at_ms"].as_i64().unwrap() - token["created_at_ms"].as_i64().unwrap())
        as f64
        / 86_400_000.0;
    assert!((days - 30.0).abs() < 0.01, "{token}");

    // A throttled sign-in says how long to wait, and the button waits.
    browser.click(&browser.element("#logout", WAIT));
    for n in 0..3 {
        browser.submit_sign_in("op1", "not-the-password");
        browser.until(
            &format!("wrong password {n}"),
            WAIT,
            "const e = document.getElementById('login-error'); \
             return e.textContent === '用户名或密码错误。' && !document.getElementById('login-submit').disabled || null;",
        );
        browser.js(
            "document.getElementById('login-error').textContent = '';",
            json!([]),
        );
    }
    browser.submit_sign_in("op1", "op1-password-1");
    let said = browser.until(
        "the wait said",
        WAIT,
        "const e = document.getElementById('login-error'); \
         return /^该用户在此处登录失败次数过多，请 \\d+ 秒后再试。$/.test(e.textContent) \
           && document.getElementById('login-submit').disabled && e.textContent || null;",
    );
    assert_clean(&browser, "a throttled sign-in");
    browser.screenshot(&shots.join("ui-sessions-throttled.png"));
    let seconds: u32 = said
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((25..=30).contains(&seconds), "{said}");
    let (status, v) = post(
        &format!("{base}/api/v1/auth/throttles/unlock"),
        r#"{"user":"op1"}"#,
    );
    assert_eq!(status, 200, "{v}");

    // op1's own account: this session marked, another one ended, the password changed.
    let other = token_for(&base, "op1", "op1-password-1");
    browser.goto(&format!("{base}/?lang=zh-CN"));
    browser.submit_sign_in("op1", "op1-password-1");
    browser.until(
        "signed in as op1",
        WAIT,
        "return !document.getElementById('shell').hidden || null;",
    );
    browser.click(&browser.element("#nav-account", WAIT));
    browser.until(
        "two sessions, this one marked",
        WAIT,
        "return document.querySelectorAll('table.my-sessions tr[data-session]').length === 2 \
           && document.querySelector('table.my-sessions tr.current .badge') || null;",
    );
    browser.until(
        "the password rules",
        WAIT,
        "return document.querySelector('.password-rules').textContent.startsWith('至少 12 个字符') || null;",
    );
    assert_clean(&browser, "my account");
    browser.screenshot(&shots.join("ui-sessions-account.png"));
    browser.click(&browser.element(
        "table.my-sessions tr:not(.current) button[data-session]",
        WAIT,
    ));
    confirm(&browser, ".account-ask");
    assert_eq!(toast(&browser, "会话"), "会话已结束");
    browser.until(
        "one session left",
        WAIT,
        "return document.querySelectorAll('table.my-sessions tr[data-session]').length === 1 || null;",
    );
    let (status, _) = call_as(Some(&other), "GET", &format!("{base}/api/v1/rooms"), None);
    assert_eq!(status, 401);
    let fill = |current: &str, next: &str, again: &str| {
        browser.type_into(
            &browser.element("#password-form input[name=current]", WAIT),
            current,
        );
        browser.type_into(
            &browser.element("#password-form input[name=next]", WAIT),
            next,
        );
        browser.type_into(
            &browser.element("#password-form input[name=again]", WAIT),
            again,
        );
        browser.click(&browser.element("#password-form button[type=submit]", WAIT));
    };
    let error_is = |text: &str| {
        browser.until(
            text,
            WAIT,
            &format!("return document.querySelector('.password-error').textContent === {text:?} || null;"),
        );
    };
    fill("op1-password-1", "op1-password-22", "op1-password-23");
    error_is("两次输入的新密码不一致。");
    fill("not-my-password", "op1-password-22", "op1-password-22");
    error_is("当前密码不正确。");
    assert_clean(&browser, "a refused password change");
    fill("op1-password-1", "op1-password-22", "op1-password-22");
    assert_eq!(
        toast(&browser, "密码已修改"),
        "密码已修改，已结束其他 0 个会话。"
    );
    token_for(&base, "op1", "op1-password-22");

    // Left alone past the idle timeout (20 s), the console goes back to sign-in and says why.
    let said = browser.until(
        "signed out as idle",
        Duration::from_secs(60),
        "return !document.getElementById('login').hidden \
           && document.getElementById('login-error').textContent || null;",
    );
    assert_eq!(said, "已超过 1 分钟无操作，已自动退出，请重新登录。");
    assert_clean(&browser, "signed out as idle");
}
