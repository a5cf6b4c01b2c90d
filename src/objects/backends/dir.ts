/**
 * The directory backend: one file per object, `<dir>/<id>.obj`, in a directory that several
 * replicas on one machine (or a shared mount) may use at once.
 *
 * Metadata lives inside the file (format in `dir-format.ts`), so one `rename` publishes bytes and
 * metadata together.
 *
 * Safety rules, in order: the id must match `^[A-Za-z0-9_-]{1,128}$` (no `.`, `/`, `\`, `%`,
 * NUL); the path is resolved and must sit directly in the store's real directory; the file is
 * opened with `O_NOFOLLOW` (a planted symlink fails with ELOOP); it must be a regular file with
 * one link (a planted hard link is refused) and start with our magic and a header naming the
 * same id. Writes go to `.tmp.<pid>.<host>.<rand>.<id>` in the same directory and are renamed
 * into place when complete, so readers never see part of an object and a killed writer leaves
 * only a temp file, which `removeStaleTemps` finds by its dead pid.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { AnyServeError } from "../../errors.js";
import { checkId } from "../ref.js";
import type { ByteRange, ObjectBackend, ObjectMeta, OpenedObject, StoredObject, WriteLimits } from "./base.js";
import { HEAD_READ, HOST_TAG, OBJECT_NAME, TEMP_NAME, encodeHeader, parseHead, readExactly, writeAll } from "./dir-format.js";

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;
const READ_CHUNK = 1 << 20;

export interface DirBackendOptions {
  dir: string;
  /** Mode of object files (default 0o600: objects may hold user data). */
  fileMode?: number;
  /** fsync each object and the directory before it becomes visible (survives power loss; slower). */
  fsync?: boolean;
}

export class DirBackend implements ObjectBackend {
  readonly kind = "dir";
  readonly location: string;
  readonly #mode: number;
  readonly #fsync: boolean;
  readonly #root: Promise<string>;

  constructor(o: DirBackendOptions) {
    this.location = path.resolve(o.dir);
    this.#mode = o.fileMode ?? 0o600;
    this.#fsync = o.fsync ?? false;
    // Created once; the real path (symlinks resolved) is the prefix every object path must have.
    this.#root = mkdir(this.location, { recursive: true, mode: 0o700 }).then(() => realpath(this.location));
    this.#root.catch(() => undefined);
  }

  async write(meta: ObjectMeta, source: Buffer | AsyncIterable<Uint8Array>, limits: WriteLimits): Promise<StoredObject> {
    const final = await this.#pathOf(meta.id);
    const temp = path.join(path.dirname(final), `.tmp.${process.pid}.${HOST_TAG}.${randomBytes(6).toString("hex")}.${meta.id}`);
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, this.#mode).catch(
      (err: unknown) => {
        throw mapFsError(err, this.location);
      },
    );
    let handleOpen = true;
    let size = 0;
    try {
      // The header goes out with the first chunk: one write for a whole Buffer.
      let header: Buffer | undefined = encodeHeader(meta);
      const put = async (chunk: Uint8Array): Promise<void> => {
        if (limits.signal?.aborted) throw new AnyServeError("CANCELLED", `writing object ${meta.id} was aborted`);
        size += chunk.byteLength;
        if (size > limits.maxBytes)
          throw new AnyServeError(
            "OBJECT_TOO_LARGE",
            `object ${meta.id} passed ${size} bytes: the limit is ${limits.maxBytes} bytes per object`,
          );
        if (size > limits.room)
          throw new AnyServeError(
            "OBJECT_STORE_FULL",
            `object store ${this.location} is full: object ${meta.id} needs more than the ${Math.max(0, limits.room)} bytes left under its cap`,
          );
        await writeAll(fh, header ? [header, chunk] : [chunk]);
        header = undefined;
      };
      if (source instanceof Uint8Array) await put(source);
      else for await (const chunk of source) await put(chunk);
      if (header) await writeAll(fh, [header]);
      if (this.#fsync) await fh.sync();
      handleOpen = false;
      await fh.close();
      await rename(temp, final);
      if (this.#fsync) await syncDir(path.dirname(final));
    } catch (err) {
      if (handleOpen) await fh.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw mapFsError(err, this.location);
    }
    return { ...meta, size };
  }

  async open(id: string, options: { whole?: boolean } = {}): Promise<OpenedObject> {
    const file = await this.#pathOf(id);
    let fh: FileHandle;
    try {
      // O_NONBLOCK: opening a planted FIFO must not hang; it is then refused as not a regular file.
      fh = await open(file, constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") throw notFound(id, this.location);
      if (code === "ELOOP" || code === "EMLINK") throw refused(id, "is a symbolic link");
      throw mapFsError(err, this.location);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw refused(id, "is not a regular file");
      if (st.nlink !== 1) throw refused(id, "has other hard links");
      // One read for the header and, when the caller wants it all (or the object is small), the data.
      let head = (await readExactly(fh, options.whole ? st.size : Math.min(st.size, HEAD_READ), 0)) ?? Buffer.alloc(0);
      let parsed = parseHead(head);
      if (typeof parsed === "object" && "need" in parsed && parsed.need <= st.size) {
        head = (await readExactly(fh, parsed.need, 0)) ?? Buffer.alloc(0);
        parsed = parseHead(head);
      }
      if (typeof parsed === "string") throw refused(id, parsed);
      if ("need" in parsed) throw refused(id, "has a corrupt header");
      if (parsed.meta.id !== id) throw refused(id, "has a header naming another object");
      const { meta, offset } = parsed;
      return new DirObject(fh, { ...meta, size: st.size - offset }, offset, head.subarray(offset));
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async remove(id: string): Promise<boolean> {
    try {
      await unlink(await this.#pathOf(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw mapFsError(err, this.location);
    }
  }

  async list(): Promise<StoredObject[]> {
    const names = (await this.#entries()).filter((e) => e.isFile() && OBJECT_NAME.test(e.name));
    const found = await inBatches(names, async (e) => {
      try {
        const o = await this.open(OBJECT_NAME.exec(e.name)![1]!);
        await o.close();
        return o.info;
      } catch {
        return undefined; // removed meanwhile, or not ours: not listed
      }
    });
    return found.filter((o): o is StoredObject => o !== undefined);
  }

  async usage(): Promise<number> {
    const root = await this.#root;
    const names = (await this.#entries()).filter((e) => e.isFile() && (OBJECT_NAME.test(e.name) || TEMP_NAME.test(e.name)));
    const sizes = await inBatches(names, (e) =>
      stat(path.join(root, e.name)).then(
        (s) => s.size,
        () => 0,
      ),
    );
    return sizes.reduce((a, b) => a + b, 0);
  }

  async removeStaleTemps(staleMs: number): Promise<number> {
    const root = await this.#root;
    const now = Date.now();
    const removed = await inBatches(
      (await this.#entries()).filter((e) => TEMP_NAME.test(e.name)),
      async (e) => {
        const [, pid, host] = TEMP_NAME.exec(e.name)!;
        const file = path.join(root, e.name);
        const dead = host === HOST_TAG && !pidAlive(Number(pid));
        const idle = await stat(file).then(
          (s) => now - s.mtimeMs > staleMs,
          () => false,
        );
        if (!dead && !idle) return 0;
        return unlink(file).then(
          () => 1,
          () => 0,
        );
      },
    );
    return removed.reduce<number>((a, b) => a + b, 0);
  }

  /** The one place an id becomes a path: validated, resolved, and checked to sit in the root. */
  async #pathOf(id: string): Promise<string> {
    checkId(id);
    const root = await this.#root;
    const file = path.resolve(root, `${id}.obj`);
    if (path.dirname(file) !== root) throw refused(id, "resolves outside the store");
    return file;
  }

  async #entries() {
    return readdir(await this.#root, { withFileTypes: true });
  }
}

class DirObject implements OpenedObject {
  readonly info: StoredObject;
  readonly #fh: FileHandle;
  readonly #offset: number;
  /** The first bytes of the data, read with the header (all of it for a small object). */
  readonly #head: Buffer;
  #closed = false;

  constructor(fh: FileHandle, info: StoredObject, offset: number, head: Buffer) {
    this.#fh = fh;
    this.info = info;
    this.#offset = offset;
    this.#head = head;
  }

  async read(): Promise<Buffer> {
    try {
      const size = this.info.size;
      if (this.#head.length >= size) return this.#head.subarray(0, size);
      const data = Buffer.allocUnsafe(size);
      this.#head.copy(data);
      const done = await readExactly(this.#fh, size - this.#head.length, this.#offset + this.#head.length, data, this.#head.length);
      if (!done) throw new AnyServeError("INTERNAL", `object ${this.info.id} is shorter than its header says`);
      return data;
    } finally {
      await this.close();
    }
  }

  stream(range?: ByteRange): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.info.size - 1;
    if (end < start) {
      void this.close();
      return Readable.from([]);
    }
    this.#closed = true; // the stream owns the handle now and closes it at its end
    return this.#fh.createReadStream({ start: this.#offset + start, end: this.#offset + end, highWaterMark: READ_CHUNK });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function pidAlive(pid: number): boolean {
  if (!(pid > 1)) return true; // never signal a process group; such a name is not ours anyway
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>, size = 64): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

function mapFsError(err: unknown, where: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOSPC" || code === "EDQUOT")
    return new AnyServeError("OBJECT_STORE_FULL", `object store ${where}: the disk is full (${code})`);
  return err;
}

function notFound(id: string, where: string): AnyServeError {
  return new AnyServeError("OBJECT_NOT_FOUND", `object ${id} is not in the store at ${where}`);
}

function refused(id: string, why: string): AnyServeError {
  return new AnyServeError("OBJECT_REF_INVALID", `object ${id} ${why}: refused`);
}
