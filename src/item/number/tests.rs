use super::*;

use proptest::prelude::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn accepted(n: &str) -> bool {
    validate(n).is_ok()
}

fn message(n: &str) -> String {
    validate(n).err().map(|e| e.to_string()).unwrap_or_default()
}

/// `count` copies of `s`.
fn times(s: &str, count: usize) -> String {
    s.repeat(count)
}

#[test]
fn the_numbers_of_the_issue_are_refused_for_their_precision() {
    let nines = times("9", 39);
    assert!(!accepted(&nines));
    assert!(!accepted(&format!("-{nines}")));
    // 1, a point, 37 zeros, 1: 39 significant digits; with 38 zeros, 40.
    let one_and_one = format!("1.{}1", times("0", 37));
    assert_eq!(parse(&one_and_one).map(|n| n.significant), Some(39));
    assert!(!accepted(&one_and_one));
    assert!(!accepted(&format!("1.{}1", times("0", 38))));
    // Zeros around them change nothing.
    assert!(!accepted(&format!("000{nines}.000")));
    assert!(!accepted(&format!("0.000{nines}e10")));
}

#[test]
fn thirty_eight_significant_digits_are_accepted() {
    assert!(accepted(&times("9", 38)));
    assert!(accepted(&format!("-{}", times("9", 38))));
    assert!(accepted(&format!("1.{}1", times("0", 36))));
    assert!(accepted("3.1415926535897932384626433832795028841"));
    assert!(accepted("314159265358979323846.26433832795028841"));
    assert!(accepted("31415926535897932384626433832795028841e30"));
    assert!(!accepted("3.14159265358979323846264338327950288419"));
    assert!(!accepted("314159265358979323846264338327950288419e30"));
}

#[test]
fn leading_and_trailing_zeros_are_not_significant() {
    let big = format!("1{}", times("0", 41));
    assert_eq!(parse(&big).map(|n| n.significant), Some(1));
    assert!(accepted(&big));
    assert!(accepted(&format!("{}.{}", times("0", 50), times("0", 50))));
    assert!(accepted(&format!(
        "{}{}{}",
        times("0", 40),
        times("7", 38),
        times("0", 40)
    )));
    assert!(accepted(&format!(
        "0.{}{}{}",
        times("0", 40),
        times("7", 38),
        times("0", 40)
    )));
    assert_eq!(significant_digits("-0.00120e5"), 2);
    assert_eq!(significant_digits("10.01"), 4);
}

#[test]
fn the_range_ends_where_the_guide_says() {
    let largest = "9.9999999999999999999999999999999999999E+125";
    for inside in [
        "1E-130",
        largest,
        "1e125",
        "9.99999999e125",
        "0.1e-129",
        "10e-131",
        "99999999999999999999999999999999999999e88",
        "1.0000000000000000000000000000001e-100",
    ] {
        assert!(accepted(inside), "{inside}");
        assert!(accepted(&format!("-{inside}")), "-{inside}");
    }
    for outside in [
        "1E+126",
        "1E-131",
        "11e125",
        "0.9e-130",
        "99999999999999999999999999999999999999e89",
        "0.99999999999999999999999999999999999999e-130",
    ] {
        assert!(!accepted(outside), "{outside}");
        assert!(!accepted(&format!("-{outside}")), "-{outside}");
    }
    // The same edges written out in full.
    assert!(accepted(&format!("1{}", times("0", 125))));
    assert!(!accepted(&format!("1{}", times("0", 126))));
    assert!(accepted(&format!("0.{}1", times("0", 129))));
    assert!(!accepted(&format!("0.{}1", times("0", 130))));
}

#[test]
fn zero_is_accepted_however_it_is_written() {
    for zero in [
        "0", "-0", "+0", "0.000", "-0.0", ".0", "0.", "000", "0e1000", "-0.0e+5", "0E-131",
    ] {
        assert!(accepted(zero), "{zero}");
        assert_eq!(parse(zero), Some(Number::ZERO), "{zero}");
    }
    assert!(accepted(&format!("0e{}", times("9", 100))));
    assert!(accepted(&format!(
        "{}e-{}",
        times("0", 200),
        times("9", 100)
    )));
}

#[test]
fn the_syntax_is_dynamodbs() {
    for good in [
        "3", "-7.1234", "-17e5", "-17.4E37", "+3", ".123", "0001.23", "1e+5", "5.", ".5", "-.5",
        "+.5", "+1.5", "5.e3", "1E5", "1e-5", "1e0005",
    ] {
        assert!(accepted(good), "{good}");
    }
    let words = [
        "NaN",
        "-NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "dog",
        "-dog",
    ];
    // Digits outside ASCII: Arabic-Indic, fullwidth, a fraction.
    let not_ascii = ["\u{661}\u{662}", "\u{ff11}", "\u{bd}"];
    let malformed = [
        "", " 1", "1 ", "\t1", "1\n", "1 000", "0x10", "0X1F", "1_000", "1,000", ".", "-", "+",
        "-.", "e5", ".e5", "1e", "1E", "1e+", "1e-", "1.2.3", "--1", "+-1", "-+1", "++1", "1+2",
        "1-", "1e5.5", "1e5e5", "1ee5", "1e+-5", "1d5", "1\u{0}",
    ];
    for bad in malformed.into_iter().chain(words).chain(not_ascii) {
        assert!(!accepted(bad), "{bad:?}");
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn huge_exponents_are_judged_without_overflow() {
    let nines = times("9", 100);
    assert!(!accepted(&format!("1e{nines}")));
    assert!(!accepted(&format!("1e-{nines}")));
    assert!(!accepted(&format!("-1E+{nines}")));
    assert!(!accepted(&format!("1e{}", i64::MAX)));
    assert!(!accepted(&format!("1e{}", i64::MIN)));
    assert!(!accepted(&format!("1e{}", u64::MAX)));
    // Leading zeros of the exponent are no part of its size.
    assert!(accepted(&format!("1e{}5", times("0", 100))));
    // Digits that make up for the exponent.
    assert!(accepted(&format!("0.{}1e+205", times("0", 200))));
    assert!(accepted(&format!("1{}e-300", times("0", 300))));
    assert!(!accepted(&format!("1{}e-174", times("0", 300))));
}

#[test]
fn errors_name_the_number_and_the_rule() -> TestResult {
    let nines = times("9", 39);
    assert_eq!(
        message(&nines),
        format!("the number `{nines}` has 39 significant digits, over DynamoDB's limit of 38")
    );
    let err = validate("1e126").err().ok_or("1e126 was accepted")?;
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(err.code(), "ValidationException");
    assert!(message("1e126").starts_with("the number `1e126` is larger in magnitude"));
    assert!(message("-1e-131").starts_with("the number `-1e-131` is smaller in magnitude"));
    assert!(message("NaN").starts_with("the number `NaN` is not one DynamoDB can read"));
    assert!(message("").contains("empty string"));
    assert!(message("1\n").starts_with("the number `1\\n` is not"));
    // A long number is quoted by its start.
    let long = format!("0.{}", times("1", 1000));
    let said = message(&long);
    assert!(said.contains(&format!("`0.{}…`", times("1", 58))), "{said}");
    assert!(said.contains("1000 significant digits"), "{said}");
    for rule in [&nines, "1e126", "-1e-131", "NaN", ""] {
        let said = message(rule);
        assert_eq!(said.matches(". ").count(), 0, "one sentence: {said}");
        assert!(!said.ends_with('.'), "{said}");
    }
    Ok(())
}

/// A number written from parts, as a generator builds it.
#[derive(Debug, Clone)]
struct Parts {
    sign: &'static str,
    int: String,
    /// The digits after the decimal point, if there is one.
    frac: Option<String>,
    /// The exponent's letter, its sign as written, its value and its leading zeros.
    exponent: Option<(char, &'static str, i64, usize)>,
}

impl Parts {
    fn render(&self) -> String {
        let mut s = format!("{}{}", self.sign, self.int);
        if let Some(frac) = &self.frac {
            s.push('.');
            s.push_str(frac);
        }
        if let Some((letter, sign, value, zeros)) = self.exponent {
            let sign = if value < 0 { "-" } else { sign };
            s.push(letter);
            s.push_str(sign);
            s.push_str(&"0".repeat(zeros));
            s.push_str(&value.unsigned_abs().to_string());
        }
        s
    }

    fn exponent(&self) -> i64 {
        self.exponent.map_or(0, |(_, _, value, _)| value)
    }
}

/// The documented rules, by another route than [`parse`]: the significant digits are the
/// digit string with its leading and trailing zeros trimmed, and the magnitude is compared with
/// the guide's two bounds by writing all three out as fixed-point strings in one frame.
fn documented_rules(parts: &Parts) -> bool {
    let frac = parts.frac.as_deref().unwrap_or("");
    let digits = format!("{}{frac}", parts.int);
    if digits.is_empty() {
        return false;
    }
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return true;
    }
    if significant.len() > 38 {
        return false;
    }
    // Digit `i` of `digits` stands for 10^(int_len - 1 - i + exponent).
    let int_len = parts.int.len() as i64;
    let exponent = parts.exponent();
    let top = (int_len - 1 + exponent).max(125);
    let bottom = (int_len - digits.len() as i64 + exponent).min(-130);
    let fixed = |digits: &str, int_len: i64, exponent: i64| -> String {
        (bottom..=top)
            .rev()
            .map(|power| {
                let i = int_len - 1 + exponent - power;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| digits.as_bytes().get(i))
                    .map_or('0', |&d| char::from(d))
            })
            .collect()
    };
    let value = fixed(&digits, int_len, exponent);
    let largest = fixed(&"9".repeat(38), 1, 125);
    let smallest = fixed("1", 1, -130);
    smallest <= value && value <= largest
}

/// Digits with leading zeros, a body, and trailing zeros, so that both trims matter; bodies of
/// 37 to 40 digits are frequent, to meet the precision limit.
fn digits() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        1 => Just(String::new()),
        2 => "[1-9]",
        2 => "[1-9][0-9]{0,20}[1-9]",
        3 => "[1-9][0-9]{35,38}[1-9]",
    ];
    ("0{0,3}", body, "0{0,3}").prop_map(|(lead, body, trail)| format!("{lead}{body}{trail}"))
}

/// Numbers from parts, their exponent often chosen to put the first significant digit at or
/// next to an end of the range.
fn parts() -> impl Strategy<Value = Parts> {
    (
        prop_oneof![Just(""), Just("-"), Just("+")],
        digits(),
        proptest::option::of(digits()),
        proptest::option::of((
            prop_oneof![Just('e'), Just('E')],
            prop_oneof![Just(""), Just("+")],
            0usize..3,
        )),
        prop_oneof![
            2 => (-400i64..400).prop_map(Some),
            3 => prop_oneof![-132i64..=-128, 123i64..=127].prop_map(Some),
            1 => Just(None),
        ],
    )
        .prop_map(|(sign, int, frac, letter, target)| {
            let mut parts = Parts {
                sign,
                int,
                frac,
                exponent: None,
            };
            if let Some((letter, exponent_sign, zeros)) = letter {
                let all = format!("{}{}", parts.int, parts.frac.as_deref().unwrap_or(""));
                // The power the first significant digit stands for without an exponent.
                let lead = all
                    .find(|c| c != '0')
                    .map_or(0, |first| parts.int.len() as i64 - 1 - first as i64);
                let value = target.map_or(0, |target| target - lead);
                parts.exponent = Some((letter, exponent_sign, value, zeros));
            }
            parts
        })
}

/// Rust's own grammar of `f64` strings is DynamoDB's, plus `inf`, `infinity` and `nan` in any
/// case: an independent reading of the syntax.
fn rust_reads_as_decimal(s: &str) -> bool {
    s.parse::<f64>().is_ok() && !s.to_ascii_lowercase().contains(['i', 'n'])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_validator_follows_the_documented_rules(parts in parts()) {
        let n = parts.render();
        prop_assert_eq!(accepted(&n), documented_rules(&parts), "{}", n);
        if let Some(number) = parse(&n) {
            let digits = format!("{}{}", parts.int, parts.frac.as_deref().unwrap_or(""));
            prop_assert_eq!(number.significant, digits.trim_matches('0').len(), "{}", n);
        }
    }

    #[test]
    fn the_syntax_is_rusts_decimal_syntax(
        s in "[-+.eE0-9]{0,8}|[-+.eE0-9 _xinfaINFA]{0,8}"
    ) {
        prop_assert_eq!(parse(&s).is_some(), rust_reads_as_decimal(&s), "{:?}", s);
    }

    #[test]
    fn any_string_is_judged_without_panicking(s in any::<String>()) {
        let verdict = validate(&s);
        if verdict.is_ok() {
            prop_assert!(rust_reads_as_decimal(&s), "{:?}", s);
        }
    }

    #[test]
    fn integers_are_accepted_up_to_38_significant_digits(
        a in any::<i64>(),
        b in any::<u64>(),
        c in any::<i128>(),
        d in any::<u128>(),
    ) {
        prop_assert!(accepted(&a.to_string()), "{}", a);
        prop_assert!(accepted(&b.to_string()), "{}", b);
        for wide in [c.to_string(), d.to_string()] {
            let significant = wide.trim_start_matches('-').trim_matches('0').len();
            prop_assert_eq!(accepted(&wide), significant <= 38, "{}", wide);
        }
    }

    #[test]
    fn floats_dynamodb_holds_are_accepted_however_formatted(
        f in prop_oneof![
            any::<f64>(),
            (1.0f64..10.0, -135i32..=130).prop_map(|(m, e)| m * 10f64.powi(e)),
        ],
        negative in any::<bool>(),
    ) {
        let f = if negative { -f } else { f };
        let forms = [f.to_string(), format!("{f:?}"), format!("{f:e}"), format!("{f:E}")];
        let magnitude = f.abs();
        if magnitude == 0.0 || (1e-129..=1e125).contains(&magnitude) {
            for form in &forms {
                prop_assert!(accepted(form), "{}", form);
            }
        } else if !f.is_finite() || !(1e-131..1e127).contains(&magnitude) {
            for form in &forms {
                prop_assert!(!accepted(form), "{}", form);
            }
        }
    }
}

#[test]
fn sums_are_exact_and_spelled_as_dynamodb_returns_them() -> TestResult {
    // As dynalite answered `ADD`: 1.50 + 1e3 = 1001.5; 1001.5 + -1001.5 = 0.
    assert_eq!(sum("1.50", "1e3")?, "1001.5");
    assert_eq!(sum("1001.5", "-1001.5")?, "0");
    assert_eq!(sum(&times("9", 38), "1")?, format!("1{}", times("0", 38)));
    assert_eq!(sum("0.1", "0.2")?, "0.3");
    assert_eq!(sum("+3", ".5")?, "3.5");
    assert_eq!(sum("5.", "-0")?, "5");
    assert_eq!(sum("1E-5", "0")?, "0.00001");
    assert_eq!(canonical("1.5e40")?, format!("15{}", times("0", 39)));
    assert_eq!(canonical("-7.10")?, "-7.1");
    assert_eq!(canonical("0.000")?, "0");
    Ok(())
}

#[test]
fn a_sum_dynamodb_cannot_store_is_refused() {
    // 1e30 + 1e-10 has 41 significant digits.
    assert!(sum("1e30", "1e-10").is_err());
    assert!(sum("9.9999999999999999999999999999999999999E+125", "1E+125").is_err());
    assert!(sum("1", "x").is_err());
}

proptest! {
    #[test]
    fn sums_agree_with_integer_arithmetic(a in any::<i64>(), b in any::<i64>()) {
        let expected = (i128::from(a) + i128::from(b)).to_string();
        prop_assert_eq!(sum(&a.to_string(), &b.to_string()).ok(), Some(expected));
    }

    #[test]
    fn sums_commute(a in -1_000_000_i64..1_000_000, b in -1_000_000_i64..1_000_000, shift in 0_u32..20) {
        let (a, b) = (format!("{a}e-{shift}"), format!("{b}e-3"));
        prop_assert_eq!(sum(&a, &b).ok(), sum(&b, &a).ok());
    }
}

proptest! {
    /// Integers summed without decimals (the counters' quick way) give exactly what the
    /// decimal sum gives.
    #[test]
    fn integer_sums_agree_with_decimal_sums(
        a in "-?[0-9]{1,38}",
        b in "-?[0-9]{1,38}",
    ) {
        let decimal_sum = decimal(&a)
            .and_then(|a| Ok(a + decimal(&b)?))
            .map(|total| spelled(&total));
        match (sum(&a, &b), decimal_sum) {
            (Ok(quick), Ok(exact)) => prop_assert_eq!(quick, exact),
            (quick, exact) => prop_assert!(quick.is_err() || exact.is_err(), "{:?} {:?}", quick, exact),
        }
        prop_assert_eq!(canonical(&a).ok(), decimal(&a).ok().map(|n| spelled(&n)));
    }
}
