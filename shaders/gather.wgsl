// Row gathers and column-block copies (sliceCols, concatCols).
//
// Every kernel moves 32-bit words bit for bit, so it serves f32 and i32
// storages alike. Each comes in a scalar form (`*1`) and a vec4 form (`*4`)
// used when every column count and offset is a multiple of 4: the host then
// passes sizes in vec4 units. A vec4 load costs about one scalar load on
// lavapipe/llvmpipe, where every non-uniform storage access is a per-lane
// loop, so the vec4 forms move two to three times the bytes per second.
// One thread per (row, column-unit); adjacent threads touch adjacent columns.

override WG: u32 = 256;

// ---- gather: out[i, c] = x[idx[i], c] ----------------------------------------------

struct GatherParams {
  rows: u32, // output rows (= idx length)
  cols: u32, // columns, in units of the variant's width
}

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> g_x1: array<u32>;
@group(0) @binding(1) var<storage, read> g_x4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> g_idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> g_out1: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_out4: array<vec4<u32>>;

@compute @workgroup_size(WG)
fn gather1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let i = id / gp.cols;
  if (i >= gp.rows) { return; }
  let c = id - i * gp.cols;
  g_out1[id] = g_x1[u32(g_idx[i]) * gp.cols + c];
}

@compute @workgroup_size(WG)
fn gather4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let i = id / gp.cols;
  if (i >= gp.rows) { return; }
  let c = id - i * gp.cols;
  g_out4[id] = g_x4[u32(g_idx[i]) * gp.cols + c];
}

// ---- block copy: dst[r, dOff + c] = src[r, sOff + c] for c < len ---------------------

struct CopyParams {
  rows: u32,
  len: u32, // columns copied
  s_stride: u32, // source row length
  s_off: u32, // first source column
  d_stride: u32, // destination row length
  d_off: u32, // first destination column
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> c_src1: array<u32>;
@group(0) @binding(1) var<storage, read> c_src4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> c_dst1: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_dst4: array<vec4<u32>>;

@compute @workgroup_size(WG)
fn copy_cols1(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let r = id / cp.len;
  if (r >= cp.rows) { return; }
  let c = id - r * cp.len;
  c_dst1[r * cp.d_stride + cp.d_off + c] = c_src1[r * cp.s_stride + cp.s_off + c];
}

@compute @workgroup_size(WG)
fn copy_cols4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = linear_id(wid, nwg, lid, WG);
  let r = id / cp.len;
  if (r >= cp.rows) { return; }
  let c = id - r * cp.len;
  c_dst4[r * cp.d_stride + cp.d_off + c] = c_src4[r * cp.s_stride + cp.s_off + c];
}
