//! A tenant's look on the public pages: its accent colour and logo.
//!
//! The pages load nothing from third parties, so the logo is stored and inlined as a
//! `data:` URL (raster formats only: an SVG can carry script and external references).
//! The accent colour fills buttons with white text, so it must reach the WCAG AA
//! contrast ratio of 4.5:1 against white; a colour that does not is refused rather
//! than shipped as an unreadable button.

use crate::tenancy::InvalidValue;

/// The colour of buttons and links when a tenant has not chosen one (contrast 6.1:1).
pub const DEFAULT_ACCENT: Rgb = Rgb(0x0b, 0x57, 0xd0);
/// WCAG 2.x AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
/// Inlined into every page, so kept small.
pub const MAX_LOGO_BYTES: usize = 48 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb` (or `#rgb`), case-insensitive.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let bad = || InvalidValue(format!("'{text}' is not a colour; use #rrggbb"));
        let hex = text.strip_prefix('#').ok_or_else(bad)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let channel = |s: &str| u8::from_str_radix(s, 16).map_err(|_| bad());
        match hex.len() {
            6 => Ok(Self(
                channel(&hex[0..2])?,
                channel(&hex[2..4])?,
                channel(&hex[4..6])?,
            )),
            3 => {
                let d = |i: usize| channel(&hex[i..=i].repeat(2));
                Ok(Self(d(0)?, d(1)?, d(2)?))
            }
            _ => Err(bad()),
        }
    }

    pub fn to_hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance.
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }
}

/// WCAG contrast ratio between two colours, from 1 to 21.
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// An accent colour fit for white button text.
pub fn validate_accent(text: &str) -> Result<Rgb, InvalidValue> {
    let colour = Rgb::parse(text)?;
    let ratio = contrast_ratio(colour, Rgb(255, 255, 255));
    if ratio < MIN_CONTRAST {
        return Err(InvalidValue(format!(
            "accent colour {} has a contrast of {ratio:.1}:1 with white button text; \
             at least {MIN_CONTRAST}:1 is needed (WCAG AA), so choose a darker shade",
            colour.to_hex()
        )));
    }
    Ok(colour)
}

/// The media type of a logo, from its first bytes; only raster formats are accepted.
pub fn logo_media_type(bytes: &[u8]) -> Result<&'static str, InvalidValue> {
    if bytes.is_empty() {
        return Err(InvalidValue("the logo is empty".into()));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(InvalidValue(format!(
            "the logo is {} bytes; at most {MAX_LOGO_BYTES} are accepted",
            bytes.len()
        )));
    }
    let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        return Err(InvalidValue(
            "the logo must be a PNG, JPEG, GIF or WebP image (SVG is not accepted)".into(),
        ));
    };
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_in_both_forms_and_refuse_garbage() {
        assert_eq!(Rgb::parse("#0B57D0").unwrap(), Rgb(0x0b, 0x57, 0xd0));
        assert_eq!(Rgb::parse("#fff").unwrap(), Rgb(255, 255, 255));
        for bad in ["0b57d0", "#12345", "#gggggg", "", "#", "#+1+2+3", "#ééé"] {
            assert!(Rgb::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contrast_matches_the_wcag_reference_values() {
        let white = Rgb(255, 255, 255);
        let black = Rgb(0, 0, 0);
        assert!((contrast_ratio(white, black) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(white, white) - 1.0).abs() < 1e-9);
        // #767676 is the classic lightest grey that passes AA on white (4.54:1).
        assert!((contrast_ratio(Rgb(0x76, 0x76, 0x76), white) - 4.54).abs() < 0.01);
        assert!(contrast_ratio(DEFAULT_ACCENT, white) >= MIN_CONTRAST);
    }

    #[test]
    fn accents_too_light_for_white_text_are_refused() {
        assert!(validate_accent("#767676").is_ok());
        assert!(validate_accent("#777777").is_err());
        let err = validate_accent("#ffcc00").unwrap_err().0;
        assert!(err.contains("darker"), "{err}");
    }

    #[test]
    fn logos_are_sniffed_not_trusted() {
        assert_eq!(
            logo_media_type(b"\x89PNG\r\n\x1a\n....").unwrap(),
            "image/png"
        );
        assert_eq!(
            logo_media_type(&[0xff, 0xd8, 0xff, 0xe0]).unwrap(),
            "image/jpeg"
        );
        assert_eq!(
            logo_media_type(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(),
            "image/webp"
        );
        assert!(logo_media_type(b"<svg onload=alert(1)>").is_err());
        assert!(logo_media_type(b"").is_err());
        let mut huge = b"\x89PNG\r\n\x1a\n".to_vec();
        huge.resize(MAX_LOGO_BYTES + 1, 0);
        assert!(logo_media_type(&huge).is_err());
    }
}
