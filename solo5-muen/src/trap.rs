//! CPU exceptions, reported as Solo5 reports them.
//!
//! Solo5's bindings print, for every exception,
//! `Solo5: trap: type=#PF ec=0x2 rip=0x203ebe rsp=0x1fff_ff00 rflags=0x10046` (hex
//! without separators), for a page fault a second line `Solo5: trap: cr2=0x...`, then
//! an `ABORT` line, and exit with status 255 (`SOLO5_EXIT_ABORT`). Tests and tools
//! match on those (Solo5's `tests.bats` expects `ABORT` and 255). [`Trap`] formats the
//! lines from the runtime's [`CpuException`]; the exception path of the bindings
//! (`start`) writes them and exits.

use core::fmt;

use muen_subject::platform::CpuException;

/// Solo5's names of vectors 0..=31 (`#9` for the reserved coprocessor segment
/// overrun, the number for vectors Solo5 does not name).
const NAMES: [&str; 32] = [
    "#DE", "#DB", "#NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#9", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#21", "#22", "#23", "#24", "#25",
    "#26", "#27", "#28", "#29", "#30", "#31",
];

/// The name of `vector` in the report (`#PF`; `#<n>` beyond 31).
pub struct VectorName(pub u8);

impl fmt::Display for VectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.get(usize::from(self.0)) {
            Some(name) => f.write_str(name),
            None => write!(f, "#{}", self.0),
        }
    }
}

/// The first line of the report, without the `Solo5: ` prefix:
/// `trap: type=#PF ec=0x2 rip=0x... rsp=0x... rflags=0x...`.
pub struct Trap<'a>(pub &'a CpuException);

impl fmt::Display for Trap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(
            f,
            "trap: type={} ec={:#x} rip={:#x} rsp={:#x} rflags={:#x}",
            VectorName(e.vector),
            e.error_code,
            e.rip,
            e.rsp,
            e.rflags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_solo5s() {
        let e = CpuException {
            vector: 14,
            error_code: 2,
            rip: 0x20_3ebe,
            cs: 8,
            rflags: 0x10046,
            rsp: 0x1fff_ff00,
            ss: 0x10,
            cr2: Some(0x4_0000_0000),
        };
        assert_eq!(
            Trap(&e).to_string(),
            "trap: type=#PF ec=0x2 rip=0x203ebe rsp=0x1fffff00 rflags=0x10046"
        );
        let ud = CpuException {
            vector: 6,
            error_code: 0,
            cr2: None,
            ..e
        };
        assert!(Trap(&ud).to_string().starts_with("trap: type=#UD ec=0x0 "));
        assert_eq!(VectorName(2).to_string(), "#NMI");
        assert_eq!(VectorName(9).to_string(), "#9");
        assert_eq!(VectorName(31).to_string(), "#31");
        assert_eq!(VectorName(40).to_string(), "#40");
    }
}
