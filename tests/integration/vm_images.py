"""Synthetic PVH guests for the VMM's own tests: a few bytes of 32-bit code in an
ELF32 with a XEN_ELFNOTE_PHYS32_ENTRY note, so these tests need nothing else built."""
import struct

LOAD_ADDR = 0x100000
CODE_OFF = 0x1000


def pvh_elf(code: bytes, memsz: int = 0) -> bytes:
    """ELF32 executable: code loaded at 1 MiB (memsz bytes of RAM, default its size),
    entry at its first byte, announced by a PVH note."""
    memsz = max(memsz, len(code))
    note = struct.pack("<III4sI", 4, 4, 18, b"Xen\0", LOAD_ADDR)
    ehdr = struct.pack("<16sHHIIIIIHHHHHH",
                       b"\x7fELF\x01\x01\x01" + b"\0" * 9,
                       2, 3, 1, LOAD_ADDR, 52, 0, 0, 52, 32, 2, 0, 0, 0)
    load = struct.pack("<IIIIIIII", 1, CODE_OFF, LOAD_ADDR, LOAD_ADDR, len(code), memsz, 7, 0x1000)
    note_off = 52 + 2 * 32
    pnote = struct.pack("<IIIIIIII", 4, note_off, 0, 0, len(note), len(note), 4, 4)
    head = ehdr + load + pnote + note
    return head + b"\0" * (CODE_OFF - len(head)) + code


def out_dx(port: int, byte: int) -> bytes:
    """mov dx, port; mov al, byte; out dx, al"""
    return b"\x66\xba" + struct.pack("<H", port) + b"\xb0" + bytes([byte]) + b"\xee"


POWEROFF = out_dx(0x600, (5 << 2) | (1 << 5)) + b"\xf4"

# reads an unclaimed port (0x99) and writes what it got to COM1, then powers off
UNCLAIMED_READ = (b"\xe4\x99"                 # in al, 0x99
                  + b"\x66\xba\xf8\x03\xee"   # mov dx, 0x3f8; out dx, al
                  + out_dx(0x3f8, ord("\n")) + POWEROFF)

# echoes COM1 input byte by byte until a newline, then powers off
ECHO = (b"\x66\xba\xfd\x03"          # 0: mov dx, 0x3fd (LSR)
        b"\xec"                      # 4: in al, dx
        b"\xa8\x01"                  # 5: test al, 1 (data ready)
        b"\x74\xfb"                  # 7: jz 4
        b"\x66\xba\xf8\x03"          # 9: mov dx, 0x3f8
        b"\xec"                      # 13: in al, dx (RBR)
        b"\xee"                      # 14: out dx, al (THR)
        b"\x3c\x0a"                  # 15: cmp al, '\\n'
        b"\x75\xed"                  # 17: jne 0
        + POWEROFF)

# spins forever in the guest kernel (for signal and stdin tests)
SPIN = b"\xeb\xfe"


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)
