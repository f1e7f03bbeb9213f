import fc from "fast-check";
import { sizeClass } from "../core/webgpu/mod.ts";
import { f16BitsToNumber as f16BitsToF32, f32ToF16Bits } from "../core/half.ts";
import { gpuBackend, noGpu } from "./gpu_env.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

Deno.test("pool size classes: enough room, at most 25% slack, multiples of 4", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 1 << 30 }), (bytes) => {
    const s = sizeClass(bytes);
    assert(s >= bytes && s % 4 === 0, `${bytes} -> ${s}`);
    assert(s <= Math.max(256, bytes * 1.25 + 4), `${bytes} -> ${s} wastes too much`);
  }));
});

Deno.test("f16 conversion: exact on known values, round-to-nearest on all", () => {
  const known: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [2 ** -24, 0x0001],
    [1 / 3, 0x3555],
    [Infinity, 0x7c00],
    [1e6, 0x7c00],
  ];
  for (const [v, bits] of known) {
    assert(
      f32ToF16Bits(v) === bits,
      `${v}: ${f32ToF16Bits(v).toString(16)} != ${bits.toString(16)}`,
    );
  }
  fc.assert(fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (v) => {
    const h = f32ToF16Bits(v);
    const back = f16BitsToF32(h);
    // No other half value is strictly closer to v.
    for (const d of [-1, 1]) {
      const other = f16BitsToF32((h + d) & 0xffff);
      if (Number.isFinite(other) && Math.sign(other) === Math.sign(back)) {
        assert(Math.abs(other - v) >= Math.abs(back - v), `${v}: ${back} vs neighbour ${other}`);
      }
    }
  }));
});

Deno.test({
  name: "a recycled buffer is not overwritten before earlier recorded work reads it",
  ignore: noGpu,
  async fn() {
    const b = gpuBackend!;
    const rt = b.runtime;
    const x = b.fromArray([1, 2, 3, 4], "f32");
    await b.sync();
    const y = b.full(4, 0, "f32");
    const xs = (x as unknown as { buffer: GPUBuffer }).buffer;
    const ys = (y as unknown as { buffer: GPUBuffer }).buffer;
    rt.copy(xs, 0, ys, 0, 16); // recorded, not yet submitted
    b.release(x); // back to the pool...
    const z = b.fromArray([9, 9, 9, 9], "f32"); // ...and very likely handed out again here
    assert((z as unknown as { buffer: GPUBuffer }).buffer === xs, "pool did not recycle");
    assert(Array.from(await b.read(y)).join() === "1,2,3,4", "copy saw the later upload");
    assert(Array.from(await b.read(z)).join() === "9,9,9,9");
    b.release(y);
    b.release(z);
  },
});

Deno.test({
  name: "storages round-trip in f32, f16 and i32",
  ignore: noGpu,
  async fn() {
    const b = gpuBackend!;
    const f = b.fromArray([1.5, -2, 3e-3], "f32");
    assert(Array.from(await b.read(f)).join() === [1.5, -2, Math.fround(3e-3)].join());
    const i = b.fromArray([-7, 0, 2147483647], "i32");
    assert(Array.from(await b.read(i)).join() === "-7,0,2147483647");
    if (b.supportsF16) {
      const h = b.fromArray([1, 0.1, 65504], "f16");
      assert(Array.from(await b.read(h)).join() === [1, 0.0999755859375, 65504].join());
      b.release(h);
    }
    b.release(f);
    b.release(i);
  },
});

Deno.test({
  name: "a tensor above the storage binding limit is refused with a clear error",
  ignore: noGpu,
  fn() {
    const rt = gpuBackend!.runtime;
    let msg = "";
    try {
      rt.alloc(rt.maxBinding + 4);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes("storage binding limit") && msg.includes("split"), msg);
    // Just at the limit is fine, and the pooled buffer never exceeds it.
    const b = rt.alloc(rt.maxBinding - 1000);
    assert(b.size <= rt.maxBinding);
    rt.free(b);
    rt.trim();
  },
});

Deno.test({
  name: "GPU validation errors surface at the next sync instead of passing silently",
  ignore: noGpu,
  async fn() {
    const rt = gpuBackend!.runtime;
    const bad = rt.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    // Copying from a buffer without COPY_SRC is a validation error.
    const dst = rt.alloc(16);
    rt.copy(bad, 0, dst, 0, 16);
    let msg = "";
    try {
      await rt.sync();
      await rt.sync(); // the event may arrive one turn late
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes("WebGPU reported"), `no error surfaced: "${msg}"`);
    rt.free(dst);
    bad.destroy();
  },
});
