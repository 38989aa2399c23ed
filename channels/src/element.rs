//! Element types: what a channel protocol's elements are, as one Rust type.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The element type of a channel protocol.
///
/// A writer puts [`ElementType::PROTOCOL`] and the type's size into the channel
/// header; a reader accepts the channel only if both are its own (else
/// [`Incompatible`](crate::Incompatible)), so the two ends of a channel use the same
/// type or the reader refuses the channel. The zerocopy bounds say what the channel
/// needs: every byte pattern is a value (`FromBytes`: a reader copies whatever the
/// writer wrote and the protocol's fields are validated on that copy), the value is
/// its bytes (`IntoBytes`, `Immutable`), and the size is known (`KnownLayout`,
/// `Sized`). A type must not be empty, and its protocol id must not be 0 (the channel
/// refuses both at run time; [`check`] refuses them at compile time).
///
/// ```
/// use muen_channel::ElementType;
/// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
/// #[repr(C)]
/// struct Ping {
///     sequence: u64,
///     payload: [u8; 56],
/// }
///
/// impl ElementType for Ping {
///     const PROTOCOL: u64 = 0x7069_6e67_0000_0001;
/// }
///
/// muen_channel::element::check::<Ping>();
/// assert_eq!(Ping::SIZE, 64);
/// ```
pub trait ElementType: FromBytes + IntoBytes + Immutable + KnownLayout + Sized {
    /// The protocol id in the channel header: non-zero, the same at both ends.
    const PROTOCOL: u64;
    /// The element size in bytes: the type's size.
    const SIZE: usize = core::mem::size_of::<Self>();
}

/// Fails the build (when evaluated in a generic context: at monomorphisation) if `E`
/// is empty or its protocol id is 0.
pub const fn check<E: ElementType>() {
    const {
        assert!(E::SIZE > 0, "a channel element type must not be empty");
        assert!(E::PROTOCOL != 0, "a channel protocol id must not be 0");
    }
}

impl ElementType for crate::protocol::muennet::Element {
    const PROTOCOL: u64 = crate::protocol::muennet::PROTOCOL;
}

impl ElementType for crate::protocol::debuglog::Element {
    const PROTOCOL: u64 = crate::protocol::debuglog::PROTOCOL;
}

impl ElementType for crate::protocol::muenblock::Request {
    const PROTOCOL: u64 = crate::protocol::muenblock::PROTOCOL;
}

impl ElementType for crate::protocol::muenblock::Response {
    const PROTOCOL: u64 = crate::protocol::muenblock::PROTOCOL;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{debuglog, muenblock, muennet};

    #[test]
    fn the_protocols_element_types_carry_their_ids_and_sizes() {
        check::<muennet::Element>();
        assert_eq!(
            (muennet::Element::PROTOCOL, muennet::Element::SIZE),
            (muennet::PROTOCOL, muennet::ELEMENT_SIZE)
        );
        assert_eq!(
            (debuglog::Element::PROTOCOL, debuglog::Element::SIZE),
            (debuglog::PROTOCOL, debuglog::ELEMENT_SIZE)
        );
        assert_eq!(
            (muenblock::Request::SIZE, muenblock::Response::SIZE),
            (muenblock::REQUEST_SIZE, muenblock::RESPONSE_SIZE)
        );
        assert_eq!(muenblock::Response::PROTOCOL, muenblock::PROTOCOL);
    }
}
