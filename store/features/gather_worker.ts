/**
 * Worker side of `GatherPool` (gather_pool.ts): opens its own
 * `FeatureReader` (own files, own cache budget) and serves gathers that write
 * straight into a SharedArrayBuffer slice owned by the caller.
 *
 * Messages in: `{ id, op: "open", dir, opts }`, `{ id, op: "gather", table,
 * ids, buffer, byteOffset }` (`ids` over a SharedArrayBuffer the pool reuses
 * once this worker has answered), `{ id, op: "drop" }`, `{ id, op: "stats" }`,
 * `{ id, op: "close" }`. Out: `{ id, ok: true, value }` or `{ id, ok: false,
 * name, message }`.
 *
 * @module
 */

import { FeatureReader, type FeatureReaderOptions, touchPages } from "./reader.ts";

/** A request to a gather worker. */
export type GatherRequest =
  | { id: number; op: "open"; dir: string; opts: FeatureReaderOptions }
  | {
    id: number;
    op: "gather";
    table: string;
    ids: Int32Array;
    buffer: SharedArrayBuffer;
    byteOffset: number;
  }
  | { id: number; op: "drop" | "stats" | "close" };

/** A reply from a gather worker. */
export type GatherReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; name: string; message: string };

let reader: FeatureReader | null = null;

function handle(req: GatherRequest): Promise<unknown> | unknown {
  if (req.op === "open") {
    return FeatureReader.open(req.dir, req.opts).then((r) => {
      reader = r;
      return r.ffi;
    });
  }
  if (!reader) throw new Error("fanout: gather worker used before open");
  switch (req.op) {
    case "gather": {
      const rb = reader.table(req.table).rowBytes;
      const out = new Uint8Array(req.buffer, req.byteOffset, req.ids.length * rb);
      touchPages(out); // a new SharedArrayBuffer per gather: fresh memory
      reader.gather(req.table, req.ids, out);
      return null;
    }
    case "drop":
      return reader.dropCaches();
    case "stats":
      return reader.stats();
    case "close":
      reader.close();
      reader = null;
      return null;
  }
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<GatherRequest>) => void) | null;
  postMessage(m: GatherReply): void;
};

scope.onmessage = async (e: MessageEvent<GatherRequest>) => {
  const req = e.data;
  try {
    const value = handle(req); // a promise only for "open"
    scope.postMessage({
      id: req.id,
      ok: true,
      value: value instanceof Promise ? await value : value,
    });
  } catch (err) {
    const x = err as Error;
    scope.postMessage({ id: req.id, ok: false, name: x.name, message: x.message });
  }
};
