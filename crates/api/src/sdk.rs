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

/// Where the script names its stylesheet's hash, so that pinning the script pins the
/// stylesheet too.
const STYLE_INTEGRITY_SLOT: &str = "__ASSENT_CSS_INTEGRITY__";

pub static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::of(include_str!("../sdk/assent.css")));
pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    let source = include_str!("../sdk/assent.js");
    assert!(
        source.contains(STYLE_INTEGRITY_SLOT),
        "the script names its stylesheet's hash"
    );
    // Built once per process and served for its life.
    let pinned = source.replace(STYLE_INTEGRITY_SLOT, &STYLE.integrity);
    Asset::of(Box::leak(pinned.into_boxed_str()))
});

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_script_pins_its_stylesheet_and_stays_under_15_kb_gzipped() {
        assert!(!SCRIPT.body.contains(STYLE_INTEGRITY_SLOT));
        assert!(
            SCRIPT
                .body
                .contains(&format!("integrity: '{}'", STYLE.integrity)),
            "the stylesheet link carries the stylesheet's hash"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(SCRIPT.body.as_bytes()).unwrap();
        let size = gz.finish().unwrap().len();
        assert!(size < 15 * 1024, "the script is {size} bytes gzipped");
        // Neither `eval` nor a string given to the Function constructor (CSP without
        // `unsafe-eval`).
        assert!(!SCRIPT.body.contains("eval("));
        assert!(!SCRIPT.body.contains("new Function"));
    }
}
