// Optimizer updates, in place (PyTorch semantics). The gradient is first
// scaled by the clipping coefficient min(1, max_norm / (sqrt(gradNormSq[0]) + 1e-6))
// when `use_clip` is set, read from its one-element storage on the GPU (no
// readback).
//
//   sgd:          p -= lr (g + wd p)
//   sgd_momentum: d = g + wd p; buf = (step == 1) ? d : momentum buf + d;
//                 p -= lr (nesterov ? d + momentum buf : buf)
//   adam:         g' = g + wd p (L2), or p *= 1 - lr wd first (DECOUPLED, AdamW);
//                 m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
//                 p -= lr (m / bc1) / (sqrt(v / bc2) + eps)
//
// The update rules are written once on vec4s. Entries with the suffix 4 take
// four elements per thread through vec4 bindings (the host uses them only
// on buffers whose size is a multiple of 16 bytes, so the tail past n is
// padding); the others take one element per thread.

override DECOUPLED: bool = false;

const WG: u32 = 256u;

struct OptimParams {
  n: u32,
  step: u32,
  nesterov: u32,
  use_clip: u32,
  lr: f32,
  momentum: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  max_norm: f32,
  // 1 - beta1^step and 1 - beta2^step, computed in float64 on the host.
  bc1: f32,
  bc2: f32,
}

@group(0) @binding(0) var<uniform> P: OptimParams;

fn clip_coef(norm_sq: f32) -> f32 {
  if (P.use_clip == 0u) {
    return 1.0;
  }
  return min(1.0, P.max_norm / (sqrt(norm_sq) + 1e-6));
}

fn sgd_update(p: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
  return p - P.lr * (g + P.weight_decay * p);
}

struct Momentum {
  p: vec4<f32>,
  buf: vec4<f32>,
}

fn momentum_update(p: vec4<f32>, g: vec4<f32>, buf_in: vec4<f32>) -> Momentum {
  let d = g + P.weight_decay * p;
  var r: Momentum;
  r.buf = select(d, P.momentum * buf_in + d, P.step > 1u);
  r.p = p - P.lr * select(r.buf, d + P.momentum * r.buf, P.nesterov != 0u);
  return r;
}

struct Adam {
  p: vec4<f32>,
  m: vec4<f32>,
  v: vec4<f32>,
}

fn adam_update(p_in: vec4<f32>, g_in: vec4<f32>, m_in: vec4<f32>, v_in: vec4<f32>) -> Adam {
  var p = p_in;
  var g = g_in;
  if (DECOUPLED) {
    p *= 1.0 - P.lr * P.weight_decay;
  } else {
    g += P.weight_decay * p;
  }
  var r: Adam;
  r.m = P.beta1 * m_in + (1.0 - P.beta1) * g;
  r.v = P.beta2 * v_in + (1.0 - P.beta2) * g * g;
  r.p = p - P.lr * (r.m / P.bc1) / (sqrt(r.v / P.bc2) + P.eps);
  return r;
}

// ---- sgd without momentum -------------------------------------------------------

@group(0) @binding(1) var<storage, read_write> S_PARAM: array<f32>;
@group(0) @binding(2) var<storage, read> S_GRAD: array<f32>;
@group(0) @binding(3) var<storage, read> S_NORM: array<f32>;

@compute @workgroup_size(WG)
fn sgd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= P.n) {
    return;
  }
  S_PARAM[i] = sgd_update(vec4<f32>(S_PARAM[i]), vec4<f32>(S_GRAD[i] * clip_coef(S_NORM[0]))).x;
}

@group(0) @binding(1) var<storage, read_write> S4_PARAM: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> S4_GRAD: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> S4_NORM: array<f32>;

@compute @workgroup_size(WG)
fn sgd4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let g = linear_id(wid, nwg, li, WG);
  if (g * 4u >= P.n) {
    return;
  }
  S4_PARAM[g] = sgd_update(S4_PARAM[g], S4_GRAD[g] * clip_coef(S4_NORM[0]));
}

// ---- sgd with momentum ----------------------------------------------------------

@group(0) @binding(1) var<storage, read_write> M_PARAM: array<f32>;
@group(0) @binding(2) var<storage, read> M_GRAD: array<f32>;
@group(0) @binding(3) var<storage, read_write> M_BUF: array<f32>;
@group(0) @binding(4) var<storage, read> M_NORM: array<f32>;

@compute @workgroup_size(WG)
fn sgd_momentum(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= P.n) {
    return;
  }
  let g = M_GRAD[i] * clip_coef(M_NORM[0]);
  let r = momentum_update(vec4<f32>(M_PARAM[i]), vec4<f32>(g), vec4<f32>(M_BUF[i]));
  M_BUF[i] = r.buf.x;
  M_PARAM[i] = r.p.x;
}

@group(0) @binding(1) var<storage, read_write> M4_PARAM: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> M4_GRAD: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> M4_BUF: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> M4_NORM: array<f32>;

@compute @workgroup_size(WG)
fn sgd_momentum4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i * 4u >= P.n) {
    return;
  }
  let r = momentum_update(M4_PARAM[i], M4_GRAD[i] * clip_coef(M4_NORM[0]), M4_BUF[i]);
  M4_BUF[i] = r.buf;
  M4_PARAM[i] = r.p;
}

// ---- adam / adamw ---------------------------------------------------------------

@group(0) @binding(1) var<storage, read_write> A_PARAM: array<f32>;
@group(0) @binding(2) var<storage, read> A_GRAD: array<f32>;
@group(0) @binding(3) var<storage, read_write> A_M: array<f32>;
@group(0) @binding(4) var<storage, read_write> A_V: array<f32>;
@group(0) @binding(5) var<storage, read> A_NORM: array<f32>;

@compute @workgroup_size(WG)
fn adam(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= P.n) {
    return;
  }
  let g = A_GRAD[i] * clip_coef(A_NORM[0]);
  let r = adam_update(vec4<f32>(A_PARAM[i]), vec4<f32>(g), vec4<f32>(A_M[i]), vec4<f32>(A_V[i]));
  A_M[i] = r.m.x;
  A_V[i] = r.v.x;
  A_PARAM[i] = r.p.x;
}

@group(0) @binding(1) var<storage, read_write> A4_PARAM: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> A4_GRAD: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> A4_M: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> A4_V: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> A4_NORM: array<f32>;

@compute @workgroup_size(WG)
fn adam4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i * 4u >= P.n) {
    return;
  }
  let r = adam_update(A4_PARAM[i], A4_GRAD[i] * clip_coef(A4_NORM[0]), A4_M[i], A4_V[i]);
  A4_M[i] = r.m;
  A4_V[i] = r.v;
  A4_PARAM[i] = r.p;
}
