//! The web UI, embedded at build time (`build.rs` builds `web/` with Vite):
//! its files by path, and `index.html` for every other page path, so a deep
//! link (`/trace/<id>`, `/findings?kind=…`) opens the page it names.
//!
//! Files under `/assets/` carry a content hash in their names and are cached
//! for good; `index.html` is revalidated, so a new binary's UI loads at once.
//! A content security policy allows only the UI's own scripts: span names and
//! attributes are data, never markup, and should a page ever insert one as
//! markup, the browser still runs nothing from it.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// Paths that are never the UI's: an unknown API path is a 404, not a page.
const NOT_PAGES: [&str; 4] = ["/api/", "/metrics", "/healthz", "/readyz"];

fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .binary_search_by_key(&path, |(p, _)| p)
        .ok()
        .map(|at| ASSETS[at].1)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The router's fallback: a UI file, the UI's page for any other GET path,
/// else 404 (or 405 for other methods).
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if NOT_PAGES.iter().any(|p| path.starts_with(p)) {
        return super::ApiError::NotFound(format!("no such endpoint: {path}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let (path, body) = match asset(path) {
        Some(body) if path != "/index.html" => (path, body),
        // A missing file under /assets/ is a stale link, not a page.
        None if path.starts_with("/assets/") => return StatusCode::NOT_FOUND.into_response(),
        _ => match asset("/index.html") {
            Some(body) => ("/index.html", body),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(path: &str) -> Response {
        serve(Method::GET, path.parse().unwrap()).await
    }

    #[tokio::test]
    async fn pages_get_the_app_files_get_themselves_apis_stay_404() {
        let index = asset("/index.html").expect("the UI is embedded");
        for page in ["/", "/map", "/trace/abc", "/findings?kind=n_plus_one"] {
            let response = get(page).await;
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
            assert!(response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY));
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body, index, "{page}");
        }
        let (script, _) = ASSETS
            .iter()
            .find(|(p, _)| p.starts_with("/assets/") && p.ends_with(".js"))
            .expect("a bundled script");
        let response = get(script).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(response.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(get("/assets/gone.js").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/api/v2/nothing").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve(Method::POST, "/map".parse().unwrap()).await.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn the_bundle_makes_no_request_off_the_machine() {
        for (path, body) in ASSETS {
            let text = String::from_utf8_lossy(body);
            for scheme in ["http://", "https://"] {
                for (at, _) in text.match_indices(scheme) {
                    let rest = &text[at + scheme.len()..];
                    // Namespace names (SVG, XLink, XHTML) are identifiers, not requests.
                    assert!(
                        rest.starts_with("www.w3.org/"),
                        "{path} names {}",
                        &text[at..(at + 60).min(text.len())]
                    );
                }
            }
        }
    }
}
