// Sum reductions of a row-major rows×cols storage. WGSL has no float
// atomics, so every reduction is a tree in workgroup memory or a chain of
// passes over partial sums; all are deterministic.
//
//   sum_all:  out[wg] = scale · Σ of a grid-strided share of x (one partial
//             per workgroup); run once more on the partials with one
//             workgroup for the total.
//   sum_rows: per-column sums over chunks of rows: out[j, c] = Σ_{r in chunk j} x[r, c].
//             Repeated until one row is left.
//   sum_cols: per-row sums: `tpr` threads share a row and reduce in a tree.
//   sum_sq:   out[offset + wg] = Σ x² over a grid-strided share of x: the
//             first pass of `sumSquares`, once per storage, each into its own
//             slots of one partials buffer that sum_all then adds up.

const WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// Tree-reduces each aligned group of `width` slots of `partial` (width a
// power of two) into its first slot; `lane` is li's position in its group.
// Every invocation of the workgroup must call it (it has barriers). Not in
// common.wgsl: it names this module's workgroup array (see there).
fn tree_sum(li: u32, lane: u32, width: u32) {
  for (var stride = width / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lane < stride) {
      partial[li] += partial[li + stride];
    }
  }
  workgroupBarrier();
}

// ---- all ------------------------------------------------------------------------

struct AllParams {
  n: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> PA: AllParams;
@group(0) @binding(1) var<storage, read> AX: array<f32>;
@group(0) @binding(2) var<storage, read_write> AOUT: array<f32>;

@compute @workgroup_size(WG)
fn sum_all(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let stride = nwg.x * WG;
  var s = 0.0;
  for (var i = wid.x * WG + li; i < PA.n; i += stride) {
    s += AX[i];
  }
  partial[li] = s;
  tree_sum(li, li, WG);
  if (li == 0u) {
    AOUT[wid.x] = partial[0] * PA.scale;
  }
}

// ---- sum of squares -------------------------------------------------------------

struct SqParams {
  n: u32,
  offset: u32,
}

// Same storage bindings as sum_all (AX, AOUT); only the uniform block differs.
@group(0) @binding(0) var<uniform> PQ: SqParams;

@compute @workgroup_size(WG)
fn sum_sq(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let stride = nwg.x * WG;
  var s = 0.0;
  for (var i = wid.x * WG + li; i < PQ.n; i += stride) {
    let v = AX[i];
    s += v * v;
  }
  partial[li] = s;
  tree_sum(li, li, WG);
  if (li == 0u) {
    AOUT[PQ.offset + wid.x] = partial[0];
  }
}

// ---- rows (per-column sums) -----------------------------------------------------

struct RowsParams {
  rows: u32,
  cols: u32,
  // rows summed by one thread; out has ceil(rows / chunk) rows.
  chunk: u32,
  // ceil(rows / chunk) * cols: the number of threads with work.
  total: u32,
}

@group(0) @binding(0) var<uniform> PR: RowsParams;
@group(0) @binding(1) var<storage, read> RX: array<f32>;
@group(0) @binding(2) var<storage, read_write> ROUT: array<f32>;

@compute @workgroup_size(WG)
fn sum_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let t = linear_id(wid, nwg, li, WG);
  if (t >= PR.total) {
    return;
  }
  // Consecutive threads take consecutive columns: coalesced reads of each row.
  let c = t % PR.cols;
  let j = t / PR.cols;
  let r0 = j * PR.chunk;
  let r1 = min(PR.rows, r0 + PR.chunk);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    s += RX[r * PR.cols + c];
  }
  ROUT[t] = s;
}

// ---- cols (per-row sums) --------------------------------------------------------

struct ColsParams {
  rows: u32,
  cols: u32,
  // threads per row: a power of two dividing WG.
  tpr: u32,
}

@group(0) @binding(0) var<uniform> PC: ColsParams;
@group(0) @binding(1) var<storage, read> CX: array<f32>;
@group(0) @binding(2) var<storage, read_write> COUT: array<f32>;

@compute @workgroup_size(WG)
fn sum_cols(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let rows_per_wg = WG / PC.tpr;
  let lane = li % PC.tpr;
  let row = (wid.x + wid.y * nwg.x) * rows_per_wg + li / PC.tpr;
  var s = 0.0;
  if (row < PC.rows) {
    let base = row * PC.cols;
    for (var c = lane; c < PC.cols; c += PC.tpr) {
      s += CX[base + c];
    }
  }
  partial[li] = s;
  tree_sum(li, lane, PC.tpr);
  if (lane == 0u && row < PC.rows) {
    COUT[row] = partial[li];
  }
}
