// Segment reductions over destination-sorted rows: segment s covers rows
// offsets[s] .. offsets[s+1]. WGSL has no float atomics, and none are needed:
// one thread owns one (segment, column-unit) pair and walks its rows in order,
// so results are deterministic. Adjacent threads take adjacent columns of the
// same segment, so each row read is coalesced (and a SIMD batch on a CPU
// adapter shares one trip count). Skewed sizes are correct (a thread simply
// walks a longer range); they are not load-balanced.
//
// Each kernel has a scalar form (`*1`) and a vec4 form (`*4`) for column counts
// that are a multiple of 4 (the host passes `cols` in vec4 units then).

override WG: u32 = 64;

struct SegParams {
  segments: u32,
  cols: u32, // in units of the variant's width
  rows: u32, // rows of x (segmentSoftmax*: rows outside every segment are zeroed)
}

// Thread -> (segment, column unit); segment >= segments means idle.
fn seg_col(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, cols: u32) -> vec2<u32> {
  let id = linear_id(wid, nwg, lid, WG);
  let s = id / cols;
  return vec2<u32>(s, id - s * cols);
}

// ---- sum / mean ------------------------------------------------------------------------

// Divide by the segment's row count (mean); empty segments give 0 either way.
override MEAN: bool = false;

@group(0) @binding(0) var<uniform> sp: SegParams;
@group(0) @binding(1) var<storage, read> r_x1: array<f32>;
@group(0) @binding(1) var<storage, read> r_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> r_off: array<i32>;
@group(0) @binding(3) var<storage, read_write> r_out1: array<f32>;
@group(0) @binding(3) var<storage, read_write> r_out4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> r_arg1: array<i32>;
@group(0) @binding(4) var<storage, read_write> r_arg4: array<vec4<i32>>;

fn mean_scale(b: u32, e: u32) -> f32 {
  if (MEAN && e > b) { return 1.0 / f32(e - b); }
  return 1.0;
}

@compute @workgroup_size(WG)
fn seg_sum1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(r_off[sc.x]);
  let e = u32(r_off[sc.x + 1u]);
  var acc = 0.0;
  var i = b * sp.cols + sc.y;
  for (var r = b; r < e; r++) {
    acc += r_x1[i];
    i += sp.cols;
  }
  r_out1[sc.x * sp.cols + sc.y] = acc * mean_scale(b, e);
}

@compute @workgroup_size(WG)
fn seg_sum4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(r_off[sc.x]);
  let e = u32(r_off[sc.x + 1u]);
  var acc = vec4<f32>();
  var i = b * sp.cols + sc.y;
  for (var r = b; r < e; r++) {
    acc += r_x4[i];
    i += sp.cols;
  }
  r_out4[sc.x * sp.cols + sc.y] = acc * mean_scale(b, e);
}

// Four adjacent vec4 (16 columns) per thread, for cols % 16 == 0 (`cols` in
// vec4 units). Used on software adapters only: there a lane that reads one
// whole 64-byte line per row beats four lanes reading 16 bytes each (about
// 15% on 65536×128 → 4096), while on a GPU it would break coalescing.
@compute @workgroup_size(WG)
fn seg_sum16(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols / 4u);
  if (sc.x >= sp.segments) { return; }
  let b = u32(r_off[sc.x]);
  let e = u32(r_off[sc.x + 1u]);
  var a0 = vec4<f32>();
  var a1 = vec4<f32>();
  var a2 = vec4<f32>();
  var a3 = vec4<f32>();
  var i = b * sp.cols + sc.y * 4u;
  for (var r = b; r < e; r++) {
    a0 += r_x4[i];
    a1 += r_x4[i + 1u];
    a2 += r_x4[i + 2u];
    a3 += r_x4[i + 3u];
    i += sp.cols;
  }
  let k = mean_scale(b, e);
  let o = sc.x * sp.cols + sc.y * 4u;
  r_out4[o] = a0 * k;
  r_out4[o + 1u] = a1 * k;
  r_out4[o + 2u] = a2 * k;
  r_out4[o + 3u] = a3 * k;
}

// ---- max with argmax (first row reaching the maximum; -1 and 0 when empty) -------------

@compute @workgroup_size(WG)
fn seg_max1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(r_off[sc.x]);
  let e = u32(r_off[sc.x + 1u]);
  var m = 0.0;
  var a = -1;
  if (e > b) {
    var i = b * sp.cols + sc.y;
    m = r_x1[i];
    a = i32(b);
    for (var r = b + 1u; r < e; r++) {
      i += sp.cols;
      let v = r_x1[i];
      if (v > m) {
        m = v;
        a = i32(r);
      }
    }
  }
  let o = sc.x * sp.cols + sc.y;
  r_out1[o] = m;
  r_arg1[o] = a;
}

@compute @workgroup_size(WG)
fn seg_max4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(r_off[sc.x]);
  let e = u32(r_off[sc.x + 1u]);
  var m = vec4<f32>();
  var a = vec4<i32>(-1);
  if (e > b) {
    var i = b * sp.cols + sc.y;
    m = r_x4[i];
    a = vec4<i32>(i32(b));
    for (var r = b + 1u; r < e; r++) {
      i += sp.cols;
      let v = r_x4[i];
      let gt = v > m; // strict: ties keep the earlier row
      m = select(m, v, gt);
      a = select(a, vec4<i32>(i32(r)), gt);
    }
  }
  let o = sc.x * sp.cols + sc.y;
  r_out4[o] = m;
  r_arg4[o] = a;
}

// ---- max gradient: dx[r,c] = dy[seg(r),c] where argmax[seg(r),c] == r ------------------

struct MaxGradParams {
  rows: u32,
  cols: u32, // in units of the variant's width
}

@group(0) @binding(0) var<uniform> mp: MaxGradParams;
@group(0) @binding(1) var<storage, read> m_dy1: array<f32>;
@group(0) @binding(1) var<storage, read> m_dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> m_arg1: array<i32>;
@group(0) @binding(2) var<storage, read> m_arg4: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read> m_rowseg: array<i32>;
@group(0) @binding(4) var<storage, read_write> m_dx1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m_dx4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn seg_max_grad1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let r = id / mp.cols;
  if (r >= mp.rows) { return; }
  let c = id - r * mp.cols;
  let o = u32(m_rowseg[r]) * mp.cols + c;
  m_dx1[id] = select(0.0, m_dy1[o], m_arg1[o] == i32(r));
}

@compute @workgroup_size(WG)
fn seg_max_grad4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let r = id / mp.cols;
  if (r >= mp.rows) { return; }
  let c = id - r * mp.cols;
  let o = u32(m_rowseg[r]) * mp.cols + c;
  m_dx4[id] = select(vec4<f32>(), m_dy4[o], m_arg4[o] == vec4<i32>(i32(r)));
}

// ---- softmax over each segment's rows, per column ----------------------------------------

@group(0) @binding(1) var<storage, read> s_x1: array<f32>;
@group(0) @binding(1) var<storage, read> s_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> s_off: array<i32>;
@group(0) @binding(3) var<storage, read_write> s_y1: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_y4: array<vec4<f32>>;

// Rows before the first segment (written by segment 0's threads) and after
// the last (by the last segment's threads) belong to no segment: their
// outputs are 0. Returns the row range [lo, hi) the thread must zero.
fn outside_rows(s: u32, b: u32, e: u32) -> vec2<u32> {
  if (s == 0u && sp.segments == 1u) { return vec2<u32>(0u, sp.rows); } // caller skips [b, e)
  if (s == 0u) { return vec2<u32>(0u, b); }
  if (s + 1u == sp.segments) { return vec2<u32>(e, sp.rows); }
  return vec2<u32>(0u, 0u);
}

@compute @workgroup_size(WG)
fn seg_softmax1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(s_off[sc.x]);
  let e = u32(s_off[sc.x + 1u]);
  let z = outside_rows(sc.x, b, e);
  for (var r = z.x; r < z.y; r++) {
    if (r < b || r >= e) { s_y1[r * sp.cols + sc.y] = 0.0; }
  }
  if (e <= b) { return; }
  let first = b * sp.cols + sc.y;
  var m = s_x1[first];
  var i = first;
  for (var r = b + 1u; r < e; r++) {
    i += sp.cols;
    m = max(m, s_x1[i]);
  }
  var sum = 0.0;
  i = first;
  for (var r = b; r < e; r++) {
    sum += exp(s_x1[i] - m);
    i += sp.cols;
  }
  i = first;
  for (var r = b; r < e; r++) {
    s_y1[i] = exp(s_x1[i] - m) / sum;
    i += sp.cols;
  }
}

@compute @workgroup_size(WG)
fn seg_softmax4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(s_off[sc.x]);
  let e = u32(s_off[sc.x + 1u]);
  let z = outside_rows(sc.x, b, e);
  for (var r = z.x; r < z.y; r++) {
    if (r < b || r >= e) { s_y4[r * sp.cols + sc.y] = vec4<f32>(); }
  }
  if (e <= b) { return; }
  let first = b * sp.cols + sc.y;
  var m = s_x4[first];
  var i = first;
  for (var r = b + 1u; r < e; r++) {
    i += sp.cols;
    m = max(m, s_x4[i]);
  }
  var sum = vec4<f32>();
  i = first;
  for (var r = b; r < e; r++) {
    sum += exp(s_x4[i] - m);
    i += sp.cols;
  }
  i = first;
  for (var r = b; r < e; r++) {
    s_y4[i] = exp(s_x4[i] - m) / sum;
    i += sp.cols;
  }
}

// ---- softmax gradient: dx = y ⊙ (dy − Σ_segment(dy ⊙ y)) --------------------------------

@group(0) @binding(1) var<storage, read> t_y1: array<f32>;
@group(0) @binding(1) var<storage, read> t_y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> t_dy1: array<f32>;
@group(0) @binding(2) var<storage, read> t_dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> t_off: array<i32>;
@group(0) @binding(4) var<storage, read_write> t_dx1: array<f32>;
@group(0) @binding(4) var<storage, read_write> t_dx4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn seg_softmax_grad1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(t_off[sc.x]);
  let e = u32(t_off[sc.x + 1u]);
  let z = outside_rows(sc.x, b, e);
  for (var r = z.x; r < z.y; r++) {
    if (r < b || r >= e) { t_dx1[r * sp.cols + sc.y] = 0.0; }
  }
  let first = b * sp.cols + sc.y;
  var dot = 0.0;
  var i = first;
  for (var r = b; r < e; r++) {
    dot += t_dy1[i] * t_y1[i];
    i += sp.cols;
  }
  i = first;
  for (var r = b; r < e; r++) {
    t_dx1[i] = t_y1[i] * (t_dy1[i] - dot);
    i += sp.cols;
  }
}

@compute @workgroup_size(WG)
fn seg_softmax_grad4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let sc = seg_col(wid, nwg, lid, sp.cols);
  if (sc.x >= sp.segments) { return; }
  let b = u32(t_off[sc.x]);
  let e = u32(t_off[sc.x + 1u]);
  let z = outside_rows(sc.x, b, e);
  for (var r = z.x; r < z.y; r++) {
    if (r < b || r >= e) { t_dx4[r * sp.cols + sc.y] = vec4<f32>(); }
  }
  let first = b * sp.cols + sc.y;
  var dot = vec4<f32>();
  var i = first;
  for (var r = b; r < e; r++) {
    dot += t_dy4[i] * t_y4[i];
    i += sp.cols;
  }
  i = first;
  for (var r = b; r < e; r++) {
    t_dx4[i] = t_y4[i] * (t_dy4[i] - dot);
    i += sp.cols;
  }
}
