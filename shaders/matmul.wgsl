// Register-tiled matrix product C[m×n] = op(A)·op(B), op(A) m×k, op(B) k×n.
//
// A workgroup computes a tm×tn tile of C (128×128, or 128×32 for narrow
// outputs, n ≤ 32). K is walked in slabs of BK = 16: each slab of op(A)
// (tm×16) and op(B) (16×tn) is staged in workgroup
// memory as vec4 groups along the storage's contiguous dimension, so global
// reads are vec4 loads whenever that dimension is a multiple of 4 (VEC_A /
// VEC_B) and scalar reads with zero padding otherwise. Every thread then owns
// a grid of 4×4 blocks of C held as mat4x4 accumulators, and one step of the
// inner loop is a 4×4×4 block product (64 FMAs per block) on blocks read as
// four vec4s from the slab. Out-of-range rows, columns and k are zeros, so any
// m, k, n works.
//
// Two thread grids share everything else:
//   t8:  2×2 blocks (8×8 outputs) per thread, 16×16 threads for a 128×128
//        tile: the classic GPU configuration (64 accumulators per thread).
//   t16: 4×4 blocks (16×16 outputs) per thread, 8×8 threads for a 128×128
//        tile: for CPU adapters (lavapipe), where every per-lane load is a
//        scalar loop and the FMA-to-load ratio is what counts.
// Entry points: matmul_t8, matmul_t16 (128×128 tiles) and matmul_t8_n32
// (128×32 tiles, 4×16 threads; the faster narrow kernel on lavapipe too).
// The helpers take the tile extents tm, tn as arguments; each entry point
// passes constants, which the compiler folds.
//
// Split-K: when `split` > 1, workgroup z picks the k range
// [z*kChunk, min(k, (z+1)*kChunk)) and writes its partial product to slice z
// of C (C then holds split × m × n values, summed by a second pass).
//
// TRANS_A / TRANS_B select how A and B are stored (k×m / n×k when set).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// The storage's contiguous dimension (k, or m when TRANS_A) is a multiple of 4.
override VEC_A: bool = false;
// The storage's contiguous dimension (n, or k when TRANS_B) is a multiple of 4.
override VEC_B: bool = false;

const BK: u32 = 16u; // k slab
const BK4: u32 = 4u; // BK / 4
const SLAB4: u32 = 512u; // vec4 groups of the largest staged slab: 128 * BK / 4

struct MatmulParams {
  m: u32,
  k: u32,
  n: u32,
  // k values per split slice (a multiple of BK; k when not split).
  k_chunk: u32,
  // number of k slices (1: no split, workgroup z folds row tiles instead).
  split: u32,
}

@group(0) @binding(0) var<uniform> P: MatmulParams;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// As: TRANS_A ? [kk][row/4] : [row][kk/4].  Bs: TRANS_B ? [col][kk/4] : [kk][col/4].
var<workgroup> As: array<vec4<f32>, SLAB4>;
var<workgroup> Bs: array<vec4<f32>, SLAB4>;

fn a_at(i: u32) -> f32 {
  return A[i / 4u][i % 4u];
}

fn b_at(i: u32) -> f32 {
  return B[i / 4u][i % 4u];
}

// op(A)[r][kk], zero outside [0, m) × [0, k_end).
fn load_a(r: u32, kk: u32, k_end: u32) -> f32 {
  if (r >= P.m || kk >= k_end) {
    return 0.0;
  }
  if (TRANS_A) {
    return a_at(kk * P.m + r);
  }
  return a_at(r * P.k + kk);
}

// op(B)[kk][c], zero outside [0, k_end) × [0, n).
fn load_b(kk: u32, c: u32, k_end: u32) -> f32 {
  if (c >= P.n || kk >= k_end) {
    return 0.0;
  }
  if (TRANS_B) {
    return b_at(c * P.k + kk);
  }
  return b_at(kk * P.n + c);
}

// Stages the slabs of op(A) (tm rows) and op(B) (tn columns) starting at k0;
// the `threads` invocations of the workgroup cooperate.
fn stage(row0: u32, col0: u32, k0: u32, k_end: u32, li: u32, threads: u32, tm: u32, tn: u32) {
  let tm4 = tm / 4u;
  let tn4 = tn / 4u;
  for (var g = li; g < tm * BK4; g += threads) {
    var v = vec4<f32>(0.0);
    if (TRANS_A) {
      let gk = k0 + g / tm4;
      let gr = row0 + (g % tm4) * 4u;
      if (VEC_A) {
        if (gk < k_end && gr < P.m) {
          v = A[(gk * P.m + gr) / 4u];
        }
      } else {
        v = vec4<f32>(
          load_a(gr, gk, k_end),
          load_a(gr + 1u, gk, k_end),
          load_a(gr + 2u, gk, k_end),
          load_a(gr + 3u, gk, k_end),
        );
      }
    } else {
      let gr = row0 + g / BK4;
      let gk = k0 + (g % BK4) * 4u;
      if (VEC_A) {
        if (gk < k_end && gr < P.m) {
          v = A[(gr * P.k + gk) / 4u];
        }
      } else {
        v = vec4<f32>(
          load_a(gr, gk, k_end),
          load_a(gr, gk + 1u, k_end),
          load_a(gr, gk + 2u, k_end),
          load_a(gr, gk + 3u, k_end),
        );
      }
    }
    As[g] = v;
  }
  for (var g = li; g < tn * BK4; g += threads) {
    var v = vec4<f32>(0.0);
    if (TRANS_B) {
      let gc = col0 + g / BK4;
      let gk = k0 + (g % BK4) * 4u;
      if (VEC_B) {
        if (gk < k_end && gc < P.n) {
          v = B[(gc * P.k + gk) / 4u];
        }
      } else {
        v = vec4<f32>(
          load_b(gk, gc, k_end),
          load_b(gk + 1u, gc, k_end),
          load_b(gk + 2u, gc, k_end),
          load_b(gk + 3u, gc, k_end),
        );
      }
    } else {
      let gk = k0 + g / tn4;
      let gc = col0 + (g % tn4) * 4u;
      if (VEC_B) {
        if (gk < k_end && gc < P.n) {
          v = B[(gk * P.n + gc) / 4u];
        }
      } else {
        v = vec4<f32>(
          load_b(gk, gc, k_end),
          load_b(gk, gc + 1u, k_end),
          load_b(gk, gc + 2u, k_end),
          load_b(gk, gc + 3u, k_end),
        );
      }
    }
    Bs[g] = v;
  }
}

// The 4×4 block of op(A) at row group rg (rows 4rg..) and k group k4 of the
// slab (tm rows); column q holds the four rows at k = 4*k4 + q.
fn a_block(rg: u32, k4: u32, tm: u32) -> mat4x4<f32> {
  if (TRANS_A) {
    let s = tm / 4u;
    let base = k4 * 4u * s + rg;
    return mat4x4<f32>(As[base], As[base + s], As[base + 2u * s], As[base + 3u * s]);
  }
  let base = rg * 4u * BK4 + k4;
  return transpose(
    mat4x4<f32>(As[base], As[base + BK4], As[base + 2u * BK4], As[base + 3u * BK4]),
  );
}

// The 4×4 block of op(B) at k group k4 and column group cg of the slab (tn
// columns); column j holds the four k values of column 4cg + j.
fn b_block(cg: u32, k4: u32, tn: u32) -> mat4x4<f32> {
  if (TRANS_B) {
    let base = cg * 4u * BK4 + k4;
    return mat4x4<f32>(Bs[base], Bs[base + BK4], Bs[base + 2u * BK4], Bs[base + 3u * BK4]);
  }
  let s = tn / 4u;
  let base = k4 * 4u * s + cg;
  return transpose(mat4x4<f32>(Bs[base], Bs[base + s], Bs[base + 2u * s], Bs[base + 3u * s]));
}

// Writes a 4×4 accumulator (acc[j][i] = C[r0+i][c0+j]) to slice `slice` of C.
fn store_block(slice: u32, r0: u32, c0: u32, acc: mat4x4<f32>) {
  let base = slice * P.m * P.n;
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < P.m) {
      for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c < P.n) {
          C[base + r * P.n + c] = acc[j][i];
        }
      }
    }
  }
}

// Tile coordinates and k range of a workgroup: (row0, col0, slice, k_begin, k_end).
struct Work {
  row0: u32,
  col0: u32,
  slice: u32,
  k_begin: u32,
  k_end: u32,
}

fn work(wid: vec3<u32>, nwg: vec3<u32>, tm: u32, tn: u32) -> Work {
  var w: Work;
  w.col0 = wid.x * tn;
  if (P.split > 1u) {
    w.row0 = wid.y * tm;
    w.slice = wid.z;
  } else {
    w.row0 = (wid.y + wid.z * nwg.y) * tm;
    w.slice = 0u;
  }
  w.k_begin = w.slice * P.k_chunk;
  w.k_end = min(P.k, w.k_begin + P.k_chunk);
  return w;
}

// 2×2 blocks (8×8 outputs) per thread: the tile is tm × tn with tm = 8 × (threads in y)
// and tn = 8 × (threads in x).
fn run_t8(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, li: u32, threads: u32, tm: u32, tn: u32) {
  let w = work(wid, nwg, tm, tn);
  if (w.row0 >= P.m) {
    return; // the whole workgroup (uniform)
  }
  let rg = lid.y * 2u;
  let cg = lid.x * 2u;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var k0 = w.k_begin; k0 < w.k_end; k0 += BK) {
    stage(w.row0, w.col0, k0, w.k_end, li, threads, tm, tn);
    workgroupBarrier();
    for (var k4 = 0u; k4 < BK4; k4++) {
      let a0 = a_block(rg, k4, tm);
      let a1 = a_block(rg + 1u, k4, tm);
      let b0 = b_block(cg, k4, tn);
      let b1 = b_block(cg + 1u, k4, tn);
      c00 += a0 * b0;
      c01 += a0 * b1;
      c10 += a1 * b0;
      c11 += a1 * b1;
    }
    workgroupBarrier();
  }
  let r = w.row0 + rg * 4u;
  let c = w.col0 + cg * 4u;
  store_block(w.slice, r, c, c00);
  store_block(w.slice, r, c + 4u, c01);
  store_block(w.slice, r + 4u, c, c10);
  store_block(w.slice, r + 4u, c + 4u, c11);
}

// 4×4 blocks (16×16 outputs) per thread: tm = 16 × (threads in y), tn = 16 × (threads in x).
fn run_t16(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, li: u32, threads: u32, tm: u32, tn: u32) {
  let w = work(wid, nwg, tm, tn);
  if (w.row0 >= P.m) {
    return; // the whole workgroup (uniform)
  }
  let rg = lid.y * 4u;
  let cg = lid.x * 4u;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c02 = mat4x4<f32>();
  var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  var c12 = mat4x4<f32>();
  var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>();
  var c21 = mat4x4<f32>();
  var c22 = mat4x4<f32>();
  var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>();
  var c31 = mat4x4<f32>();
  var c32 = mat4x4<f32>();
  var c33 = mat4x4<f32>();
  for (var k0 = w.k_begin; k0 < w.k_end; k0 += BK) {
    stage(w.row0, w.col0, k0, w.k_end, li, threads, tm, tn);
    workgroupBarrier();
    for (var k4 = 0u; k4 < BK4; k4++) {
      let a0 = a_block(rg, k4, tm);
      let a1 = a_block(rg + 1u, k4, tm);
      let a2 = a_block(rg + 2u, k4, tm);
      let a3 = a_block(rg + 3u, k4, tm);
      let b0 = b_block(cg, k4, tn);
      let b1 = b_block(cg + 1u, k4, tn);
      let b2 = b_block(cg + 2u, k4, tn);
      let b3 = b_block(cg + 3u, k4, tn);
      c00 += a0 * b0;
      c01 += a0 * b1;
      c02 += a0 * b2;
      c03 += a0 * b3;
      c10 += a1 * b0;
      c11 += a1 * b1;
      c12 += a1 * b2;
      c13 += a1 * b3;
      c20 += a2 * b0;
      c21 += a2 * b1;
      c22 += a2 * b2;
      c23 += a2 * b3;
      c30 += a3 * b0;
      c31 += a3 * b1;
      c32 += a3 * b2;
      c33 += a3 * b3;
    }
    workgroupBarrier();
  }
  let r = w.row0 + rg * 4u;
  let c = w.col0 + cg * 4u;
  store_block(w.slice, r, c, c00);
  store_block(w.slice, r, c + 4u, c01);
  store_block(w.slice, r, c + 8u, c02);
  store_block(w.slice, r, c + 12u, c03);
  store_block(w.slice, r + 4u, c, c10);
  store_block(w.slice, r + 4u, c + 4u, c11);
  store_block(w.slice, r + 4u, c + 8u, c12);
  store_block(w.slice, r + 4u, c + 12u, c13);
  store_block(w.slice, r + 8u, c, c20);
  store_block(w.slice, r + 8u, c + 4u, c21);
  store_block(w.slice, r + 8u, c + 8u, c22);
  store_block(w.slice, r + 8u, c + 12u, c23);
  store_block(w.slice, r + 12u, c, c30);
  store_block(w.slice, r + 12u, c + 4u, c31);
  store_block(w.slice, r + 12u, c + 8u, c32);
  store_block(w.slice, r + 12u, c + 12u, c33);
}

// ---- entry points ----------------------------------------------------------------
// 128×128 tiles for general shapes; 128×32 tiles when n ≤ 32 (narrow outputs,
// such as a classifier layer), where a 128-wide tile would be mostly padding.

@compute @workgroup_size(16, 16)
fn matmul_t8(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  run_t8(wid, nwg, lid, li, 256u, 128u, 128u);
}

@compute @workgroup_size(4, 16)
fn matmul_t8_n32(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  run_t8(wid, nwg, lid, li, 64u, 128u, 32u);
}

@compute @workgroup_size(8, 8)
fn matmul_t16(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  run_t16(wid, nwg, lid, li, 64u, 128u, 128u);
}
