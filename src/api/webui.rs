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
        name: "alarms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/alarms.js"),
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
        name: "plans.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/plans.js"),
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

    // `test` here is actix-web's; this one is synchronous.
    #[core::prelude::v1::test]
    fn no_asset_reaches_outside_the_node() {
        for a in ASSETS {
            // The SVG namespace is a name, not a fetch.
            let body = a.body.replace("http://www.w3.org/2000/svg", "");
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
