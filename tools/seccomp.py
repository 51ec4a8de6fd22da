"""A seccomp filter that stops sandboxed code from making new user namespaces.

A user namespace would give the code a root of its own there, and with it mounts bubblewrap did not
plan, such as an uncapped tmpfs (`unshare -rm`). bwrap's `--disable-userns` does this only when bwrap
itself made a user namespace, which it does not when run as root, so this filter covers every case:
`unshare` and `clone` with CLONE_NEWUSER fail with EPERM, and `clone3` (whose flags live in memory a
filter cannot read) fails with ENOSYS, so glibc falls back to `clone`. System calls of another ABI
(i386 or x32 on x86-64) are refused outright. The program is classic BPF as bwrap's `--seccomp FD` reads
it. References: seccomp(2), linux/filter.h; Flatpak's and Docker's filters use the same clone3 trick.
"""

from __future__ import annotations

import errno
import platform
import struct

LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
RET = 0x06  # BPF_RET | BPF_K
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000
NR, ARCH, ARG0 = 0, 4, 16  # offsets in struct seccomp_data (args are 64-bit, little-endian here)
# machine: (AUDIT_ARCH_*, unshare, clone, clone3)
ARCHES = {
    "x86_64": (0xC000003E, 272, 56, 435),
    "aarch64": (0xC00000B7, 97, 220, 435),
}


def no_new_userns_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter for this machine's architecture, or None where it is not known."""
    known = ARCHES.get(machine or platform.machine())
    if known is None:
        return None
    audit_arch, unshare, clone, clone3 = known
    eperm, enosys = ERRNO | errno.EPERM, ERRNO | errno.ENOSYS
    program = [
        (LD_ABS, 0, 0, ARCH),
        (JEQ, 1, 0, audit_arch),
        (RET, 0, 0, eperm),  # another ABI's system calls
        (LD_ABS, 0, 0, NR),
        (JGE, 0, 1, X32_BIT),
        (RET, 0, 0, eperm),  # x32 system calls
        (JEQ, 3, 0, unshare),
        (JEQ, 2, 0, clone),
        (JEQ, 5, 0, clone3),
        (RET, 0, 0, ALLOW),
        (LD_ABS, 0, 0, ARG0),  # unshare/clone: the flags
        (JSET, 0, 1, CLONE_NEWUSER),
        (RET, 0, 0, eperm),
        (RET, 0, 0, ALLOW),
        (RET, 0, 0, enosys),  # clone3
    ]
    return b"".join(struct.pack("=HBBI", *op) for op in program)
