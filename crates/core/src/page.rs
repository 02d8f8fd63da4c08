//! Cursor pagination: lists are ordered by id (UUIDv7, so by creation time) and a
//! cursor is the opaque encoding of the last id a page returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Return items whose id sorts after this one.
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the cursor is not one this API returned")]
    BadCursor,
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    BadLimit,
}

impl PageRequest {
    pub fn parse(cursor: Option<&str>, limit: Option<u32>) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::BadLimit);
        }
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(Self { after, limit })
    }
}

pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{last_id}"))
}

fn decode_cursor(cursor: &str) -> Result<String, PageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| PageError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| PageError::BadCursor)?;
    let id = text.strip_prefix("v1:").ok_or(PageError::BadCursor)?;
    if crate::id::is_id(id) {
        Ok(id.to_owned())
    } else {
        Err(PageError::BadCursor)
    }
}

/// Splits a fetch of `limit + 1` rows into the page and the cursor of the next one.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: u32,
    id_of: impl Fn(&T) -> &str,
) -> (Vec<T>, Option<String>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let next = rows.last().map(|r| encode_cursor(id_of(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let id = crate::id::new_id();
        let req = PageRequest::parse(Some(&encode_cursor(&id)), Some(10)).unwrap();
        assert_eq!(
            req,
            PageRequest {
                after: Some(id),
                limit: 10
            }
        );
    }

    #[test]
    fn rejects_foreign_cursors_and_limits() {
        assert_eq!(
            PageRequest::parse(Some("xyz"), None),
            Err(PageError::BadCursor)
        );
        let sql = URL_SAFE_NO_PAD.encode("v1:' OR 1=1 --");
        assert_eq!(
            PageRequest::parse(Some(&sql), None),
            Err(PageError::BadCursor)
        );
        assert_eq!(PageRequest::parse(None, Some(0)), Err(PageError::BadLimit));
        assert_eq!(
            PageRequest::parse(None, Some(201)),
            Err(PageError::BadLimit)
        );
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn split_page_gives_a_cursor_only_when_more_remain() {
        let (page, next) = split_page(vec!["a", "b", "c"], 2, |s| s);
        assert_eq!(page, vec!["a", "b"]);
        assert_eq!(next, Some(encode_cursor("b")));
        let (page, next) = split_page(vec!["a", "b"], 2, |s| s);
        assert_eq!(page.len(), 2);
        assert_eq!(next, None);
    }
}
