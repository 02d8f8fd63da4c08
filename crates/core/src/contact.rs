//! Normalisation of contact data (email addresses and phone numbers).
//!
//! One person must map to one normalised value, because blind indexes are computed
//! over it: "Ivan@Example.org " and "ivan@example.org" must find the same subject.
//! Normalisation never merges addresses that may belong to different people, so
//! `+tags` and dots in the local part are kept.
//!
//! Error messages never repeat the value: contact data is personal data and error
//! texts end up in logs and API responses.

use crate::tenancy::InvalidValue;

const MAX_EMAIL_CHARS: usize = 254;
const MAX_LOCAL_CHARS: usize = 64;
const MAX_LABEL_CHARS: usize = 63;

fn bad_email(reason: &str) -> InvalidValue {
    InvalidValue(format!("the email address is not valid: {reason}"))
}

fn bad_phone(reason: &str) -> InvalidValue {
    InvalidValue(format!("the phone number is not valid: {reason}"))
}

/// Characters allowed in an unquoted local part: RFC 5322 `atext`, the dot, and any
/// non-ASCII character (RFC 6531 internationalised addresses).
fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-.".contains(c) || !c.is_ascii()
}

/// Characters allowed in a domain label once lower-cased: LDH rule, plus non-ASCII
/// letters and digits for internationalised domains written in Unicode.
fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase()
        || c.is_ascii_digit()
        || c == '-'
        || (!c.is_ascii() && c.is_alphanumeric())
}

/// Lower-cased, trimmed and validated email address.
///
/// Quoted local parts and IP-literal domains are rejected: real subscribers do not
/// use them and accepting them would complicate matching for no gain.
pub fn normalize_email(input: &str) -> Result<String, InvalidValue> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue("the email address is empty".into()));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad_email(
            "it must not contain spaces or control characters",
        ));
    }
    let email = trimmed.to_lowercase();
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(bad_email("it is longer than 254 characters"));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_email("it must contain exactly one '@'"));
    };

    let local_len = local.chars().count();
    if local_len == 0 {
        return Err(bad_email("the part before '@' is empty"));
    }
    if local_len > MAX_LOCAL_CHARS {
        return Err(bad_email(
            "the part before '@' is longer than 64 characters",
        ));
    }
    if !local.chars().all(is_local_char) {
        return Err(bad_email(
            "the part before '@' contains a character that is not allowed",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad_email(
            "the part before '@' must not start or end with a dot or contain two dots in a row",
        ));
    }

    if domain.is_empty() {
        return Err(bad_email("the domain after '@' is missing"));
    }
    if !domain.contains('.') {
        return Err(bad_email(
            "the domain must contain a dot, as in example.com",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(bad_email(
                "the domain must not start or end with a dot or contain two dots in a row",
            ));
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(bad_email(
                "a part of the domain is longer than 63 characters",
            ));
        }
        if !label.chars().all(is_label_char) {
            return Err(bad_email(
                "the domain may contain only letters, digits, hyphens and dots",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad_email(
                "a part of the domain must not start or end with a hyphen",
            ));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    // Punycode TLDs ("xn--p1ai" for .рф) contain digits and hyphens but are real.
    let tld_ok = tld.starts_with("xn--")
        || (tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    if !tld_ok {
        return Err(bad_email(
            "the top-level domain must have at least two letters",
        ));
    }
    Ok(email)
}

/// Phone number in E.164 form: '+' and 8 to 15 digits, the first not 0.
///
/// Accepts separators (spaces, NBSP, '-', '(', ')', '.'), the "00" international
/// prefix and Russian national forms (8/7 + 10 digits, or a bare 10-digit mobile
/// starting with 9). Other numbers without a country code are rejected rather than
/// guessed, since a wrong guess would attach consent to someone else's number.
pub fn normalize_phone(input: &str) -> Result<String, InvalidValue> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue("the phone number is empty".into()));
    }
    let mut plus = false;
    let mut digits = String::with_capacity(16);
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '(' | ')' | '.' => {}
            // Covers NBSP and the other Unicode spaces pasted from documents.
            c if c.is_whitespace() => {}
            '+' if !plus && digits.is_empty() => plus = true,
            '+' => return Err(bad_phone("'+' may appear only at the start")),
            _ => {
                return Err(bad_phone(
                    "it may contain only digits, spaces, '+', '-', '(', ')' and '.'",
                ));
            }
        }
    }
    if digits.is_empty() {
        return Err(bad_phone("it contains no digits"));
    }

    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if digits.len() == 11 && (digits.starts_with('8') || digits.starts_with('7')) {
        // Russian trunk prefix 8 (or the country code 7 without '+').
        format!("7{}", &digits[1..])
    } else if digits.len() == 10 && digits.starts_with('9') {
        // Russian mobile written without the trunk prefix.
        format!("7{digits}")
    } else {
        return Err(bad_phone(
            "use the international format with '+' and the country code, e.g. +44 20 7946 0958",
        ));
    };

    if international.starts_with('0') {
        return Err(bad_phone("the country code cannot start with 0"));
    }
    if !(8..=15).contains(&international.len()) {
        return Err(bad_phone(
            "an international number has 8 to 15 digits after '+'",
        ));
    }
    Ok(format!("+{international}"))
}

/// Email masked so its owner can recognise it while others learn little:
/// "ivan.petrov@example.org" becomes "i***v@example.org".
pub fn mask_email(normalized: &str) -> String {
    let (local, domain) = match normalized.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (normalized, None),
    };
    let chars: Vec<char> = local.chars().collect();
    let mut masked = String::new();
    match chars.as_slice() {
        [] => masked.push_str("***"),
        [first, .., last] if chars.len() >= 3 => {
            masked.push(*first);
            masked.push_str("***");
            masked.push(*last);
        }
        [first, ..] => {
            masked.push(*first);
            masked.push_str("***");
        }
    }
    if let Some(domain) = domain {
        masked.push('@');
        masked.push_str(domain);
    }
    masked
}

/// Phone masked to its first digit and last two: "+79123456789" becomes
/// "+7********89". The length is kept so the owner can match it by eye.
pub fn mask_phone(normalized: &str) -> String {
    let (prefix, digits) = match normalized.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", normalized),
    };
    let chars: Vec<char> = digits.chars().collect();
    let n = chars.len();
    let mut masked = String::from(prefix);
    // With fewer than 4 digits, showing 3 of them would reveal nearly everything.
    if n < 4 {
        masked.push_str(&"*".repeat(n));
        return masked;
    }
    masked.push(chars[0]);
    masked.push_str(&"*".repeat(n - 3));
    masked.extend(&chars[n - 2..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_emails_normalise() {
        let cases = [
            ("ivan@example.org", "ivan@example.org"),
            ("  Ivan.Petrov@Example.ORG \n", "ivan.petrov@example.org"),
            ("user+tag@gmail.com", "user+tag@gmail.com"),
            ("i.v.a.n@gmail.com", "i.v.a.n@gmail.com"),
            ("a@b.co", "a@b.co"),
            ("o'brien@mail.example.co.uk", "o'brien@mail.example.co.uk"),
            ("x@my-host.example", "x@my-host.example"),
            ("x@123.example.com", "x@123.example.com"),
            ("иван@пример.рф", "иван@пример.рф"),
            ("Иван@Пример.РФ", "иван@пример.рф"),
            ("ivan@xn--e1afmkfd.xn--p1ai", "ivan@xn--e1afmkfd.xn--p1ai"),
            ("müller@bücher.de", "müller@bücher.de"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_email(input).as_deref(),
                Ok(expected),
                "input {input:?}"
            );
        }
        let local = "a".repeat(64);
        assert!(normalize_email(&format!("{local}@example.com")).is_ok());
    }

    #[test]
    fn invalid_emails_are_rejected_without_echoing_them() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let long_total = format!("a@{}.com", vec!["c".repeat(60); 5].join("."));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("   ", "empty"),
            ("a@b", "dot"),
            ("a@@b.com", "exactly one '@'"),
            ("a@b@c.com", "exactly one '@'"),
            ("plainaddress", "exactly one '@'"),
            ("a b@c.com", "spaces"),
            ("a@c.com\u{7}", "control"),
            ("ab\u{0}@c.com", "control"),
            ("@example.com", "before '@' is empty"),
            ("a@", "missing"),
            (&long_local, "64"),
            (&long_label, "63"),
            (&long_total, "254"),
            ("a..b@example.com", "two dots"),
            (".a@example.com", "two dots"),
            ("a.@example.com", "two dots"),
            ("a@example..com", "two dots"),
            ("a@.example.com", "two dots"),
            ("a@example.com.", "two dots"),
            ("\"a\"@example.com", "not allowed"),
            ("a<b>@example.com", "not allowed"),
            ("a@exa_mple.com", "only letters"),
            ("a@[127.0.0.1]", "only letters"),
            ("a@-example.com", "hyphen"),
            ("a@example-.com", "hyphen"),
            ("a@example.c", "top-level"),
            ("a@example.123", "top-level"),
            ("a@example.c0m", "top-level"),
        ];
        for (input, fragment) in cases {
            let err = normalize_email(input).expect_err(input);
            assert!(
                err.0.contains(fragment),
                "input {input:?}: message {:?} lacks {fragment:?}",
                err.0
            );
            assert!(err.0.starts_with("the email address is"), "{}", err.0);
            if input.trim().len() > 3 {
                assert!(!err.0.contains(input.trim()), "message echoes the value");
            }
        }
    }

    #[test]
    fn valid_phones_normalise() {
        let cases = [
            ("+79123456789", "+79123456789"),
            ("+7-912-345-67-89", "+79123456789"),
            ("+7 (912) 345-67-89", "+79123456789"),
            ("8 (912) 345-67-89", "+79123456789"),
            ("89123456789", "+79123456789"),
            ("79123456789", "+79123456789"),
            ("9123456789", "+79123456789"),
            ("8 800 555-35-35", "+78005553535"),
            ("+44 20 7946 0958", "+442079460958"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+1.415.555.0100", "+14155550100"),
            ("\u{a0}+49\u{a0}30\u{a0}901820\u{a0}", "+4930901820"),
            ("(+7) 912 345 67 89", "+79123456789"),
            ("+12345678", "+12345678"),
            ("+123456789012345", "+123456789012345"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_phone(input).as_deref(),
                Ok(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn invalid_phones_are_rejected_without_echoing_them() {
        let cases = [
            ("", "empty"),
            ("  ", "empty"),
            ("+0123", "cannot start with 0"),
            ("00012345678", "cannot start with 0"),
            ("12345", "international format"),
            ("020 7946 0958", "international format"),
            ("691234567", "international format"),
            ("+1234567890123456", "8 to 15"),
            ("+1234567", "8 to 15"),
            ("+7 912 CALL-NOW", "only digits"),
            ("+7912345678x9", "only digits"),
            ("+7\u{ff19}12345678", "only digits"),
            ("+7+9123456789", "only at the start"),
            ("8+9123456789", "only at the start"),
            ("+", "no digits"),
            ("(-)", "no digits"),
        ];
        for (input, fragment) in cases {
            let err = normalize_phone(input).expect_err(input);
            assert!(
                err.0.contains(fragment),
                "input {input:?}: message {:?} lacks {fragment:?}",
                err.0
            );
            let digits: String = input.chars().filter(char::is_ascii_digit).collect();
            if digits.len() > 2 {
                assert!(!err.0.contains(&digits), "message echoes the value");
            }
        }
    }

    #[test]
    fn normalised_values_are_fixed_points() {
        for email in ["Ivan@Example.org", "иван@пример.рф"] {
            let once = normalize_email(email).unwrap();
            assert_eq!(normalize_email(&once).unwrap(), once);
        }
        for phone in ["8 (912) 345-67-89", "+44 20 7946 0958"] {
            let once = normalize_phone(phone).unwrap();
            assert_eq!(normalize_phone(&once).unwrap(), once);
        }
    }

    #[test]
    fn emails_are_masked() {
        let cases = [
            ("ivan.petrov@example.org", "i***v@example.org"),
            ("abc@example.org", "a***c@example.org"),
            ("ab@example.org", "a***@example.org"),
            ("a@example.org", "a***@example.org"),
            ("иван@пример.рф", "и***н@пример.рф"),
            ("@example.org", "***@example.org"),
            ("nodomain", "n***n"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_email(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn phones_are_masked() {
        let cases = [
            ("+79123456789", "+7********89"),
            ("+442079460958", "+4*********58"),
            ("+12345678", "+1*****78"),
            ("+123", "+***"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_phone(input), expected, "input {input:?}");
        }
        let masked = mask_phone("+79123456789");
        assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 3);
    }
}
