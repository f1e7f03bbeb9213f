// Layer norm over rows, and its gradient.
//
// Row kernels give each row TPR threads (a power of two) and pack WG / TPR
// rows into a workgroup, so narrow rows do not leave most threads idle. Row
// sums use a tree reduction in workgroup memory. The mean and variance take
// two passes (biased variance of the centred values), which stays accurate
// when |mean| is large against the spread, unlike E[x²] − mean².
//
// Scalar (`*1`) and vec4 (`*4`) forms: the vec4 ones need cols % 4 == 0 and
// take `cols` in vec4 units; `n` is always the true column count.

override WG: u32 = 64;
override TPR: u32 = 8;

struct NormParams {
  rows: u32,
  cols: u32, // in units of the variant's width
  n: u32, // true columns
  eps: f32,
}

@group(0) @binding(0) var<uniform> np: NormParams;

var<workgroup> red: array<vec2<f32>, 256>;

// Sum of `v` over the TPR threads of this thread's row (every thread gets it).
// Must be called in uniform control flow: it holds workgroup barriers.
fn row_sum(lid: u32, t: u32, v: vec2<f32>) -> vec2<f32> {
  red[lid] = v;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[lid - t];
  workgroupBarrier();
  return r;
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// (row, lane in row, row valid) of this thread.
fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec3<u32> {
  let row = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  return vec3<u32>(min(row, np.rows - 1u), lid % TPR, select(0u, 1u, row < np.rows));
}

// ---- forward ---------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> f_x1: array<f32>;
@group(0) @binding(1) var<storage, read> f_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> f_gamma1: array<f32>;
@group(0) @binding(2) var<storage, read> f_gamma4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> f_beta1: array<f32>;
@group(0) @binding(3) var<storage, read> f_beta4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> f_y1: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_y4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> f_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> f_rstd: array<f32>;

@compute @workgroup_size(WG)
fn layer_norm1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rt = row_of(wid, nwg, lid);
  let o = rt.x * np.cols;
  var s = 0.0;
  for (var c = rt.y; c < np.cols; c += TPR) { s += f_x1[o + c]; }
  let mu = row_sum(lid, rt.y, vec2<f32>(s, 0.0)).x / f32(np.n);
  var q = 0.0;
  for (var c = rt.y; c < np.cols; c += TPR) {
    let d = f_x1[o + c] - mu;
    q += d * d;
  }
  let rs = 1.0 / sqrt(row_sum(lid, rt.y, vec2<f32>(q, 0.0)).x / f32(np.n) + np.eps);
  if (rt.z == 0u) { return; }
  for (var c = rt.y; c < np.cols; c += TPR) {
    f_y1[o + c] = (f_x1[o + c] - mu) * rs * f_gamma1[c] + f_beta1[c];
  }
  if (rt.y == 0u) {
    f_mean[rt.x] = mu;
    f_rstd[rt.x] = rs;
  }
}

@compute @workgroup_size(WG)
fn layer_norm4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rt = row_of(wid, nwg, lid);
  let o = rt.x * np.cols;
  var s = vec4<f32>();
  for (var c = rt.y; c < np.cols; c += TPR) { s += f_x4[o + c]; }
  let mu = row_sum(lid, rt.y, vec2<f32>(hsum(s), 0.0)).x / f32(np.n);
  var q = vec4<f32>();
  for (var c = rt.y; c < np.cols; c += TPR) {
    let d = f_x4[o + c] - mu;
    q += d * d;
  }
  let rs = 1.0 / sqrt(row_sum(lid, rt.y, vec2<f32>(hsum(q), 0.0)).x / f32(np.n) + np.eps);
  if (rt.z == 0u) { return; }
  for (var c = rt.y; c < np.cols; c += TPR) {
    f_y4[o + c] = (f_x4[o + c] - mu) * rs * f_gamma4[c] + f_beta4[c];
  }
  if (rt.y == 0u) {
    f_mean[rt.x] = mu;
    f_rstd[rt.x] = rs;
  }
}

// ---- dx: rstd·(g − mean_row(g) − xhat·mean_row(g·xhat)), g = dy·gamma ---------------------

@group(0) @binding(1) var<storage, read> b_x1: array<f32>;
@group(0) @binding(1) var<storage, read> b_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b_gamma1: array<f32>;
@group(0) @binding(2) var<storage, read> b_gamma4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_mean: array<f32>;
@group(0) @binding(4) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(5) var<storage, read> b_dy1: array<f32>;
@group(0) @binding(5) var<storage, read> b_dy4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> b_dx1: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_dx4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn layer_norm_dx1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rt = row_of(wid, nwg, lid);
  let o = rt.x * np.cols;
  let mu = b_mean[rt.x];
  let rs = b_rstd[rt.x];
  var acc = vec2<f32>();
  for (var c = rt.y; c < np.cols; c += TPR) {
    let g = b_dy1[o + c] * b_gamma1[c];
    acc += vec2<f32>(g, g * (b_x1[o + c] - mu) * rs);
  }
  let m = row_sum(lid, rt.y, acc) / f32(np.n);
  if (rt.z == 0u) { return; }
  for (var c = rt.y; c < np.cols; c += TPR) {
    let xhat = (b_x1[o + c] - mu) * rs;
    b_dx1[o + c] = rs * (b_dy1[o + c] * b_gamma1[c] - m.x - xhat * m.y);
  }
}

@compute @workgroup_size(WG)
fn layer_norm_dx4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rt = row_of(wid, nwg, lid);
  let o = rt.x * np.cols;
  let mu = b_mean[rt.x];
  let rs = b_rstd[rt.x];
  var sg = vec4<f32>();
  var sgx = vec4<f32>();
  for (var c = rt.y; c < np.cols; c += TPR) {
    let g = b_dy4[o + c] * b_gamma4[c];
    sg += g;
    sgx += g * (b_x4[o + c] - mu) * rs;
  }
  let m = row_sum(lid, rt.y, vec2<f32>(hsum(sg), hsum(sgx))) / f32(np.n);
  if (rt.z == 0u) { return; }
  for (var c = rt.y; c < np.cols; c += TPR) {
    let xhat = (b_x4[o + c] - mu) * rs;
    b_dx4[o + c] = rs * (b_dy4[o + c] * b_gamma4[c] - m.x - xhat * m.y);
  }
}

// ---- dgamma, dbeta: column sums, first per block of RB rows, then of the blocks -----------

struct BlockParams {
  rows: u32,
  cols: u32, // in units of the variant's width
  rb: u32, // rows per block
  blocks: u32,
}

@group(0) @binding(0) var<uniform> bp: BlockParams;
@group(0) @binding(1) var<storage, read> p_x1: array<f32>;
@group(0) @binding(1) var<storage, read> p_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> p_mean: array<f32>;
@group(0) @binding(3) var<storage, read> p_rstd: array<f32>;
@group(0) @binding(4) var<storage, read> p_dy1: array<f32>;
@group(0) @binding(4) var<storage, read> p_dy4: array<vec4<f32>>;
// [blocks, 2·cols]: Σ dy·xhat in the first cols, Σ dy in the next.
@group(0) @binding(5) var<storage, read_write> p_part1: array<f32>;
@group(0) @binding(5) var<storage, read_write> p_part4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn ln_param_partial1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let blk = id / bp.cols;
  if (blk >= bp.blocks) { return; }
  let c = id - blk * bp.cols;
  let r0 = blk * bp.rb;
  let r1 = min(r0 + bp.rb, bp.rows);
  var dg = 0.0;
  var db = 0.0;
  for (var r = r0; r < r1; r++) {
    let dy = p_dy1[r * bp.cols + c];
    dg += dy * (p_x1[r * bp.cols + c] - p_mean[r]) * p_rstd[r];
    db += dy;
  }
  p_part1[blk * 2u * bp.cols + c] = dg;
  p_part1[blk * 2u * bp.cols + bp.cols + c] = db;
}

@compute @workgroup_size(WG)
fn ln_param_partial4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let blk = id / bp.cols;
  if (blk >= bp.blocks) { return; }
  let c = id - blk * bp.cols;
  let r0 = blk * bp.rb;
  let r1 = min(r0 + bp.rb, bp.rows);
  var dg = vec4<f32>();
  var db = vec4<f32>();
  for (var r = r0; r < r1; r++) {
    let dy = p_dy4[r * bp.cols + c];
    dg += dy * (p_x4[r * bp.cols + c] - p_mean[r]) * p_rstd[r];
    db += dy;
  }
  p_part4[blk * 2u * bp.cols + c] = dg;
  p_part4[blk * 2u * bp.cols + bp.cols + c] = db;
}

// dst[blk, c] = Σ src[r, c] over the rows of block blk.
@group(0) @binding(1) var<storage, read> k_src1: array<f32>;
@group(0) @binding(1) var<storage, read> k_src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> k_dst1: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_dst4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn col_sum1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let blk = id / bp.cols;
  if (blk >= bp.blocks) { return; }
  let c = id - blk * bp.cols;
  let r1 = min(blk * bp.rb + bp.rb, bp.rows);
  var acc = 0.0;
  for (var r = blk * bp.rb; r < r1; r++) { acc += k_src1[r * bp.cols + c]; }
  k_dst1[id] = acc;
}

@compute @workgroup_size(WG)
fn col_sum4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let blk = id / bp.cols;
  if (blk >= bp.blocks) { return; }
  let c = id - blk * bp.cols;
  let r1 = min(blk * bp.rb + bp.rb, bp.rows);
  var acc = vec4<f32>();
  for (var r = blk * bp.rb; r < r1; r++) { acc += k_src4[r * bp.cols + c]; }
  k_dst4[id] = acc;
}
