"""Extract a base backup's tar from standard input into an empty directory, trusting nothing
in it: a base backup holds regular files and directories, so anything else (symbolic and
hard links, device nodes, FIFOs), an absolute name, a `..`, or a name given twice is refused
before a byte of it is written, and setuid, setgid and sticky bits are dropped.

Run as a pipeline stage (`python -I untar.py DIRECTORY`); it imports the standard library
only, so it starts in a few milliseconds. Exit status 3 means the tar was refused; the
message on standard error names the member.
"""

import contextlib
import os
import stat
import sys
import tarfile

REFUSED = 3
READ_BYTES = 1 << 20
FILE_MODE_KEPT = 0o640
DIRECTORY_MODE_KEPT = 0o750
KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.XHDTYPE: "a pax extended header",
    tarfile.XGLTYPE: "a pax global header",
    tarfile.GNUTYPE_LONGNAME: "a GNU long name",
    tarfile.GNUTYPE_LONGLINK: "a GNU long link",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


class Refused(Exception):
    pass


def safe_parts(name: str) -> list[str]:
    """The path components of a member name, or Refused when it could leave the directory."""
    if "\0" in name or name.startswith("/"):
        raise Refused(f"{name!r} is an absolute or malformed name")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:
        raise Refused(f"{name!r} names no file")
    if ".." in parts:
        raise Refused(f"{name!r} climbs out of the directory")
    return parts


def open_parent(root: int, parts: list[str]) -> int:
    """A descriptor of the member's parent directory, walked from `root` without following
    any symbolic link (there are none, as none is ever made, but the walk does not rely on
    it); missing directories are made private."""
    descriptor = os.dup(root)
    for part in parts[:-1]:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o700, dir_fd=descriptor)
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor)
        finally:
            os.close(descriptor)
        descriptor = child
    return descriptor


BLOCK = 512
ALLOWED = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)


class Reader:
    """The tar stream, read into one reused buffer (a new bytes object per read costs the
    kernel a page fault per page)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        self.buffer = bytearray(READ_BYTES)

    def exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = os.read(self.descriptor, size - len(data))
            if not chunk:
                raise Refused("the tar ends in the middle of a member")
            data += chunk
        return bytes(data)

    def header(self) -> tarfile.TarInfo | None:
        """The next member's header; None at the end of the archive."""
        block = self.exactly(BLOCK)
        if block == bytes(BLOCK):
            return None
        try:
            return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as error:
            raise Refused(f"a damaged tar header ({error})") from None

    def copy(self, target: int, size: int) -> None:
        remaining = size
        view = memoryview(self.buffer)
        while remaining > 0:
            got = os.readv(self.descriptor, [view[: min(READ_BYTES, remaining)]])
            if got == 0:
                raise Refused("the tar ends in the middle of a member")
            written = 0
            while written < got:
                written += os.write(target, view[written:got])
            remaining -= got
        self.exactly(-size % BLOCK)


def extract_file(reader: Reader, member: tarfile.TarInfo, parent: int, name: str) -> None:
    mode = (member.mode & FILE_MODE_KEPT) | stat.S_IRUSR | stat.S_IWUSR
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(name, flags, mode, dir_fd=parent)
    except FileExistsError:
        raise Refused(f"{member.name!r} is in the tar twice") from None
    try:
        reader.copy(descriptor, member.size)
        os.fchmod(descriptor, mode)
        os.utime(descriptor, (member.mtime, member.mtime))
    finally:
        os.close(descriptor)


def extract_directory(member: tarfile.TarInfo, parent: int, name: str) -> None:
    mode = (member.mode & DIRECTORY_MODE_KEPT) | stat.S_IRWXU
    try:
        os.mkdir(name, mode, dir_fd=parent)
    except FileExistsError:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(found.st_mode):
            raise Refused(f"{member.name!r} is in the tar twice") from None
    os.chmod(name, mode, dir_fd=parent, follow_symlinks=False)


def extract(descriptor: int, directory: str) -> int:
    reader = Reader(descriptor)
    root = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    count = 0
    try:
        while (member := reader.header()) is not None:
            if member.type not in ALLOWED:
                kind = KINDS.get(member.type, f"of type {member.type.decode(errors='replace')!r}")
                raise Refused(f"{member.name!r} is {kind}")
            if member.isdir() and member.name.strip("/.") == "":
                continue  # the directory itself
            parts = safe_parts(member.name)
            parent = open_parent(root, parts)
            try:
                if member.isdir():
                    extract_directory(member, parent, parts[-1])
                else:
                    extract_file(reader, member, parent, parts[-1])
            finally:
                os.close(parent)
            count += 1
    finally:
        os.close(root)
    if count == 0:
        raise Refused("the tar holds nothing")
    return count


def main(arguments: list[str]) -> int:
    if len(arguments) != 1:
        print("usage: untar.py DIRECTORY < archive.tar", file=sys.stderr)
        return 2
    try:
        extract(sys.stdin.fileno(), arguments[0])
    except Refused as refusal:
        print(
            f"refused: {refusal}; a base backup holds only regular files and directories",
            file=sys.stderr,
        )
        return REFUSED
    except (tarfile.TarError, OSError) as error:
        print(f"the tar cannot be extracted: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
