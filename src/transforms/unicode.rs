//! Unicode spellings of one text: normalisation (NFC, NFKC), full case folding, and leading zeros of digit strings; shared by the `text` step and the comparison.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfkc_quick};

/// `s` in Unicode normalisation form C: `Zu\u{308}rich` (a `u` and a
/// combining diaeresis) becomes `Zürich` (one `ü`). Borrowed when `s` is
/// already in NFC, as nearly all text is.
pub fn nfc(s: &str) -> Cow<'_, str> {
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => Cow::Borrowed(s),
        _ => Cow::Owned(s.nfc().collect()),
    }
}

/// `s` in Unicode normalisation form KC: as [`nfc`], and compatibility
/// forms replaced too (full-width `１２３` is `123`, the ligature `ﬁ` is `fi`).
pub fn nfkc(s: &str) -> Cow<'_, str> {
    match is_nfkc_quick(s.chars()) {
        IsNormalized::Yes => Cow::Borrowed(s),
        _ => Cow::Owned(s.nfkc().collect()),
    }
}

/// `s` with Unicode full case folding (the default folding of the Unicode
/// standard, not a locale's): `Straße` and `STRASSE` both fold to
/// `strasse`, `ΣΑΣ` and `σας` to `σασ`. For comparing, not for showing.
/// Folding does not normalise: text typed in two forms needs [`nfc`] too.
pub fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        // ASCII folds to its lower case; most text has no capital to fold.
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(caseless::default_case_fold_str(s))
    }
}

/// `s` in the normalisation form `form`.
pub fn normalize(s: &str, form: crate::pipeline::UnicodeForm) -> Cow<'_, str> {
    match form {
        crate::pipeline::UnicodeForm::Nfc => nfc(s),
        crate::pipeline::UnicodeForm::Nfkc => nfkc(s),
    }
}

/// `s` without its leading zeros when it is all ASCII digits: `000123` is
/// `123`, `0` and `000` are `0`. Anything else (`-007`, `12a`, ` 007`, an
/// empty text, other scripts' digits) is returned as it is.
pub fn strip_leading_zeros(s: &str) -> &str {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return s;
    }
    match s.trim_start_matches('0') {
        "" => "0",
        rest => rest,
    }
}
