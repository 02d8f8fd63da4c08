//! The public form pages (`/p`, `/r`, `/s`) as a browser without JavaScript uses them:
//! open a page, keep the form cookie it sets, read its hidden fields, post a form back.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

/// The cookie that binds a page's form token to the browser.
pub const FORM_COOKIE: &str = "assent_form";

/// An HTTP client that, like a test of a form, sees redirects instead of following them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// The value of the input `name` of a page, if it has one.
pub fn field(html: &str, name: &str) -> Option<String> {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// A page that was opened: what came back, and the form cookie to send with its forms
/// (the one it set, or the one it was opened with).
pub struct FormPage {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
    /// The `Set-Cookie` line of the form cookie, when the page set one.
    pub set_cookie: Option<String>,
    /// The form cookie's value.
    pub cookie: Option<String>,
}

impl FormPage {
    /// Opens `url`, sending the form cookie `cookie` when given.
    pub async fn open(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Self {
        Self::read(with_cookie(http.get(url), cookie), cookie).await
    }

    /// Opens `url` with the extra header `name: value` (e.g. `Accept-Language`).
    pub async fn open_with(http: &reqwest::Client, url: &str, name: &str, value: &str) -> Self {
        Self::read(http.get(url).header(name, value), None).await
    }

    async fn read(request: reqwest::RequestBuilder, cookie: Option<&str>) -> Self {
        let response = request.send().await.expect("the page answers");
        let status = response.status();
        let headers = response.headers().clone();
        let set_cookie = headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cookie = set_cookie
            .as_deref()
            .and_then(|set| set.split(';').next())
            .and_then(|pair| pair.strip_prefix(&format!("{FORM_COOKIE}=")))
            .map(str::to_owned)
            .or_else(|| cookie.map(str::to_owned));
        let html = response.text().await.unwrap_or_default();
        Self {
            status,
            headers,
            html,
            set_cookie,
            cookie,
        }
    }

    /// Asserts the page answered 200 and set its form cookie as only this site's
    /// pages under `path` may read it (`HttpOnly`, `SameSite=Strict`).
    pub fn expect_form(self, path: Option<&str>) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.html);
        let set = self.set_cookie.as_deref().expect("a form cookie is set");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        if let Some(path) = path {
            assert!(set.contains(&format!("Path={path}")), "{set}");
        }
        self
    }

    /// The value of the input `name`; empty when the page has none.
    pub fn field(&self, name: &str) -> String {
        field(&self.html, name).unwrap_or_default()
    }

    /// The form token.
    pub fn csrf(&self) -> String {
        field(&self.html, "csrf").expect("a form token")
    }

    /// The form cookie's value.
    pub fn cookie(&self) -> &str {
        self.cookie.as_deref().expect("no cookie was set")
    }

    /// Posts `fields` to `url` as this page's form would: with its form token first
    /// and its form cookie.
    pub async fn submit(
        &self,
        http: &reqwest::Client,
        url: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        submit(http, url, self.cookie.as_deref(), &all).await
    }
}

/// Posts `fields` as a form to `url`, with the form cookie `cookie` when given.
pub async fn submit<K: serde::Serialize, V: serde::Serialize>(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    fields: &[(K, V)],
) -> reqwest::Response {
    with_cookie(http.post(url).form(fields), cookie)
        .send()
        .await
        .expect("the form is answered")
}

fn with_cookie(request: reqwest::RequestBuilder, cookie: Option<&str>) -> reqwest::RequestBuilder {
    match cookie {
        Some(c) => request.header(COOKIE, format!("{FORM_COOKIE}={c}")),
        None => request,
    }
}
