// Task tarballs in Nx's remote cache format (a gzip'd tar of the outputs, plus
// `terminalOutput` and a 4-byte big-endian `code`), written byte by byte so
// that a test can also forge what a hostile or broken server would send:
// `../` or absolute names, links, long names (GNU 'L' records, as Nx's Rust
// tar writes them), no exit code.
import { gzipSync } from 'node:zlib';

export interface TarItem {
  name: string;
  data?: string | Buffer;
  /** '0' file (default), '5' folder, '2' symbolic link (to `link`). */
  type?: '0' | '5' | '2';
  link?: string;
}

function header(name: string, size: number, type: string, link = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(link.slice(0, 100), 157);
  h.write('ustar  \0', 257); // GNU magic, as the Rust tar crate writes
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function record(name: string, data: Buffer, type: string, link = ''): Buffer[] {
  const out: Buffer[] = [];
  if (Buffer.byteLength(name) > 100) {
    const long = Buffer.from(`${name}\0`);
    out.push(header('././@LongLink', long.length, 'L'), long, Buffer.alloc((512 - (long.length % 512)) % 512));
  }
  out.push(header(name, data.length, type, link), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  return out;
}

/** The tar (not gzip'd). */
export function tar(items: TarItem[], opts: { code?: number | null; terminalOutput?: string | null } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) parts.push(...record(it.name, Buffer.from(it.data ?? ''), it.type ?? '0', it.link));
  if (opts.terminalOutput !== null) parts.push(...record('terminalOutput', Buffer.from(opts.terminalOutput ?? 'done\n'), '0'));
  if (opts.code !== null) {
    const code = Buffer.alloc(4);
    code.writeUInt32BE(opts.code ?? 0);
    parts.push(...record('code', code, '0'));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A task tarball as Nx uploads it. */
export function nxTarball(items: TarItem[], opts: { code?: number | null; terminalOutput?: string | null } = {}): Buffer {
  return gzipSync(tar(items, opts));
}
