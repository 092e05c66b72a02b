//! The Cortex-M4F firmware: runs ResNet-8 on the input in flash with a static arena and prints the
//! report through semihosting, plus (as `# ` lines) the measured stack use; then exits QEMU.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};
use neulens_firmware::{report, resnet8, tiles, INPUT};

/// The model's scratch memory, in `.bss` (RAM).
static mut ARENA: resnet8::Arena = [0.0; resnet8::ARENA_LEN];
/// The micro-flow model's scratch memory.
static mut ADAPTIVE_ARENA: tiles::AdaptiveArena = [0.0; tiles::ADAPTIVE_ARENA_LEN];

/// Written over the free RAM below the stack before inference, to measure the stack's high-water mark.
const PAINT: u32 = 0x5a5a_c3c3;
/// Left unpainted below the current stack pointer (this function's own frame grows into it).
const PAINT_MARGIN: usize = 256;

extern "C" {
    /// End of `.bss`/`.uninit` (start of the unused RAM), from cortex-m-rt's link.x.
    static __sheap: u32;
    /// Initial stack pointer (end of RAM), from cortex-m-rt's link.x.
    static _stack_start: u32;
}

#[entry]
fn main() -> ! {
    let free_start = addr_of!(__sheap) as usize;
    let stack_top = addr_of!(_stack_start) as usize;
    let paint_end = (cortex_m::register::msp::read() as usize - PAINT_MARGIN) & !3;
    let mut p = free_start;
    while p < paint_end {
        // SAFETY: [__sheap, sp - margin) is RAM that nothing uses (no heap; the stack is above).
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }

    let mut output = [0.0f32; resnet8::OUTPUT_LEN];
    // SAFETY: single-threaded, no interrupts use ARENA; this is its only reference.
    let arena = unsafe { &mut *addr_of_mut!(ARENA) };
    resnet8::infer(&INPUT, arena, &mut output);

    let mut low = free_start;
    // SAFETY: reads back the words painted above.
    while low < paint_end && unsafe { core::ptr::read_volatile(low as *const u32) } == PAINT {
        low += 4;
    }
    let stack_used = stack_top - low;

    let Ok(mut out) = hio::hstdout() else {
        exit(false)
    };
    // SAFETY: as ARENA: single-threaded, this is its only reference.
    let adaptive_arena = unsafe { &mut *addr_of_mut!(ADAPTIVE_ARENA) };
    let ok = report(&mut out, neulens::active_isa(), &output).is_ok()
        && neulens_firmware::features_line(&mut out, arena).is_ok()
        && neulens_firmware::adaptive_report(&mut out, adaptive_arena).is_ok()
        && writeln!(
            out,
            "# firmware: stack high-water mark {stack_used} bytes, arena {} bytes, static RAM \
             {} bytes, input in flash at {:#x}",
            resnet8::ARENA_BYTES,
            free_start - 0x2000_0000,
            INPUT.as_ptr() as usize
        )
        .is_ok();
    exit(ok)
}

/// Ends the QEMU run with a success or failure exit code (semihosting SYS_EXIT).
fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a debugger/semihosting host: sleep forever.
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = writeln!(out, "hard fault: {frame:?}");
    }
    exit(false)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = writeln!(out, "panic: {info}");
    }
    exit(false)
}
