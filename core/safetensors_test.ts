import fc from "fast-check";
import { cpuBackend } from "./cpu/mod.ts";
import { scope, setDefaultBackend, tensor } from "./tensor.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToNumber,
  f32ToF16Bits,
  loadSafetensors,
  type SafetensorInput,
  type SafetensorsDType,
  saveSafetensors,
} from "./safetensors.ts";
import { MLP } from "./nn.ts";
import { Adam } from "./optim.ts";
import { Rng } from "./random.ts";
import { mseLoss } from "./ops.ts";

const cpu = cpuBackend();
setDefaultBackend(cpu);

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEqualArrays(a: ArrayLike<number>, b: ArrayLike<number>, what = "array"): void {
  assert(a.length === b.length, `${what}: length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    assert(Object.is(a[i], b[i]), `${what}[${i}]: ${a[i]} != ${b[i]}`);
  }
}

function assertThrows(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`message "${m}" does not include "${includes}"`);
    return;
  }
  throw new Error(`expected a throw including "${includes}"`);
}

/** Rewrites the JSON header of a file image (keeping the data section). */
function withHeader(bytes: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

Deno.test("header layout is byte-exact for a tiny example", () => {
  const bytes = encodeSafetensors(
    new Map<string, SafetensorInput>([
      ["h", { dtype: "F16", shape: [1], data: [1.5] }],
      ["a", { dtype: "F32", shape: [2], data: [1, -2] }],
      ["b", { dtype: "I32", shape: [], data: [7] }],
    ]),
    { format: "pt" },
  );
  const header = '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]},' +
    '"h":{"dtype":"F16","shape":[1],"data_offsets":[12,14]}}';
  assert(header.length === 193);
  const expected = new Uint8Array([
    200,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // header length, u64 LE (193 padded to a multiple of 8)
    ...new TextEncoder().encode(header),
    ...new Array(7).fill(0x20), // space padding
    0x00,
    0x00,
    0x80,
    0x3f, // 1.0f
    0x00,
    0x00,
    0x00,
    0xc0, // -2.0f
    0x07,
    0x00,
    0x00,
    0x00, // 7
    0x00,
    0x3e, // 1.5 as f16
  ]);
  assertEqualArrays(bytes, expected, "bytes");
  const back = decodeSafetensors(bytes);
  assert(JSON.stringify(back.metadata) === '{"format":"pt"}');
  assert([...back.tensors.keys()].join() === "a,b,h");
  assertEqualArrays(back.tensors.get("a")!.data, [1, -2]);
  assertEqualArrays(back.tensors.get("b")!.data, [7]);
  assert(
    back.tensors.get("b")!.data instanceof Int32Array && back.tensors.get("b")!.shape.length === 0,
  );
  assertEqualArrays(back.tensors.get("h")!.data, [0x3e00]);
});

const dtypeArb = fc.constantFrom<SafetensorsDType>("F32", "F16", "I32");
const entryArb = fc.tuple(
  dtypeArb,
  fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 2 }),
).chain(([dtype, shape]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = dtype === "I32"
    ? fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: n, maxLength: n })
      .map((v) => Int32Array.from(v))
    : dtype === "F32"
    ? fc.array(fc.float({ noNaN: true }), { minLength: n, maxLength: n })
      .map((v) => Float32Array.from(v))
    : fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: n, maxLength: n })
      .map((v) => Uint16Array.from(v));
  return values.map((data) => ({ dtype, shape, data }));
});

Deno.test("encode → decode round trip on random shapes and dtypes (property)", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), entryArb), {
        selector: ([k]) => k,
        maxLength: 6,
      }).filter((es) => es.every(([k]) => k !== "__metadata__")),
      fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 10 }))),
      (entries, metadata) => {
        const map = new Map(entries);
        const bytes = encodeSafetensors(map, metadata ?? undefined);
        const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
        assert((8 + n) % 8 === 0, "data section starts 8-aligned");
        const back = decodeSafetensors(bytes);
        assert(back.tensors.size === map.size);
        for (const [k, e] of map) {
          const d = back.tensors.get(k)!;
          assert(d.dtype === e.dtype && d.shape.join() === e.shape.join(), `entry ${k}`);
          assert(d.data.constructor === e.data.constructor, `array type of ${k}`);
          assertEqualArrays(d.data, e.data, k);
        }
        assert(JSON.stringify(back.metadata) === JSON.stringify(metadata ?? {}), "metadata");
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("f16 conversion: every half round-trips; rounding is to nearest even", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToNumber(h);
    if (Number.isNaN(v)) {
      assert(Number.isNaN(f16BitsToNumber(f32ToF16Bits(v))), `NaN ${h}`);
      continue;
    }
    assert(f32ToF16Bits(v) === h, `half 0x${h.toString(16)} (${v})`);
  }
  assert(f32ToF16Bits(1 + 2 ** -11) === 0x3c00, "tie rounds to even (down)");
  assert(f32ToF16Bits(1 + 3 * 2 ** -11) === 0x3c02, "tie rounds to even (up)");
  assert(f32ToF16Bits(65520) === 0x7c00, "overflow to infinity");
  assert(f32ToF16Bits(2 ** -25) === 0, "half of the smallest subnormal rounds to 0");
  assert(f32ToF16Bits(2 ** -25 * 1.5) === 1, "rounds up to the smallest subnormal");
  assert(f32ToF16Bits(-0) === 0x8000, "negative zero");
});

Deno.test("decode errors: truncated files, bad headers, bad offsets", () => {
  const good = encodeSafetensors(
    new Map<string, SafetensorInput>([
      ["w", { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] }],
      ["b", { dtype: "F32", shape: [2], data: [5, 6] }],
    ]),
  );
  assertThrows(
    () => decodeSafetensors(good.subarray(0, 5), "m.safetensors"),
    "safetensors: m.safetensors: file is truncated: 5 bytes, fewer than the 8-byte header length",
  );
  assertThrows(
    () => decodeSafetensors(good.subarray(0, 40), "m.safetensors"),
    "safetensors: m.safetensors: file is truncated: the header length says",
  );
  assertThrows(
    () => decodeSafetensors(good.subarray(0, good.length - 4), "m.safetensors"),
    'safetensors: m.safetensors: tensor "b" data_offsets [16, 24] are out of range: ' +
      "the data section has 20 bytes (file truncated?)",
  );
  const outOfRange = withHeader(good, (h) => {
    (h.b as { data_offsets: number[] }).data_offsets = [24, 32];
  });
  assertThrows(
    () => decodeSafetensors(outOfRange, "x.st"),
    'safetensors: x.st: tensor "b" data_offsets [24, 32] are out of range: the data section has 24 bytes',
  );
  const wrongSize = withHeader(good, (h) => {
    (h.w as { data_offsets: number[] }).data_offsets = [0, 12];
  });
  assertThrows(
    () => decodeSafetensors(wrongSize, "x.st"),
    'x.st: tensor "w" has data_offsets [0, 12] (12 bytes) but F32 [2,2] needs 16 bytes',
  );
  const overlap = withHeader(good, (h) => {
    (h.b as { data_offsets: number[] }).data_offsets = [8, 16];
  });
  assertThrows(
    () => decodeSafetensors(overlap, "x.st"),
    'x.st: tensor "b" data_offsets [8, 16] overlap another tensor',
  );
  const reversed = withHeader(good, (h) => {
    (h.b as { data_offsets: number[] }).data_offsets = [24, 16];
  });
  assertThrows(() => decodeSafetensors(reversed, "x.st"), "[24, 16] with begin > end");
  const badDtype = withHeader(good, (h) => {
    (h.b as { dtype: string }).dtype = "BF16";
  });
  assertThrows(
    () => decodeSafetensors(badDtype, "x.st"),
    'tensor "b" has unsupported dtype "BF16"',
  );
  const notJson = good.slice();
  notJson[8] = 0x5b; // "["
  assertThrows(() => decodeSafetensors(notJson, "x.st"), "x.st: bad header: not valid UTF-8 JSON");
  const trailing = new Uint8Array([...good, 0, 0]);
  assertThrows(() => decodeSafetensors(trailing, "x.st"), "2 trailing bytes");
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assertThrows(() => decodeSafetensors(huge, "x.st"), "bad header: header length");
});

Deno.test("encode validates its input", () => {
  assertThrows(
    () => encodeSafetensors(new Map([["x", { dtype: "F32", shape: [3], data: [1, 2] }]])),
    'tensor "x" has 2 values for shape [3]',
  );
  assertThrows(
    () => encodeSafetensors(new Map([["__metadata__", { dtype: "F32", shape: [], data: [1] }]])),
    '"__metadata__" cannot name a tensor',
  );
});

Deno.test("saveSafetensors writes atomically; loadSafetensors reads tensors back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    await Deno.writeTextFile(path, "old contents");
    const w = tensor([1.5, -2.25, 3, 0.1], [2, 2]).keep();
    const ids = tensor([1, -7, 3], [3], { dtype: "i32" }).keep();
    const half = tensor([0.1, 65504, -1e-7], [3], { dtype: "f16" }).keep();
    await saveSafetensors(path, new Map([["w", w], ["ids", ids], ["half", half]]), { epoch: "3" });
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert(names.join() === "model.safetensors", `leftover files: ${names}`);
    const { tensors, metadata } = await loadSafetensors(path);
    assert(metadata.epoch === "3");
    assertEqualArrays(tensors.get("w")!.data, Float32Array.from([1.5, -2.25, 3, 0.1]));
    assert(tensors.get("w")!.shape.join() === "2,2" && tensors.get("w")!.dtype === "F32");
    assertEqualArrays(tensors.get("ids")!.data, [1, -7, 3]);
    assert(tensors.get("half")!.dtype === "F16");
    const halfBack = [...tensors.get("half")!.data].map(f16BitsToNumber);
    assertEqualArrays(halfBack, [...await half.data()], "f16 values");
    await Deno.writeFile(path, (await Deno.readFile(path)).subarray(0, 30));
    let msg = "";
    try {
      await loadSafetensors(path);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.startsWith(`safetensors: ${path}: file is truncated`), msg);
    for (const t of [w, ids, half]) t.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: model + optimizer state through a file resume identically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const x = tensor(Array.from({ length: 12 }, (_, i) => Math.cos(i)), [4, 3]).keep();
    const y = tensor([1, 0, -1, 0.5], [4, 1]).keep();
    const trainStep = (m: MLP, o: Adam) => {
      scope(() => mseLoss(m.forward(x), y).backward());
      o.step();
      o.zeroGrad();
    };
    const a = new MLP([3, 6, 1], { rng: new Rng(5) });
    const optA = new Adam(a.namedParameters(), { lr: 0.05 });
    for (let i = 0; i < 3; i++) trainStep(a, optA);
    const st = optA.stateDict();
    const all = new Map([...a.stateDict()]);
    for (const [k, t] of st.tensors) all.set(`optim.${k}`, t);
    await saveSafetensors(`${dir}/ckpt.safetensors`, all, {
      step: String(st.step),
      paramSteps: JSON.stringify(st.paramSteps),
    });
    const loaded = await loadSafetensors(`${dir}/ckpt.safetensors`);
    const model = new Map([...loaded.tensors].filter(([k]) => !k.startsWith("optim.")));
    const optim = new Map(
      [...loaded.tensors].filter(([k]) => k.startsWith("optim.")).map(([k, v]) => [k.slice(6), v]),
    );
    const b = new MLP([3, 6, 1], { rng: new Rng(99) });
    await b.loadStateDict(model);
    const optB = new Adam(b.namedParameters(), { lr: 0.05 });
    await optB.loadStateDict({
      step: Number(loaded.metadata.step),
      paramSteps: JSON.parse(loaded.metadata.paramSteps),
      tensors: optim,
    });
    for (let i = 0; i < 3; i++) {
      trainStep(a, optA);
      trainStep(b, optB);
    }
    // The CPU backend computes in float64; the checkpoint stores F32, so allow f32 rounding.
    for (
      const [[name, pa], [, pb]] of a.namedParameters().map((e, i) =>
        [e, b.namedParameters()[i]] as const
      )
    ) {
      const da = await pa.data(), db = await pb.data();
      for (let i = 0; i < da.length; i++) {
        assert(Math.abs(da[i] - db[i]) < 1e-5, `${name}[${i}]: ${da[i]} vs ${db[i]}`);
      }
    }
    for (const o of [optA, optB]) o.dispose();
    for (const m of [a, b]) m.dispose();
    x.dispose();
    y.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
