use super::*;
use proptest::prelude::*;

fn entry(name: &str, text: &str) -> Entry {
    Entry::new(name, text).unwrap()
}

fn requests() -> Vec<Request> {
    vec![
        Request::Append(entry("alice", "hello, vault")),
        Request::Append(entry(&"n".repeat(NAME_MAX), &"é".repeat(TEXT_MAX / 2))),
        Request::Read { sequence: 1 },
        Request::Read { sequence: u64::MAX },
        Request::Recent { count: 1 },
        Request::Recent { count: RECENT_MAX },
    ]
}

fn responses() -> Vec<Response> {
    let mut all = vec![
        Response::Appended {
            sequence: 1,
            total: 1,
        },
        Response::Entry {
            sequence: 3,
            total: 9,
            last: false,
            entry: entry("bob", "hi"),
        },
        Response::Entry {
            sequence: 9,
            total: 9,
            last: true,
            entry: entry("ünï", &"x".repeat(TEXT_MAX)),
        },
        Response::Missing {
            sequence: 0,
            total: 0,
        },
        Response::Missing {
            sequence: 12,
            total: 11,
        },
    ];
    all.extend(Refusal::ALL.map(Response::Refused));
    all
}

#[test]
fn every_message_round_trips_with_its_tag() {
    for (i, r) in requests().into_iter().enumerate() {
        let e = r.encode(0x1234_5678_0000 + i as u64);
        assert_eq!(e.tag(), 0x1234_5678_0000 + i as u64);
        assert_eq!(e.decode(), Ok(r));
        assert_eq!(e.as_bytes().len(), ELEMENT_SIZE);
    }
    for (i, r) in responses().into_iter().enumerate() {
        let e = r.encode(i as u64);
        assert_eq!(e.decode(), Ok(r.clone()), "{r:?}");
        assert_eq!(e.tag(), i as u64);
    }
    assert!(!Response::Entry {
        sequence: 1,
        total: 1,
        last: false,
        entry: entry("a", "b")
    }
    .is_last());
    assert!(Response::Missing {
        sequence: 0,
        total: 0
    }
    .is_last());
}

#[test]
fn the_layout_is_the_documented_one() {
    let e = Request::Append(entry("ab", "xyz")).encode(0x0102_0304_0506_0708);
    let b = e.as_bytes();
    assert_eq!(&b[..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!((b[8], b[9], b[10], b[11]), (1, 2, 3, 0));
    assert_eq!(&b[24..26], b"ab");
    assert_eq!(&b[56..59], b"xyz");
    assert!(b[59..].iter().all(|&x| x == 0));
    let e = Response::Entry {
        sequence: 5,
        total: 6,
        last: true,
        entry: entry("c", "d"),
    }
    .encode(9);
    let b = e.as_bytes();
    assert_eq!((b[8], b[9], b[10], b[12]), (2, 1, 1, 1));
    assert_eq!((b[16], b[24], b[32], b[64]), (5, 6, b'c', b'd'));
    assert_eq!(REQUEST_PROTOCOL.to_be_bytes(), *b"vaultreq");
    assert_eq!(RESPONSE_PROTOCOL.to_be_bytes(), *b"vaultrsp");
}

/// `Request::Append(alice)` with one change made by `f` to its bytes.
fn changed_request(f: impl FnOnce(&mut [u8])) -> Result<Request, WireError> {
    let mut e = Request::Append(entry("alice", "hello")).encode(7);
    f(e.as_mut_bytes());
    e.decode()
}

#[test]
fn every_broken_request_is_refused_with_its_reason() {
    use WireError::*;
    type Change = Box<dyn Fn(&mut [u8])>;
    let cases: Vec<(Change, WireError)> = vec![
        (Box::new(|b| b[8] = 0), Kind(0)),
        (Box::new(|b| b[8] = 9), Kind(9)),
        (
            Box::new(|b| b[9] = 0),
            Length {
                field: Field::Name,
                length: 0,
            },
        ),
        (
            Box::new(|b| b[9] = 33),
            Length {
                field: Field::Name,
                length: 33,
            },
        ),
        (
            Box::new(|b| b[10..12].copy_from_slice(&449u16.to_le_bytes())),
            Length {
                field: Field::Text,
                length: 449,
            },
        ),
        (Box::new(|b| b[24] = 0xff), NotUtf8(Field::Name)),
        (Box::new(|b| b[57] = b'\n'), Control(Field::Text)),
        (Box::new(|b| b[25] = 0x7f), Control(Field::Name)),
        (Box::new(|b| b[40] = b'x'), Padding(Field::Name)),
        (Box::new(|b| b[503] = 1), Padding(Field::Text)),
        (Box::new(|b| b[12] = 1), Unused(Field::Count)),
        (Box::new(|b| b[23] = 1), Unused(Field::Sequence)),
        (Box::new(|b| b[511] = 1), Unused(Field::Reserved)),
    ];
    for (i, (f, error)) in cases.into_iter().enumerate() {
        assert_eq!(changed_request(f), Err(error), "case {i}");
    }
    // Reads and recents use no name or text; their numbers are in range.
    let mut read = Request::Read { sequence: 4 }.encode(1);
    read.as_mut_bytes()[30] = b'a';
    assert_eq!(read.decode(), Err(Unused(Field::Name)));
    assert_eq!(
        Request::Read { sequence: 0 }.encode(1).decode(),
        Err(Range(Field::Sequence))
    );
    for count in [0, RECENT_MAX + 1, u32::MAX] {
        assert_eq!(
            Request::Recent { count }.encode(1).decode(),
            Err(Range(Field::Count))
        );
    }
    let mut recent = Request::Recent { count: 2 }.encode(1);
    recent.as_mut_bytes()[16] = 1;
    assert_eq!(recent.decode(), Err(Unused(Field::Sequence)));
    assert_eq!(
        WireError::Length {
            field: Field::Name,
            length: 33
        }
        .to_string(),
        "name of 33 bytes (1 to 32)"
    );
}

#[test]
fn every_broken_response_is_refused() {
    let good = Response::Appended {
        sequence: 2,
        total: 2,
    }
    .encode(1);
    let broken = |f: &dyn Fn(&mut [u8])| {
        let mut e = good;
        f(e.as_mut_bytes());
        e.decode()
    };
    assert_eq!(broken(&|b| b[8] = 7), Err(WireError::Kind(7)));
    assert_eq!(
        broken(&|b| b[24] = 1),
        Err(WireError::Range(Field::Total)),
        "total below the sequence"
    );
    assert_eq!(
        broken(&|b| b[16] = 0),
        Err(WireError::Range(Field::Sequence))
    );
    assert_eq!(
        broken(&|b| b[12] = 1),
        Err(WireError::Unused(Field::Detail))
    );
    assert_eq!(
        broken(&|b| b[14] = 1),
        Err(WireError::Unused(Field::Reserved))
    );
    assert_eq!(broken(&|b| b[40] = 1), Err(WireError::Unused(Field::Name)));
    let refused = Response::Refused(Refusal::Full).encode(1);
    let mut unknown = refused;
    unknown.as_mut_bytes()[12] = 77;
    assert_eq!(unknown.decode(), Err(WireError::Range(Field::Detail)));
    let entry = Response::Entry {
        sequence: 1,
        total: 1,
        last: true,
        entry: entry("a", "b"),
    }
    .encode(1);
    let mut two = entry;
    two.as_mut_bytes()[12] = 2;
    assert_eq!(two.decode(), Err(WireError::Range(Field::Detail)));
}

#[test]
fn entries_check_their_strings_and_are_stored_compactly() {
    assert_eq!(
        Entry::new("", "x"),
        Err(WireError::Length {
            field: Field::Name,
            length: 0
        })
    );
    assert_eq!(
        Entry::new("a", &"x".repeat(TEXT_MAX + 1)),
        Err(WireError::Length {
            field: Field::Text,
            length: TEXT_MAX + 1
        })
    );
    assert_eq!(
        Entry::new("a\tb", "x"),
        Err(WireError::Control(Field::Name))
    );
    assert_eq!(
        Entry::new("a", "line\r\nbreak"),
        Err(WireError::Control(Field::Text))
    );
    let e = entry("carol", "a text with ümlauts");
    let mut buf = [0u8; PAYLOAD_LEN];
    let n = e.to_payload(&mut buf);
    assert_eq!(n, 2 + 5 + "a text with ümlauts".len());
    assert_eq!(&buf[..7], b"\x01\x05carol");
    assert_eq!(Entry::from_payload(&buf[..n]), Ok(e));
    for bad in [
        &b""[..],
        b"\x01",
        b"\x02\x01ab",
        b"\x01\x09ab",
        b"\x01\x02ab",
        b"\x01\x01a\x00",
    ] {
        assert!(Entry::from_payload(bad).is_err(), "{bad:?}");
    }
    // The longest entry fits.
    let long = entry(&"n".repeat(NAME_MAX), &"t".repeat(TEXT_MAX));
    assert_eq!(long.to_payload(&mut buf), PAYLOAD_LEN);
    assert_eq!(Entry::from_payload(&buf), Ok(long));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any 512 bytes: decoding never panics, and what decodes has exactly those bytes
    /// as its encoding (one encoding per message: nothing hides in unused bytes).
    #[test]
    fn any_bytes_decode_to_an_error_or_to_their_only_encoding(
        bytes in proptest::collection::vec(any::<u8>(), ELEMENT_SIZE),
        kind in 0u8..6,
        small in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Half the time, a plausible header (a known kind, small lengths), so that
        // the deeper checks are reached too.
        if small {
            bytes[8] = kind;
            bytes[9] %= 40;
            bytes[11] = 0;
        }
        let request = RequestElement::read_from_bytes(&bytes).unwrap();
        if let Ok(r) = request.decode() {
            prop_assert_eq!(r.encode(request.tag()).as_bytes().to_vec(), bytes.clone());
        }
        let response = ResponseElement::read_from_bytes(&bytes).unwrap();
        if let Ok(r) = response.decode() {
            prop_assert_eq!(r.encode(response.tag()).as_bytes().to_vec(), bytes.clone());
        }
    }

    /// A valid element with one byte changed: an error, or a message whose encoding
    /// is the changed bytes.
    #[test]
    fn one_changed_byte_never_slips_through(
        which in 0usize..12,
        at in 0usize..ELEMENT_SIZE,
        value in any::<u8>(),
    ) {
        let mut all: Vec<Vec<u8>> = requests().iter().map(|r| r.encode(5).as_bytes().to_vec()).collect();
        all.extend(responses().iter().map(|r| r.encode(5).as_bytes().to_vec()));
        let mut bytes = all[which % all.len()].clone();
        bytes[at] = value;
        let request = RequestElement::read_from_bytes(&bytes).unwrap();
        if let Ok(r) = request.decode() {
            prop_assert_eq!(r.encode(request.tag()).as_bytes().to_vec(), bytes.clone());
        }
        let response = ResponseElement::read_from_bytes(&bytes).unwrap();
        if let Ok(r) = response.decode() {
            prop_assert_eq!(r.encode(response.tag()).as_bytes().to_vec(), bytes.clone());
        }
    }

    /// Names and texts of any characters: accepted exactly when the rules allow, and
    /// then they round-trip on the wire and as stored.
    #[test]
    fn entries_follow_the_rules(name in "\\PC{0,12}|.{0,40}", text in ".{0,200}") {
        let ok = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
        };
        match Entry::new(&name, &text) {
            Ok(e) => {
                prop_assert!(ok(&name, NAME_MAX) && ok(&text, TEXT_MAX));
                let r = Request::Append(e.clone());
                prop_assert_eq!(r.encode(1).decode(), Ok(r));
                let mut buf = [0u8; PAYLOAD_LEN];
                let n = e.to_payload(&mut buf);
                prop_assert_eq!(Entry::from_payload(&buf[..n]), Ok(e));
            }
            Err(_) => prop_assert!(!(ok(&name, NAME_MAX) && ok(&text, TEXT_MAX))),
        }
    }
}
