/**
 * Integer index structures for gathers and segment reductions.
 *
 * Both keep their values on the host (they come from the sampler) and upload
 * lazily, once per backend. Like tensors they belong to the enclosing
 * `scope`, which frees their uploads at its end (a batch's indices live as
 * long as its training step); `keep()` makes one outlive scopes. The gradient of a gather is a segment sum over
 * the gather's transpose: the positions sorted by source row, grouped by
 * source with CSR offsets. No atomics are needed.
 *
 * @module
 */

import type { Backend, Storage } from "./backend.ts";
import { track, untrack } from "./tensor.ts";

/** Row ids into a table of `range` rows, e.g. the rows a gather reads. */
export class Index {
  /** The ids, each in [0, range). */
  readonly values: Int32Array;
  /** Rows of the table indexed. */
  readonly range: number;
  #storages = new Map<Backend, Storage>();
  #transposed: { perm: Index; segments: Segments } | null = null;

  /** Checks that every id is within [0, range). */
  constructor(values: Int32Array | ArrayLike<number>, range: number) {
    this.values = values instanceof Int32Array ? values : Int32Array.from(values);
    this.range = range;
    track(this);
    for (let i = 0; i < this.values.length; i++) {
      const v = this.values[i];
      if (!(v >= 0 && v < range)) {
        throw new RangeError(`fanout: index ${v} at position ${i} is outside [0, ${range})`);
      }
    }
  }

  /** Number of ids. */
  get length(): number {
    return this.values.length;
  }

  /** The ids on `backend` (uploaded once). */
  storage(backend: Backend): Storage {
    let s = this.#storages.get(backend);
    if (!s) {
      s = backend.fromArray(this.values, "i32");
      this.#storages.set(backend, s);
    }
    return s;
  }

  /**
   * The transpose as CSR: `perm` lists positions of this index sorted by the
   * id they hold (stable), and `segments` groups them by id (`range` segments).
   */
  transposed(): { perm: Index; segments: Segments } {
    if (this.#transposed) return this.#transposed;
    const counts = new Int32Array(this.range + 1);
    for (const v of this.values) counts[v + 1]++;
    for (let i = 0; i < this.range; i++) counts[i + 1] += counts[i];
    const cursor = counts.slice(0, this.range);
    const perm = new Int32Array(this.values.length);
    for (let i = 0; i < this.values.length; i++) perm[cursor[this.values[i]]++] = i;
    // Owned by this index (freed with it), not by the scope that asked.
    this.#transposed = {
      perm: new Index(perm, this.values.length).keep(),
      segments: new Segments(counts).keep(),
    };
    return this.#transposed;
  }

  /** Number of backends holding an upload (0 after `dispose`). */
  storageCount(): number {
    return this.#storages.size;
  }

  /** Removes this index from the enclosing scopes so that it outlives them. */
  keep(): this {
    untrack(this);
    return this;
  }

  /** Releases the uploaded copies. */
  dispose(): void {
    for (const s of this.#storages.values()) s.backend.release(s);
    this.#storages.clear();
    this.#transposed?.perm.dispose();
    this.#transposed?.segments.dispose();
    this.#transposed = null;
  }
}

/**
 * Consecutive row ranges: segment `s` covers rows `offsets[s] .. offsets[s+1]`.
 * Destination-sorted edges grouped by destination are the typical case.
 */
export class Segments {
  /** `count + 1` non-decreasing offsets starting at 0. */
  readonly offsets: Int32Array;
  #storages = new Map<Backend, Storage>();
  #rowSegment: Index | null = null;
  #invCount: Float64Array | null = null;
  #invStorages = new Map<Backend, Storage>();

  /** Checks that offsets start at 0 and never decrease. */
  constructor(offsets: Int32Array | ArrayLike<number>) {
    this.offsets = offsets instanceof Int32Array ? offsets : Int32Array.from(offsets);
    if (this.offsets.length < 1 || this.offsets[0] !== 0) {
      throw new RangeError("fanout: segment offsets must start at 0");
    }
    track(this);
    for (let i = 1; i < this.offsets.length; i++) {
      if (this.offsets[i] < this.offsets[i - 1]) {
        throw new RangeError(
          `fanout: segment offsets decrease at ${i} (${this.offsets[i - 1]} > ${this.offsets[i]})`,
        );
      }
    }
  }

  /** Builds segments from a sorted list of segment ids, one per row. */
  static fromSortedIds(ids: ArrayLike<number>, count: number): Segments {
    const offsets = new Int32Array(count + 1);
    for (let i = 0; i < ids.length; i++) {
      if (i > 0 && ids[i] < ids[i - 1]) {
        throw new RangeError(`fanout: segment ids not sorted at ${i}`);
      }
      if (!(ids[i] >= 0 && ids[i] < count)) {
        throw new RangeError(`fanout: segment id ${ids[i]} at ${i} is outside [0, ${count})`);
      }
      offsets[ids[i] + 1]++;
    }
    for (let i = 0; i < count; i++) offsets[i + 1] += offsets[i];
    return new Segments(offsets);
  }

  /** Number of segments. */
  get count(): number {
    return this.offsets.length - 1;
  }
  /** Number of rows covered. */
  get rows(): number {
    return this.offsets[this.offsets.length - 1];
  }

  /** The offsets on `backend` (uploaded once). */
  storage(backend: Backend): Storage {
    let s = this.#storages.get(backend);
    if (!s) {
      s = backend.fromArray(this.offsets, "i32");
      this.#storages.set(backend, s);
    }
    return s;
  }

  /** For each row, the segment it belongs to. */
  rowSegment(): Index {
    if (!this.#rowSegment) {
      const ids = new Int32Array(this.rows);
      for (let s = 0; s < this.count; s++) ids.fill(s, this.offsets[s], this.offsets[s + 1]);
      this.#rowSegment = new Index(ids, this.count).keep(); // owned by these segments
    }
    return this.#rowSegment;
  }

  /** Number of uploads held (0 after `dispose`). */
  storageCount(): number {
    return this.#storages.size + this.#invStorages.size;
  }

  /** Removes these segments from the enclosing scopes so that they outlive them. */
  keep(): this {
    untrack(this);
    return this;
  }

  /** `1 / max(1, size)` per segment, as a `count`-element float storage on `backend`. */
  invCountStorage(backend: Backend): Storage {
    let s = this.#invStorages.get(backend);
    if (!s) {
      if (!this.#invCount) {
        this.#invCount = new Float64Array(this.count);
        for (let i = 0; i < this.count; i++) {
          this.#invCount[i] = 1 / Math.max(1, this.offsets[i + 1] - this.offsets[i]);
        }
      }
      s = backend.fromArray(this.#invCount, "f32");
      this.#invStorages.set(backend, s);
    }
    return s;
  }

  /** Releases the uploaded copies. */
  dispose(): void {
    for (const s of this.#storages.values()) s.backend.release(s);
    for (const s of this.#invStorages.values()) s.backend.release(s);
    this.#storages.clear();
    this.#invStorages.clear();
    this.#rowSegment?.dispose();
    this.#rowSegment = null;
  }
}
