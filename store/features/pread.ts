/**
 * Positioned, synchronous file reads for the feature store.
 *
 * The fast path calls libc through Deno's FFI (`open`, `pread`, `close`,
 * `posix_fadvise`): a warm 4 KiB `pread` costs about 1.5 µs, where an async
 * Deno read costs about 30 µs. It needs `--allow-ffi` (tests and benchmarks
 * run with `-A`) and a glibc `libc.so.6` (Linux). When the library cannot be
 * opened, or the permission is missing, `openRawFile` falls back to
 * `Deno.openSync` with `seekSync` + `readSync`, which is correct but about
 * ten times slower per call (two ops per read) and cannot drop the OS page
 * cache. Each thread (worker) that reads opens its own handle: FFI libraries
 * and file descriptors are per isolate here.
 *
 * Reads never return short silently: `readExact` loops over partial reads and
 * throws a clear error (naming the file, offset and length) at end of file or
 * on an OS error.
 *
 * @module
 */

/** `posix_fadvise` advice: the file will not be needed (drops its clean cached pages). */
export const POSIX_FADV_DONTNEED = 4;
/** `posix_fadvise` advice: random access (disables read-ahead). */
export const POSIX_FADV_RANDOM = 1;

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
/** Largest single `pread` request (Linux caps one call at 0x7ffff000 bytes). */
const MAX_CALL = 1 << 30;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t is returned in rax; a request never exceeds MAX_CALL (< 2^31), so
  // the low 32 bits carry the result and an i32 avoids a BigInt per call.
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * Deno's FFI takes a plain number for a 64-bit parameter at run time (exact
 * up to 2^53), which avoids a BigInt per call; its type definitions only
 * admit bigint.
 */
function i64(x: number): bigint {
  return x as unknown as bigint;
}

let libc: Libc | null | undefined;
let libcError = "";

/** libc through FFI, or null (with the reason in `ffiUnavailableReason`). Loaded once per thread. */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (e) {
    libc = null;
    libcError = (e as Error).message;
  }
  return libc;
}

/** Whether FFI `pread` is usable in this thread (needs `--allow-ffi` and glibc). */
export function ffiAvailable(): boolean {
  return loadLibc() !== null;
}

/** Why FFI is unavailable ("" when it is available or was never tried). */
export function ffiUnavailableReason(): string {
  loadLibc();
  return libcError;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM (operation not permitted)",
  2: "ENOENT (no such file or directory)",
  5: "EIO (input/output error)",
  9: "EBADF (bad file descriptor, closed?)",
  12: "ENOMEM (out of memory)",
  13: "EACCES (permission denied)",
  14: "EFAULT (bad address)",
  21: "EISDIR (is a directory)",
  22: "EINVAL (invalid argument)",
  23: "ENFILE (too many open files in the system)",
  24: "EMFILE (too many open files)",
  29: "ESPIPE (illegal seek)",
};

function errno(lib: Libc): string {
  const p = lib.__errno_location();
  const code = p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

/** A file opened for positioned reads. Not thread-safe to share: open one per worker. */
export interface RawFile {
  /** The path it was opened with. */
  readonly path: string;
  /** Size in bytes when opened. */
  readonly size: number;
  /** True when reads go through FFI `pread`, false for the `Deno.FsFile` fallback. */
  readonly ffi: boolean;
  /**
   * Reads up to `buf.length` bytes at `offset` into `buf`; returns the count
   * read (0 at end of file). Throws on an OS error.
   */
  pread(buf: Uint8Array, offset: number): number;
  /** Fills `buf` from `offset`, looping over partial reads; throws at end of file. */
  readExact(buf: Uint8Array, offset: number): void;
  /**
   * Asks the OS to drop this file's clean cached pages (`POSIX_FADV_DONTNEED`),
   * for cold-read measurements. Returns false when not possible (fallback
   * path, or the call failed), so callers can report it.
   */
  dropCache(): boolean;
  /** Passes an access-pattern hint (`POSIX_FADV_*`); false when not possible. */
  advise(advice: number): boolean;
  /** Closes the file; further reads throw. */
  close(): void;
}

/** Options of `openRawFile`. */
export interface OpenRawOptions {
  /** Use FFI when available (default true); false forces the `Deno.FsFile` fallback. */
  ffi?: boolean;
}

/** Opens `path` read-only for positioned reads (FFI `pread`, or the fallback; see the module doc). */
export function openRawFile(path: string, opts: OpenRawOptions = {}): RawFile {
  let size: number;
  try {
    size = Deno.statSync(path).size;
  } catch (e) {
    throw new Error(`fanout: cannot open ${path}: ${(e as Error).message}`);
  }
  const lib = opts.ffi === false ? null : loadLibc();
  return lib ? new FfiFile(lib, path, size) : new FallbackFile(path, size);
}

function shortRead(path: string, offset: number, want: number, got: number): Error {
  return new Error(
    `fanout: ${path}: unexpected end of file reading ${want} bytes at offset ${offset} ` +
      `(got ${got}); the file is truncated`,
  );
}

class FfiFile implements RawFile {
  readonly path: string;
  readonly size: number;
  readonly ffi = true;
  #lib: Libc;
  #fd: number;

  constructor(lib: Libc, path: string, size: number) {
    this.#lib = lib;
    this.path = path;
    this.size = size;
    this.#fd = lib.open(new TextEncoder().encode(path + "\0"), O_RDONLY | O_CLOEXEC);
    if (this.#fd < 0) throw new Error(`fanout: cannot open ${path}: ${errno(lib)}`);
  }

  pread(buf: Uint8Array, offset: number): number {
    if (this.#fd < 0) throw new Error(`fanout: ${this.path} is closed`);
    const want = Math.min(buf.length, MAX_CALL);
    const n = this.#lib.pread(this.#fd, buf, i64(want), i64(offset));
    if (n < 0) {
      throw new Error(
        `fanout: reading ${want} bytes at offset ${offset} of ${this.path} failed: ${
          errno(this.#lib)
        }`,
      );
    }
    return n;
  }

  readExact(buf: Uint8Array, offset: number): void {
    // The common case, one full read, without a subarray.
    let got = this.pread(buf, offset);
    if (got === buf.length) return;
    while (got < buf.length) {
      const n = this.pread(buf.subarray(got), offset + got);
      if (n === 0) throw shortRead(this.path, offset, buf.length, got);
      got += n;
    }
  }

  dropCache(): boolean {
    return this.advise(POSIX_FADV_DONTNEED);
  }

  advise(advice: number): boolean {
    if (this.#fd < 0) return false;
    return this.#lib.posix_fadvise(this.#fd, i64(0), i64(0), advice) === 0;
  }

  close(): void {
    if (this.#fd >= 0) this.#lib.close(this.#fd);
    this.#fd = -1;
  }
}

class FallbackFile implements RawFile {
  readonly path: string;
  readonly size: number;
  readonly ffi = false;
  #file: Deno.FsFile | null;

  constructor(path: string, size: number) {
    this.path = path;
    this.size = size;
    try {
      this.#file = Deno.openSync(path, { read: true });
    } catch (e) {
      throw new Error(`fanout: cannot open ${path}: ${(e as Error).message}`);
    }
  }

  pread(buf: Uint8Array, offset: number): number {
    if (!this.#file) throw new Error(`fanout: ${this.path} is closed`);
    try {
      this.#file.seekSync(offset, Deno.SeekMode.Start);
      return this.#file.readSync(buf) ?? 0;
    } catch (e) {
      throw new Error(
        `fanout: reading ${buf.length} bytes at offset ${offset} of ${this.path} failed: ${
          (e as Error).message
        }`,
      );
    }
  }

  readExact(buf: Uint8Array, offset: number): void {
    let got = 0;
    while (got < buf.length) {
      const n = this.pread(buf.subarray(got), offset + got);
      if (n === 0) throw shortRead(this.path, offset, buf.length, got);
      got += n;
    }
  }

  dropCache(): boolean {
    return false;
  }

  advise(): boolean {
    return false;
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}
