//! The website script and its stylesheet, embedded in the binary, with the ETag and
//! Subresource Integrity hash each is served and embedded with.

use base64::Engine;
use serde::Serialize;
use std::sync::LazyLock;

/// A static file with its ETag and Subresource Integrity hash.
pub struct Asset {
    pub body: &'static str,
    pub etag: String,
    pub integrity: String,
}

impl Asset {
    fn of(body: &'static str) -> Self {
        let digest = assent_core::crypto::sha384(body.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        Self {
            body,
            etag: format!("\"{}\"", &hex::encode(digest)[..32]),
            integrity: format!("sha384-{b64}"),
        }
    }
}

pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::of(include_str!("../sdk/assent.js")));
pub static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::of(include_str!("../sdk/assent.css")));

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SdkView {
    /// The script's URL.
    pub url: String,
    /// Its Subresource Integrity hash.
    pub integrity: String,
    /// The tag to put first in the page's `<head>`.
    pub snippet: String,
}

/// The script's URL, integrity hash and tag for a company.
pub fn sdk_of(public_url: &str, slug: &str) -> SdkView {
    let url = format!("{}/sdk/v1/assent.js", public_url.trim_end_matches('/'));
    let integrity = SCRIPT.integrity.clone();
    let snippet = format!(
        "<script src=\"{url}\" data-tenant=\"{slug}\" integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>"
    );
    SdkView {
        url,
        integrity,
        snippet,
    }
}
