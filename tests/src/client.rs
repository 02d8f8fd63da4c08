//! A typed client for the API, in the shape of crates.io's `RequestHelper`: a request
//! and the assertion on its answer in one line,
//! `t.post("/v1/subjects", &body).expect(StatusCode::CREATED).await.id()`.
//!
//! Failed assertions name the method, the path, the backend and the body that came
//! back, so a failure on PostgreSQL reads differently from one on SQLite.

use assent_store::Backend;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

/// The test server's address and HTTP client, with or without a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    backend: Backend,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(http: reqwest::Client, base: &str, backend: Backend) -> Self {
        Self {
            http,
            base: base.to_owned(),
            backend,
            token: None,
        }
    }

    /// The same server, calling with `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }
}

/// `get`, `post`, … for whoever can start a request: the anonymous [`ApiClient`] and
/// a tenant's handle with its token.
pub trait RequestHelper {
    /// A request of `method` to `path` (below the server's base).
    fn request(&self, method: Method, path: &str) -> Request;

    fn get(&self, path: &str) -> Request {
        self.request(Method::GET, path)
    }

    fn post(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::POST, path).json(body)
    }

    fn put(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::PUT, path).json(body)
    }

    fn patch(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::PATCH, path).json(body)
    }

    fn delete(&self, path: &str) -> Request {
        self.request(Method::DELETE, path)
    }
}

impl RequestHelper for ApiClient {
    fn request(&self, method: Method, path: &str) -> Request {
        let mut inner = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            inner = inner.bearer_auth(token);
        }
        Request {
            inner,
            method,
            path: path.to_owned(),
            backend: self.backend,
        }
    }
}

/// A request being built; `.await` sends it, [`Request::expect`] also checks the status.
pub struct Request {
    inner: reqwest::RequestBuilder,
    method: Method,
    path: String,
    backend: Backend,
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner = self.inner.header(name, value);
        self
    }

    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("Idempotency-Key", key)
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.inner = self.inner.bearer_auth(token);
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.inner = self.inner.json(body);
        self
    }

    /// A raw body of `content_type` (imports, malformed JSON).
    pub fn body(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.inner = self
            .inner
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self
    }

    pub async fn send(self) -> Response {
        let describe = format!("{} {} on {}", self.method, self.path, self.backend);
        let response = self
            .inner
            .send()
            .await
            .unwrap_or_else(|e| panic!("{describe}: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Response {
            status,
            headers,
            text,
            value,
            describe,
        }
    }

    /// Sends, and asserts the answer's status.
    pub async fn expect(self, status: StatusCode) -> Response {
        self.send().await.expect(status)
    }

    /// Sends, and asserts a problem+json answer of `status` whose type is
    /// `urn:assent:problem:{code}`.
    pub async fn expect_problem(self, status: StatusCode, code: &str) -> Response {
        self.send().await.expect_problem(status, code)
    }
}

impl IntoFuture for Request {
    type Output = Response;
    type IntoFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// An answer, read whole: its body as JSON (or as a JSON string when it is not JSON).
/// It dereferences to that value, so `r["id"]` reads a field.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    value: Value,
    describe: String,
}

impl Response {
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "{}: {}", self.describe, self.value);
        self
    }

    pub fn expect_problem(self, status: StatusCode, code: &str) -> Self {
        let this = self.expect(status);
        assert_eq!(
            this.header("content-type"),
            Some("application/problem+json"),
            "{}: {}",
            this.describe,
            this.value
        );
        assert_eq!(
            this.value["type"],
            format!("urn:assent:problem:{code}"),
            "{}: {}",
            this.describe,
            this.value
        );
        this
    }

    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone())
            .unwrap_or_else(|e| panic!("{}: {e}: {}", self.describe, self.value))
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }

    /// The `id` of a created resource.
    pub fn id(&self) -> String {
        self.str("id")
    }

    /// A text field of the body.
    pub fn str(&self, field: &str) -> String {
        self.value[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no text {field} in {}", self.describe, self.value))
            .to_owned()
    }

    /// The `items` of a page of a list.
    pub fn items(&self) -> Vec<Value> {
        self.value["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no items in {}", self.describe, self.value))
            .clone()
    }

    /// The body as a JSON array.
    pub fn array(&self) -> Vec<Value> {
        self.value
            .as_array()
            .unwrap_or_else(|| panic!("{}: not an array: {}", self.describe, self.value))
            .clone()
    }

    /// The status and the body, for tests that look at both before asserting.
    pub fn parts(self) -> (StatusCode, Value) {
        (self.status, self.value)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// Answers compare by their bodies.
impl PartialEq for Response {
    fn eq(&self, other: &Response) -> bool {
        self.value == other.value
    }
}

impl PartialEq<Value> for Response {
    fn eq(&self, other: &Value) -> bool {
        self.value == *other
    }
}

impl PartialEq<Response> for Value {
    fn eq(&self, other: &Response) -> bool {
        *self == other.value
    }
}

impl std::ops::Deref for Response {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}
