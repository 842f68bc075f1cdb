#!/usr/bin/env python3
"""Builds the 7-Zip unpacker's test corpus (test/unpack-sevenzip.test.ts) in OUTDIR.

Usage: sevenzip-corpus.py OUTDIR PAYLOAD [bombs]
Every archive holds PAYLOAD (clam.exe) under the name 'clam.exe' (plus, for multi-member
formats, 'dir/second.txt'), so the test can check the bytes that come out. Made at test time:
nothing binary is kept in the repository. With 'bombs', also the zero bombs (a few MB each).
Uses python's own compressors and the Debian tools 7z (p7zip-full), cpio and gcab.
"""
import bz2, gzip, io, lzma, os, struct, subprocess, sys, tarfile, zipfile

out, payload_path = sys.argv[1], sys.argv[2]
bombs = len(sys.argv) > 3 and sys.argv[3] == 'bombs'
payload = open(payload_path, 'rb').read()
second = b'second member\n' * 10
os.makedirs(out, exist_ok=True)
src = os.path.join(out, 'src')
os.makedirs(os.path.join(src, 'dir'), exist_ok=True)
open(os.path.join(src, 'clam.exe'), 'wb').write(payload)
open(os.path.join(src, 'dir', 'second.txt'), 'wb').write(second)

def p(name):
    return os.path.join(out, name)

def run(args, cwd=src, stdin=None):
    subprocess.run(args, cwd=cwd, check=True, input=stdin, stdout=subprocess.DEVNULL)

# zip: python's methods
for method, tag in ((zipfile.ZIP_STORED, 'stored'), (zipfile.ZIP_DEFLATED, 'deflate'),
                    (zipfile.ZIP_BZIP2, 'bzip2'), (zipfile.ZIP_LZMA, 'lzma')):
    with zipfile.ZipFile(p('zip-%s.zip' % tag), 'w', method) as z:
        z.writestr('clam.exe', payload)
        z.writestr('dir/', b'')
        z.writestr('dir/second.txt', second)
with zipfile.ZipFile(p('zip-zip64.zip'), 'w', zipfile.ZIP_DEFLATED) as z:
    with z.open('clam.exe', 'w', force_zip64=True) as f:
        f.write(payload)
# two entries with one name: both must come out (the second must not hide the first)
with zipfile.ZipFile(p('zip-dupname.zip'), 'w') as z:
    z.writestr('same.bin', payload)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        z.writestr('same.bin', second)

# tar: three header formats, a symlink and a directory
for fmt, tag in ((tarfile.USTAR_FORMAT, 'ustar'), (tarfile.GNU_FORMAT, 'gnu'), (tarfile.PAX_FORMAT, 'pax')):
    with tarfile.open(p('tar-%s.tar' % tag), 'w', format=fmt) as t:
        t.add(os.path.join(src, 'clam.exe'), 'clam.exe')
        t.add(os.path.join(src, 'dir'), 'dir')
        info = tarfile.TarInfo('link-to-clam')
        info.type = tarfile.SYMTYPE
        info.linkname = 'clam.exe'
        t.addfile(info)

# single-stream compressors
with open(p('named.gz'), 'wb') as raw:
    with gzip.GzipFile('clam.exe', 'wb', fileobj=raw, mtime=0) as g:
        g.write(payload)
open(p('noname.gz'), 'wb').write(gzip.compress(payload, mtime=0))  # no FNAME field
open(p('clam.bz2'), 'wb').write(bz2.compress(payload))
open(p('clam.xz'), 'wb').write(lzma.compress(payload, format=lzma.FORMAT_XZ))
open(p('clam.lzma'), 'wb').write(lzma.compress(payload, format=lzma.FORMAT_ALONE))
open(p('tar.gz'), 'wb').write(gzip.compress(open(p('tar-ustar.tar'), 'rb').read(), mtime=0))

# 7-Zip's own: 7z archives, deflate64, encryption
run(['7z', 'a', '-bd', '-t7z', p('lzma.7z'), 'clam.exe', 'dir'])
run(['7z', 'a', '-bd', '-t7z', '-m0=PPMd', p('ppmd.7z'), 'clam.exe', 'dir'])
run(['7z', 'a', '-bd', '-tzip', '-mm=Deflate64', p('zip-deflate64.zip'), 'clam.exe', 'dir'])
run(['7z', 'a', '-bd', '-tzip', '-psecret', '-mem=ZipCrypto', p('enc-zipcrypto.zip'), 'clam.exe'])
run(['7z', 'a', '-bd', '-tzip', '-psecret', '-mem=AES256', p('enc-aes.zip'), 'clam.exe'])
run(['7z', 'a', '-bd', '-t7z', '-psecret', p('enc-content.7z'), 'clam.exe'])
run(['7z', 'a', '-bd', '-t7z', '-psecret', '-mhe=on', p('enc-header.7z'), 'clam.exe'])
# one plain and one encrypted member: the plain one still comes out
run(['7z', 'a', '-bd', '-tzip', p('enc-mixed.zip'), 'dir/second.txt'])
run(['7z', 'a', '-bd', '-tzip', '-psecret', p('enc-mixed.zip'), 'clam.exe'])

# cpio in three header formats, cab
for fmt in ('bin', 'odc', 'newc'):
    run(['cpio', '--quiet', '-o', '-H', fmt, '-O', p('cpio-%s.cpio' % fmt)], stdin=b'clam.exe\ndir/second.txt\n')
run(['gcab', '-c', '-n', p('gcab.cab'), 'clam.exe', 'dir/second.txt'])
run(['gcab', '-c', '-z', '-n', p('gcab-mszip.cab'), 'clam.exe', 'dir/second.txt'])

# the other compressors and archivers 7-Zip reads (zstd, ncompress, genisoimage, jlha-utils, arj)
run(['zstd', '-q', '-f', 'clam.exe', '-o', p('clam.zst')])
open(p('clam.Z'), 'wb').write(subprocess.run(['compress', '-c'], input=payload, check=True, stdout=subprocess.PIPE).stdout)
run(['genisoimage', '-quiet', '-R', '-o', p('clam.iso'), '.'])
run(['lha', '-aq', p('clam.lzh'), 'clam.exe', 'dir/second.txt'])
run(['arj', 'a', '-y', p('clam.arj'), 'clam.exe'])

# file systems and images 7-Zip reads (squashfs-tools, wimtools, libarchive-tools), and lzip
for comp in ('gzip', 'lzo', 'xz'):
    run(['mksquashfs', 'clam.exe', 'dir', p('squashfs-%s.sqfs' % comp), '-comp', comp, '-noappend', '-quiet', '-no-progress'])
for comp in ('LZX', 'LZMS'):
    sub = os.path.join(out, 'wimsrc')
    os.makedirs(os.path.join(sub, 'dir'), exist_ok=True)
    open(os.path.join(sub, 'clam.exe'), 'wb').write(payload)
    open(os.path.join(sub, 'dir', 'second.txt'), 'wb').write(second)
    run(['wimcapture', sub, p('wim-%s.wim' % comp), '--compress=' + comp])
for comp in ('gzip', 'bzip2'):
    run(['bsdtar', '-c', '--format', 'xar', '--options', 'xar:compression=' + comp, '-f', p('xar-%s.xar' % comp), 'clam.exe', 'dir/second.txt'])
open(p('clam.lz'), 'wb').write(subprocess.run(['lzip', '-c'], input=payload, check=True, stdout=subprocess.PIPE).stdout)

# RAR 4 with one stored file, written by hand (no free RAR writer): marker, archive header,
# file header (method 0x30 = store), data, end of archive. Header CRCs are CRC-32's low 16 bits.
import zlib
def rar_block(htype, flags, body):
    head = struct.pack('<BHH', htype, flags, 7 + len(body)) + body
    return struct.pack('<H', zlib.crc32(head) & 0xffff) + head
rar = b'Rar!\x1a\x07\x00'
rar += rar_block(0x73, 0, b'\x00' * 6)
name = b'clam.exe'
body = struct.pack('<IIBIIBBHI', len(payload), len(payload), 3, zlib.crc32(payload), 0x21, 20, 0x30, len(name), 0o100644 << 16 | 0x20) + name
rar += rar_block(0x74, 0x8000, body) + payload
rar += rar_block(0x7b, 0x4000, b'')
open(p('stored.rar'), 'wb').write(rar)
# the same file flagged encrypted (0x04; unpack version 29 = AES-128 with a salt, 0x400): the
# bytes are not really encrypted, but no password can make their CRC match
body = struct.pack('<IIBIIBBHI', len(payload), len(payload), 3, zlib.crc32(payload), 0x21, 29, 0x30, len(name), 0o100644 << 16 | 0x20) + name + b'\x01' * 8
enc = b'Rar!\x1a\x07\x00' + rar_block(0x73, 0, b'\x00' * 6) + rar_block(0x74, 0x8000 | 0x04 | 0x400, body) + payload + rar_block(0x7b, 0x4000, b'')
open(p('enc-stored.rar'), 'wb').write(enc)

# a zip whose method (97, WavPack) 7-Zip does not implement
data = bytearray(open(p('zip-stored.zip'), 'rb').read())
import struct
struct.pack_into('<H', data, 8, 97)  # first local header
i = data.find(b'PK\x01\x02')
struct.pack_into('<H', data, i + 10, 97)  # its central directory entry
open(p('zip-method97.zip'), 'wb').write(bytes(data))

# xz whose LZMA2 dictionary property says 64 MiB and 1 GiB (the data is tiny): the decoder
# allocates the declared dictionary. Block header patched, its CRC-32 recomputed.
xz = bytearray(lzma.compress(payload, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                             filters=[{'id': lzma.FILTER_LZMA2, 'dict_size': 1 << 20}]))
bh, bsize = 12, (xz[12] + 1) * 4
assert xz[bh + 1] & 0xc0 == 0 and xz[bh + 2] == 0x21 and xz[bh + 3] == 1
for dict_byte, name in ((28, 'dict64m.xz'), (36, 'dict1g.xz')):
    y = bytearray(xz)
    y[bh + 4] = dict_byte
    struct.pack_into('<I', y, bh + bsize - 4, zlib.crc32(bytes(y[bh:bh + bsize - 4])))
    open(p(name), 'wb').write(bytes(y))

# truncated: a 7z and a zip cut in half
for name in ('lzma.7z', 'zip-deflate.zip'):
    data = open(p(name), 'rb').read()
    open(p('trunc-' + name), 'wb').write(data[: len(data) // 2])

# many members (for maxMembers)
with zipfile.ZipFile(p('many.zip'), 'w') as z:
    for i in range(50):
        z.writestr('m%02d.txt' % i, b'member %d\n' % i)

if bombs:
    GiB = 1 << 30
    chunk = bytes(1 << 20)
    # zip: one member of 2 GiB of zeros (zip64 sizes), deflated
    with zipfile.ZipFile(p('bomb.zip'), 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open('zeros.bin', 'w', force_zip64=True) as f:
            for _ in range(2 * GiB // len(chunk)):
                f.write(chunk)
    # the same zip whose headers say the member is 1 KiB
    data = bytearray(open(p('bomb.zip'), 'rb').read())
    # zip64 extra field sizes in the local and central headers: overwrite with 1024
    import struct
    i = 0
    while True:
        i = data.find(b'\x01\x00', i)
        if i < 0:
            break
        ln = struct.unpack_from('<H', data, i + 2)[0]
        if ln in (16, 24, 28) and i + 4 + 16 <= len(data):
            usz = struct.unpack_from('<Q', data, i + 4)[0]
            if usz == 2 * GiB:
                struct.pack_into('<Q', data, i + 4, 1024)
        i += 2
    open(p('bomb-lying.zip'), 'wb').write(bytes(data))
    for name, opener in (('bomb.gz', lambda f: gzip.GzipFile(fileobj=f, mode='wb', mtime=0, compresslevel=9)),
                         ('bomb.bz2', lambda f: bz2.BZ2File(f, 'wb', compresslevel=9)),
                         ('bomb.xz', lambda f: lzma.LZMAFile(f, 'wb', format=lzma.FORMAT_XZ, preset=6))):
        with open(p(name), 'wb') as raw:
            with opener(raw) as c:
                for _ in range(GiB // len(chunk)):
                    c.write(chunk)
