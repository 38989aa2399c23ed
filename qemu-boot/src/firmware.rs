//! The firmware: reset vector to the subject's first instruction.
//!
//! 1. **ROM, 16-bit** (`.muen_qemu_boot.rom`, the last 4 KiB below 4 GiB): the reset
//!    vector jumps to code that loads a flat GDT kept in the ROM and enters 32-bit
//!    protected mode, then jumps to the RAM image the testbed loaded.
//! 2. **RAM, 32-bit** (`muen_qemu_boot_entry32`): loads the bootstrap page tables that
//!    are part of the image (the low 4 GiB identity-mapped with 2 MiB pages, and again
//!    at [`PHYS_WINDOW`]), sets CR4 (PAE, OSFXSR), EFER (LME, NXE) and CR0 (the native
//!    profile's PE, MP, ET, NE, WP, PG), jumps into 64-bit code and zeroes `.bss`.
//! 3. **RAM, 64-bit Rust** ([`muen_qemu_boot_main`]): checks the boot configuration and
//!    the memory map, builds the subject's page tables in the pool, programs the tick,
//!    tells the testbed its TSC, waits for `go`, and hands over.
//! 4. **Handover**: the handover tables map the boot area and, just below RIP, a copy of
//!    the handover code; its last instruction loads the subject's CR3 and ends exactly
//!    at RIP, so the next instruction fetched is the subject's first, through the
//!    subject's own page tables. Nothing of the boot stage stays mapped.
//!
//! Any failure is reported as a line on the doorbell, after which QEMU is ended
//! through its exit device.

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};
use core::panic::PanicInfo;

use muen_qemu_boot::check::{check, BootError, Plan, Tick};
use muen_qemu_boot::paging::{Frames, PageTables, PhysMemory, Rights, PAGE_SIZE};
use muen_qemu_boot::{HANDOVER_STUB_MAX, PHYS_WINDOW};
use muen_testbed_abi::hosted::{MemMap, MEMMAP_SIZE};
use muen_testbed_abi::qemu::{
    BootConfig, BOOT_AREA, BOOT_CONFIG_ADDRESS, BOOT_CONFIG_GO_OFFSET, BOOT_FAILURE_CODE,
    DOORBELL_PORT, DOORBELL_STARTED, DOORBELL_TEXT, EXIT_PORT,
};

// Reset code and GDT, in the ROM. Real mode starts with CS base 0xffff_0000 and IP
// 0xfff0, so ROM offsets are addressed as `label - 0xffff0000` through CS. Descriptors
// have their accessed bits set, so that loading them never writes to the ROM.
global_asm!(
    ".section .muen_qemu_boot.rom, \"ax\", @progbits",
    ".code16",
    "rom_start:",
    "    cli",
    "    cld",
    "    lgdtl %cs:(rom_gdt_pointer - 0xffff0000)",
    "    movl %cr0, %eax",
    "    orl $1, %eax",
    "    movl %eax, %cr0",
    "    ljmpl $0x18, $rom_protected",
    ".code32",
    "rom_protected:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movw %ax, %fs",
    "    movw %ax, %gs",
    "    movl $muen_qemu_boot_entry32, %eax",
    "    jmp *%eax",
    ".balign 8",
    "rom_gdt:",
    "    .quad 0",
    // 0x08: 64-bit code, 0x10: data, as in Muen's native profile; 0x18: 32-bit code.
    "    .quad 0x00af9b000000ffff",
    "    .quad 0x00cf93000000ffff",
    "    .quad 0x00cf9b000000ffff",
    "rom_gdt_pointer:",
    "    .word 4 * 8 - 1",
    "    .long rom_gdt",
    ".org 0xff0",
    ".code16",
    "    jmp rom_start",
    ".org 0x1000",
    ".code64",
    options(att_syntax),
);

// The RAM image's entry (32-bit protected mode, flat segments, paging off) and the
// switch to long mode.
global_asm!(
    ".section .text.muen_qemu_boot_entry32, \"ax\", @progbits",
    ".code32",
    ".global muen_qemu_boot_entry32",
    "muen_qemu_boot_entry32:",
    // CR4: PAE, OSFXSR (native profile).
    "    movl $0x220, %eax",
    "    movl %eax, %cr4",
    "    movl $boot_pml4, %eax",
    "    movl %eax, %cr3",
    // EFER: LME, NXE.
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    orl $0x900, %eax",
    "    wrmsr",
    // CR0: PE, MP, ET, NE, WP, PG (native profile; caches on).
    "    movl $0x80010033, %eax",
    "    movl %eax, %cr0",
    "    ljmpl $0x08, $3f",
    ".code64",
    "3:  movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movw %ax, %fs",
    "    movw %ax, %gs",
    // .bss: the testbed writes only file bytes and the memory file starts zeroed, but
    // a guest reset would enter here again with old contents.
    "    movl $__muen_qemu_boot_bss_start, %edi",
    "    movl $__muen_qemu_boot_bss_end, %ecx",
    "    subl %edi, %ecx",
    "    xorl %eax, %eax",
    "    rep stosb",
    "    leaq boot_stack_top(%rip), %rsp",
    "    call muen_qemu_boot_main",
    "    ud2",
    "",
    // Bootstrap tables, complete in the image (the code before paging is on runs
    // slowly where the hypervisor emulates it, so it builds nothing): PML4 slots 0
    // (identity) and 1 (the physical window) share one PDPT, whose first four entries
    // point to four page directories of 2 MiB pages, 0 to 4 GiB.
    ".section .data.muen_qemu_boot_tables, \"aw\", @progbits",
    ".balign 4096",
    "boot_pml4:",
    "    .quad boot_pdpt + 3",
    "    .quad boot_pdpt + 3",
    "    .fill 510, 8, 0",
    "boot_pdpt:",
    "    .quad boot_pd + 3",
    "    .quad boot_pd + 0x1000 + 3",
    "    .quad boot_pd + 0x2000 + 3",
    "    .quad boot_pd + 0x3000 + 3",
    "    .fill 508, 8, 0",
    "boot_pd:",
    "    .set page, 0",
    "    .rept 2048",
    "    .quad page * 0x200000 + 0x83",
    "    .set page, page + 1",
    "    .endr",
    "",
    ".section .bss.muen_qemu_boot_stack, \"aw\", @nobits",
    ".balign 4096",
    "boot_stack: .skip 64 * 1024",
    "boot_stack_top:",
    options(att_syntax),
);

// The handover code. It is never run here: it is copied so that it ends exactly at the
// subject's RIP. On entry RAX = the subject's CR3, RSI = the subject's RSP, RDX = the
// subject's RDI, RSP = the boot stack (mapped by the handover tables). The subject
// starts with every general-purpose register 0 except RSP, RDI (the policy's) and RAX
// (its CR3: some register must hold it for the last instruction), RFLAGS = 0x2. After
// `popfq` only `mov`s follow, which leave RFLAGS alone.
global_asm!(
    ".section .rodata.muen_qemu_boot_handover, \"a\", @progbits",
    ".global muen_qemu_boot_handover",
    ".global muen_qemu_boot_handover_end",
    "muen_qemu_boot_handover:",
    "    xor ebx, ebx",
    "    xor ecx, ecx",
    "    xor ebp, ebp",
    "    xor r8d, r8d",
    "    xor r9d, r9d",
    "    xor r10d, r10d",
    "    xor r11d, r11d",
    "    xor r12d, r12d",
    "    xor r13d, r13d",
    "    xor r14d, r14d",
    "    xor r15d, r15d",
    "    push 2",
    "    popfq",
    "    mov rsp, rsi",
    "    mov rdi, rdx",
    "    mov esi, 0",
    "    mov edx, 0",
    "    mov cr3, rax",
    "muen_qemu_boot_handover_end:",
);

extern "C" {
    static muen_qemu_boot_handover: u8;
    static muen_qemu_boot_handover_end: u8;
}

/// Frames for the handover tables and the copy of the handover code.
const HANDOVER_FRAMES: usize = 10;

#[repr(C, align(4096))]
struct HandoverFrames([u8; HANDOVER_FRAMES * PAGE_SIZE as usize]);

/// In `.bss`, inside the boot area (identity-mapped: virtual = physical address).
static mut HANDOVER: HandoverFrames = HandoverFrames([0; HANDOVER_FRAMES * PAGE_SIZE as usize]);

/// Guest physical memory through the bootstrap tables' window.
struct Window;

impl Window {
    fn at(address: u64) -> *mut u64 {
        PHYS_WINDOW.wrapping_add(address) as *mut u64
    }
}

impl PhysMemory for Window {
    fn read(&self, address: u64) -> u64 {
        // SAFETY: the window maps the low 4 GiB of guest physical memory; the callers
        // (the page table builder) only pass 8-byte aligned addresses of frames from the
        // pool or the handover area, which are RAM the boot stage alone uses.
        unsafe { Self::at(address).read_volatile() }
    }

    fn write(&mut self, address: u64, value: u64) {
        // SAFETY: as for `read`.
        unsafe { Self::at(address).write_volatile(value) }
    }
}

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the devices this module documents (PIC, PIT, QEMU's doorbell
    // and exit device) has no memory effects.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

fn rdtsc() -> u64 {
    // SAFETY: reads a counter; no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// A text line on the doorbell: printable ASCII, anything else as `?`.
struct TextLine;

impl TextLine {
    fn start() -> Self {
        outb(DOORBELL_PORT, DOORBELL_TEXT);
        TextLine
    }

    fn end(self) {
        outb(DOORBELL_PORT, b'\n');
    }
}

impl Write for TextLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            outb(
                DOORBELL_PORT,
                if (0x20..0x7f).contains(&b) { b } else { b'?' },
            );
        }
        Ok(())
    }
}

/// Reports `message` and ends QEMU.
fn fail(message: fmt::Arguments<'_>) -> ! {
    let mut line = TextLine::start();
    let _ = line.write_fmt(message);
    line.end();
    outb(EXIT_PORT, BOOT_FAILURE_CODE);
    loop {
        // SAFETY: halts with interrupts off; nothing is left to do.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    fail(format_args!("boot stage panic: {info}"))
}

/// Called by the 64-bit entry code on the boot stack.
#[no_mangle]
extern "C" fn muen_qemu_boot_main() -> ! {
    match boot() {
        Ok(never) => match never {},
        Err(e) => fail(format_args!("{e}")),
    }
}

fn boot() -> Result<core::convert::Infallible, BootError> {
    // SAFETY: the window maps guest physical memory, and the testbed wrote the boot
    // configuration page before QEMU started; `BootConfig` has alignment 1.
    let config: BootConfig =
        unsafe { (Window::at(BOOT_CONFIG_ADDRESS) as *const BootConfig).read_volatile() };
    // SAFETY: the map's page is guest RAM mapped through the window. The testbed wrote
    // it before QEMU started and nobody writes it afterwards, so a shared slice for the
    // boot stage's lifetime is sound.
    let map =
        unsafe { core::slice::from_raw_parts(Window::at(0) as *const u8, MEMMAP_SIZE as usize) };
    let map = MemMap::parse(map).map_err(BootError::Map)?;
    let plan = check(&config, &map)?;

    let mut memory = Window;
    let mut frames = Frames::new(plan.pool.clone());
    let mut subject = PageTables::new(&mut memory, &mut frames).map_err(BootError::Paging)?;
    for e in map.entries() {
        let flags = e.flags.get();
        let rights = Rights {
            writable: flags & muen_testbed_abi::hosted::ENTRY_WRITABLE != 0,
            executable: flags & muen_testbed_abi::hosted::ENTRY_EXECUTABLE != 0,
        };
        subject
            .map(
                &mut memory,
                &mut frames,
                e.address.get(),
                e.offset.get(),
                e.size.get(),
                rights,
            )
            .map_err(BootError::Paging)?;
    }
    let (handover, stub) = handover_tables(&plan)?;

    if let Some(tick) = plan.tick {
        start_tick(tick);
    } else {
        mask_pic();
    }
    disable_local_apic();
    // SAFETY: CR4 gets the bits the plan checked (OSXMMEXCPT at most); they only change
    // how SIMD exceptions are reported, which the boot stage (soft float) never uses.
    unsafe {
        asm!(
            "mov {t}, cr4",
            "or {t}, {extra}",
            "mov cr4, {t}",
            t = out(reg) _,
            extra = in(reg) plan.cr4_extra,
            options(nomem, nostack),
        );
    }

    // The handshake: the testbed learns the guest TSC, publishes the subject's time and
    // scheduling pages in guest TSC terms, then says go.
    let tsc = rdtsc();
    outb(DOORBELL_PORT, DOORBELL_STARTED);
    for b in tsc.to_le_bytes() {
        outb(DOORBELL_PORT, b);
    }
    let go = Window::at(BOOT_CONFIG_ADDRESS + BOOT_CONFIG_GO_OFFSET);
    // SAFETY: `go` is an aligned word of the configuration page in the window, written
    // by the testbed (atomically, 8 bytes) and only read here.
    while unsafe { go.read_volatile() } == 0 {
        core::hint::spin_loop();
    }

    // SAFETY: the handover tables identity-map the boot area (this code, its stack) and
    // map the copy of the handover code so that it ends at RIP; the code loads the
    // subject's page tables, which map RIP executable (checked), as its last
    // instruction. Interrupts are off and stay off. Nothing returns.
    unsafe {
        asm!(
            "mov cr3, {handover}",
            "jmp {stub}",
            handover = in(reg) handover,
            stub = in(reg) stub,
            in("rax") subject.root(),
            in("rsi") plan.rsp,
            in("rdx") plan.rdi,
            options(noreturn),
        )
    }
}

/// Builds the handover tables in [`HANDOVER`]: the boot area identity-mapped, and the
/// handover code copied to end at RIP. Returns their root and the code's address.
fn handover_tables(plan: &Plan) -> Result<(u64, u64), BootError> {
    // SAFETY: the two symbols delimit the handover code in .rodata (global_asm above).
    let code = unsafe {
        let start = &raw const muen_qemu_boot_handover;
        let end = &raw const muen_qemu_boot_handover_end;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    };
    let len = code.len() as u64;
    assert!(len <= HANDOVER_STUB_MAX, "handover code too long");
    let area = &raw mut HANDOVER as u64;
    let mut frames = Frames::new(area..area + HANDOVER_FRAMES as u64 * PAGE_SIZE);
    let mut memory = Window;
    let paging = BootError::Paging;
    let mut tables = PageTables::new(&mut memory, &mut frames).map_err(paging)?;
    let all = Rights {
        writable: true,
        executable: true,
    };
    tables
        .map(
            &mut memory,
            &mut frames,
            BOOT_AREA.start,
            BOOT_AREA.start,
            BOOT_AREA.end - BOOT_AREA.start,
            all,
        )
        .map_err(paging)?;
    // `check` made sure that these pages lie above the boot area.
    let start = plan.rip - len;
    let first_page = start & !(PAGE_SIZE - 1);
    let mut page = first_page;
    while page < plan.rip {
        let frame = frames.allocate().ok_or(BootError::Paging(
            muen_qemu_boot::paging::MapError::OutOfFrames,
        ))?;
        let code_rights = Rights {
            writable: false,
            executable: true,
        };
        tables
            .map(
                &mut memory,
                &mut frames,
                page,
                frame,
                PAGE_SIZE,
                code_rights,
            )
            .map_err(paging)?;
        for (i, byte) in code.iter().enumerate() {
            let at = start + i as u64;
            if at & !(PAGE_SIZE - 1) == page {
                let target = (PHYS_WINDOW + frame + (at - page)) as *mut u8;
                // SAFETY: `frame` is one of the handover frames (boot area RAM, reached
                // through the window) and `at - page` is below the page size.
                unsafe { target.write_volatile(*byte) };
            }
        }
        page += PAGE_SIZE;
    }
    Ok((tables.root(), start))
}

/// PIT channel 0 as a rate generator at `tick.divisor`, through IRQ 0 of the master PIC
/// in auto-EOI mode (a native subject sends no end-of-interrupt) at `tick.vector`;
/// every other line masked.
fn start_tick(tick: Tick) {
    init_pic(tick.vector);
    outb(0x21, 0xfe);
    outb(0xa1, 0xff);
    let [low, high] = tick.divisor.to_le_bytes();
    outb(0x43, 0x34); // channel 0, low then high byte, mode 2, binary
    outb(0x40, low);
    outb(0x40, high);
}

/// Both PICs initialised (master at the tick vector's default) and fully masked.
fn mask_pic() {
    init_pic(0xf8);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

fn init_pic(vector: u8) {
    // ICW1: edge-triggered, cascade, ICW4 follows. ICW2: vector base. ICW3: the slave on
    // line 2. ICW4: 8086 mode, auto-EOI on the master. The slave (fully masked) gets the
    // neighbouring block of vectors.
    let slave = if vector >= 40 { vector - 8 } else { vector + 8 };
    for (command, data, base, cascade, icw4) in [
        (0x20, 0x21, vector, 0x04, 0x03),
        (0xa0, 0xa1, slave, 0x02, 0x01),
    ] {
        outb(command, 0x11);
        outb(data, base);
        outb(data, cascade);
        outb(data, icw4);
    }
}

/// Turns the local APIC off (IA32_APIC_BASE.EN = 0): native subjects have none, and
/// without it the PIC's interrupts reach the CPU directly. First LINT0 becomes an
/// unmasked ExtINT line (virtual wire), as a BIOS leaves it: QEMU's own APIC model
/// (TCG) still passes the PIC's interrupts through LINT0 when the APIC is off, and
/// does not always start with it so (it does not on `microvm`).
fn disable_local_apic() {
    const IA32_APIC_BASE: u32 = 0x1b;
    const ENABLE: u64 = 1 << 11;
    const LVT_LINT0: u64 = 0x350;
    const EXTINT: u32 = 0x700;
    let base = rdmsr(IA32_APIC_BASE);
    let lint0 = (PHYS_WINDOW + (base & 0xf_ffff_f000) + LVT_LINT0) as *mut u32;
    // SAFETY: the APIC's registers lie below 4 GiB, in the window (the bootstrap tables
    // map the whole low 4 GiB); writing LVT LINT0 only changes how the PIC's line
    // reaches the CPU.
    unsafe { lint0.write_volatile(EXTINT) };
    wrmsr(IA32_APIC_BASE, base & !ENABLE);
}

fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: reads an architectural MSR the caller names; no memory effects.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack))
    };
    u64::from(high) << 32 | u64::from(low)
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller writes an architectural MSR with a value valid for it (here
    // IA32_APIC_BASE with only its enable bit changed); no memory effects.
    unsafe {
        asm!(
            "wrmsr",
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            options(nomem, nostack),
        )
    };
}
