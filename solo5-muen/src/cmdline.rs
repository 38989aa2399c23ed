//! The command line: Solo5's own options come first and are taken off.
//!
//! As Solo5's bindings read it: leading white space is skipped; then, as long as the
//! line starts with one of `--solo5:quiet`, `--solo5:error`, `--solo5:warn`,
//! `--solo5:info` or `--solo5:debug` followed by white space or the end, the option
//! sets the console's level (quiet and error: errors only; the last option wins) and
//! is skipped with the white space after it. The unikernel gets the rest. White space
//! is C's `isspace` in the C locale: space, `\t`, `\n`, `\v`, `\f`, `\r`.

use crate::console::Level;

/// Solo5's options and the level each sets.
const OPTIONS: [(&[u8], Level); 5] = [
    (b"--solo5:quiet", Level::Error),
    (b"--solo5:error", Level::Error),
    (b"--solo5:warn", Level::Warn),
    (b"--solo5:info", Level::Info),
    (b"--solo5:debug", Level::Debug),
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The command line after Solo5's options, and the level the last of them set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// What the unikernel gets: a suffix of the line (so a NUL-terminated line stays
    /// NUL-terminated).
    pub rest: &'a [u8],
    /// Where `rest` starts in the line.
    pub offset: usize,
    /// The level of the last option, if there was one.
    pub level: Option<Level>,
}

/// Takes Solo5's options off the front of `line` (the command line without its NUL).
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let skip_space = |mut at: usize| {
        while line.get(at).copied().is_some_and(is_space) {
            at += 1;
        }
        at
    };
    let mut at = skip_space(0);
    let mut level = None;
    'options: loop {
        let rest = &line[at..];
        for (option, option_level) in OPTIONS {
            let Some(after) = rest.strip_prefix(option) else {
                continue;
            };
            if after.first().is_none_or(|&b| is_space(b)) {
                level = Some(option_level);
                at = skip_space(at + option.len());
                continue 'options;
            }
        }
        break;
    }
    Parsed {
        rest: &line[at..],
        offset: at,
        level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rest(line: &str) -> (&str, Option<Level>) {
        let p = parse(line.as_bytes());
        assert_eq!(&line.as_bytes()[p.offset..], p.rest);
        (core::str::from_utf8(p.rest).unwrap(), p.level)
    }

    #[test]
    fn options_are_taken_off_the_front() {
        assert_eq!(rest("Hello_Solo5"), ("Hello_Solo5", None));
        assert_eq!(rest(""), ("", None));
        assert_eq!(rest("  \t"), ("", None));
        assert_eq!(rest("--solo5:quiet"), ("", Some(Level::Error)));
        assert_eq!(rest(" --solo5:quiet  limit"), ("limit", Some(Level::Error)));
        assert_eq!(rest("--solo5:error x"), ("x", Some(Level::Error)));
        assert_eq!(rest("--solo5:warn\tx"), ("x", Some(Level::Warn)));
        assert_eq!(rest("--solo5:info\nx"), ("x", Some(Level::Info)));
        assert_eq!(
            rest("--solo5:quiet --solo5:debug a b"),
            ("a b", Some(Level::Debug)),
            "the last option wins"
        );
    }

    #[test]
    fn an_option_must_end_at_white_space_and_options_after_text_stay() {
        assert_eq!(rest("--solo5:quietly"), ("--solo5:quietly", None));
        assert_eq!(
            rest("--solo5:quiet --solo5:loud x"),
            ("--solo5:loud x", Some(Level::Error))
        );
        assert_eq!(rest("x --solo5:quiet"), ("x --solo5:quiet", None));
        assert_eq!(rest("--solo5:"), ("--solo5:", None));
    }

    proptest! {
        #[test]
        fn the_rest_is_a_suffix_and_never_starts_with_an_option(
            line in proptest::collection::vec(
                prop_oneof![
                    Just(b' '), Just(b'\t'), Just(b'x'), Just(b'-'),
                    Just(b':'), Just(b'q'), any::<u8>()
                ],
                0..40,
            ),
            prefix in proptest::sample::select(vec!["", "--solo5:quiet ", "--solo5:debug"]),
        ) {
            let mut bytes = prefix.as_bytes().to_vec();
            bytes.extend(line);
            let p = parse(&bytes);
            prop_assert!(bytes.ends_with(p.rest));
            prop_assert_eq!(p.offset + p.rest.len(), bytes.len());
            prop_assert!(p.rest.first().is_none_or(|&b| !is_space(b)));
            let again = parse(p.rest);
            prop_assert_eq!(again.offset, 0);
            prop_assert_eq!(again.level, None);
        }
    }
}
