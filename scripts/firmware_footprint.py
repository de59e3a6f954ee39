#!/usr/bin/env python3
"""Footprint of the firmware example: flash, static RAM, peak stack, instructions per action.

Builds firmware-example (release, as flashed) and runs it under QEMU's netduinoplus2
(STM32F405) with `-icount shift=0`, where the virtual clock advances one nanosecond per
guest instruction. The firmware counts SysTick ticks spent inside `Policy::sample` and
times a calibration loop of exactly 200 000 instructions; their ratio converts ticks to
instructions. Peak stack comes from stack painting, sizes from the ELF's section headers.

usage: scripts/firmware_footprint.py [--write] [--features fast-math | int8]
                                     [--machine mps2-an386 | mps2-an385 | microbit | mps2-an505]
       scripts/firmware_footprint.py --sizes
  --write     replace this configuration's table in BENCHMARKS.md's firmware section
  --features  firmware features: fast-math (micromath), int8 (the committed int8 policy,
              policies/pendulum-sgm5-int8.mxp, unless FIRMWARE_POLICY names another)
  --machine   mps2-an386 cross-checks the count on a board whose SysTick tick is exactly
              40 instructions (same 1 MiB / 128 KiB budget, different addresses);
              mps2-an385 measures the firmware built for thumbv7m-none-eabi (Cortex-M3, no
              FPU: float math in software), also 40 instructions per tick; microbit the one
              for thumbv6m-none-eabi (Cortex-M0, no FPU; nRF51 at 16 MHz: 62.5 per tick);
              mps2-an505 the one for thumbv8m.main-none-eabihf (Cortex-M33; 25 MHz: 50)
  --sizes     flash of the firmware on every Cortex-M target and of policy-core's link-check
              binary on every target, riscv32imac-unknown-none-elf included (the firmware does
              not build there); prints a table, changes nothing
Needs qemu-system-arm and the targets (scripts/test.sh installs them all).
"""

import argparse
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware-example"
TARGET = "thumbv7em-none-eabihf"
# QEMU board -> (target, core, table label prefix). The M4F tables keep their labels.
MACHINES = {
    "netduinoplus2": (TARGET, "Cortex-M4F", ""),
    "mps2-an386": (TARGET, "Cortex-M4F", ""),
    "mps2-an385": ("thumbv7m-none-eabi", "Cortex-M3, no FPU", "m3 "),
    "microbit": ("thumbv6m-none-eabi", "Cortex-M0, no FPU", "m0 "),
    "mps2-an505": ("thumbv8m.main-none-eabihf", "Cortex-M33", "m33 "),
}
# Targets for --sizes: (target, core, whether the firmware example builds for it).
SIZE_TARGETS = [
    (TARGET, "Cortex-M4F", True),
    ("thumbv7m-none-eabi", "Cortex-M3, no FPU", True),
    ("thumbv6m-none-eabi", "Cortex-M0/M0+, no FPU", True),
    ("thumbv8m.main-none-eabihf", "Cortex-M33", True),
    ("riscv32imac-unknown-none-elf", "RISC-V (ESP32-C3 class)", False),
]
# Targets where policy-core's default math fuses the network's multiply-adds (`vfma.f32`,
# policy-core/build.rs); the others round each product and sum separately.
FUSED_TARGETS = {TARGET, "thumbv8m.main-none-eabihf"}
BEGIN = "<!-- firmware-footprint:begin -->"
END = "<!-- firmware-footprint:end -->"


def build(features, machine):
    target = MACHINES[machine][0]
    if machine == "mps2-an386":
        features = ",".join(f for f in (features, "mps2-an386") if f)
    # The M4F keeps target/firmware[-features]; the other cores share target/firmware-mcu,
    # as in tests/tests/firmware.rs.
    base = "firmware" if target == TARGET else "firmware-mcu"
    return build_in(FIRMWARE, target, features, base + ("-" + features.replace(",", "-") if features else ""),
                    "mixpolicy-firmware")


def build_in(package, target, features, target_dir, binary):
    target_dir = REPO / "target" / target_dir
    cmd = ["cargo", "build", "--release", "--target", target]
    if features:
        cmd += ["--features", features]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    subprocess.run(cmd, cwd=package, env=env, check=True)
    return target_dir / target / "release" / binary


def section_sizes(elf):
    """Sizes of named sections, read from a 32-bit little-endian ELF's section headers."""
    data = elf.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        sys.exit(f"{elf}: not a 32-bit little-endian ELF")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]

    def name(offset):
        end = data.index(b"\0", names_at + offset)
        return data[names_at + offset:end].decode()

    return {name(h[0]): h[5] for h in headers}


def flash_bytes(elf):
    """Bytes of the flash image: every allocated section with contents (SHF_ALLOC, PROGBITS).

    On the Cortex-M firmware that is exactly vector table + text + rodata + data; it also
    covers riscv-rt's sections (.init.rust, .eh_frame)."""
    data = elf.read_bytes()
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, _ = struct.unpack_from("<HHH", data, 0x2E)
    total = 0
    for i in range(shnum):
        _, kind, flags, _, _, size = struct.unpack_from("<IIIIII", data, shoff + i * shentsize)
        if kind == 1 and flags & 2:  # SHT_PROGBITS, SHF_ALLOC
            total += size
    return total


def sizes():
    """Flash per target where nothing runs, as a Markdown table."""
    rows = []
    for target, core, firmware in SIZE_TARGETS:
        if firmware:
            elf = build_in(FIRMWARE, target, "", "firmware" if target == TARGET else "firmware-mcu",
                           "mixpolicy-firmware")
            fw = f"{flash_bytes(elf)} B"
        else:
            fw = "does not build (the example uses cortex-m crates)"
        elf = build_in(REPO / "policy-core" / "link-check", target, "", "link-check",
                       "policy-core-link-check")
        rows.append((target, core, fw, f"{flash_bytes(elf)} B"))
    table = ("| target | core | firmware flash (with the 21 600-byte policy) | link-check flash "
             "(all of policy-core's API, 2 048-byte dummy policy) |\n|---|---|---|---|\n")
    table += "".join(f"| `{t}` | {c} | {fw} | {lc} |\n" for t, c, fw, lc in rows)
    print(table)


def run_icount(elf, machine):
    out = subprocess.run(
        ["timeout", "120", "qemu-system-arm", "-machine", machine, "-nographic",
         "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
         "-kernel", str(elf)],
        capture_output=True, text=True, check=True).stdout
    fields = {}
    for line in out.splitlines():
        if not line.startswith("episode="):
            fields.update(re.findall(r"(\w+)=(\S+)", line))
    return fields


def macs(fields):
    """Multiply-accumulates per action: every weight of the network once."""
    widths = [int(fields["obs"])] + [int(w) for w in fields["hidden"].split("x")]
    k, a = int(fields["components"]), int(fields["action"])
    trunk = sum(i * o for i, o in zip(widths, widths[1:]))
    return trunk + widths[-1] * (2 * k * a + k)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--features", default="", help="firmware cargo features")
    parser.add_argument("--machine", default="netduinoplus2",
                        choices=list(MACHINES), help="QEMU board (mps2-an385: Cortex-M3, no FPU)")
    parser.add_argument("--sizes", action="store_true",
                        help="flash per target, including those that are not run")
    args = parser.parse_args()
    if args.sizes:
        sizes()
        return

    target, core, prefix = MACHINES[args.machine]
    elf = build(args.features, args.machine)
    s = section_sizes(elf)
    flash = sum(s.get(n, 0) for n in (".vector_table", ".text", ".rodata", ".data"))
    assert flash == flash_bytes(elf), "a flash section is missing from the sum"
    ram = sum(s.get(n, 0) for n in (".data", ".bss", ".uninit"))
    f = run_icount(elf, args.machine)
    per_tick = int(f["calibration_instructions"]) / int(f["calibration_ticks"])
    per_action = int(f["sample_ticks"]) * per_tick / int(f["actions"])
    n_macs = macs(f)
    policy = (f"obs {f['obs']}, hidden {f['hidden']}, K = {f['components']}, "
              f"{f['bytes']}-byte file")
    math = "fast-math" if "fast-math" in args.features else "libm"
    int8 = "int8" in args.features.split(",")
    if int8:
        policy += " (int8, format version 3)"
        # The integer dot products: thumbv7em's DSP kernel, plain Rust elsewhere.
        kernel = ("int8 dot products on the DSP extension (`smlad`)" if target == TARGET
                  else "int8 dot products in plain Rust")
        how = f"{math}, {kernel}"
    else:
        how = math + (", multiply-adds fused (`vfma.f32`)" if target in FUSED_TARGETS else "")
    rows = [
        ("policy", policy),
        ("math", how),
        ("QEMU board", args.machine),
        ("target", f"`{target}` ({core})"),
        ("flash (vector table + text + rodata + data)",
         f"{flash} B = {flash / 1024:.1f} KiB, of which the policy file {f['bytes']} B"),
        ("static RAM (data + bss + uninit)", f"{ram} B"),
        ("peak stack (painted)", f"{f['stack_peak_bytes']} B = {int(f['stack_peak_bytes']) / 1024:.1f} KiB"),
        ("instructions per sampled action",
         f"{per_action:.0f} (mean of {f['actions']} actions; {per_tick:.4f} instructions per SysTick tick)"),
        ("multiply-accumulates per action", str(n_macs)),
        ("instructions per multiply-accumulate", f"{per_action / n_macs:.2f}"),
    ]
    table = "| measure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    print(table)
    if args.write and args.machine == "mps2-an386":
        sys.exit("--write records the M4F figures from netduinoplus2 only")
    if args.write:
        bench = REPO / "BENCHMARKS.md"
        text = bench.read_text()
        label = f"<!-- {prefix}{'int8 ' if int8 else ''}{math} -->"
        block = f"{label}\n{table}"
        if BEGIN not in text:
            sys.exit(f"BENCHMARKS.md has no {BEGIN} … {END} section")
        head, rest = text.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
        parts = [p for p in re.split(r"(?=<!-- (?:m\d+ )?(?:int8 )?(?:libm|fast-math) -->)",
                                     body.strip())
                 if p.strip()]
        parts = [p for p in parts if not p.startswith(label)] + [block]
        # M4F, then M3, M0, M33 (the order of MACHINES); f32 libm, f32 fast-math, int8.
        order = [prefix for _, _, prefix in MACHINES.values()]
        parts.sort(key=lambda p: (order.index(re.match(r"<!-- (m\d+ )?", p).group(1) or ""),
                                  "int8" in p.split("\n", 1)[0],
                                  "fast-math -->" in p.split("\n", 1)[0]))
        bench.write_text(head + BEGIN + "\n" + "\n".join(p.strip() + "\n" for p in parts) + END + tail)
        print(f"updated {bench}")


if __name__ == "__main__":
    main()
