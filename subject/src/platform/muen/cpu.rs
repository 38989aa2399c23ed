//! The CPU tables of a Muen subject: GDT, TSS, IDT and the interrupt stubs.
//!
//! The stubs are one table of 256 `call` instructions (5 bytes each), so that the IDT
//! needs no table of addresses: gate `v` points to `muen_subject_stubs + 5 * v`. The
//! common code behind them finds the vector from the return address the `call`
//! pushed. Vectors 0..=31 go to [`exception`], which hands a [`CpuException`] to the
//! handler given to [`init`] (by default [`exit::exception`](crate::exit), which
//! reports it and exits) and never returns; vectors 32..=255 set bit `v` of
//! [`PENDING`] with `lock bts` and return with `iretq`.
//!
//! The entry, `_start`, is not here: the application's [`entry!`](crate::entry!)
//! emits it, so that a program with an entry of its own (Solo5's bindings,
//! `solo5-muen`) can use these tables without a second `_start`.

use core::arch::{asm, global_asm};
use core::mem::{offset_of, size_of};

use super::kernel::Muen;
use crate::platform::machine::{CpuException, PENDING};

/// What runs on a CPU exception (vectors 0..=31), on the stack the exception arrived
/// on (page and double faults: an IST stack of 8 KiB), with interrupts disabled. It
/// never returns: the subject ends.
pub type ExceptionHandler = fn(Muen, &CpuException) -> !;

global_asm!(
    ".section .text.muen_subject_stubs, \"ax\", @progbits",
    ".balign 16",
    ".global muen_subject_stubs",
    ".hidden muen_subject_stubs",
    "muen_subject_stubs:",
    ".rept 32",
    "    call muen_subject_exception_common",
    ".endr",
    ".rept 224",
    "    call muen_subject_vector_common",
    ".endr",
    "muen_subject_stubs_end:",
    "",
    // [rsp] = muen_subject_stubs + 5 * (v + 1); above it the interrupt frame.
    "muen_subject_vector_common:",
    "    push rax",
    "    push rdx",
    "    mov rax, [rsp + 16]",
    "    lea rdx, [rip + muen_subject_stubs]",
    "    sub rax, rdx",
    // x * 205 >> 10 == x / 5 for every multiple of 5 up to 5 * 1023.
    "    imul eax, eax, 205",
    "    shr eax, 10",
    "    dec eax",
    "    lock bts qword ptr [rip + {pending}], rax",
    "    pop rdx",
    "    pop rax",
    "    add rsp, 8",
    "    iretq",
    "",
    // Exceptions never return, so nothing needs saving.
    "muen_subject_exception_common:",
    "    pop rdi",
    "    lea rax, [rip + muen_subject_stubs]",
    "    sub rdi, rax",
    "    imul edi, edi, 205",
    "    shr edi, 10",
    "    dec edi",
    "    mov rsi, rsp",
    "    and rsp, -16",
    "    call {exception}",
    "    ud2",
    pending = sym PENDING,
    exception = sym exception,
);

extern "C" {
    /// The first of the 256 five-byte stubs (defined in the assembly above).
    static muen_subject_stubs: u8;
}

/// Size of one stub (`call rel32`).
const STUB_SIZE: u64 = 5;

const CODE_SELECTOR: u16 = 0x08;
const DATA_SELECTOR: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x18;

/// 64-bit code: present, DPL 0, execute/read, accessed, L = 1, G = 1 (access 0x9b,
/// flags 0xa, as in Muen's native profile).
const CODE_DESCRIPTOR: u64 = 0x00af_9b00_0000_ffff;
/// Data: present, DPL 0, read/write, accessed, D/B = 1, G = 1 (access 0x93).
const DATA_DESCRIPTOR: u64 = 0x00cf_9300_0000_ffff;

/// The 64-bit task state segment (only the IST pointers are used).
#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

const _: () = assert!(size_of::<Tss>() == 104);
const _: () = assert!(offset_of!(Tss, ist) == 36);
const _: () = assert!(offset_of!(Tss, iomap_base) == 102);

/// An IDT gate descriptor.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    _reserved: u32,
}

const _: () = assert!(size_of::<Gate>() == 16);
const _: () = assert!(offset_of!(Gate, offset_high) == 8);

/// Present, DPL 0, 64-bit interrupt gate (clears IF on entry).
const INTERRUPT_GATE: u8 = 0x8e;

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        _reserved: 0,
    };

    fn new(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: CODE_SELECTOR,
            ist,
            attributes: INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            _reserved: 0,
        }
    }
}

/// Operand of `lgdt` / `lidt`.
#[repr(C, packed(2))]
struct TablePointer {
    limit: u16,
    base: u64,
}

const _: () = assert!(size_of::<TablePointer>() == 10);

const IST_STACK_SIZE: usize = 8192;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

/// IST slot (1-based, as in the gate) of page faults: a stack overflow faults on the
/// normal stack, so the handler needs another one.
const PAGE_FAULT_IST: u8 = 1;
/// IST slot of double faults.
const DOUBLE_FAULT_IST: u8 = 2;

struct Tables {
    /// The handler of vectors 0..=31; `None`: [`exit::exception`](crate::exit).
    exception_handler: Option<ExceptionHandler>,
    gdt: [u64; 5],
    tss: Tss,
    idt: [Gate; 256],
    ist_stacks: [IstStack; 2],
}

// Zero-initialised, so it lives in .bss. Written once by `init`, then only read by the
// CPU (and the IST stacks used by it).
static mut TABLES: Tables = Tables {
    exception_handler: None,
    gdt: [0; 5],
    tss: Tss {
        _reserved0: 0,
        rsp: [0; 3],
        _reserved1: 0,
        ist: [0; 7],
        _reserved2: 0,
        _reserved3: 0,
        iomap_base: 0,
    },
    idt: [Gate::MISSING; 256],
    ist_stacks: [const { IstStack([0; IST_STACK_SIZE]) }; 2],
};

/// Builds and loads the GDT, TSS and IDT; CPU exceptions go to `exception_handler`
/// (`None`: [`exit::exception`](crate::exit)).
///
/// # Safety
///
/// Called once, with interrupts disabled, before any other code uses the tables; the
/// CPU is in the state `super`'s documentation describes.
pub(super) unsafe fn init(exception_handler: Option<ExceptionHandler>) {
    // SAFETY: the only access to TABLES, before anything else runs (contract): no
    // reference to it exists, and the raw pointers below are derived from `&raw mut`.
    // The handler is stored before the IDT is loaded, so `exception` sees it.
    unsafe {
        let t = &raw mut TABLES;
        (*t).exception_handler = exception_handler;
        let stacks = &raw const (*t).ist_stacks as u64;
        let stack_top = |i: u64| stacks + (i + 1) * IST_STACK_SIZE as u64;
        (*t).tss.ist[usize::from(PAGE_FAULT_IST) - 1] = stack_top(0);
        (*t).tss.ist[usize::from(DOUBLE_FAULT_IST) - 1] = stack_top(1);
        // No I/O permission bitmap: the map base points past the segment limit.
        (*t).tss.iomap_base = size_of::<Tss>() as u16;

        let tss = &raw const (*t).tss as u64;
        let limit = size_of::<Tss>() as u64 - 1;
        // An available 64-bit TSS (type 9), present: a 16-byte system descriptor.
        let tss_low = (limit & 0xffff)
            | (tss & 0xff_ffff) << 16
            | 0x89 << 40
            | (limit >> 16 & 0xf) << 48
            | (tss >> 24 & 0xff) << 56;
        (*t).gdt = [0, CODE_DESCRIPTOR, DATA_DESCRIPTOR, tss_low, tss >> 32];

        let stubs = &raw const muen_subject_stubs as u64;
        for v in 0..256u64 {
            let ist = match v {
                8 => DOUBLE_FAULT_IST,
                14 => PAGE_FAULT_IST,
                _ => 0,
            };
            (*t).idt[v as usize] = Gate::new(stubs + STUB_SIZE * v, ist);
        }

        let gdt = TablePointer {
            limit: (size_of::<[u64; 5]>() - 1) as u16,
            base: &raw const (*t).gdt as u64,
        };
        let idt = TablePointer {
            limit: (size_of::<[Gate; 256]>() - 1) as u16,
            base: &raw const (*t).idt as u64,
        };
        // Load the GDT, reload CS with a far return and the data segments directly,
        // then the task register and the IDT. The descriptors match the ones Muen's
        // profile gives the hidden segment state, so nothing changes for running code.
        asm!(
            "lgdt [{gdt}]",
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:e}",
            "mov es, {data:e}",
            "mov ss, {data:e}",
            "ltr {tss:x}",
            "lidt [{idt}]",
            gdt = in(reg) &raw const gdt,
            idt = in(reg) &raw const idt,
            code = in(reg) u64::from(CODE_SELECTOR),
            data = in(reg) u32::from(DATA_SELECTOR),
            tss = in(reg) TSS_SELECTOR,
            tmp = out(reg) _,
        );
    }
}

/// Exceptions with an error code on the stack.
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Entered from `muen_subject_exception_common` with the vector and the frame the CPU
/// pushed: `[error code,] rip, cs, rflags, rsp, ss`.
extern "sysv64" fn exception(vector: u64, frame: *const u64) -> ! {
    let vector = vector as u8;
    // SAFETY: `frame` points to the interrupt frame the CPU just pushed on this stack,
    // which holds the error code for exactly the vectors `has_error_code` names, then
    // five words.
    let (error_code, [rip, cs, rflags, rsp, ss]) = unsafe {
        let (error_code, rest) = if has_error_code(vector) {
            (frame.read_volatile(), frame.add(1))
        } else {
            (0, frame)
        };
        (
            error_code,
            core::array::from_fn(|i| rest.add(i).read_volatile()),
        )
    };
    let cr2 = if vector == 14 {
        let cr2: u64;
        // SAFETY: reading CR2 at CPL 0 has no side effects.
        unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
        Some(cr2)
    } else {
        None
    };
    let report = CpuException {
        vector,
        error_code,
        rip,
        cs,
        rflags,
        rsp,
        ss,
        cr2,
    };
    // The handler was written once by `init` before the IDT that leads here was
    // loaded, and is only read since.
    let tables = &raw const TABLES;
    // SAFETY: (as above) no mutable access to TABLES exists any more.
    let handler = unsafe { (*tables).exception_handler };
    let platform = Muen::assume_initialised();
    match handler {
        Some(handler) => handler(platform, &report),
        None => crate::exit::exception(&platform, &report),
    }
}
