//! The operator web UI, served by the binary itself so that a control room needs nothing but a
//! browser and the node: no CDN, no map tiles, no build step. The assets are compiled in
//! (`include_str!`); each is served with its content type, a strong ETag (a hash of the
//! content, fixed for the life of the binary) and `Cache-Control: no-cache`, so a browser
//! revalidates cheaply (304) and never runs a stale script after an upgrade.
//!
//! `GET /` is the page; `GET /ui/{file}` are its modules and style sheet (both in the API's
//! route table, public: the page holds no data, and every call it makes carries a token). The UI talks to the
//! node through the REST API and the WebSocket (`/ws`) like any other client.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("web/index.html"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("web/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/api.js"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/live.js"),
    },
    Asset {
        name: "map.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/map.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/admin.js"),
    },
    Asset {
        name: "account.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/account.js"),
    },
    Asset {
        name: "alarms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/alarms.js"),
    },
    Asset {
        name: "mimic.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/mimic.js"),
    },
    Asset {
        name: "room.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/room.js"),
    },
    Asset {
        name: "trend.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/trend.js"),
    },
    Asset {
        name: "xlsx.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/xlsx.js"),
    },
    Asset {
        name: "plans.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/plans.js"),
    },
    Asset {
        name: "field.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/field.js"),
    },
    Asset {
        name: "orders.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/orders.js"),
    },
    Asset {
        name: "assetsimport.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/assetsimport.js"),
    },
    Asset {
        name: "roomtabs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/roomtabs.js"),
    },
    Asset {
        name: "roomtab_archive.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/roomtab_archive.js"),
    },
    Asset {
        name: "assets.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/assets.js"),
    },
    Asset {
        name: "assetsimport.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/assetsimport.js"),
    },
    Asset {
        name: "cleaning.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/cleaning.js"),
    },
    Asset {
        name: "inspections.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/inspections.js"),
    },
    Asset {
        name: "roomtab_cleaning.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/roomtab_cleaning.js"),
    },
    Asset {
        name: "roomtab_inspections.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/roomtab_inspections.js"),
    },
    Asset {
        name: "knowledge.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/knowledge.js"),
    },
    Asset {
        name: "notify.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/notify.js"),
    },
    Asset {
        name: "neworder.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/neworder.js"),
    },
    Asset {
        name: "cockpit.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/cockpit.js"),
    },
    Asset {
        name: "ranking.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/ranking.js"),
    },
    Asset {
        name: "wall.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/wall.js"),
    },
    Asset {
        name: "reliability.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/reliability.js"),
    },
    Asset {
        name: "energy.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/energy.js"),
    },
    Asset {
        name: "efficiency.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/efficiency.js"),
    },
    Asset {
        name: "compare.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/compare.js"),
    },
    Asset {
        name: "leakage.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/leakage.js"),
    },
    Asset {
        name: "roomtab_lifecycle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/roomtab_lifecycle.js"),
    },
    Asset {
        name: "kpis.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/kpis.js"),
    },
    Asset {
        name: "board.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/board.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/i18n.js"),
    },
    Asset {
        name: "i18n-zh-CN.json",
        content_type: "application/json; charset=utf-8",
        body: include_str!("web/i18n-zh-CN.json"),
    },
    Asset {
        name: "i18n-en.json",
        content_type: "application/json; charset=utf-8",
        body: include_str!("web/i18n-en.json"),
    },
    Asset {
        name: "format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/format.js"),
    },
];

/// Only our own files: scripts and styles from this origin, the socket and the API on it.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The ETag of each asset, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                a.body.hash(&mut h);
                format!("\"{:016x}\"", h.finish())
            })
            .collect()
    })
}

/// `GET /`: the page.
pub async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

/// `GET /ui/{file}`: a module or the style sheet.
pub async fn file(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    serve(&req, &name)
}

fn serve(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return super::error::ApiError::not_found(
            super::error::ErrorCode::NotFound,
            "no such resource",
        )
        .error_response();
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if fresh {
        resp.finish()
    } else {
        resp.content_type(asset.content_type).body(asset.body)
    }
}

/// The console's catalogue of `language`, parsed once (the server's words come from the same
/// catalogues as the console's: exports, import reports).
pub fn catalogue(language: crate::auth::identity::Language) -> &'static serde_json::Value {
    use crate::auth::identity::Language;
    static CATALOGUES: std::sync::OnceLock<[serde_json::Value; 2]> = std::sync::OnceLock::new();
    let [zh, en] = CATALOGUES.get_or_init(|| {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
        [
            parse(include_str!("web/i18n-zh-CN.json")),
            parse(include_str!("web/i18n-en.json")),
        ]
    });
    match language {
        Language::ZhCn => zh,
        Language::En => en,
    }
}

/// The catalogues as the archive's spreadsheet words ([`crate::business::assets::archive::sheet`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleWords;

impl crate::business::assets::archive::sheet::Words for ConsoleWords {
    fn text(
        &self,
        lang: crate::business::assets::archive::sheet::Lang,
        key: &str,
    ) -> Option<String> {
        use crate::auth::identity::Language;
        use crate::business::assets::archive::sheet::Lang;
        let root = catalogue(match lang {
            Lang::ZhCn => Language::ZhCn,
            Lang::En => Language::En,
        });
        let v = key.split('.').try_fold(root, |v, k| v.get(k))?;
        v.as_str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, App};

    #[actix_web::test]
    async fn serves_the_page_and_its_modules_with_types_and_revalidation() {
        let app = test::init_service(
            App::new()
                .route("/", web::get().to(index))
                .route("/ui/{file}", web::get().to(file)),
        )
        .await;
        let resp = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
        let etag = resp.headers().get(header::ETAG).unwrap().clone();
        let body = test::read_body(resp).await;
        let html = std::str::from_utf8(&body).unwrap();
        // Every module the page loads is one we serve.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let uri = format!("/ui/{}", a.name);
            let resp =
                test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(resp.status(), 200, "{uri}");
            assert_eq!(
                resp.headers().get(header::CONTENT_TYPE).unwrap(),
                "text/javascript; charset=utf-8"
            );
        }
        assert!(html.contains("/ui/app.js") && html.contains("/ui/app.css"));
        // Revalidation: the same ETag gets a 304 without a body.
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/")
                .insert_header((header::IF_NONE_MATCH, etag))
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), 304);
        let resp = test::call_service(
            &app,
            test::TestRequest::get().uri("/ui/nope.js").to_request(),
        )
        .await;
        assert_eq!(resp.status(), 404);
    }

    /// The key paths of a catalogue (`alarms.ack`), each with its text.
    fn keys(
        v: &serde_json::Value,
        prefix: &str,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(v, &p, out);
                }
            }
            serde_json::Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            other => panic!("{prefix}: a catalogue holds texts, not {other}"),
        }
    }

    fn catalogue(name: &str) -> std::collections::BTreeMap<String, String> {
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(asset.body).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let mut out = std::collections::BTreeMap::new();
        keys(&v, "", &mut out);
        out
    }

    /// The placeholders (`{n}`) of a text; a date's `{MM}` (zero-padded) counts as its `{M}`.
    fn placeholders(text: &str) -> std::collections::BTreeSet<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .map(|name| match name {
                "MM" => "M",
                "DD" => "D",
                other => other,
            })
            .collect()
    }

    // `test` here is actix-web's; these are synchronous.
    #[core::prelude::v1::test]
    fn both_catalogues_hold_the_same_keys_and_placeholders() {
        let zh = catalogue("i18n-zh-CN.json");
        let en = catalogue("i18n-en.json");
        let only_zh: Vec<_> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
        let only_en: Vec<_> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in English: {only_en:?}"
        );
        for (k, z) in &zh {
            let e = &en[k];
            assert!(!z.trim().is_empty() && !e.trim().is_empty(), "{k} is empty");
            assert_eq!(
                placeholders(z),
                placeholders(e),
                "{k}: the two texts fill different placeholders"
            );
        }
        // The Chinese catalogue is Chinese: most of its texts hold Chinese characters (the rest
        // are codes and units such as P1 or MPa).
        let cjk = zh
            .values()
            .filter(|t| t.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
            .count();
        assert!(
            cjk * 10 >= zh.len() * 8,
            "{cjk} of {} zh-CN texts are Chinese",
            zh.len()
        );
    }

    /// Every key the scripts and the page name: `t('a.b'`, `data-i18n="a.b"`, `data-i18n-title="a.b"`.
    fn used_keys() -> Vec<(String, &'static str)> {
        let mut used = Vec::new();
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
        {
            for (open, close) in [
                ("t('", '\''),
                ("data-i18n=\"", '"'),
                ("data-i18n-title=\"", '"'),
                ("data-i18n-placeholder=\"", '"'),
                ("data-i18n-aria-label=\"", '"'),
            ] {
                for (at, _) in a.body.match_indices(open) {
                    // `t(` the function, not the end of `get(` or `split(`.
                    let before = a.body[..at].chars().next_back();
                    if open == "t('"
                        && before.is_some_and(|c| c.is_alphanumeric() || "_.$".contains(c))
                    {
                        continue;
                    }
                    let rest = &a.body[at + open.len()..];
                    if let Some((key, _)) = rest.split_once(close) {
                        used.push((key.to_owned(), a.name));
                    }
                }
            }
        }
        used
    }

    #[core::prelude::v1::test]
    fn every_key_the_console_names_is_in_the_catalogue() {
        let zh = catalogue("i18n-zh-CN.json");
        let used = used_keys();
        assert!(
            used.len() > 50,
            "the scan finds the keys ({} found)",
            used.len()
        );
        let missing: Vec<_> = used.iter().filter(|(k, _)| !zh.contains_key(k)).collect();
        assert!(
            missing.is_empty(),
            "keys used but not in the catalogues: {missing:?}"
        );
    }

    /// Every audited action reads in both languages in the audit log and is a filter of it (a
    /// plan write once showed as `plan_write` in a Chinese audit log).
    #[core::prelude::v1::test]
    fn every_audited_action_reads_in_both_languages_and_can_be_filtered() {
        let admin = ASSETS.iter().find(|a| a.name == "admin.js").unwrap().body;
        let filter = admin
            .lines()
            .find(|l| l.starts_with("const ACTIONS = ["))
            .unwrap();
        for name in ["i18n-zh-CN.json", "i18n-en.json"] {
            let cat = catalogue(name);
            let missing: Vec<_> = crate::auth::audit::ACTIONS
                .iter()
                .map(|a| format!("admin.actions.{a}"))
                .filter(|k| !cat.contains_key(k))
                .collect();
            assert!(missing.is_empty(), "{name} lacks {missing:?}");
        }
        let unfiltered: Vec<_> = crate::auth::audit::ACTIONS
            .iter()
            .filter(|a| !filter.contains(&format!("'{a}'")))
            .collect();
        assert!(
            unfiltered.is_empty(),
            "admin.js ACTIONS lacks {unfiltered:?}"
        );
    }

    #[core::prelude::v1::test]
    fn every_api_error_code_reads_in_both_languages() {
        for name in ["i18n-zh-CN.json", "i18n-en.json"] {
            let cat = catalogue(name);
            let missing: Vec<_> = super::super::error::ErrorCode::ALL
                .iter()
                .map(|c| format!("errors.{}", c.as_str()))
                .filter(|k| !cat.contains_key(k))
                .collect();
            assert!(missing.is_empty(), "{name} lacks {missing:?}");
        }
    }

    /// Latin words in what a script or the page puts on screen outside the catalogue: text
    /// between tags (`>Ack<`) and the texts of `title=`, `placeholder=`, `aria-label=` and
    /// `textContent =`. Codes and units an operator reads in both languages are allowed.
    fn hard_coded_english(body: &str) -> Vec<String> {
        const ALLOWED: &[&str] = &[
            "CISTERN", "English", "MPa", "kPa", "kWh", "kW", "Hz", "mg", "NTU", "pH", "CSV",
            "xlsx", "ID",
        ];
        let latin_word = |s: &str| {
            s.split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() >= 2 && !ALLOWED.contains(w))
                .filter(|w| !(w.len() == 2 && w.starts_with('P')))
                .map(str::to_owned)
                .next()
        };
        let mut found = Vec::new();
        // Text between tags (`>Ack</`, `>Ack<b`), outside `${...}` interpolations. A `>` that
        // ends an arrow or a comparison (`=>`, `a > b`) is code, not a tag.
        for (at, _) in body.match_indices('>') {
            let before = body[..at].chars().next_back().unwrap_or(' ');
            if !(before.is_ascii_alphanumeric() || "\"'/".contains(before)) {
                continue;
            }
            let rest = &body[at + 1..];
            let Some(end) = rest.find('<') else { continue };
            if !rest[end + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/') {
                continue;
            }
            let text = &rest[..end];
            let plain: String = text
                .split("${")
                .enumerate()
                .map(|(i, p)| {
                    if i == 0 {
                        p
                    } else {
                        p.split_once('}').map_or("", |(_, rest)| rest)
                    }
                })
                .collect();
            if plain.contains(';') || plain.contains('{') || plain.contains('`') {
                continue; // a script's statements between two tags in one template
            }
            if let Some(w) = latin_word(&plain) {
                found.push(format!(">{}<: {w}", plain.trim()));
            }
        }
        for attr in [
            " title=\"",
            " placeholder=\"",
            " aria-label=\"",
            "textContent = '",
        ] {
            for part in body.split(attr).skip(1) {
                let text = part.split(['"', '\'']).next().unwrap_or("");
                if text.starts_with("${") {
                    continue;
                }
                if let Some(w) = latin_word(text) {
                    found.push(format!("{attr}{text}: {w}"));
                }
            }
        }
        found
    }

    #[core::prelude::v1::test]
    fn no_asset_shows_hard_coded_english() {
        // The scan itself finds English where it is.
        assert!(!hard_coded_english("<button>Ack</button>").is_empty());
        assert!(!hard_coded_english("<th title=\"unacknowledged\">").is_empty());
        assert!(hard_coded_english("<b>${esc(t('alarms.ack'))}</b> <i>P1</i> MPa").is_empty());
        let mut found = Vec::new();
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
        {
            for f in hard_coded_english(a.body) {
                found.push(format!("{}: {f}", a.name));
            }
        }
        assert!(
            found.is_empty(),
            "English outside the catalogues:\n{}",
            found.join("\n")
        );
    }

    #[core::prelude::v1::test]
    fn no_asset_reaches_outside_the_node() {
        for a in ASSETS {
            // The SVG and Office Open XML namespaces are names, not fetches.
            let body = a
                .body
                .replace("http://www.w3.org/2000/svg", "")
                .replace("http://schemas.openxmlformats.org", "");
            for banned in ["http://", "https://", "//cdn", "@import url("] {
                assert!(
                    !body.contains(banned),
                    "{} refers to {banned}: the UI must work offline",
                    a.name
                );
            }
        }
    }
}
