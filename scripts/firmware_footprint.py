#!/usr/bin/env python3
"""Footprint of the firmware example: flash, static RAM, peak stack, instructions per action.

Builds firmware-example (release, as flashed) and runs it under QEMU's netduinoplus2
(STM32F405) with `-icount shift=0`, where the virtual clock advances one nanosecond per
guest instruction. The firmware counts SysTick ticks spent inside `Policy::sample` and
times a calibration loop of exactly 200 000 instructions; their ratio converts ticks to
instructions. Peak stack comes from stack painting, sizes from the ELF's section headers.

usage: scripts/firmware_footprint.py [--write] [--features fast-math] [--machine mps2-an386]
  --write     replace this configuration's table in BENCHMARKS.md's firmware section
  --machine   mps2-an386 cross-checks the count on a board whose SysTick tick is exactly
              40 instructions (same 1 MiB / 128 KiB budget, different addresses)
Needs qemu-system-arm and the thumbv7em-none-eabihf target (scripts/test.sh installs both).
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
BEGIN = "<!-- firmware-footprint:begin -->"
END = "<!-- firmware-footprint:end -->"


def build(features, machine):
    if machine == "mps2-an386":
        features = ",".join(f for f in (features, "mps2-an386") if f)
    target_dir = REPO / "target" / ("firmware-" + features.replace(",", "-") if features else "firmware")
    cmd = ["cargo", "build", "--release", "--target", TARGET]
    if features:
        cmd += ["--features", features]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    subprocess.run(cmd, cwd=FIRMWARE, env=env, check=True)
    return target_dir / TARGET / "release" / "mixpolicy-firmware"


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
                        choices=["netduinoplus2", "mps2-an386"], help="QEMU board")
    args = parser.parse_args()

    elf = build(args.features, args.machine)
    s = section_sizes(elf)
    flash = sum(s.get(n, 0) for n in (".vector_table", ".text", ".rodata", ".data"))
    ram = sum(s.get(n, 0) for n in (".data", ".bss", ".uninit"))
    f = run_icount(elf, args.machine)
    per_tick = int(f["calibration_instructions"]) / int(f["calibration_ticks"])
    per_action = int(f["sample_ticks"]) * per_tick / int(f["actions"])
    n_macs = macs(f)
    policy = (f"obs {f['obs']}, hidden {f['hidden']}, K = {f['components']}, "
              f"{f['bytes']}-byte file")
    math = "fast-math" if "fast-math" in args.features else "libm"
    rows = [
        ("policy", policy),
        ("math", math),
        ("QEMU board", args.machine),
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
    if args.write and args.machine != "netduinoplus2":
        sys.exit("--write records the netduinoplus2 figures only")
    if args.write:
        bench = REPO / "BENCHMARKS.md"
        text = bench.read_text()
        label = f"<!-- {math} -->"
        block = f"{label}\n{table}"
        if BEGIN not in text:
            sys.exit(f"BENCHMARKS.md has no {BEGIN} … {END} section")
        head, rest = text.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
        parts = [p for p in re.split(r"(?=<!-- (?:libm|fast-math) -->)", body.strip()) if p.strip()]
        parts = [p for p in parts if not p.startswith(label)] + [block]
        parts.sort(key=lambda p: p.startswith("<!-- fast-math"))
        bench.write_text(head + BEGIN + "\n" + "\n".join(p.strip() + "\n" for p in parts) + END + tail)
        print(f"updated {bench}")


if __name__ == "__main__":
    main()
