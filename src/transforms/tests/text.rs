//! The `text` step's Unicode options (normalisation, case folding, leading zeros) and the functions the comparison shares.

use polars::prelude::*;

use super::super::{apply, unicode};
use crate::pipeline::{LetterCase, Transform, UnicodeForm};

fn text(
    normalize: Option<UnicodeForm>,
    strip: bool,
    case: Option<LetterCase>,
    trim: bool,
) -> Transform {
    Transform::Text {
        columns: vec!["c".into()],
        trim,
        normalize,
        strip_leading_zeros: strip,
        case,
    }
}

fn run(values: &[Option<&str>], step: Transform) -> Vec<Option<String>> {
    let df = polars::df!("c" => values).unwrap();
    let out = apply(df.lazy(), &[step]).unwrap().collect().unwrap();
    out.column("c")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

const NFD_ZURICH: &str = "Zu\u{308}rich";
const NFC_ZURICH: &str = "Z\u{fc}rich";

#[test]
fn nfc_makes_one_spelling_of_composed_and_combining_accents() {
    assert_ne!(NFD_ZURICH, NFC_ZURICH);
    let out = run(
        &[Some(NFD_ZURICH), Some(NFC_ZURICH), None],
        text(Some(UnicodeForm::Nfc), false, None, false),
    );
    assert_eq!(
        out,
        vec![Some(NFC_ZURICH.into()), Some(NFC_ZURICH.into()), None]
    );
    assert_eq!(unicode::nfc(NFD_ZURICH), NFC_ZURICH);
    assert!(matches!(
        unicode::nfc(NFC_ZURICH),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn nfkc_also_replaces_compatibility_forms() {
    let out = run(
        &[
            Some("\u{ff11}\u{ff12}\u{ff13}"),
            Some("\u{fb01}le"),
            Some(NFD_ZURICH),
        ],
        text(Some(UnicodeForm::Nfkc), false, None, false),
    );
    assert_eq!(
        out,
        vec![
            Some("123".into()),
            Some("file".into()),
            Some(NFC_ZURICH.into())
        ]
    );
    // NFC leaves them.
    let out = run(
        &[Some("\u{fb01}le")],
        text(Some(UnicodeForm::Nfc), false, None, false),
    );
    assert_eq!(out, vec![Some("\u{fb01}le".into())]);
}

#[test]
fn case_fold_folds_sharp_s_and_final_sigma_where_lower_does_not() {
    let out = run(
        &[
            Some("STRASSE"),
            Some("Stra\u{df}e"),
            Some("\u{3a3}\u{391}\u{3a3}"),
            Some("\u{3c3}\u{3b1}\u{3c2}"),
        ],
        text(None, false, Some(LetterCase::Fold), false),
    );
    assert_eq!(out[0], out[1], "{out:?}");
    assert_eq!(out[2], out[3], "{out:?}");
    assert_eq!(out[0].as_deref(), Some("strasse"));
    let lower = run(
        &[Some("STRASSE"), Some("Stra\u{df}e")],
        text(None, false, Some(LetterCase::Lower), false),
    );
    assert_ne!(lower[0], lower[1], "{lower:?}");
    assert_eq!(unicode::fold("Stra\u{df}e"), unicode::fold("STRASSE"));
}

#[test]
fn strip_leading_zeros_only_touches_all_digit_text() {
    let out = run(
        &[
            Some("000123"),
            Some("0"),
            Some("000"),
            Some("123"),
            Some("-007"),
            Some("12a"),
            Some(" 007"),
            Some(""),
            None,
        ],
        text(None, true, None, false),
    );
    assert_eq!(
        out,
        vec![
            Some("123".into()),
            Some("0".into()),
            Some("0".into()),
            Some("123".into()),
            Some("-007".into()),
            Some("12a".into()),
            Some(" 007".into()),
            Some("".into()),
            None
        ]
    );
    // With trim first, ` 007` is digits.
    assert_eq!(
        run(&[Some(" 007")], text(None, true, None, true)),
        vec![Some("7".into())]
    );
}

#[test]
fn one_step_trims_then_normalises_then_strips_zeros_then_changes_case() {
    // Full-width zeros are digits only after NFKC, and NFKC runs before the
    // zeros are stripped; trim runs first so the digits are all there is.
    let out = run(
        &[Some(" \u{ff10}\u{ff10}42 "), Some(" Stra\u{df}e ")],
        text(Some(UnicodeForm::Nfkc), true, Some(LetterCase::Fold), true),
    );
    assert_eq!(out, vec![Some("42".into()), Some("strasse".into())]);
}

#[test]
fn text_options_are_read_and_a_step_that_does_nothing_is_refused() {
    let pipeline = |step: &str| {
        format!(
            "version: 1\nkind: reconcile\nname: check\nleft:\n  source:\n    location: s360.csv\n    key: orderId\n  transforms:\n    - {step}\nright:\n  source:\n    location: crm.csv\n    key: orderId\ncompare:\n  - field: city\n"
        )
    };
    let parse = |step: &str| {
        crate::pipeline::parse(&pipeline(step), std::path::Path::new("p.yaml"), &|_| None)
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    };
    let Ok(crate::pipeline::PipelineSpec::Reconcile(r)) = parse(
        "{ type: text, columns: [city], normalize: nfc, case: fold, strip_leading_zeros: true }",
    ) else {
        panic!("expected a reconcile pipeline")
    };
    assert!(matches!(
        &r.left.transforms[0],
        Transform::Text {
            normalize: Some(UnicodeForm::Nfc),
            case: Some(LetterCase::Fold),
            strip_leading_zeros: true,
            trim: false,
            ..
        }
    ));
    assert!(parse("{ type: text, columns: [city], strip_leading_zeros: true }").is_ok());
    assert!(parse("{ type: text, columns: [city], normalize: nfkc }").is_ok());
    let ps = parse("{ type: text, columns: [city], strip_leading_zeros: false }").unwrap_err();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(
        ps[0].contains("left.transforms[0]: does nothing"),
        "{}",
        ps[0]
    );
    let ps = parse("{ type: text, columns: [city], normalize: nfd }").unwrap_err();
    assert!(ps[0].contains("unknown variant `nfd`"), "{}", ps[0]);
}
