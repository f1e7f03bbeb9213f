// Losses and their gradients. Forward: each workgroup sums the losses of a
// grid-strided share of the items (elements, or rows for cross-entropy),
// tree-reduces them in workgroup memory and writes one partial scaled by
// 1/N; one more pass of reduce.wgsl's sum_all adds the partials when there
// is more than one workgroup. Backward: one thread per element (per row for
// cross-entropy), scaled by the upstream gradient read from its one-element
// storage.
//
// KIND (override): 0 bce_logits, 1 mse, 2 l1 (cross-entropy has its own entries).

override KIND: u32 = 0u;

const WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// Tree-reduces partial[0..WG) into partial[0]; every invocation must call it.
// Not in common.wgsl: it names this module's workgroup array (see there).
fn tree_sum(li: u32) {
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (li < stride) {
      partial[li] += partial[li + stride];
    }
  }
  workgroupBarrier();
}

// log(1 + e) for e in [0, 1], accurate to a few ulps relative even for tiny e.
fn log1p_small(e: f32) -> f32 {
  if (e < 1e-3) {
    return e * (1.0 - e * (0.5 - e / 3.0));
  }
  let u = 1.0 + e;
  return log(u) * e / (u - 1.0);
}

// ---- element-wise losses ----------------------------------------------------------

struct LossParams {
  n: u32,
  cols: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> PL: LossParams;
@group(0) @binding(1) var<storage, read> PRED: array<f32>;
@group(0) @binding(2) var<storage, read> TGT: array<f32>;
@group(0) @binding(3) var<storage, read_write> LOUT: array<f32>;

fn elem_loss(x: f32, t: f32) -> f32 {
  switch KIND {
    case 0u: {
      // max(x, 0) - x t + log(1 + e^-|x|): stable for any x.
      return max(x, 0.0) - x * t + log1p_small(exp(-abs(x)));
    }
    case 1u: {
      let d = x - t;
      return d * d;
    }
    default: {
      return abs(x - t);
    }
  }
}

@compute @workgroup_size(WG)
fn loss_partial(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  var s = 0.0;
  for (var i = wid.x * WG + li; i < PL.n; i += nwg.x * WG) {
    s += elem_loss(PRED[i], TGT[i]);
  }
  partial[li] = s;
  tree_sum(li);
  if (li == 0u) {
    LOUT[wid.x] = partial[0] * PL.scale;
  }
}

// ---- cross-entropy --------------------------------------------------------------

@group(0) @binding(1) var<storage, read> LOGITS: array<f32>;
@group(0) @binding(2) var<storage, read> CLS: array<i32>;
@group(0) @binding(3) var<storage, read_write> CEOUT: array<f32>;

// logsumexp(row) − row[target], computed around the row maximum. A target
// outside [0, cols) contributes 0.
fn ce_row(r: u32) -> f32 {
  let cols = PL.cols;
  let base = r * cols;
  let t = CLS[r];
  if (t < 0 || u32(t) >= cols) {
    return 0.0;
  }
  var m = LOGITS[base];
  for (var c = 1u; c < cols; c++) {
    m = max(m, LOGITS[base + c]);
  }
  var s = 0.0;
  for (var c = 0u; c < cols; c++) {
    s += exp(LOGITS[base + c] - m);
  }
  return m + log(s) - LOGITS[base + u32(t)];
}

@compute @workgroup_size(WG)
fn ce_partial(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  var s = 0.0;
  for (var r = wid.x * WG + li; r < PL.n; r += nwg.x * WG) {
    s += ce_row(r);
  }
  partial[li] = s;
  tree_sum(li);
  if (li == 0u) {
    CEOUT[wid.x] = partial[0] * PL.scale;
  }
}

// ---- gradients ------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> GPRED: array<f32>;
@group(0) @binding(2) var<storage, read> GTGT: array<f32>;
@group(0) @binding(3) var<storage, read> GDY: array<f32>;
@group(0) @binding(4) var<storage, read_write> GOUT: array<f32>;

@compute @workgroup_size(WG)
fn loss_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= PL.n) {
    return;
  }
  let x = GPRED[i];
  let t = GTGT[i];
  var g: f32;
  switch KIND {
    case 0u: {
      g = sigmoid(x) - t;
    }
    case 1u: {
      g = 2.0 * (x - t);
    }
    default: {
      g = sign(x - t);
    }
  }
  GOUT[i] = g * (GDY[0] * PL.scale);
}

@group(0) @binding(1) var<storage, read> GLOGITS: array<f32>;
@group(0) @binding(2) var<storage, read> GCLS: array<i32>;
@group(0) @binding(3) var<storage, read> GCEDY: array<f32>;
@group(0) @binding(4) var<storage, read_write> GCEOUT: array<f32>;

// d/dlogits of the mean cross-entropy: (softmax(row) − onehot(target)) · dy / rows;
// a row with an out-of-range target has no gradient.
@compute @workgroup_size(WG)
fn ce_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let r = linear_id(wid, nwg, li, WG);
  if (r >= PL.n) {
    return;
  }
  let cols = PL.cols;
  let base = r * cols;
  let t = GCLS[r];
  if (t < 0 || u32(t) >= cols) {
    for (var c = 0u; c < cols; c++) {
      GCEOUT[base + c] = 0.0;
    }
    return;
  }
  var m = GLOGITS[base];
  for (var c = 1u; c < cols; c++) {
    m = max(m, GLOGITS[base + c]);
  }
  var s = 0.0;
  for (var c = 0u; c < cols; c++) {
    s += exp(GLOGITS[base + c] - m);
  }
  let k = GCEDY[0] * PL.scale / s;
  for (var c = 0u; c < cols; c++) {
    GCEOUT[base + c] = exp(GLOGITS[base + c] - m) * k;
  }
  GCEOUT[base + u32(t)] -= GCEDY[0] * PL.scale;
}
